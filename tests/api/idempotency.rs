//! `Idempotency-Key` over HTTP.

use serde_json::json;

use crate::helpers::TestApp;
use crate::on_every_backend;

on_every_backend!(
    a_replayed_key_returns_the_first_response_and_moves_money_once,
    a_key_reused_for_another_request_is_refused
);

async fn a_replayed_key_returns_the_first_response_and_moves_money_once(app: TestApp) {
    let alice = app.customer_with("50.00").await;
    let bob = app.user("customer").await;
    let body = json!({"to_user_id": bob.id, "amount": "10.00", "currency": "USD"});
    let first = app.post_idempotent("/api/v1/transfers", &alice.token, &body, "transfer-1").await;
    first.assert_status(201);
    assert_eq!(first.header("idempotent-replayed"), None);
    let again = app.post_idempotent("/api/v1/transfers", &alice.token, &body, "transfer-1").await;
    assert_eq!(again.status, 201);
    assert_eq!(again.text, first.text, "the replay is the first response, byte for byte");
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.header("location"), first.header("location"));
    assert_eq!(
        (app.balance(&alice).await, app.balance(&bob).await),
        ("40.00".into(), "10.00".into())
    );

    let mug_merchant = app.user("merchant").await;
    let mug = app.product(&mug_merchant, "Mug", "5.00", 10).await;
    let cart = json!({"items": [{"product_id": mug, "quantity": 1}], "payment_method": "wallet"});
    let order = app.post_idempotent("/api/v1/orders", &alice.token, &cart, "order-1").await;
    let replay = app.post_idempotent("/api/v1/orders", &alice.token, &cart, "order-1").await;
    assert_eq!((order.status, replay.status, replay.text == order.text), (201, 201, true));
    assert_eq!(app.balance(&alice).await, "35.00");
    assert_eq!(app.stock(&mug).await, (9, 0));
    let orders = app.get("/api/v1/orders", Some(&alice.token)).await;
    assert_eq!(orders.assert_status(200)["items"].as_array().map(Vec::len), Some(1));
    app.assert_ledger_ok().await;
}

async fn a_key_reused_for_another_request_is_refused(app: TestApp) {
    let alice = app.customer_with("50.00").await;
    let bob = app.user("customer").await;
    let first = json!({"to_user_id": bob.id, "amount": "10.00", "currency": "USD"});
    let other = json!({"to_user_id": bob.id, "amount": "11.00", "currency": "USD"});
    app.post_idempotent("/api/v1/transfers", &alice.token, &first, "k")
        .await
        .assert_status(201);
    app.post_idempotent("/api/v1/transfers", &alice.token, &other, "k")
        .await
        .assert_problem(422, "idempotency_key_reused");
    // Keys belong to their user: Bob's "k" is a different key.
    let back = json!({"to_user_id": alice.id, "amount": "1.00", "currency": "USD"});
    app.post_idempotent("/api/v1/transfers", &bob.token, &back, "k")
        .await
        .assert_status(201);
    // A refusal is the key's outcome, as a success would be: the retry replays it, even once the
    // funds are there. A new key is a new request.
    let too_much = json!({"to_user_id": bob.id, "amount": "500.00", "currency": "USD"});
    let refused = app.post_idempotent("/api/v1/transfers", &alice.token, &too_much, "k2").await;
    refused.assert_problem(422, "insufficient_funds");
    app.fund(&alice, "500.00", "USD").await;
    let replayed = app.post_idempotent("/api/v1/transfers", &alice.token, &too_much, "k2").await;
    replayed.assert_problem(422, "insufficient_funds");
    assert_eq!(
        (replayed.text.as_str(), replayed.header("idempotent-replayed")),
        (refused.text.as_str(), Some("true"))
    );
    app.post_idempotent("/api/v1/transfers", &alice.token, &too_much, "k3")
        .await
        .assert_status(201);
    // Invalid input is not an outcome: fixed, the request may use its key.
    let invalid = json!({"to_user_id": bob.id, "amount": "-1.00", "currency": "USD"});
    app.post_idempotent("/api/v1/transfers", &alice.token, &invalid, "k4")
        .await
        .assert_problem(422, "validation_failed");
    let long_key = "k".repeat(256);
    app.post_idempotent("/api/v1/transfers", &alice.token, &first, &long_key)
        .await
        .assert_problem(400, "invalid_idempotency_key");
}
