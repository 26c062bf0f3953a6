//! The holds API: a customer authorises a merchant, who captures in parts and voids the rest.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{TestApp, User};
use crate::on_every_backend;

on_every_backend!(
    a_merchant_captures_part_of_a_hold_twice_and_voids_the_rest,
    a_hold_needs_the_customers_consent_and_sane_input,
);

async fn authorise(app: &TestApp, customer: &User, merchant: &User, amount: &str) -> String {
    let body = json!({"merchant_id": merchant.id, "amount": amount, "currency": "USD", "description": "ride"});
    let reply = app.post("/api/v1/holds", Some(&customer.token), &body).await;
    let hold = reply.assert_status(201);
    assert_eq!(
        reply.header("location"),
        Some(format!("/api/v1/holds/{}", hold["id"].as_str().expect("id")).as_str())
    );
    hold["id"].as_str().expect("id").to_owned()
}

async fn a_merchant_captures_part_of_a_hold_twice_and_voids_the_rest(app: TestApp) {
    let rider = app.customer_with("100.00").await;
    let driver = app.user("merchant").await;
    let id = authorise(&app, &rider, &driver, "40.00").await;
    let wallet = app.wallet(&rider).await;
    assert_eq!(
        (wallet["balance"].as_str(), wallet["held"].as_str(), wallet["available"].as_str()),
        (Some("100.00"), Some("40.00"), Some("60.00"))
    );

    let capture = format!("/api/v1/holds/{id}/capture");
    let first = app
        .post_idempotent(&capture, &driver.token, &json!({"amount": "15.00"}), "capture-1")
        .await;
    assert_eq!(first.assert_status(200)["remaining"], json!("25.00"));
    let replay = app
        .post_idempotent(&capture, &driver.token, &json!({"amount": "15.00"}), "capture-1")
        .await;
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.body, first.body, "a retried capture takes nothing more");
    let second = app.post(&capture, Some(&driver.token), &json!({"amount": "5.00"})).await;
    assert_eq!(
        (second.assert_status(200)["captured"].as_str(), second.body["status"].as_str()),
        (Some("20.00"), Some("pending"))
    );
    app.post(&capture, Some(&driver.token), &json!({"amount": "20.01"}))
        .await
        .assert_problem(422, "capture_exceeds_hold");
    let voided = app.post(&format!("/api/v1/holds/{id}/void"), Some(&driver.token), &json!({})).await;
    assert_eq!(
        (voided.assert_status(200)["status"].as_str(), voided.body["remaining"].as_str()),
        (Some("released"), Some("0.00"))
    );
    app.post(&capture, Some(&driver.token), &json!({}))
        .await
        .assert_problem(409, "hold_not_pending");

    let wallet = app.wallet(&rider).await;
    assert_eq!((wallet["balance"].as_str(), wallet["held"].as_str()), (Some("80.00"), Some("0.00")));
    assert_eq!(app.balance(&driver).await, "20.00");
    let seen = app.get(&format!("/api/v1/holds/{id}"), Some(&rider.token)).await;
    assert_eq!(seen.assert_status(200)["captured"], json!("20.00"));

    // An empty body takes everything that remains, and ends the hold.
    let whole = authorise(&app, &rider, &driver, "10.00").await;
    let all = app
        .send_raw(
            Method::POST,
            &format!("/api/v1/holds/{whole}/capture"),
            Some(&driver.token),
            "application/json",
            Vec::new(),
            &[],
        )
        .await;
    assert_eq!(
        (all.assert_status(200)["status"].as_str(), all.body["captured"].as_str()),
        (Some("captured"), Some("10.00"))
    );
    app.assert_ledger_ok().await;
}

