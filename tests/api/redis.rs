//! The catalog cache is invalidated by every kind of write, in Redis and in the in-process cache
//! used without it; with Redis, rate limits are shared by server instances, and the service keeps
//! serving while Redis is away.

use std::net::SocketAddr;

use adapter_redis::testing::ToggleProxy;
use reqwest::Method;
use serde_json::json;

use crate::helpers::{Backend, TestApp};
use crate::on_every_backend;

on_every_backend!(
    every_catalog_write_invalidates_what_it_changed,
    without_redis_the_in_process_cache_invalidates_the_same_way,
    requests_succeed_while_redis_is_down_and_the_cache_recovers
);

pub(crate) fn redis_address() -> SocketAddr {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let host_port = url
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap_or("127.0.0.1:6379")
        .to_owned();
    host_port.parse().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 6379)))
}

pub(crate) fn prefix() -> String {
    format!("test:{}:", uuid::Uuid::now_v7().simple())
}

pub(crate) async fn with_redis(backend: Backend, url: &str, prefix: &str, extra: &[(&str, &str)]) -> TestApp {
    let mut vars = vec![
        ("REDIS_URL", url),
        ("REDIS_KEY_PREFIX", prefix),
        ("REDIS_RETRY_AFTER_MS", "100"),
        ("CATALOG_CACHE_TTL_SECS", "300"),
    ];
    vars.extend_from_slice(extra);
    TestApp::spawn_with(backend, &vars).await
}

/// The product as the public sees it, and whether it came from the cache.
async fn public_product(app: &TestApp, id: &str) -> (u16, serde_json::Value, Option<String>) {
    let reply = app.get(&format!("/api/v1/products/{id}"), None).await;
    (reply.status, reply.body.clone(), reply.header("x-cache").map(str::to_owned))
}

async fn every_catalog_write_invalidates_what_it_changed(app: TestApp) {
    let backend = app.backend;
    drop(app);
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    catalog_writes_invalidate_what_they_changed(with_redis(backend, &url, &prefix(), &[]).await).await;
}

async fn without_redis_the_in_process_cache_invalidates_the_same_way(app: TestApp) {
    // The test app has no REDIS_URL: the catalog cache is the in-process one.
    catalog_writes_invalidate_what_they_changed(app).await;
}

async fn catalog_writes_invalidate_what_they_changed(app: TestApp) {
    let merchant = app.user("merchant").await;
    let buyer = app.customer_with("100.00").await;
    let mug = app.product(&merchant, "Mug", "5.00", 10).await;

    let (_, first, cache) = public_product(&app, &mug).await;
    assert_eq!((first["price"].as_str(), cache.as_deref()), (Some("5.00"), Some("miss")));
    let (_, again, cache) = public_product(&app, &mug).await;
    assert_eq!((again["price"].as_str(), cache.as_deref()), (Some("5.00"), Some("hit")));

    let patch = app
        .send(
            Method::PATCH,
            &format!("/api/v1/products/{mug}"),
            Some(&merchant.token),
            Some(&json!({"price": "6.00"})),
            &[],
        )
        .await;
    patch.assert_status(200);
    assert_eq!(public_product(&app, &mug).await.1["price"], "6.00", "an update invalidates");

    let stock = app
        .send(
            Method::PATCH,
            &format!("/api/v1/products/{mug}/stock"),
            Some(&merchant.token),
            Some(&json!({"available": 7})),
            &[],
        )
        .await;
    stock.assert_status(200);
    assert_eq!(
        public_product(&app, &mug).await.1["stock"]["available"],
        7,
        "a stock change invalidates"
    );

    let listing = app.get("/api/v1/products", None).await;
    assert_eq!(listing.assert_status(200)["items"][0]["price"], "6.00");
    assert_eq!(app.get("/api/v1/products", None).await.header("x-cache"), Some("hit"));

    let cart = json!({"items": [{"product_id": mug, "quantity": 2}], "payment_method": "wallet"});
    app.post("/api/v1/orders", Some(&buyer.token), &cart).await.assert_status(201);
    assert_eq!(
        public_product(&app, &mug).await.1["stock"]["available"],
        5,
        "a purchase invalidates"
    );
    assert_eq!(app.get("/api/v1/products", None).await.body["items"][0]["stock"]["available"], 5);

    let pen = app.product(&merchant, "Pen", "2.00", 3).await;
    let listing = app.get("/api/v1/products", None).await;
    assert_eq!(listing.body["items"][0]["id"], json!(pen), "a creation invalidates the listings");

    app.send(Method::DELETE, &format!("/api/v1/products/{mug}"), Some(&merchant.token), None, &[])
        .await
        .assert_status(204);
    assert_eq!(public_product(&app, &mug).await.0, 404, "a deletion invalidates");
    let listing = app.get("/api/v1/products", None).await;
    assert!(
        listing.body["items"]
            .as_array()
            .is_some_and(|items| items.iter().all(|p| p["id"] != json!(mug)))
    );
}

