//! The webhook route refuses what is not signed by the provider, before believing any of it.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{SIMULATOR_SECRET, TestApp};
use crate::journeys::{completed_event, signed};
use crate::on_every_backend;

on_every_backend!(unsigned_forged_and_stale_webhooks_are_refused);

async fn unsigned_forged_and_stale_webhooks_are_refused(app: TestApp) {
    let ann = app.user("merchant").await;
    let buyer = app.user("customer").await;
    let mug = app.product(&ann, "Mug", "10.00", 5).await;
    let cart = json!({"items": [{"product_id": mug, "quantity": 1}], "payment_method": "card"});
    let order = app
        .post("/api/v1/orders", Some(&buyer.token), &cart)
        .await
        .assert_status(201)
        .clone();
    let body = completed_event("evt_forged", &order["payment"], 1000);
    let path = "/api/v1/webhooks/simulated";
    let post = |headers: Vec<(&'static str, String)>, body: String| {
        let app = &app;
        async move {
            let pairs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            app.send_raw(Method::POST, path, None, "application/json", body.into_bytes(), &pairs)
                .await
        }
    };
    post(vec![], body.clone()).await.assert_problem(400, "invalid_signature");
    post(vec![("stripe-signature", "t=oops".into())], body.clone())
        .await
        .assert_problem(400, "invalid_signature");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let wrong_secret = adapter_simulated_gateway::signature::sign(b"someone else's secret", now, body.as_bytes());
    post(vec![("stripe-signature", wrong_secret)], body.clone())
        .await
        .assert_problem(400, "invalid_signature");
    let tampered = body.replace("1000", "1");
    post(vec![("stripe-signature", signed(&body))], tampered)
        .await
        .assert_problem(400, "invalid_signature");
    let stale = adapter_simulated_gateway::signature::sign(SIMULATOR_SECRET.as_bytes(), now - 3600, body.as_bytes());
    post(vec![("stripe-signature", stale)], body.clone())
        .await
        .assert_problem(400, "invalid_signature");
    let garbage = "{not json".to_owned();
    post(vec![("stripe-signature", signed(&garbage))], garbage)
        .await
        .assert_problem(400, "malformed_event");
    let unknown_type = json!({"id": "evt_other", "type": "customer.created", "data": {"object": {}}}).to_string();
    let reply = post(vec![("stripe-signature", signed(&unknown_type))], unknown_type).await;
    assert_eq!(reply.assert_status(200)["outcome"], "ignored");
    let wrong_amount = completed_event("evt_wrong_amount", &order["payment"], 1);
    post(vec![("stripe-signature", signed(&wrong_amount))], wrong_amount)
        .await
        .assert_problem(422, "amount_mismatch");
    app.send_raw(
        Method::POST,
        "/api/v1/webhooks/paypal",
        None,
        "application/json",
        b"{}".to_vec(),
        &[],
    )
    .await
    .assert_problem(404, "unknown_provider");

    let details = app
        .get(
            &format!("/api/v1/orders/{}", order["id"].as_str().unwrap_or_default()),
            Some(&buyer.token),
        )
        .await;
    assert_eq!(
        details.assert_status(200)["status"],
        "payment_pending",
        "no refused event had an effect"
    );
    assert_eq!(app.balance(&ann).await, "0.00");
}