async fn a_hold_needs_the_customers_consent_and_sane_input(app: TestApp) {
    let rider = app.customer_with("50.00").await;
    let driver = app.user("merchant").await;
    let stranger = app.user("merchant").await;
    let on_the_riders_wallet = json!({"merchant_id": driver.id, "customer_id": rider.id, "amount": "10.00", "currency": "USD"});
    app.post("/api/v1/holds", Some(&driver.token), &on_the_riders_wallet)
        .await
        .assert_problem(403, "consent_required");
    for (body, field) in [
        (json!({"merchant_id": rider.id, "amount": "1.00", "currency": "USD"}), "merchant_id"),
        (json!({"merchant_id": driver.id, "amount": "0", "currency": "USD"}), "amount"),
        (json!({"merchant_id": driver.id, "amount": "-1.00", "currency": "USD"}), "amount"),
        (json!({"merchant_id": driver.id, "amount": "1.001", "currency": "USD"}), "amount"),
        (
            json!({"merchant_id": driver.id, "amount": "99999999999999999999", "currency": "USD"}),
            "amount",
        ),
        (json!({"merchant_id": driver.id, "amount": "1.00", "currency": "XXX"}), "currency"),
        (
            json!({"merchant_id": driver.id, "amount": "1.00", "currency": "USD", "expires_in_seconds": 0}),
            "expires_in_seconds",
        ),
        (
            json!({"merchant_id": driver.id, "amount": "1.00", "currency": "USD", "expires_in_seconds": 99_999_999}),
            "expires_in_seconds",
        ),
        (
            json!({"merchant_id": driver.id, "amount": "1.00", "currency": "USD", "description": "x".repeat(201)}),
            "description",
        ),
        (
            json!({"merchant_id": "not-a-uuid", "amount": "1.00", "currency": "USD"}),
            "merchant_id",
        ),
        (json!({"merchant_id": driver.id, "amount": 1, "currency": "USD"}), "amount"),
        (
            json!({"merchant_id": driver.id, "amount": "1.00", "currency": "USD", "tip": "1.00"}),
            "tip",
        ),
    ] {
        let reply = app.post("/api/v1/holds", Some(&rider.token), &body).await;
        reply.assert_problem(422, "validation_failed");
        assert!(reply.text.contains(field), "{field}: {}", reply.text);
    }
    app.post(
        "/api/v1/holds",
        Some(&rider.token),
        &json!({"merchant_id": driver.id, "amount": "50.01", "currency": "USD"}),
    )
    .await
    .assert_problem(422, "insufficient_funds");
    app.send_raw(
        Method::POST,
        "/api/v1/holds",
        Some(&rider.token),
        "application/json",
        b"{\"amount\":".to_vec(),
        &[],
    )
    .await
    .assert_problem(400, "malformed_json");

    let id = authorise(&app, &rider, &driver, "30.00").await;
    app.get(&format!("/api/v1/holds/{id}"), Some(&stranger.token))
        .await
        .assert_problem(404, "not_found");
    app.post(&format!("/api/v1/holds/{id}/capture"), Some(&stranger.token), &json!({}))
        .await
        .assert_problem(404, "not_found");
    app.post(
        &format!("/api/v1/holds/{id}/capture"),
        Some(&rider.token),
        &json!({"amount": "1.00"}),
    )
    .await
    .assert_problem(404, "not_found");
    app.get("/api/v1/holds/not-a-hold", Some(&rider.token))
        .await
        .assert_problem(404, "not_found");
    app.post(
        &format!("/api/v1/holds/{id}/capture"),
        Some(&driver.token),
        &json!({"amount": "1.00", "final": true}),
    )
    .await
    .assert_status(200);
    app.post(&format!("/api/v1/holds/{id}/void"), Some(&rider.token), &json!({}))
        .await
        .assert_problem(409, "hold_not_pending");
    let wallet = app.wallet(&rider).await;
    assert_eq!((wallet["balance"].as_str(), wallet["held"].as_str()), (Some("49.00"), Some("0.00")));
    app.send(Method::GET, &format!("/api/v1/holds/{id}"), None, None, &[])
        .await
        .assert_problem(401, "unauthorized");
    app.assert_ledger_ok().await;
}
