//! Buyers' refund requests over HTTP on every backend: asked by the buyer, approved once by the
//! merchant (the money back in the buyer's wallet), declined with a note, withdrawn; each party
//! sees only its own, and bad input gets a problem, not an effect.

use serde_json::{Value, json};

use crate::helpers::{TestApp, User};
use crate::on_every_backend;

on_every_backend!(
    a_buyer_asks_and_the_merchant_approves_it_once,
    a_declined_request_says_why_and_a_withdrawn_one_makes_room_for_another,
    refund_requests_refuse_strangers_and_bad_input,
    a_merchant_who_buys_lists_the_requests_made_and_those_to_answer,
);

async fn bought(app: &TestApp) -> (User, User, String) {
    let merchant = app.user("merchant").await;
    let buyer = app.customer_with("100.00").await;
    let product = app.product(&merchant, "Lamp", "30.00", 5).await;
    let cart = json!({"items": [{"product_id": product, "quantity": 2}], "payment_method": "wallet"});
    let order = app.post("/api/v1/orders", Some(&buyer.token), &cart).await;
    let order = order.assert_status(201)["id"].as_str().expect("order id").to_owned();
    (merchant, buyer, order)
}

fn asked(path_order: &str) -> String {
    format!("/api/v1/orders/{path_order}/refund-requests")
}

fn id(value: &Value) -> String {
    value["id"].as_str().expect("id").to_owned()
}

