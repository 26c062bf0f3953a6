//! Health, request ids, unknown routes and rate limiting.

use serde_json::json;

use crate::helpers::TestApp;
use crate::on_every_backend;

on_every_backend!(health_request_ids_and_unknown_routes, authentication_is_rate_limited_per_client);

async fn health_request_ids_and_unknown_routes(app: TestApp) {
    assert_eq!(app.get("/health/live", None).await.assert_status(200)["status"], "ok");
    let ready = app.get("/health/ready", None).await;
    assert_eq!(ready.assert_status(200)["checks"]["store"], "ok");

    let reply = app
        .send(
            reqwest::Method::GET,
            "/api/v1/wallets",
            None,
            None,
            &[("x-request-id", "client-trace-42")],
        )
        .await;
    assert_eq!(reply.header("x-request-id"), Some("client-trace-42"));
    assert_eq!(reply.body["request_id"], "client-trace-42");
    assert_eq!(reply.body["instance"], "/api/v1/wallets");
    let generated = app.get("/health/live", None).await;
    assert!(generated.header("x-request-id").is_some_and(|id| id.len() >= 32));
    let hostile = app
        .send(reqwest::Method::GET, "/health/live", None, None, &[("x-request-id", "<script>")])
        .await;
    assert_ne!(hostile.header("x-request-id"), Some("<script>"));

    app.get("/api/v1/nothing-here", None).await.assert_problem(404, "not_found");
    let wrong_method = app.send(reqwest::Method::DELETE, "/api/v1/transfers", None, None, &[]).await;
    wrong_method.assert_problem(405, "method_not_allowed");
}

async fn authentication_is_rate_limited_per_client(app: TestApp) {
    let backend = app.backend;
    drop(app);
    let app = TestApp::spawn_with(backend, &[("RATE_LIMIT_ENABLED", "true"), ("RATE_LIMIT_AUTH_PER_MINUTE", "3")]).await;
    // The admin's login at start-up used one attempt of this client's quota.
    let wrong = json!({"email": "nobody@example.com", "password": "wrong password 1"});
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let reply = app.post("/api/v1/auth/login", None, &wrong).await;
        statuses.push(reply.status);
        if reply.status == 429 {
            reply.assert_problem(429, "rate_limited");
            assert!(reply.header("retry-after").is_some_and(|s| s.parse::<u64>().is_ok_and(|s| s >= 1)));
            assert_eq!(reply.header("ratelimit-limit"), Some("3"));
            assert_eq!(reply.header("ratelimit-remaining"), Some("0"));
        } else {
            assert_eq!(reply.header("ratelimit-limit"), Some("3"));
        }
    }
    assert_eq!(statuses, vec![401, 401, 429]);
    // Reads are limited by their own, larger quota.
    app.get("/api/v1/products", None).await.assert_status(200);
}
