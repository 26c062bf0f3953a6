//! `/health/ready` as an orchestrator uses it: an answer within Kubernetes' default probe timeout
//! (1 s) whatever a dependency does, degraded (200) when only an optional dependency is away,
//! unavailable (503) when the database is, and every failed check counted in the metrics.
//!
//! The one-second bound asserted here is the probe's contract, not a speed measurement: the checks
//! are bounded at 250 ms (Redis) and 500 ms (PostgreSQL) and run at once.

use std::time::{Duration, Instant};

use adapter_redis::testing::ToggleProxy;
use serde_json::{Value, json};

use crate::helpers::{Backend, Reply, TestApp, eventually};
use crate::redis::{prefix, redis_address, with_redis};

/// Kubernetes' default `timeoutSeconds` of a probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

async fn timed_readiness(app: &TestApp) -> Reply {
    let started = Instant::now();
    let reply = app.get("/health/ready", None).await;
    let elapsed = started.elapsed();
    assert!(elapsed < PROBE_TIMEOUT, "readiness took {elapsed:?}, past the probe's timeout");
    reply
}

fn checks(body: &Value) -> (Option<&str>, Option<&str>, Option<&str>, Option<&str>) {
    (
        body["status"].as_str(),
        body["checks"]["store"].as_str(),
        body["checks"]["cache"].as_str(),
        body["checks"]["rate_limiter"].as_str(),
    )
}

/// The value of the series of `name` whose labels contain `label`, from `GET /metrics`.
async fn metric(app: &TestApp, name: &str, label: &str) -> f64 {
    let reply = app.get("/metrics", None).await;
    reply
        .text
        .lines()
        .find(|line| line.starts_with(name) && line.contains(label))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_black_holed_readiness_answers_in_time_degraded_and_purchases_go_on() {
    let proxy = ToggleProxy::start(redis_address()).await.expect("proxy");
    let app = with_redis(Backend::Postgres, &proxy.url(), &prefix(), &[("RATE_LIMIT_ENABLED", "true")]).await;
    let merchant = app.user("merchant").await;
    let buyer = app.customer_with("100.00").await;
    let mug = app.product(&merchant, "Mug", "5.00", 10).await;
    let ready = timed_readiness(&app).await;
    assert_eq!(checks(ready.assert_status(200)), (Some("ok"), Some("ok"), Some("ok"), Some("ok")));

    proxy.black_hole().await.expect("black hole");
    for _ in 0..5 {
        let ready = timed_readiness(&app).await;
        assert_eq!(
            checks(ready.assert_status(200)),
            (Some("degraded"), Some("ok"), Some("degraded"), Some("degraded")),
            "Redis is optional: its absence degrades readiness, it does not fail it"
        );
    }
    let cart = json!({"items": [{"product_id": mug, "quantity": 1}], "payment_method": "wallet"});
    app.post("/api/v1/orders", Some(&buyer.token), &cart).await.assert_status(201);
    assert!(metric(&app, "readiness_check_failures_total", r#"dependency="cache""#).await >= 5.0);
    assert!(metric(&app, "readiness_check_failures_total", r#"dependency="rate_limiter""#).await >= 5.0);
    assert_eq!(metric(&app, "dependency_up", r#"dependency="cache""#).await, 0.0);

    proxy.resume_now().await.expect("resume");
    eventually("readiness to see Redis back", || async {
        checks(&app.get("/health/ready", None).await.body) == (Some("ok"), Some("ok"), Some("ok"), Some("ok"))
    })
    .await;
    assert_eq!(metric(&app, "dependency_up", r#"dependency="cache""#).await, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_database_cut_off_readiness_answers_unavailable_in_time() {
    // The pool's own timeouts are longer than the probe's: readiness must not wait for them.
    let (app, proxy) = TestApp::behind_proxy(&[
        ("JOB_INTERVAL_MS", "3600000"),
        ("DATABASE_ACQUIRE_TIMEOUT_MS", "5000"),
        ("DATABASE_CONNECT_TIMEOUT_MS", "5000"),
    ])
    .await;
    let ready = timed_readiness(&app).await;
    assert_eq!(ready.assert_status(200)["checks"]["store"], "ok");

    proxy.cut();
    for _ in 0..3 {
        let ready = timed_readiness(&app).await;
        assert_eq!(ready.status, 503, "{}", ready.text);
        assert_eq!(
            (ready.body["status"].as_str(), ready.body["checks"]["store"].as_str()),
            (Some("unavailable"), Some("unavailable"))
        );
    }
    assert!(metric(&app, "readiness_check_failures_total", r#"dependency="store""#).await >= 3.0);

    proxy.restore();
    eventually("readiness to see the database back", || async {
        app.get("/health/ready", None).await.status == 200
    })
    .await;
}
