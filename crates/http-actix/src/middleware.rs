//! Request context (request id, tracing span, access log) and rate limiting.
//!
//! Every request runs in an `http_request` span. When the server exports traces it registers a
//! `RequestTracing`: the span then continues the trace its caller began (W3C `traceparent`
//! and `tracestate` headers), is named for its method and route pattern, and carries the
//! attributes trace viewers expect (`http.route`, `http.response.status_code`, an error status
//! on a 5xx). This crate knows no tracing system: the server supplies the functions.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};
use application::ports::rate_limit::{Quota, RateCheck, RateDecision, RateLimiter};
use tracing::Instrument;
use tracing::field::Empty;
use uuid::Uuid;

use crate::extract::AuthContext;
use crate::problem::{ApiError, REQUEST_CONTEXT, RequestContext};

pub const REQUEST_ID: &str = "x-request-id";

/// The id of the request being served, for handlers that log.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

fn accepted_request_id(req: &ServiceRequest) -> Option<String> {
    let text = req.headers().get(REQUEST_ID)?.to_str().ok()?;
    let valid = !text.is_empty() && text.len() <= 128 && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    valid.then(|| text.to_owned())
}

/// What the server does with each request's span when it exports traces.
#[derive(Debug, Clone, Copy)]
pub struct RequestTracing {
    /// Makes the span a child of the trace context the request's headers carry (W3C
    /// `traceparent`, `tracestate`), if they carry one.
    pub continue_trace: fn(&actix_web::http::header::HeaderMap, &tracing::Span),
    /// Renames the span: its name (`POST /api/v1/orders`) is known only once the request has been
    /// routed, after the span began.
    pub rename: fn(&tracing::Span, String),
}

/// The request's span; with `tracing`, joined to the caller's trace.
fn request_span(req: &ServiceRequest, request_id: &str, tracing: Option<RequestTracing>) -> tracing::Span {
    let span = tracing::info_span!(
        "http_request",
        method = %req.method(),
        path = %req.path(),
        request_id = %request_id,
        otel.name = Empty,
        otel.kind = Empty,
        otel.status_code = Empty,
        http.route = Empty,
        http.response.status_code = Empty,
    );
    if let Some(tracing) = tracing {
        (tracing.continue_trace)(req.headers(), &span);
        // The method alone until the route is known, as the semantic conventions say.
        span.record("otel.name", req.method().as_str());
        span.record("otel.kind", "server");
    }
    span
}

/// Names a traced request's span for its route pattern (never its path, so that ids do not
/// multiply the names) and records its status.
fn traced_response(span: &tracing::Span, tracing: RequestTracing, method: &Method, route: Option<&str>, status: u16) {
    if let Some(route) = route {
        (tracing.rename)(span, format!("{method} {route}"));
        span.record("http.route", route);
    }
    span.record("http.response.status_code", status);
    if status >= 500 {
        span.record("otel.status_code", "ERROR");
    }
}

/// Accepts the client's `X-Request-Id` (or makes one), echoes it, runs the request in a span that
/// carries it, and writes one access-log line per request.
pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let _serving = req
        .app_data::<web::Data<crate::state::InFlight>>()
        .map(|in_flight| in_flight.enter());
    let request_id = accepted_request_id(&req).unwrap_or_else(|| Uuid::now_v7().to_string());
    req.extensions_mut().insert(RequestId(request_id.clone()));
    let tracing = req.app_data::<web::Data<RequestTracing>>().map(|tracing| *tracing.get_ref());
    let span = request_span(&req, &request_id, tracing);
    let context = RequestContext {
        request_id: request_id.clone(),
        path: req.path().to_owned(),
    };
    let started = Instant::now();
    let result = REQUEST_CONTEXT.scope(context, next.call(req)).instrument(span.clone()).await;
    let mut response = result?;
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    let matched = response.request().match_pattern();
    if let Some(tracing) = tracing {
        traced_response(&span, tracing, response.request().method(), matched.as_deref(), status);
    }
    span.in_scope(|| tracing::info!(status, latency_ms, "request served"));
    // Labelled by route pattern, never by path, so ids do not multiply the series.
    let route = matched.unwrap_or_else(|| "unmatched".to_owned());
    let method = response.request().method().as_str().to_owned();
    metrics::counter!("http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status.to_string())
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "method" => method, "route" => route).record(elapsed.as_secs_f64());
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(HeaderName::from_static(REQUEST_ID), value);
    }
    Ok(response)
}

/// Headers every answer carries: no content sniffing, no framing (the simulator's pay page and
/// the API docs are pages), and no caching of token responses (RFC 6749 5.1).
pub async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let tokens = req.path().starts_with("/api/v1/auth/");
    let mut response = next.call(req).await?;
    let headers = response.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("frame-ancestors 'none'"));
    }
    if tokens {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    }
    Ok(response)
}

