//! Health, request ids, unknown routes, rate limiting, CORS and metrics.

use serde_json::json;

use crate::helpers::{ServerClock, TestApp};
use crate::on_every_backend;

on_every_backend!(
    health_request_ids_and_unknown_routes,
    authentication_is_rate_limited_per_client,
    cors_admits_the_configured_origins_only,
    metrics_count_requests_by_route_pattern,
    money_movements_are_limited_per_user,
    every_api_request_counts_against_the_callers_general_quota,
    a_request_refused_by_one_quota_costs_nothing_from_another,
    metrics_ask_for_their_token_when_one_is_set,
    card_providers_send_the_payer_back_to_pages_that_exist,
    every_answer_carries_the_security_headers,
    the_bearer_scheme_is_case_insensitive_for_the_rate_limiter_too,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_mode_opens_with_a_working_shop_unless_told_not_to() {
    let demo = TestApp::spawn_with(crate::helpers::Backend::Memory, &[("DEMO_SEED", "true")]).await;
    let products = demo.get("/api/v1/products", None).await;
    assert_eq!(products.assert_status(200)["items"].as_array().map(Vec::len), Some(6));
    let customer = demo.login("customer1@example.com", server::seed::SEED_PASSWORD).await;
    assert_eq!(demo.balance(&customer).await, "1000.00", "a funded buyer, ready to shop");
    let empty = TestApp::spawn_with(crate::helpers::Backend::Memory, &[("DEMO_SEED", "false")]).await;
    let products = empty.get("/api/v1/products", None).await;
    assert_eq!(products.assert_status(200)["items"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_on_a_database_without_gateway_settings_offers_no_simulator() {
    let app = TestApp::spawn_with(crate::helpers::Backend::Postgres, &[("SIMULATED_GATEWAY", "")]).await;
    let alice = app.user("customer").await;
    let top_up = app
        .post("/api/v1/wallets/USD/top-ups", Some(&alice.token), &json!({"amount": "100000.00"}))
        .await;
    top_up.assert_problem(422, "no_gateway");
    app.get("/simulator/checkout/cs_sim_anything", None)
        .await
        .assert_problem(404, "not_found");
    let ready = app.get("/health/ready", None).await;
    assert_eq!(ready.assert_status(200)["checks"].get("simulated_gateway"), None);
    assert_eq!(app.balance(&alice).await, "0.00");

    let asked = TestApp::spawn_with(crate::helpers::Backend::Postgres, &[("SIMULATED_GATEWAY", "true")]).await;
    let ready = asked.get("/health/ready", None).await;
    let simulator = ready.assert_status(200)["checks"]["simulated_gateway"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(simulator.contains("not for production"), "{simulator}");
}

async fn health_request_ids_and_unknown_routes(app: TestApp) {
    assert_eq!(app.get("/health/live", None).await.assert_status(200)["status"], "ok");
    let ready = app.get("/health/ready", None).await;
    assert_eq!(ready.assert_status(200)["checks"]["store"], "ok");

    let reply = app.get_with("/api/v1/wallets", None, &[("x-request-id", "client-trace-42")]).await;
    assert_eq!(reply.header("x-request-id"), Some("client-trace-42"));
    assert_eq!(reply.body["request_id"], "client-trace-42");
    assert_eq!(reply.body["instance"], "/api/v1/wallets");
    let generated = app.get("/health/live", None).await;
    assert!(generated.header("x-request-id").is_some_and(|id| id.len() >= 32));
    let hostile = app.get_with("/health/live", None, &[("x-request-id", "<script>")]).await;
    assert_ne!(hostile.header("x-request-id"), Some("<script>"));

    app.get("/api/v1/nothing-here", None).await.assert_problem(404, "not_found");
    let wrong_method = app.send(reqwest::Method::DELETE, "/api/v1/transfers", None, None, &[]).await;
    wrong_method.assert_problem(405, "method_not_allowed");
    assert_eq!(wrong_method.header("allow"), Some("POST"), "RFC 9110: a 405 says what is allowed");
    let products = app
        .send(
            reqwest::Method::PUT,
            "/api/v1/products/0190f0a4-3b5c-7cde-8f00-112233445566",
            None,
            None,
            &[],
        )
        .await;
    assert_eq!(products.header("allow"), Some("GET, PATCH, DELETE"));
}

async fn every_answer_carries_the_security_headers(app: TestApp) {
    for reply in [
        app.get("/health/live", None).await,
        app.get("/api/v1/nothing-here", None).await,
        app.get("/api/v1/openapi.json", None).await,
    ] {
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(reply.header("x-frame-options"), Some("DENY"));
    }
    let login = app
        .post(
            "/api/v1/auth/login",
            None,
            &json!({"email": crate::helpers::ADMIN_EMAIL, "password": crate::helpers::ADMIN_PASSWORD}),
        )
        .await;
    login.assert_status(200);
    assert_eq!(
        login.header("cache-control"),
        Some("no-store"),
        "RFC 6749 5.1: tokens are never cached"
    );
    let buyer = app.user("customer").await;
    let merchant = app.user("merchant").await;
    let mug = app.product(&merchant, "Mug", "5.00", 3).await;
    let cart = json!({"items": [{"product_id": mug, "quantity": 1}], "payment_method": "card"});
    let order = app.post("/api/v1/orders", Some(&buyer.token), &cart).await;
    let page = app
        .http
        .get(order.assert_status(201)["payment"]["checkout_url"].as_str().unwrap_or_default())
        .send()
        .await
        .expect("page");
    let csp = page
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(csp.contains("frame-ancestors 'none'"), "the pay page cannot be framed: {csp}");
}

async fn the_bearer_scheme_is_case_insensitive_for_the_rate_limiter_too(app: TestApp) {
    let backend = app.backend;
    drop(app);
    let app = TestApp::spawn_with(backend, &[("RATE_LIMIT_ENABLED", "true"), ("RATE_LIMIT_GENERAL_PER_MINUTE", "4")]).await;
    let alice = app.user("customer").await;
    let mut statuses = Vec::new();
    for scheme in ["Bearer", "bearer", "BEARER", "bearer", "Bearer"] {
        let header = format!("{scheme} {}", alice.token);
        let reply = app.get_with("/api/v1/auth/me", None, &[("authorization", header.as_str())]).await;
        statuses.push(reply.status);
    }
    assert_eq!(
        statuses,
        vec![200, 200, 200, 200, 429],
        "one user, one quota, however the scheme is spelt"
    );
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
    let read = app.get_with("/api/v1/products", None, &[("origin", "https://shop.example")]).await;
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

async fn metrics_ask_for_their_token_when_one_is_set(app: TestApp) {
    let backend = app.backend;
    drop(app);
    let app = TestApp::spawn_with(backend, &[("METRICS_TOKEN", "scrape-me-0123456789")]).await;
    app.get("/metrics", None).await.assert_problem(401, "unauthorized");
    app.get_with("/metrics", Some("scrape-me-0123456788"), &[])
        .await
        .assert_problem(401, "unauthorized");
    app.get_with("/metrics", Some("scrape-me"), &[])
        .await
        .assert_problem(401, "unauthorized");
    let scraped = app.get_with("/metrics", Some("scrape-me-0123456789"), &[]).await;
    assert_eq!(scraped.status, 200, "{}", scraped.text);
    assert!(scraped.text.contains("http_requests_total"));
}

async fn money_movements_are_limited_per_user(app: TestApp) {
    let backend = app.backend;
    drop(app);
    let app = TestApp::spawn_with(backend, &[("RATE_LIMIT_ENABLED", "true"), ("RATE_LIMIT_MONEY_PER_MINUTE", "3")]).await;
    let alice = app.customer_with("10.00").await;
    let bob = app.customer_with("10.00").await;
    let one_dollar_to = |to: &crate::helpers::User| json!({"to_user_id": to.id, "amount": "1.00", "currency": "USD"});
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(app.post("/api/v1/transfers", Some(&alice.token), &one_dollar_to(&bob)).await.status);
    }
    assert_eq!(statuses, vec![201, 201, 201, 429]);
    app.post("/api/v1/transfers", Some(&alice.token), &one_dollar_to(&bob))
        .await
        .assert_problem(429, "rate_limited");
    // Bob shares Alice's address but not her quota, and reads are not money movements.
    app.post("/api/v1/transfers", Some(&bob.token), &one_dollar_to(&alice))
        .await
        .assert_status(201);
    app.get("/api/v1/wallets", Some(&alice.token)).await.assert_status(200);
    assert_eq!(app.balance(&alice).await, "8.00");
    app.assert_ledger_ok().await;
}

async fn every_api_request_counts_against_the_callers_general_quota(app: TestApp) {
    let backend = app.backend;
    drop(app);
    let app = TestApp::spawn_with(backend, &[("RATE_LIMIT_ENABLED", "true"), ("RATE_LIMIT_GENERAL_PER_MINUTE", "8")]).await;
    let alice = app.user("customer").await;
    let bob = app.user("customer").await;
    let mut statuses = Vec::new();
    for _ in 0..9 {
        statuses.push(app.get("/api/v1/auth/me", Some(&alice.token)).await.status);
    }
    assert_eq!(statuses, [vec![200; 8], vec![429]].concat());
    app.get("/api/v1/auth/me", Some(&bob.token)).await.assert_status(200);
    // Health and metrics are not API traffic: probes are never throttled.
    app.get("/health/ready", None).await.assert_status(200);
}

async fn a_request_refused_by_one_quota_costs_nothing_from_another(app: TestApp) {
    let backend = app.backend;
    drop(app);
    // Two transfers a minute, and a general quota that refills one request a second.
    let limits = [
        ("RATE_LIMIT_ENABLED", "true"),
        ("RATE_LIMIT_MONEY_PER_MINUTE", "2"),
        ("RATE_LIMIT_GENERAL_PER_MINUTE", "60"),
    ];
    let app = TestApp::spawn_on(backend, &limits, ServerClock::Manual).await;
    let alice = app.customer_with("10.00").await;
    let bob = app.user("customer").await;
    let transfer = json!({"to_user_id": bob.id, "amount": "1.00", "currency": "USD"});
    app.post("/api/v1/transfers", Some(&alice.token), &transfer)
        .await
        .assert_status(201);
    let mut exhausted = false;
    for _ in 0..200 {
        if app.get("/api/v1/auth/me", Some(&alice.token)).await.status == 429 {
            exhausted = true;
            break;
        }
    }
    assert!(exhausted, "the general quota runs out");
    app.post("/api/v1/transfers", Some(&alice.token), &transfer)
        .await
        .assert_problem(429, "rate_limited");
    app.advance(std::time::Duration::from_millis(1100));
    // The general quota has room again, and the refused transfer did not spend the second
    // transfer of the minute.
    app.post("/api/v1/transfers", Some(&alice.token), &transfer)
        .await
        .assert_status(201);
    app.post("/api/v1/transfers", Some(&alice.token), &transfer)
        .await
        .assert_problem(429, "rate_limited");
    assert_eq!(app.balance(&bob).await, "2.00");
}

async fn card_providers_send_the_payer_back_to_pages_that_exist(app: TestApp) {
    for path in ["/checkout/complete?session_id=cs_test_1", "/checkout/cancelled"] {
        let reply = app.get(path, None).await;
        assert_eq!(reply.status, 200, "{path}");
        assert!(reply.header("content-type").is_some_and(|t| t.starts_with("text/html")));
        assert!(reply.text.contains("<h1>"));
    }
}

#[tokio::test]
async fn losing_every_database_connection_answers_no_request_with_a_500() {
    let database = adapter_postgres::testing::TestDatabase::create().await;
    let settings = [("DATABASE_URL", database.url()), ("DATABASE_POOL_MAX", "2")];
    let app = TestApp::spawn_with(crate::helpers::Backend::Memory, &settings).await;
    let alice = app.customer_with("10.00").await;
    let bob = app.user("customer").await;
    let transfer = json!({"to_user_id": bob.id, "amount": "1.00", "currency": "USD"});

    // Every connection the server's pool holds dies under it.
    let killed: i64 = database
        .raw_client()
        .await
        .query_one(
            "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
            &[],
        )
        .await
        .expect("terminate")
        .get(0);
    assert!(killed >= 1, "the pool held connections");

    let mut statuses = Vec::new();
    for _ in 0..4 {
        let reply = app.post("/api/v1/transfers", Some(&alice.token), &transfer).await;
        if reply.status == 503 {
            reply.assert_problem(503, "temporarily_unavailable");
            assert!(reply.header("retry-after").is_some());
        }
        statuses.push(reply.status);
        if reply.status == 201 {
            break;
        }
    }
    assert!(
        statuses.iter().all(|s| *s == 503 || *s == 201) && statuses.last() == Some(&201),
        "a dead connection is retried or a clean 503, never a 500, and the pool recovers: {statuses:?}"
    );
    assert_eq!(app.balance(&bob).await, "1.00", "only the answered transfer moved money");
    app.assert_ledger_ok().await;
}

/// The background loops report themselves in the metrics that the alerts of deploy/prometheus
/// read: job rounds, stuck follow-ups and the ledger's verification.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jobs_and_the_ledger_verification_report_in_the_metrics() {
    let app = TestApp::spawn_with(
        crate::helpers::Backend::Postgres,
        &[("JOB_INTERVAL_MS", "50"), ("LEDGER_VERIFY_INTERVAL_SECS", "1")],
    )
    .await;
    let sample = |text: &str, series: &str| {
        text.lines()
            .find(|line| line.starts_with(series))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|value| value.parse::<f64>().ok())
    };
    crate::helpers::eventually("a job round and a ledger verification in the metrics", || async {
        let text = app.get("/metrics", None).await.text;
        sample(&text, "job_rounds_total").is_some_and(|rounds| rounds >= 1.0)
            && sample(&text, r#"ledger_verifications_total{result="ok"}"#).is_some_and(|runs| runs >= 1.0)
    })
    .await;
    let text = app.get("/metrics", None).await.text;
    assert_eq!(sample(&text, "follow_ups_stuck"), Some(0.0), "{text}");
    assert_eq!(sample(&text, "ledger_problems"), Some(0.0), "{text}");
    assert!(
        sample(&text, "job_last_round_timestamp_seconds").is_some_and(|at| at > 1.7e9),
        "{text}"
    );
    assert!(
        sample(&text, "ledger_last_verification_timestamp_seconds").is_some_and(|at| at > 1.7e9),
        "{text}"
    );
}

/// Business events are counted on `/metrics`: idempotent replays, inbound webhooks by provider and
/// outcome (a forged signature included), rate-limit refusals, and payments and refunds by
/// provider and outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn business_events_are_counted_on_the_metrics() {
    let app = TestApp::spawn_with(crate::helpers::Backend::Memory, &[]).await;
    let merchant = app.user("merchant").await;
    let buyer = app.customer_with("100.00").await;
    let mug = app.product(&merchant, "Mug", "5.00", 10).await;
    let cart = json!({"items": [{"product_id": mug, "quantity": 1}], "payment_method": "wallet"});
    let key = [("idempotency-key", "metrics-replay-1")];
    for _ in 0..2 {
        let reply = app
            .send(reqwest::Method::POST, "/api/v1/orders", Some(&buyer.token), Some(&cart), &key)
            .await;
        reply.assert_status(201);
    }
    let forged = app
        .send(
            reqwest::Method::POST,
            "/api/v1/webhooks/simulated",
            None,
            Some(&json!({"id": "evt_forged", "type": "checkout.session.completed"})),
            &[("stripe-signature", "t=1,v1=00")],
        )
        .await;
    assert_eq!(forged.status, 400, "{}", forged.text);
    let unknown = app.post("/api/v1/webhooks/nobody", None, &json!({})).await;
    assert_eq!(unknown.status, 404, "{}", unknown.text);
    // A card purchase paid and refunded, and a wallet purchase refunded: payments and refunds by
    // provider and outcome, counted once the relay has taken their events.
    let card = json!({"items": [{"product_id": mug, "quantity": 1}], "payment_method": "card"});
    let order = app
        .post("/api/v1/orders", Some(&buyer.token), &card)
        .await
        .assert_status(201)
        .clone();
    app.press(order["payment"]["checkout_url"].as_str().expect("checkout url"), "pay")
        .await;
    let card_order = order["id"].as_str().expect("order id");
    let refund = app
        .post(&format!("/api/v1/orders/{card_order}/refunds"), Some(&merchant.token), &json!({}))
        .await;
    refund.assert_status(201);
    let wallet_order = app.get("/api/v1/orders?limit=100", Some(&buyer.token)).await.assert_status(200)["items"]
        .as_array()
        .expect("orders")
        .iter()
        .find(|o| o["payment_method"] == json!("wallet"))
        .and_then(|o| o["id"].as_str().map(str::to_owned))
        .expect("the wallet order");
    let refund = app
        .post(&format!("/api/v1/orders/{wallet_order}/refunds"), Some(&merchant.token), &json!({}))
        .await;
    refund.assert_status(201);
    app.run_jobs().await;

    let limited = TestApp::spawn_with(
        crate::helpers::Backend::Memory,
        &[("RATE_LIMIT_ENABLED", "true"), ("RATE_LIMIT_AUTH_PER_MINUTE", "1")],
    )
    .await;
    let wrong = json!({"email": "nobody@example.com", "password": "wrong password 1"});
    for _ in 0..2 {
        limited.post("/api/v1/auth/login", None, &wrong).await;
    }

    let text = app.get("/metrics", None).await.text;
    let sample = |series: &str| {
        text.lines()
            .find(|line| line.starts_with(series))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|value| value.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    assert!(sample("idempotent_replays_total") >= 1.0, "{text}");
    assert!(
        sample(r#"webhook_events_total{provider="simulated",outcome="verification_failed"}"#) >= 1.0,
        "{text}"
    );
    assert!(
        sample(r#"webhook_events_total{provider="unknown",outcome="unknown_provider"}"#) >= 1.0,
        "{text}"
    );
    assert!(sample("rate_limit_refusals_total") >= 1.0, "{text}");
    for series in [
        r#"payments_total{provider="simulated",outcome="succeeded"}"#,
        r#"refunds_total{provider="simulated",outcome="succeeded"}"#,
        r#"refunds_total{provider="wallet",outcome="succeeded"}"#,
    ] {
        assert!(sample(series) >= 1.0, "{series}: {text}");
    }
}

/// The connection pools' saturation is on `/metrics`: PostgreSQL's connections against its size
/// and the checkouts that waited, Redis' connections. One database connection and a burst of
/// requests make checkouts wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_pools_report_their_saturation_in_the_metrics() {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let one_connection = [("DATABASE_POOL_MAX", "1"), ("REDIS_POOL_MAX", "4")];
    let app = crate::redis::with_redis(crate::helpers::Backend::Postgres, &url, &crate::redis::prefix(), &one_connection).await;
    let buyer = app.customer_with("10.00").await;
    let burst = (0..16).map(|_| app.get("/api/v1/wallets", Some(&buyer.token)));
    for reply in futures::future::join_all(burst).await {
        reply.assert_status(200);
    }
    let text = app.get("/metrics", None).await.text;
    let sample = |series: &str| {
        text.lines()
            .find(|line| line.starts_with(series))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|value| value.parse::<f64>().ok())
    };
    assert_eq!(sample(r#"db_pool_max_connections{pool="postgres"}"#), Some(1.0), "{text}");
    assert_eq!(sample(r#"db_pool_max_connections{pool="redis"}"#), Some(4.0), "{text}");
    assert!(
        sample(r#"db_pool_waits_total{pool="postgres"}"#).is_some_and(|waits| waits >= 1.0),
        "sixteen requests on one connection wait for it: {text}"
    );
    assert_eq!(sample(r#"db_pool_timeouts_total{pool="postgres"}"#), Some(0.0), "{text}");
    for series in [
        r#"db_pool_connections{pool="postgres",state="idle"}"#,
        r#"db_pool_connections{pool="postgres",state="busy"}"#,
        r#"db_pool_connections{pool="redis",state="idle"}"#,
        r#"db_pool_waiting{pool="redis"}"#,
    ] {
        assert!(sample(series).is_some(), "{series}: {text}");
    }
}

/// `DATABASE_REPLICA_URL`: the reads that may lag (here the catalog's listing, the cache off) come
/// from the replica, a resource read by id from the primary. A second database stands in for the
/// replica, without the primary's rows, so that where a read went shows in what it finds.
#[tokio::test]
async fn with_a_replica_lists_come_from_it_and_reads_by_id_from_the_primary() {
    let primary = adapter_postgres::testing::TestDatabase::create().await;
    let replica = adapter_postgres::testing::TestDatabase::create().await;
    let settings = [
        ("DATABASE_URL", primary.url()),
        ("DATABASE_REPLICA_URL", replica.url()),
        ("CATALOG_CACHE", "false"),
    ];
    let app = TestApp::spawn_with(crate::helpers::Backend::Memory, &settings).await;
    let merchant = app.user("merchant").await;
    let product = app.product(&merchant, "Lamp", "12.00", 3).await;

    let by_id = app.get(&format!("/api/v1/products/{product}"), None).await;
    assert_eq!(by_id.status, 200, "{}", by_id.body);
    let listing = app.get("/api/v1/products", None).await;
    assert_eq!(listing.status, 200, "{}", listing.body);
    assert_eq!(listing.body["items"], json!([]), "the listing came from the replica's database");

    let ready = app.get("/health/ready", None).await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.body["checks"]["replica"], "ok");
}

/// A replica that cannot be reached slows nothing down and fails nothing: the reads that may lag
/// go to the primary, and readiness says `degraded` (200), not unready.
#[tokio::test]
async fn an_unreachable_replica_degrades_readiness_and_lists_come_from_the_primary() {
    let primary = adapter_postgres::testing::TestDatabase::create().await;
    let settings = [
        ("DATABASE_URL", primary.url()),
        ("DATABASE_REPLICA_URL", "postgres://postgres@127.0.0.1:1/payments"),
        ("DATABASE_CONNECT_TIMEOUT_MS", "200"),
        ("DATABASE_ACQUIRE_TIMEOUT_MS", "300"),
        ("CATALOG_CACHE", "false"),
    ];
    let app = TestApp::spawn_with(crate::helpers::Backend::Memory, &settings).await;
    let merchant = app.user("merchant").await;
    let product = app.product(&merchant, "Lamp", "12.00", 3).await;

    let listing = app.get("/api/v1/products", None).await;
    assert_eq!(listing.status, 200, "{}", listing.body);
    let ids: Vec<&str> = listing.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|item| item["id"].as_str())
        .collect();
    assert_eq!(ids, [product.as_str()]);

    let ready = app.get("/health/ready", None).await;
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert_eq!(ready.body["status"], "degraded");
    assert_eq!(ready.body["checks"]["replica"], "degraded");
    assert_eq!(ready.body["checks"]["store"], "ok");
}
