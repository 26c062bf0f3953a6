//! Health, request ids, unknown routes, rate limiting, CORS and metrics.

use serde_json::json;

use crate::helpers::TestApp;
use crate::on_every_backend;

on_every_backend!(
    health_request_ids_and_unknown_routes,
    authentication_is_rate_limited_per_client,
    cors_admits_the_configured_origins_only,
    metrics_count_requests_by_route_pattern
);

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

async fn cors_admits_the_configured_origins_only(app: TestApp) {
    let backend = app.backend;
    drop(app);
    let app = TestApp::spawn_with(backend, &[("CORS_ALLOWED_ORIGINS", "https://shop.example")]).await;
    let preflight = |origin: &'static str| {
        app.http
            .request(reqwest::Method::OPTIONS, format!("{}/api/v1/orders", app.base))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization,content-type,idempotency-key")
            .send()
    };
    let allowed = preflight("https://shop.example").await.expect("preflight");
    assert!(allowed.status().is_success(), "{}", allowed.status());
    assert_eq!(
        allowed.headers().get("access-control-allow-origin").and_then(|v| v.to_str().ok()),
        Some("https://shop.example")
    );
    let refused = preflight("https://evil.example").await.expect("preflight");
    assert!(refused.headers().get("access-control-allow-origin").is_none());
    let read = app
        .send(
            reqwest::Method::GET,
            "/api/v1/products",
            None,
            None,
            &[("origin", "https://shop.example")],
        )
        .await;
    assert_eq!(read.header("access-control-allow-origin"), Some("https://shop.example"));
    assert!(
        read.header("access-control-expose-headers")
            .is_some_and(|h| h.contains("x-request-id"))
    );
}

async fn metrics_count_requests_by_route_pattern(app: TestApp) {
    let order_id = "00000000-0000-0000-0000-000000000000";
    app.get(&format!("/api/v1/orders/{order_id}"), None).await.assert_status(401);

    let reply = app.get("/metrics", None).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(reply.header("content-type").is_some_and(|t| t.starts_with("text/plain")));
    let series = reply
        .text
        .lines()
        .find(|line| {
            line.starts_with("http_requests_total") && line.contains(r#"route="/api/v1/orders/{id}""#) && line.contains(r#"status="401""#)
        })
        .unwrap_or_else(|| panic!("no series for the order route in:\n{}", reply.text));
    let count: f64 = series.rsplit(' ').next().and_then(|n| n.parse().ok()).expect("a sample value");
    assert!(count >= 1.0, "{series}");
    assert!(!reply.text.contains(order_id), "ids must not become labels");
    assert!(reply.text.contains("http_request_duration_seconds_bucket"));
}
