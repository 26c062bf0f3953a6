//! Liveness, readiness and metrics.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use application::ports::store::UnitOfWork;

use super::State;
use crate::dto::{HealthResponse, ProviderHealthResponse};
use crate::problem::ApiError;
use crate::readiness::{OPTIONAL_CHECK_TIMEOUT, STORE_CHECK_TIMEOUT, within};
use crate::respond::{json, ok};

/// The process is up.
#[utoipa::path(get, path = "/health/live", tag = "ops", responses((status = 200, description = "Alive", body = HealthResponse)))]
pub async fn live<U: UnitOfWork>(_state: State<U>) -> Result<HttpResponse, ApiError> {
    Ok(ok(&HealthResponse {
        status: "ok".into(),
        checks: BTreeMap::new(),
        providers: BTreeMap::new(),
    }))
}

/// Every configured dependency answers. The database is required (503 without it); the cache,
/// the rate limiter and the read replica are not (the service falls back to in-process ones, and
/// to the primary for reads that may lag), so their failure is reported as `degraded` with 200. The checks run at once, each within a short deadline
/// (`readiness`), so the answer comes within half a second whatever a dependency does. A
/// dependency's failure is logged when its state changes and counted in
/// `readiness_check_failures_total`. Each configured card provider is reported as this process's
/// latest real calls to it found it (`providers`); the probe calls no provider, and a failing
/// provider does not make the server unready (other providers and wallets still work).
#[utoipa::path(get, path = "/health/ready", tag = "ops",
    responses(
        (status = 200, description = "Ready (possibly degraded)", body = HealthResponse),
        (status = 503, description = "The database is unreachable", body = HealthResponse),
    ))]
pub async fn ready<U: UnitOfWork>(state: State<U>) -> Result<HttpResponse, ApiError> {
    let (store_ok, replica_ok, cache_ok, limiter_ok) = futures::join!(
        within(STORE_CHECK_TIMEOUT, state.app.store.ping()),
        tokio::time::timeout(OPTIONAL_CHECK_TIMEOUT, state.app.store.ping_lagging()),
        within(OPTIONAL_CHECK_TIMEOUT, state.app.cache.ping()),
        within(OPTIONAL_CHECK_TIMEOUT, state.limiter.ping()),
    );
    // `None`: no replica is configured; a replica that did not answer in time has failed.
    let replica_ok = match replica_ok {
        Ok(None) => None,
        Ok(Some(answer)) => Some(answer.is_ok()),
        Err(_elapsed) => Some(false),
    };
    state.dependencies.record("store", store_ok, true);
    state.dependencies.record("cache", cache_ok, false);
    state.dependencies.record("rate_limiter", limiter_ok, false);
    let mut checks = BTreeMap::new();
    checks.insert("store".to_owned(), if store_ok { "ok" } else { "unavailable" }.to_owned());
    checks.insert("cache".to_owned(), if cache_ok { "ok" } else { "degraded" }.to_owned());
    checks.insert("rate_limiter".to_owned(), if limiter_ok { "ok" } else { "degraded" }.to_owned());
    if let Some(replica_ok) = replica_ok {
        // Lagging reads go to the primary while the replica does not answer.
        state.dependencies.record("replica", replica_ok, false);
        checks.insert("replica".to_owned(), if replica_ok { "ok" } else { "degraded" }.to_owned());
    }
    let optional_ok = cache_ok && limiter_ok && replica_ok.unwrap_or(true);
    if let Some(simulator) = state.simulated_gateway {
        checks.insert("simulated_gateway".to_owned(), simulator.to_owned());
    }
    let (status, code) = match (store_ok, optional_ok) {
        (false, _) => ("unavailable", StatusCode::SERVICE_UNAVAILABLE),
        (true, false) => ("degraded", StatusCode::OK),
        (true, true) => ("ok", StatusCode::OK),
    };
    let gateways = &state.app.gateways;
    let providers = gateways
        .providers()
        .map(|name| {
            let health = gateways.health(name).unwrap_or_default();
            (name.to_string(), ProviderHealthResponse::from(&health))
        })
        .collect();
    Ok(json(
        code,
        &HealthResponse {
            status: status.to_owned(),
            checks,
            providers,
        },
    ))
}

/// Request counts and latencies in Prometheus' text format, for the scraper. With `METRICS_TOKEN`
/// set it asks for that bearer token (Prometheus' `authorization` setting); without, keep it on
/// the internal network.
#[utoipa::path(get, path = "/metrics", tag = "ops",
    responses(
        (status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain"),
        (status = 401, description = "`METRICS_TOKEN` is set and the request does not carry it", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Metrics are not enabled in this process", body = crate::problem::Problem, content_type = "application/problem+json"),
    ))]
pub async fn metrics<U: UnitOfWork>(state: State<U>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    if let Some(expected) = &state.metrics_token {
        let presented = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(crate::extract::bearer_token)
            .unwrap_or_default();
        // Constant time, so the token cannot be guessed byte by byte from response times.
        if !bool::from(subtle::ConstantTimeEq::ct_eq(presented.as_bytes(), expected.as_bytes())) {
            return Err(ApiError::unauthorized("the metrics token is missing or wrong"));
        }
    }
    let renderer = state
        .metrics
        .as_ref()
        .ok_or_else(|| ApiError::not_found("metrics are not enabled"))?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body((renderer.0)()))
}
