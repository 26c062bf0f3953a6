//! Roles (403) and ownership (404), and tokens that must not work (401).

use serde_json::json;

use crate::helpers::{ServerClock, TestApp};
use crate::on_every_backend;

on_every_backend!(roles_and_ownership_are_enforced, missing_forged_and_expired_tokens_are_refused);

async fn roles_and_ownership_are_enforced(app: TestApp) {
    let (ann, bob) = (app.user("merchant").await, app.user("merchant").await);
    let buyer = app.customer_with("100.00").await;
    let stranger = app.user("customer").await;
    let product = json!({"name": "Mug", "price": "5.00", "currency": "USD", "stock": 3});
    app.post("/api/v1/products", Some(&buyer.token), &product)
        .await
        .assert_problem(403, "forbidden");
    let mug = app.product(&ann, "Mug", "5.00", 3).await;
    app.send(
        reqwest::Method::PATCH,
        &format!("/api/v1/products/{mug}"),
        Some(&bob.token),
        Some(&json!({"name": "Mine"})),
        &[],
    )
    .await
    .assert_problem(404, "not_found");
    app.send(
        reqwest::Method::PATCH,
        &format!("/api/v1/products/{mug}/stock"),
        Some(&bob.token),
        Some(&json!({"available": 0})),
        &[],
    )
    .await
    .assert_problem(404, "not_found");
    app.send(
        reqwest::Method::DELETE,
        &format!("/api/v1/products/{mug}"),
        Some(&bob.token),
        None,
        &[],
    )
    .await
    .assert_problem(404, "not_found");

    let order = app
        .post(
            "/api/v1/orders",
            Some(&buyer.token),
            &json!({"items": [{"product_id": mug, "quantity": 1}], "payment_method": "wallet"}),
        )
        .await;
    let order_id = order.assert_status(201)["id"].as_str().expect("id").to_owned();
    app.get(&format!("/api/v1/orders/{order_id}"), Some(&stranger.token))
        .await
        .assert_problem(404, "not_found");
    app.get(&format!("/api/v1/orders/{order_id}"), Some(&bob.token))
        .await
        .assert_problem(404, "not_found");
    app.get(&format!("/api/v1/orders/{order_id}"), Some(&ann.token))
        .await
        .assert_status(200);
    app.post(&format!("/api/v1/orders/{order_id}/fulfill"), Some(&bob.token), &json!({}))
        .await
        .assert_problem(404, "not_found");
    app.post(&format!("/api/v1/orders/{order_id}/fulfill"), Some(&buyer.token), &json!({}))
        .await
        .assert_problem(403, "forbidden");
    app.post(&format!("/api/v1/orders/{order_id}/refunds"), Some(&buyer.token), &json!({}))
        .await
        .assert_problem(403, "forbidden");
    app.post(&format!("/api/v1/orders/{order_id}/refunds"), Some(&bob.token), &json!({}))
        .await
        .assert_problem(404, "not_found");
    app.post(&format!("/api/v1/orders/{order_id}/cancel"), Some(&ann.token), &json!({}))
        .await
        .assert_problem(403, "forbidden");

    for path in ["/api/v1/admin/orders", "/api/v1/admin/ledger/verify", "/api/v1/admin/audit"] {
        app.get(path, Some(&ann.token)).await.assert_problem(403, "forbidden");
    }
    let adjustment = json!({"amount": "1000.00", "currency": "USD", "reason": "free money"});
    app.post(
        &format!("/api/v1/admin/wallets/{}/adjustments", buyer.id),
        Some(&buyer.token),
        &adjustment,
    )
    .await
    .assert_problem(403, "forbidden");
    app.get("/api/v1/merchant/sales", Some(&buyer.token))
        .await
        .assert_problem(403, "forbidden");
    app.get("/api/v1/merchant/products", Some(&buyer.token))
        .await
        .assert_problem(403, "forbidden");
    let admin_register = json!({"email": "boss@example.com", "password": "correct horse 9", "role": "admin"});
    app.post("/api/v1/auth/register", None, &admin_register)
        .await
        .assert_problem(422, "validation_failed");
    assert_eq!(app.balance(&buyer).await, "95.00");
}

async fn missing_forged_and_expired_tokens_are_refused(app: TestApp) {
    let reply = app.get("/api/v1/wallets", None).await;
    reply.assert_problem(401, "unauthorized");
    assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
    app.get("/api/v1/wallets", Some("not-a-jwt"))
        .await
        .assert_problem(401, "unauthorized");
    let user = app.user("customer").await;
    let mut parts: Vec<String> = user.token.split('.').map(str::to_owned).collect();
    parts[2] = "forged-signature".into();
    app.get("/api/v1/wallets", Some(&parts.join(".")))
        .await
        .assert_problem(401, "unauthorized");
    let reply = app
        .get_with("/api/v1/wallets", None, &[("authorization", "Basic dXNlcjpwYXNz")])
        .await;
    reply.assert_problem(401, "unauthorized");

    let backend = app.backend;
    drop(app);
    let short_lived = TestApp::spawn_on(backend, &[("ACCESS_TOKEN_TTL_SECS", "1")], ServerClock::Manual).await;
    let user = short_lived.user("customer").await;
    short_lived.get("/api/v1/wallets", Some(&user.token)).await.assert_status(200);
    short_lived.advance(std::time::Duration::from_millis(2100));
    let expired = short_lived.get("/api/v1/wallets", Some(&user.token)).await;
    expired.assert_problem(401, "unauthorized");
    assert!(expired.body["detail"].as_str().is_some_and(|d| d.contains("expired")));
}
