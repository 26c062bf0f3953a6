//! RFC 7807 problem details: every error this API returns.
//!
//! Each kind of error has a stable `code` and `type` URI (`urn:payments:problem:<code>`), a short
//! `title`, the HTTP `status`, a `detail` for humans, the `instance` (the request path) and the
//! request id. Validation errors list the offending fields. A 5xx body says nothing about the
//! cause; the log line (with the request id) carries the full error chain.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

tokio::task_local! {
    /// The request being served, for problem bodies rendered far from the request object.
    pub static REQUEST_CONTEXT: RequestContext;
}

#[derive(Debug, Clone)]
pub struct RequestContext {
    pub request_id: String,
    pub path: String,
}

/// A problem detail document (RFC 7807).
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem; stable, one per `code`.
    #[serde(rename = "type")]
    #[schema(example = "urn:payments:problem:insufficient_funds")]
    pub problem_type: String,
    #[schema(example = "Insufficient funds")]
    pub title: String,
    #[schema(example = 422)]
    pub status: u16,
    pub detail: String,
    /// The request path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// A stable, machine-readable error code.
    #[schema(example = "insufficient_funds")]
    pub code: String,
    /// The fields that were wrong, for validation errors.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldError {
    /// The field's path in the request, e.g. `items[0].quantity`.
    pub field: String,
    pub message: String,
}

/// An error on its way to becoming a problem response.
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    title: &'static str,
    detail: String,
    errors: Vec<FieldError>,
    /// Headers the answer must carry (`Retry-After`, `Allow` on a 405); a boxed slice, as the
    /// error travels in every `Result` and most have none.
    headers: Box<[(header::HeaderName, String)]>,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiError")
            .field("status", &self.status)
            .field("code", &self.code)
            .field("detail", &self.detail)
            .finish()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.title, self.code, self.detail)
    }
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, title: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            title,
            detail: detail.into(),
            errors: Vec::new(),
            headers: Box::default(),
            source: None,
        }
    }

    pub fn with_header(mut self, name: header::HeaderName, value: impl Into<String>) -> ApiError {
        let mut headers = std::mem::take(&mut self.headers).into_vec();
        headers.push((name, value.into()));
        self.headers = headers.into_boxed_slice();
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn code(&self) -> &'static str {
        self.code
    }

    pub fn with_field(mut self, field: impl Into<String>, message: impl Into<String>) -> ApiError {
        self.errors.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
        self
    }

    pub fn with_retry_after(self, seconds: u64) -> ApiError {
        self.with_header(header::RETRY_AFTER, seconds.to_string())
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, "Bad request", detail)
    }

    /// A well-formed request whose content is not acceptable, naming the field.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        let (field, message) = (field.into(), message.into());
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "Validation failed",
            format!("{field}: {message}"),
        )
        .with_field(field, message)
    }

    pub fn unprocessable(code: &'static str, title: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, title, detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "Authentication required", detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", "Not found", detail)
    }

    pub fn conflict(code: &'static str, title: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, code, title, detail)
    }

    /// A temporary failure the client may retry.
    pub fn unavailable(source: impl std::error::Error + Send + Sync + 'static) -> ApiError {
        let mut error = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "Temporarily unavailable",
            "the service could not complete the request right now; retry shortly",
        )
        .with_retry_after(1);
        error.source = Some(Box::new(source));
        error
    }

    /// The database connection was lost while the request's transaction committed, and whether
    /// it committed could not be learned. No `Retry-After`: retrying blindly could do it twice.
    pub fn outcome_unknown(source: impl std::error::Error + Send + Sync + 'static) -> ApiError {
        let mut error = ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "outcome_unknown",
            "Outcome unknown",
            "the request may or may not have taken effect: retry only with the same Idempotency-Key, or look the resource up first",
        );
        error.source = Some(Box::new(source));
        error
    }

    /// A fault of ours. The cause is logged, never sent.
    pub fn internal(source: impl std::error::Error + Send + Sync + 'static) -> ApiError {
        let mut error = ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Internal server error",
            "something went wrong on our side",
        );
        error.source = Some(Box::new(source));
        error
    }

    /// Whether this error is the outcome of a request that ran (a business refusal: insufficient
    /// funds, out of stock, a declined card, an order in the wrong state), which an idempotency key
    /// stores and replays like a success. Failures of the request itself are not: malformed or
    /// invalid input (the client may fix it and use the key again), authentication, rate
    /// limits, idempotency conflicts, and every 5xx except a provider's refusal.
    pub fn is_outcome(&self) -> bool {
        let request_failure = matches!(
            self.status,
            StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS
        ) || self.code == "validation_failed"
            || self.is_idempotency_conflict();
        if request_failure {
            return false;
        }
        self.status.is_client_error() || self.code == "gateway_refused"
    }

    /// A 409 or 422 about the key itself, which belongs to another request.
    pub fn is_idempotency_conflict(&self) -> bool {
        self.code.starts_with("idempotency_key_")
    }

    /// The problem as an idempotency key stores it.
    pub fn to_stored_response(&self) -> application::idempotency::StoredResponse {
        application::idempotency::StoredResponse {
            status: self.status.as_u16(),
            body: serde_json::to_vec(&self.problem()).unwrap_or_default(),
            location: None,
        }
    }

    fn problem(&self) -> Problem {
        let context = REQUEST_CONTEXT.try_with(Clone::clone).ok();
        Problem {
            problem_type: format!("urn:payments:problem:{}", self.code),
            title: self.title.to_owned(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            instance: context.as_ref().map(|c| c.path.clone()),
            request_id: context.map(|c| c.request_id),
            code: self.code.to_owned(),
            errors: self.errors.clone(),
        }
    }
}

/// The full chain of causes, for the log.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut chain = error.to_string();
    let mut current = error.source();
    while let Some(cause) = current {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        current = cause.source();
    }
    chain
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        if self.status.is_server_error() {
            let cause = self.source.as_deref().map(|source| error_chain(source)).unwrap_or_default();
            tracing::error!(code = self.code, status = self.status.as_u16(), cause, "request failed");
        } else {
            tracing::info!(code = self.code, status = self.status.as_u16(), detail = %self.detail, "request refused");
        }
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut response = HttpResponse::build(self.status);
        response.insert_header((header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json")));
        if self.status == StatusCode::UNAUTHORIZED {
            response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        for (name, value) in &self.headers {
            if let Ok(value) = HeaderValue::from_str(value) {
                response.insert_header((name.clone(), value));
            }
        }
        response.body(body)
    }
}
