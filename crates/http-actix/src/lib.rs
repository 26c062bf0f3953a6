//! The HTTP API on actix-web.
//!
//! Handlers turn requests into use-case calls on `application::App` and results into JSON.
//! This crate owns everything HTTP: routes (`routes`), extractors (`extract`), problem+json
//! errors (`problem`, `errors`), idempotency keys (`respond`), request ids, logging and rate
//! limiting (`middleware`) and the OpenAPI document (`openapi`). It knows the ports and use cases,
//! never a concrete adapter.

pub mod dto;
mod errors;
pub mod extract;
pub mod middleware;
pub mod openapi;
pub mod problem;
pub mod readiness;
pub mod respond;
pub mod routes;
pub mod standing;
pub mod state;

use actix_cors::Cors;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::from_fn;
use actix_web::{App, HttpRequest, HttpResponse, web};
use application::ports::store::UnitOfWork;
use utoipa_swagger_ui::SwaggerUi;

use crate::extract::AuthContext;
pub use crate::middleware::{RateLimiting, RateLimits, RequestTracing};
use crate::problem::ApiError;
pub use crate::state::{ApiState, MetricsRenderer};

/// HTTP-level settings.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// The largest request body accepted.
    pub body_limit_bytes: usize,
    /// Origins allowed by CORS; empty for none, `*` for any.
    pub cors_origins: Vec<String>,
    /// What is done with each request's span when traces are exported.
    pub tracing: Option<RequestTracing>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            body_limit_bytes: 64 * 1024,
            cors_origins: Vec::new(),
            tracing: None,
        }
    }
}

fn cors(settings: &HttpSettings) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::HeaderName::from_static("idempotency-key"),
        ])
        .expose_headers([
            header::LOCATION,
            header::RETRY_AFTER,
            header::HeaderName::from_static("x-request-id"),
            header::HeaderName::from_static("ratelimit-limit"),
            header::HeaderName::from_static("ratelimit-remaining"),
            header::HeaderName::from_static("ratelimit-reset"),
            header::HeaderName::from_static("idempotent-replayed"),
        ])
        .max_age(3600);
    for origin in &settings.cors_origins {
        cors = if origin == "*" {
            cors.allow_any_origin()
        } else {
            cors.allowed_origin(origin)
        };
    }
    cors
}

/// Whether `path` matches a route pattern such as `/api/v1/orders/{id}`.
fn matches(pattern: &str, path: &str) -> bool {
    let (mut pattern, mut path) = (pattern.split('/'), path.split('/'));
    loop {
        match (pattern.next(), path.next()) {
            (None, None) => return true,
            (Some(p), Some(s)) if p.starts_with('{') || p == s => {}
            _ => return false,
        }
    }
}

/// Unknown routes: 405 with `Allow` when the path exists under other methods, otherwise 404.
async fn fallback(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let allowed: Vec<String> = routes::ROUTES
        .iter()
        .filter(|(_, pattern)| matches(pattern, req.path()))
        .map(|(method, _)| method.to_ascii_uppercase())
        .collect();
    if allowed.is_empty() {
        return Err(ApiError::not_found(format!("no route for {}", req.path())));
    }
    let allow = allowed.join(", ");
    Err(ApiError::new(
        actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "Method not allowed",
        format!("{} is not allowed here; use {allow}", req.method()),
    )
    .with_header(header::ALLOW, allow))
}

/// The whole application: routes, documentation and middleware, for `HttpServer::new` and for
/// tests.
pub fn app<U: UnitOfWork>(
    state: web::Data<ApiState<U>>,
    settings: HttpSettings,
) -> App<
    impl ServiceFactory<ServiceRequest, Config = (), Response = ServiceResponse<impl MessageBody>, Error = actix_web::Error, InitError = ()>,
> {
    app_with_pages(state, settings, |_| {})
}

/// The application with another driving adapter's pages (the web UI) mounted beside the API,
/// under the same middleware. `pages` is registered first, so a page may answer a path the API
/// also serves as a fallback (the card providers' return pages).
pub fn app_with_pages<U: UnitOfWork>(
    state: web::Data<ApiState<U>>,
    settings: HttpSettings,
    pages: impl FnOnce(&mut web::ServiceConfig),
) -> App<
    impl ServiceFactory<ServiceRequest, Config = (), Response = ServiceResponse<impl MessageBody>, Error = actix_web::Error, InitError = ()>,
> {
    let auth = AuthContext {
        tokens: state.app.tokens.clone(),
        clock: state.app.clock.clone(),
        standing: Some(state.standing.clone()),
    };
    let limiting = RateLimiting {
        limiter: state.limiter.clone(),
        limits: state.limits,
        auth: auth.clone(),
    };
    let app = match settings.tracing {
        Some(tracing) => App::new().app_data(web::Data::new(tracing)),
        None => App::new(),
    };
    let in_flight = web::Data::new(state.in_flight.clone());
    app.app_data(state)
        .app_data(in_flight)
        .app_data(web::Data::new(auth))
        .app_data(web::Data::new(limiting))
        .app_data(web::PayloadConfig::new(settings.body_limit_bytes))
        .app_data(web::QueryConfig::default().error_handler(extract::query_error))
        .app_data(web::PathConfig::default().error_handler(extract::path_error))
        .wrap(from_fn(middleware::rate_limit))
        .wrap(cors(&settings))
        .wrap(from_fn(middleware::request_context))
        .wrap(from_fn(middleware::security_headers))
        .configure(pages)
        .configure(routes::register::<U>)
        .service(SwaggerUi::new("/docs/{_:.*}").external_url_unchecked("/api/v1/openapi.json", openapi::document()))
        .default_service(web::to(fallback))
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn route_patterns_match_whole_segments() {
        assert!(matches("/api/v1/orders/{id}", "/api/v1/orders/123"));
        assert!(!matches("/api/v1/orders/{id}", "/api/v1/orders/123/cancel"));
        assert!(!matches("/api/v1/orders", "/api/v1/orderz"));
    }
}
