//! Authorise now, capture later: a wallet order with `"capture": "manual"` holds each merchant's
//! part until the merchant captures or voids it, through the real server on every backend.

use serde_json::{Value, json};

use crate::helpers::{ServerClock, TestApp, User};
use crate::on_every_backend;

on_every_backend!(
    one_merchant_captures_part_and_the_other_voids,
    the_buyer_voids_the_whole_order_and_the_job_expires_parts,
    only_the_parties_settle_and_bad_captures_are_refused,
);

async fn authorise(app: &TestApp, buyer: &User, items: Value) -> Value {
    let body = json!({"items": items, "payment_method": "wallet", "capture": "manual"});
    let reply = app.post("/api/v1/orders", Some(&buyer.token), &body).await;
    let order = reply.assert_status(201).clone();
    assert_eq!(
        (order["status"].as_str(), order["capture"].as_str()),
        (Some("authorised"), Some("manual"))
    );
    order
}

fn order_path(order: &Value, action: &str) -> String {
    format!("/api/v1/orders/{}/{action}", order["id"].as_str().expect("id"))
}

async fn one_merchant_captures_part_and_the_other_voids(app: TestApp) {
    let buyer = app.customer_with("100.00").await;
    let (ann, bob) = (app.user("merchant").await, app.user("merchant").await);
    let mug = app.product(&ann, "Mug", "10.00", 5).await;
    let pen = app.product(&bob, "Pen", "3.00", 5).await;
    let order = authorise(
        &app,
        &buyer,
        json!([{"product_id": mug, "quantity": 3}, {"product_id": pen, "quantity": 2}]),
    )
    .await;
    let wallet = app.wallet(&buyer).await;
    assert_eq!(
        (wallet["balance"].as_str(), wallet["held"].as_str(), wallet["available"].as_str()),
        (Some("100.00"), Some("36.00"), Some("64.00"))
    );
    assert_eq!(app.stock(&mug).await, (2, 3));

    let capture = json!({"items": [{"product_id": mug, "quantity": 2}]});
    let first = app
        .post_idempotent(&order_path(&order, "capture"), &ann.token, &capture, "ann-ships")
        .await;
    assert_eq!(first.assert_status(200)["status"], json!("authorised"));
    let replay = app
        .post_idempotent(&order_path(&order, "capture"), &ann.token, &capture, "ann-ships")
        .await;
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.body, first.body, "a retried capture takes nothing more");
    app.post(&order_path(&order, "capture"), Some(&ann.token), &json!({}))
        .await
        .assert_problem(409, "part_settled");

    let voided = app.post(&order_path(&order, "void"), Some(&bob.token), &json!({})).await;
    let voided = voided.assert_status(200);
    assert_eq!((voided["status"].as_str(), voided["total"].as_str()), (Some("paid"), Some("20.00")));
    assert_eq!(voided["items"][0]["captured_quantity"], json!(2));
    assert_eq!(voided["items"][0]["line_total"], json!("20.00"));
    assert_eq!(voided["items"][1]["captured_quantity"], json!(0));

    let wallet = app.wallet(&buyer).await;
    assert_eq!((wallet["balance"].as_str(), wallet["held"].as_str()), (Some("80.00"), Some("0.00")));
    assert_eq!(
        (app.balance(&ann).await, app.balance(&bob).await),
        ("20.00".to_owned(), "0.00".to_owned())
    );
    assert_eq!((app.stock(&mug).await, app.stock(&pen).await), ((3, 0), (5, 0)));
    let shown = app
        .get(&format!("/api/v1/orders/{}", order["id"].as_str().expect("id")), Some(&buyer.token))
        .await;
    let parts = shown.assert_status(200)["authorisations"]
        .as_array()
        .expect("authorisations")
        .clone();
    let mut statuses: Vec<_> = parts
        .iter()
        .map(|part| part["status"].as_str().unwrap_or_default().to_owned())
        .collect();
    statuses.sort();
    assert_eq!(statuses, ["captured", "released"]);
    app.assert_ledger_ok().await;
}