async fn a_buyer_asks_and_the_merchant_approves_it_once(app: TestApp) {
    let (merchant, buyer, order) = bought(&app).await;
    let body = json!({"amount": "30.00", "reason": "one arrived broken"});
    let first = app.post_idempotent(&asked(&order), &buyer.token, &body, "ask-1").await;
    let request = first.assert_status(201).clone();
    assert_eq!(
        (request["status"].clone(), request["amount"].clone(), request["merchant_id"].clone()),
        (json!("open"), json!("30.00"), json!(merchant.id))
    );
    let replay = app.post_idempotent(&asked(&order), &buyer.token, &body, "ask-1").await;
    assert_eq!(replay.assert_status(201), &request, "the same request, not a second one");

    let listed = app.get("/api/v1/refund-requests?status=open", Some(&merchant.token)).await;
    let ids: Vec<Value> = listed.assert_status(200)["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|r| r["id"].clone())
        .collect();
    assert_eq!(ids, vec![request["id"].clone()]);

    let approve = format!("/api/v1/refund-requests/{}/approve", id(&request));
    let approved = app.post_idempotent(&approve, &merchant.token, &json!({}), "approve-1").await;
    let refunds = approved.assert_status(201)["refunds"].clone();
    assert_eq!(
        (refunds[0]["amount"].clone(), refunds[0]["status"].clone()),
        (json!("30.00"), json!("succeeded"))
    );
    let again = app.post(&approve, Some(&app.admin.token), &json!({})).await;
    again.assert_problem(409, "refund_request_closed");
    assert_eq!(app.balance(&buyer).await, "70.00", "refunded once: 100 - 60 + 30");
    assert_eq!(app.balance(&merchant).await, "30.00");

    let shown = app
        .get(&format!("/api/v1/refund-requests/{}", id(&request)), Some(&buyer.token))
        .await;
    let shown = shown.assert_status(200);
    assert_eq!(
        (shown["status"].clone(), shown["refund_id"].clone()),
        (json!("approved"), refunds[0]["id"].clone())
    );
    app.assert_ledger_ok().await;
}

async fn a_declined_request_says_why_and_a_withdrawn_one_makes_room_for_another(app: TestApp) {
    let (merchant, buyer, order) = bought(&app).await;
    let first = app.post(&asked(&order), Some(&buyer.token), &json!({"reason": "too dark"})).await;
    let first = id(first.assert_status(201));
    app.post(&asked(&order), Some(&buyer.token), &json!({"reason": "still too dark"}))
        .await
        .assert_problem(409, "refund_request_open");
    let withdraw = format!("/api/v1/refund-requests/{first}/withdraw");
    app.post(&withdraw, Some(&merchant.token), &json!({}))
        .await
        .assert_problem(403, "forbidden");
    let withdrawn = app.post(&withdraw, Some(&buyer.token), &json!({})).await;
    assert_eq!(withdrawn.assert_status(200)["status"], json!("withdrawn"));

    let second = app
        .post(&asked(&order), Some(&buyer.token), &json!({"reason": "really too dark"}))
        .await;
    let second = id(second.assert_status(201));
    let decline = format!("/api/v1/refund-requests/{second}/decline");
    app.post(&decline, Some(&merchant.token), &json!({"note": "  "}))
        .await
        .assert_problem(422, "validation_failed");
    app.post(&decline, Some(&buyer.token), &json!({"note": "no"}))
        .await
        .assert_problem(403, "forbidden");
    let declined = app.post(&decline, Some(&merchant.token), &json!({"note": "as pictured"})).await;
    let declined = declined.assert_status(200);
    assert_eq!(
        (declined["status"].clone(), declined["note"].clone()),
        (json!("declined"), json!("as pictured"))
    );
    assert_eq!(app.balance(&buyer).await, "40.00", "nothing refunded");
}

async fn refund_requests_refuse_strangers_and_bad_input(app: TestApp) {
    let (merchant, buyer, order) = bought(&app).await;
    let stranger = app.customer_with("5.00").await;
    let other_merchant = app.user("merchant").await;
    app.post(&asked(&order), Some(&stranger.token), &json!({"reason": "mine"}))
        .await
        .assert_problem(404, "not_found");
    for (body, status, code) in [
        (json!({"reason": ""}), 422, "validation_failed"),
        (json!({"reason": "x", "amount": "0"}), 422, "validation_failed"),
        (json!({"reason": "x", "amount": "-1.00"}), 422, "validation_failed"),
        (json!({"reason": "x", "amount": "1.001"}), 422, "validation_failed"),
        (json!({"reason": "x", "amount": "60.01"}), 422, "exceeds_refundable"),
        (json!({"reason": "x", "merchant_id": stranger.id}), 422, "validation_failed"),
        (json!({"reason": "x", "surprise": true}), 422, "validation_failed"),
        (json!(["reason"]), 422, "validation_failed"),
    ] {
        let reply = app.post(&asked(&order), Some(&buyer.token), &body).await;
        assert_eq!(reply.status, status, "{body}: {:?}", reply.body);
        reply.assert_problem(status, code);
    }
    let open = app.post(&asked(&order), Some(&buyer.token), &json!({"reason": "flickers"})).await;
    let open = id(open.assert_status(201));
    for path in [
        format!("/api/v1/refund-requests/{open}"),
        "/api/v1/refund-requests/not-an-id".to_owned(),
    ] {
        app.get(&path, Some(&other_merchant.token)).await.assert_problem(404, "not_found");
    }
    let approve = format!("/api/v1/refund-requests/{open}/approve");
    app.post(&approve, Some(&other_merchant.token), &json!({}))
        .await
        .assert_problem(404, "not_found");
    app.post(&approve, Some(&buyer.token), &json!({}))
        .await
        .assert_problem(403, "forbidden");
    let mine = app.get("/api/v1/refund-requests", Some(&other_merchant.token)).await;
    assert_eq!(mine.assert_status(200)["items"], json!([]));
    app.get("/api/v1/refund-requests?status=pending", Some(&buyer.token))
        .await
        .assert_problem(400, "invalid_query");
    assert_eq!(
        (app.balance(&buyer).await, app.balance(&merchant).await),
        ("40.00".into(), "60.00".into())
    );
    app.assert_ledger_ok().await;
}

/// A merchant buys from other merchants too: the listing shows the requests they made as a buyer
/// beside those they must answer, and nobody else's. (It showed only the second kind.)
async fn a_merchant_who_buys_lists_the_requests_made_and_those_to_answer(app: TestApp) {
    let (merchant, buyer, order) = bought(&app).await;
    let to_answer = app
        .post(&asked(&order), Some(&buyer.token), &json!({"amount": "30.00", "reason": "broken"}))
        .await;
    let to_answer = id(to_answer.assert_status(201));

    let seller = app.user("merchant").await;
    app.fund(&merchant, "50.00", "USD").await;
    let product = app.product(&seller, "Chair", "20.00", 5).await;
    let cart = json!({"items": [{"product_id": product, "quantity": 1}], "payment_method": "wallet"});
    let bought_by_merchant = app.post("/api/v1/orders", Some(&merchant.token), &cart).await;
    let bought_by_merchant = id(bought_by_merchant.assert_status(201));
    let made = app
        .post(
            &asked(&bought_by_merchant),
            Some(&merchant.token),
            &json!({"reason": "wrong colour"}),
        )
        .await;
    let made = id(made.assert_status(201));

    let listed_ids =
        |reply: &crate::helpers::Reply| -> Vec<String> { reply.body["items"].as_array().expect("items").iter().map(id).collect() };
    let merchants = app.get("/api/v1/refund-requests", Some(&merchant.token)).await;
    assert_eq!(merchants.status, 200, "{}", merchants.body);
    assert_eq!(listed_ids(&merchants), vec![made.clone(), to_answer.clone()], "newest first");
    let sellers = app.get("/api/v1/refund-requests", Some(&seller.token)).await;
    assert_eq!(listed_ids(&sellers), vec![made]);
    let buyers = app.get("/api/v1/refund-requests", Some(&buyer.token)).await;
    assert_eq!(listed_ids(&buyers), vec![to_answer]);
}