/// The limits of each class of request.
#[derive(Debug, Clone, Copy)]
pub struct RateLimits {
    pub enabled: bool,
    /// Per client IP, on `/api/v1/auth/*`.
    pub auth: Quota,
    /// Per user, on requests that move money.
    pub money: Quota,
    /// Per user (or IP when anonymous), on every API request.
    pub general: Quota,
    /// Use `X-Forwarded-For` / `Forwarded` for the client address (only behind a trusted proxy).
    pub trust_forwarded_for: bool,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            enabled: true,
            auth: Quota {
                burst: 10,
                period: Duration::from_secs(60),
            },
            money: Quota {
                burst: 60,
                period: Duration::from_secs(60),
            },
            general: Quota {
                burst: 600,
                period: Duration::from_secs(60),
            },
            trust_forwarded_for: false,
        }
    }
}

/// What the rate-limiting middleware needs; registered as app data.
#[derive(Debug, Clone)]
pub struct RateLimiting {
    pub limiter: Arc<dyn RateLimiter>,
    pub limits: RateLimits,
    pub auth: AuthContext,
}

fn moves_money(method: &Method, path: &str) -> bool {
    if method != Method::POST {
        return false;
    }
    let rest = path.strip_prefix("/api/v1").unwrap_or(path);
    rest.starts_with("/transfers")
        || rest.starts_with("/orders")
        || rest.starts_with("/calls")
        || rest.starts_with("/admin/wallets")
        || (rest.starts_with("/wallets/") && (rest.ends_with("/top-ups") || rest.ends_with("/withdrawals")))
}

/// Who a request counts against: the user of a valid token, otherwise the client address.
fn client_key(req: &ServiceRequest, settings: &RateLimiting) -> (String, Option<String>) {
    let address = if settings.limits.trust_forwarded_for {
        req.connection_info().realip_remote_addr().map(str::to_owned)
    } else {
        req.peer_addr().map(|a| a.ip().to_string())
    }
    .unwrap_or_else(|| "unknown".to_owned());
    let user = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::extract::bearer_token)
        .and_then(|token| settings.auth.tokens.verify_access_token(token, settings.auth.clock.now()).ok())
        .map(|claims| claims.user_id.to_string());
    (format!("ip:{address}"), user.map(|u| format!("user:{u}")))
}

/// The quotas a request is counted against, most specific first.
fn quotas_for(req: &ServiceRequest, settings: &RateLimiting) -> Vec<RateCheck> {
    let path = req.path();
    if !path.starts_with("/api/v1/") || path.starts_with("/api/v1/webhooks/") || path == "/api/v1/openapi.json" {
        return Vec::new();
    }
    let (ip, user) = client_key(req, settings);
    let limits = settings.limits;
    let check = |key: String, quota: Quota| RateCheck { key, quota };
    let mut quotas = Vec::new();
    if path.starts_with("/api/v1/auth/") && req.method() == Method::POST {
        quotas.push(check(format!("auth:{ip}"), limits.auth));
    }
    let principal = user.unwrap_or(ip);
    if moves_money(req.method(), path) {
        quotas.push(check(format!("money:{principal}"), limits.money));
    }
    quotas.push(check(format!("general:{principal}"), limits.general));
    quotas
}

fn rate_headers(headers: &mut actix_web::http::header::HeaderMap, decision: &RateDecision) {
    let pairs = [
        ("ratelimit-limit", decision.limit.to_string()),
        ("ratelimit-remaining", decision.remaining.to_string()),
        ("ratelimit-reset", decision.reset_after.as_secs().max(1).to_string()),
    ];
    for (name, value) in pairs {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
}

/// Refuses requests over their quota with 429, `Retry-After` and `RateLimit-*` headers. If the
/// limiter itself fails the request passes: limits protect the service, they must not stop it.
pub async fn rate_limit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let Some(settings) = req.app_data::<web::Data<RateLimiting>>().cloned() else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    if !settings.limits.enabled {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    // All quotas in one atomic call: a request refused by one quota consumes none of the others.
    let decision = match settings.limiter.check_all(&quotas_for(&req, &settings)).await {
        Ok(decision) => decision,
        Err(error) => {
            tracing::warn!(%error, "rate limiter unavailable; request allowed");
            None
        }
    };
    if let Some(decision) = decision.filter(|d| !d.allowed) {
        metrics::counter!("rate_limit_refusals_total").increment(1);
        let retry = decision.retry_after.as_secs_f64().ceil().max(1.0) as u64;
        let error = ApiError::new(
            actix_web::http::StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "Too many requests",
            format!("slow down: retry in {retry} s"),
        )
        .with_retry_after(retry);
        let mut response = req.error_response(error);
        rate_headers(response.headers_mut(), &decision);
        return Ok(response.map_into_boxed_body());
    }
    let mut response = next.call(req).await?.map_into_boxed_body();
    if let Some(decision) = decision {
        rate_headers(response.headers_mut(), &decision);
    }
    Ok(response)
}
