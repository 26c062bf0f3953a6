//! Paying again for a card order awaiting payment, through the real server and the simulator's
//! hosted checkout, on every backend.

use serde_json::json;

use crate::helpers::TestApp;
use crate::on_every_backend;

on_every_backend!(
    an_abandoned_checkout_is_replaced_and_the_new_one_pays_the_order,
    a_declined_card_is_paid_again_for_the_same_reserved_stock,
);

async fn an_abandoned_checkout_is_replaced_and_the_new_one_pays_the_order(app: TestApp) {
    let ann = app.user("merchant").await;
    let (buyer, stranger) = (app.user("customer").await, app.user("customer").await);
    let mug = app.product(&ann, "Mug", "12.50", 5).await;
    let cart = json!({"items": [{"product_id": mug, "quantity": 2}], "payment_method": "card"});
    let order = app
        .post("/api/v1/orders", Some(&buyer.token), &cart)
        .await
        .assert_status(201)
        .clone();
    let id = order["id"].as_str().expect("id");
    let first_url = order["payment"]["checkout_url"].as_str().expect("url").to_owned();

    let pay = format!("/api/v1/orders/{id}/pay");
    app.post(&pay, Some(&stranger.token), &json!({}))
        .await
        .assert_problem(404, "not_found");
    app.post(&pay, Some(&buyer.token), &json!({"provider": "nobody"}))
        .await
        .assert_status(422);
    let again = app.post_idempotent(&pay, &buyer.token, &json!({}), "pay-again-1").await;
    let again = again.assert_status(201).clone();
    let replay = app.post_idempotent(&pay, &buyer.token, &json!({}), "pay-again-1").await;
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.body, again, "a retried request opens no third checkout");
    let new_url = again["payment"]["checkout_url"].as_str().expect("url");
    assert_ne!(new_url, first_url);
    assert_eq!((again["status"].as_str(), app.stock(&mug).await), (Some("payment_pending"), (3, 2)));

    app.press(new_url, "pay").await;
    let shown = app.get(&format!("/api/v1/orders/{id}"), Some(&buyer.token)).await;
    let shown = shown.assert_status(200);
    assert_eq!(
        (shown["status"].as_str(), shown["payment"]["status"].as_str()),
        (Some("paid"), Some("succeeded"))
    );
    assert_eq!((app.balance(&ann).await, app.stock(&mug).await), ("25.00".to_owned(), (3, 0)));
    let payments = app.get("/api/v1/payments?kind=order", Some(&buyer.token)).await;
    let statuses: Vec<_> = payments.assert_status(200)["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|p| p["status"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        statuses,
        ["succeeded", "cancelled"],
        "the abandoned checkout's payment is cancelled"
    );

    app.post(&pay, Some(&buyer.token), &json!({}))
        .await
        .assert_problem(409, "invalid_state");
    app.assert_ledger_ok().await;
}

async fn a_declined_card_is_paid_again_for_the_same_reserved_stock(app: TestApp) {
    let ann = app.user("merchant").await;
    let buyer = app.user("customer").await;
    let mug = app.product(&ann, "Mug", "12.50", 5).await;
    let cart = json!({"items": [{"product_id": mug, "quantity": 2}], "payment_method": "card"});
    let order = app
        .post("/api/v1/orders", Some(&buyer.token), &cart)
        .await
        .assert_status(201)
        .clone();
    let id = order["id"].as_str().expect("id");
    app.press(order["payment"]["checkout_url"].as_str().expect("url"), "decline").await;
    let declined = app.get(&format!("/api/v1/orders/{id}"), Some(&buyer.token)).await;
    let declined = declined.assert_status(200).clone();
    assert_eq!(declined["payment"]["status"], "failed");
    let history: Vec<(String, String)> = declined["history"]
        .as_array()
        .expect("the buyer sees the history")
        .iter()
        .map(|entry| {
            (
                entry["to"].as_str().unwrap_or_default().to_owned(),
                entry["by"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let payment_pending = || "payment_pending".to_owned();
    assert_eq!(
        history,
        vec![
            ("created".to_owned(), "buyer".to_owned()),
            (payment_pending(), "buyer".to_owned()),
            (payment_pending(), "gateway:simulated".to_owned())
        ],
        "oldest first, parties named by their part: {declined}"
    );
    assert!(declined["history"][2]["reason"].as_str().unwrap_or_default().contains("declined"));
    assert_eq!(app.stock(&mug).await, (3, 2), "still reserved");

    let again = app.post(&format!("/api/v1/orders/{id}/pay"), Some(&buyer.token), &json!({})).await;
    let again = again.assert_status(201).clone();
    assert_eq!(again["payment"]["status"], "pending");
    app.press(again["payment"]["checkout_url"].as_str().expect("url"), "pay").await;
    let paid = app.get(&format!("/api/v1/orders/{id}"), Some(&buyer.token)).await;
    assert_eq!(paid.assert_status(200)["status"], "paid");
    assert_eq!(app.stock(&mug).await, (3, 0), "sold once");
    assert_eq!(app.balance(&ann).await, "25.00");
    let trail = app.get(&format!("/api/v1/admin/audit?order_id={id}"), Some(&app.admin.token)).await;
    let reasons = trail.assert_status(200)["items"].to_string();
    assert!(reasons.contains("the payment was declined"), "{reasons}");
    app.assert_ledger_ok().await;
}