async fn the_buyer_voids_the_whole_order_and_the_job_expires_parts(app: TestApp) {
    // Authorisations last five minutes here, well within the test's access tokens.
    let app = TestApp::spawn_on(app.backend, &[("HOLD_TTL_SECS", "300")], ServerClock::Manual).await;
    let buyer = app.customer_with("100.00").await;
    let (ann, bob) = (app.user("merchant").await, app.user("merchant").await);
    let mug = app.product(&ann, "Mug", "10.00", 5).await;
    let pen = app.product(&bob, "Pen", "3.00", 5).await;
    let cart = json!([{"product_id": mug, "quantity": 1}, {"product_id": pen, "quantity": 1}]);

    let order = authorise(&app, &buyer, cart.clone()).await;
    let voided = app.post(&order_path(&order, "void"), Some(&buyer.token), &json!({})).await;
    assert_eq!(voided.assert_status(200)["status"], json!("cancelled"));
    assert_eq!(app.wallet(&buyer).await["held"], json!("0.00"));
    assert_eq!((app.stock(&mug).await, app.stock(&pen).await), ((5, 0), (5, 0)));

    // Bob captures; the buyer may no longer void; Ann's part expires with its hold.
    let order = authorise(&app, &buyer, cart).await;
    app.post(&order_path(&order, "capture"), Some(&bob.token), &json!({}))
        .await
        .assert_status(200);
    app.post(&order_path(&order, "void"), Some(&buyer.token), &json!({}))
        .await
        .assert_problem(403, "forbidden");
    app.advance(std::time::Duration::from_secs(301));
    app.run_jobs().await;
    let shown = app
        .get(&format!("/api/v1/orders/{}", order["id"].as_str().expect("id")), Some(&buyer.token))
        .await;
    let shown = shown.assert_status(200);
    assert_eq!((shown["status"].as_str(), shown["total"].as_str()), (Some("paid"), Some("3.00")));
    let wallet = app.wallet(&buyer).await;
    assert_eq!((wallet["balance"].as_str(), wallet["held"].as_str()), (Some("97.00"), Some("0.00")));
    assert_eq!(app.stock(&mug).await, (5, 0));
    app.assert_ledger_ok().await;
}

async fn only_the_parties_settle_and_bad_captures_are_refused(app: TestApp) {
    let buyer = app.customer_with("100.00").await;
    let (ann, stranger) = (app.user("merchant").await, app.user("merchant").await);
    let mug = app.product(&ann, "Mug", "10.00", 5).await;
    let other = app.product(&stranger, "Cup", "1.00", 5).await;
    let order = authorise(&app, &buyer, json!([{"product_id": mug, "quantity": 2}])).await;
    let capture = order_path(&order, "capture");

    app.post(&capture, Some(&stranger.token), &json!({}))
        .await
        .assert_problem(404, "not_found");
    app.post(&capture, Some(&buyer.token), &json!({}))
        .await
        .assert_problem(403, "forbidden");
    app.post(&capture, Some(&ann.token), &json!({"items": [{"product_id": mug, "quantity": 3}]}))
        .await
        .assert_problem(422, "exceeds_authorised");
    app.post(
        &capture,
        Some(&ann.token),
        &json!({"items": [{"product_id": other, "quantity": 1}]}),
    )
    .await
    .assert_problem(422, "not_your_item");
    app.post(&capture, Some(&ann.token), &json!({"items": [{"product_id": mug, "quantity": 0}]}))
        .await
        .assert_problem(422, "validation_failed");
    app.post(
        &capture,
        Some(&ann.token),
        &json!({"items": [{"product_id": mug, "quantity": "two"}]}),
    )
    .await
    .assert_status(422);
    app.post(&capture, Some(&ann.token), &json!({"amount": "5.00"}))
        .await
        .assert_status(422);
    app.post(&capture, Some(&ann.token), &json!({"items": []}))
        .await
        .assert_problem(422, "validation_failed");
    app.post("/api/v1/orders/not-a-uuid/capture", Some(&ann.token), &json!({}))
        .await
        .assert_problem(404, "not_found");
    app.post(&capture, None, &json!({})).await.assert_status(401);

    let by_card = json!({"items": [{"product_id": mug, "quantity": 1}], "payment_method": "card", "capture": "manual"});
    app.post("/api/v1/orders", Some(&buyer.token), &by_card)
        .await
        .assert_problem(422, "validation_failed");
    let too_much = json!({"items": [{"product_id": mug, "quantity": 2}], "payment_method": "wallet", "capture": "manual"});
    let poor = app.user("customer").await;
    app.post("/api/v1/orders", Some(&poor.token), &too_much)
        .await
        .assert_problem(422, "insufficient_funds");

    // An order's hold is the order's: the holds API leaves it alone.
    let shown = app
        .get(&format!("/api/v1/orders/{}", order["id"].as_str().expect("id")), Some(&ann.token))
        .await;
    let hold = shown.assert_status(200)["authorisations"][0]["id"]
        .as_str()
        .expect("hold id")
        .to_owned();
    app.post(&format!("/api/v1/holds/{hold}/capture"), Some(&ann.token), &json!({}))
        .await
        .assert_problem(403, "forbidden");

    let paid = json!({"items": [{"product_id": mug, "quantity": 1}], "payment_method": "wallet"});
    let paid = app.post("/api/v1/orders", Some(&buyer.token), &paid).await;
    let paid = paid.assert_status(201).clone();
    assert_eq!(paid["capture"], json!("automatic"));
    app.post(&order_path(&paid, "void"), Some(&buyer.token), &json!({}))
        .await
        .assert_problem(409, "invalid_state");
    app.assert_ledger_ok().await;
}