async fn requests_succeed_while_redis_is_down_and_the_cache_recovers(app: TestApp) {
    let backend = app.backend;
    drop(app);
    let proxy = ToggleProxy::start(redis_address()).await.expect("proxy");
    let app = with_redis(backend, &proxy.url(), &prefix(), &[("RATE_LIMIT_ENABLED", "true")]).await;
    let merchant = app.user("merchant").await;
    let buyer = app.customer_with("100.00").await;
    let mug = app.product(&merchant, "Mug", "5.00", 10).await;
    public_product(&app, &mug).await;
    assert_eq!(public_product(&app, &mug).await.2.as_deref(), Some("hit"));
    assert_eq!(app.get("/health/ready", None).await.body["status"], "ok");

    proxy.stop();
    let (status, body, cache) = public_product(&app, &mug).await;
    assert_eq!(
        (status, body["price"].as_str(), cache.as_deref()),
        (200, Some("5.00"), Some("miss"))
    );
    let patch = app
        .send(
            Method::PATCH,
            &format!("/api/v1/products/{mug}"),
            Some(&merchant.token),
            Some(&json!({"price": "7.00"})),
            &[],
        )
        .await;
    patch.assert_status(200);
    let cart = json!({"items": [{"product_id": mug, "quantity": 1}], "payment_method": "wallet"});
    app.post("/api/v1/orders", Some(&buyer.token), &cart).await.assert_status(201);
    app.login(&buyer.email, crate::helpers::PASSWORD).await;
    let ready = app.get("/health/ready", None).await;
    let ready = ready.assert_status(200);
    assert_eq!(
        (ready["status"].as_str(), ready["checks"]["cache"].as_str()),
        (Some("degraded"), Some("degraded"))
    );

    proxy.resume().expect("resume");
    let ready = app.eventually("/health/ready", &buyer.token, |body| body["status"] == "ok").await;
    assert_eq!(ready["checks"]["rate_limiter"], "ok");
    let (_, body, _) = public_product(&app, &mug).await;
    assert_eq!(body["price"], "7.00", "nothing cached before the outage may be served after it");
    assert_eq!(body["stock"]["available"], 9);
    assert_eq!(public_product(&app, &mug).await.2.as_deref(), Some("hit"), "the cache works again");
}

/// Two instances on one database and one Redis: a write through one is never hidden by the other's
/// cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_one_instance_is_seen_through_the_cache_of_another() {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let prefix = prefix();
    let writer = with_redis(Backend::Postgres, &url, &prefix, &[]).await;
    let reader = writer
        .alongside(&[
            ("REDIS_URL", url.as_str()),
            ("REDIS_KEY_PREFIX", prefix.as_str()),
            ("REDIS_RETRY_AFTER_MS", "100"),
        ])
        .await;
    let merchant = writer.user("merchant").await;
    let mug = writer.product(&merchant, "Mug", "5.00", 10).await;
    assert_eq!(public_product(&reader, &mug).await.2.as_deref(), Some("miss"));
    assert_eq!(public_product(&reader, &mug).await.2.as_deref(), Some("hit"));
    let listing = reader.get("/api/v1/products", None).await;
    assert_eq!(listing.assert_status(200)["items"][0]["price"], "5.00");
    writer
        .send(
            Method::PATCH,
            &format!("/api/v1/products/{mug}"),
            Some(&merchant.token),
            Some(&json!({"price": "8.00"})),
            &[],
        )
        .await
        .assert_status(200);
    assert_eq!(public_product(&reader, &mug).await.1["price"], "8.00");
    assert_eq!(reader.get("/api/v1/products", None).await.body["items"][0]["price"], "8.00");
    let buyer = reader.customer_with("50.00").await;
    let cart = json!({"items": [{"product_id": mug, "quantity": 3}], "payment_method": "wallet"});
    reader.post("/api/v1/orders", Some(&buyer.token), &cart).await.assert_status(201);
    assert_eq!(public_product(&writer, &mug).await.1["stock"]["available"], 7);
    writer
        .send(Method::DELETE, &format!("/api/v1/products/{mug}"), Some(&merchant.token), None, &[])
        .await
        .assert_status(204);
    assert_eq!(public_product(&reader, &mug).await.0, 404);
}

/// Two server instances sharing one Redis share one rate-limit budget per client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_the_authentication_budget() {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let prefix = prefix();
    // 20 attempts, refilled one every 3 s.
    let limits = [("RATE_LIMIT_ENABLED", "true"), ("RATE_LIMIT_AUTH_PER_MINUTE", "20")];
    let started = std::time::Instant::now();
    let first = with_redis(Backend::Memory, &url, &prefix, &limits).await;
    let second = with_redis(Backend::Memory, &url, &prefix, &limits).await;
    // Each instance's start-up login of its admin spent one attempt of this client's budget.
    let wrong = json!({"email": "nobody@example.com", "password": "wrong password 1"});
    let attempts = (0..40).map(|n| {
        let app = if n % 2 == 0 { &first } else { &second };
        app.post("/api/v1/auth/login", None, &wrong)
    });
    let statuses: Vec<u16> = futures::future::join_all(attempts).await.iter().map(|r| r.status).collect();
    let refilled = started.elapsed().as_secs() as usize / 3;
    let let_through = statuses.iter().filter(|s| **s == 401).count();
    assert_eq!(let_through + statuses.iter().filter(|s| **s == 429).count(), 40, "{statuses:?}");
    assert!(
        (18..=18 + refilled).contains(&let_through),
        "{let_through} attempts passed; the shared budget allows 18 (+{refilled} refilled)"
    );
}
