//! Refund requests in the web UI, through the real app: the buyer asks on the order page (a
//! double submit asks once), the merchant sees it on the console and approves it (refunded
//! once), and a declined request shows its note to the buyer.

use serde_json::json;

use crate::helpers::{PASSWORD, TestApp, User};
use crate::on_every_backend;
use crate::web_client::Browser;

on_every_backend!(a_buyer_asks_on_the_order_page_and_the_merchant_approves_from_the_console);

async fn wallet_order(app: &TestApp, buyer: &User, product: &str) -> String {
    let cart = json!({"items": [{"product_id": product, "quantity": 2}], "payment_method": "wallet"});
    let order = app.post("/api/v1/orders", Some(&buyer.token), &cart).await;
    order.assert_status(201)["id"].as_str().expect("order id").to_owned()
}

async fn a_buyer_asks_on_the_order_page_and_the_merchant_approves_from_the_console(app: TestApp) {
    let merchant = app.user("merchant").await;
    let buyer = app.customer_with("100.00").await;
    let lamp = app.product(&merchant, "Lamp", "20.00", 5).await;
    let order = wallet_order(&app, &buyer, &lamp).await;
    let page = format!("/orders/{order}");
    let action = format!("/orders/{order}/refund-requests");

    let mut shopper = Browser::new(&app);
    shopper.sign_in(&buyer.email, PASSWORD).await;
    let shown = shopper.get(&page).await;
    assert!(shown.body.contains("Ask for a refund"), "{}", shown.body);
    let key = shown.key(&action);
    let blank = [("ask_amount", ""), ("ask_reason", " "), ("idempotency_key", key.as_str())];
    let refused = shopper.post(&action, &blank).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(
        refused.body.contains("f-ask_reason-error"),
        "the reason's error next to it: {}",
        refused.body
    );
    let key = refused.key(&action);
    let fields = [
        ("ask_amount", "20.00"),
        ("ask_reason", "one flickers"),
        ("idempotency_key", key.as_str()),
    ];
    let mut twin = shopper.clone();
    let (first, second) = tokio::join!(shopper.post(&action, &fields), twin.post(&action, &fields));
    for sent in [&first, &second] {
        assert_eq!(
            (sent.status, sent.location()),
            (303, format!("{page}?notice=refund-asked").as_str()),
            "{}",
            sent.body
        );
    }
    let open = app.get("/api/v1/refund-requests?status=open", Some(&buyer.token)).await;
    assert_eq!(open.assert_status(200)["items"].as_array().map(Vec::len), Some(1), "asked once");

    let mut seller = Browser::new(&app);
    seller.sign_in(&merchant.email, PASSWORD).await;
    let console = seller.get("/merchant").await;
    assert!(
        console.body.contains("one flickers") && console.body.contains(&order),
        "{}",
        console.body
    );
    let request = open.body["items"][0]["id"].as_str().expect("request id").to_owned();
    let approve = format!("{action}/{request}/approve");
    let key = seller.get(&page).await.key(&approve);
    for _ in 0..2 {
        let approved = seller.post(&approve, &[("idempotency_key", key.as_str())]).await;
        assert_eq!(approved.status, 303, "{}", approved.body);
    }
    assert_eq!(
        (app.balance(&buyer).await, app.balance(&merchant).await),
        ("80.00".into(), "20.00".into()),
        "refunded once"
    );
    let after = shopper.get(&page).await;
    assert!(after.body.contains("approved"), "{}", after.body);

    // Another request, declined with a note the buyer reads; a stranger cannot decide it.
    let key = shopper.get(&page).await.key(&action);
    shopper
        .post(&action, &[("ask_reason", "the other one too"), ("idempotency_key", key.as_str())])
        .await;
    let second = app.get("/api/v1/refund-requests?status=open", Some(&buyer.token)).await;
    let second = second.assert_status(200)["items"][0]["id"].as_str().expect("request id").to_owned();
    let mut stranger = Browser::new(&app);
    let other = app.user("merchant").await;
    stranger.sign_in(&other.email, PASSWORD).await;
    stranger.get("/merchant").await;
    let decline = format!("{action}/{second}/decline");
    assert_eq!(stranger.post(&decline, &[("note", "no")]).await.status, 404);
    let declined = seller.post(&decline, &[("note", "works as described")]).await;
    assert_eq!(declined.status, 303, "{}", declined.body);
    let seen = shopper.get(&page).await;
    assert!(seen.body.contains("works as described"), "{}", seen.body);
    assert_eq!(app.balance(&buyer).await, "80.00");
    app.assert_ledger_ok().await;
}
