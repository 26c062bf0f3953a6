//! Metered calls.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use application::calls::StartCall;
use application::idempotency::StoredResponse;
use application::ports::store::UnitOfWork;
use domain::call::CallSession;
use domain::ids::{CallId, UserId};

use super::State;
use crate::dto::{CallRequest, CallResponse, PageOf, currency, positive_amount};
use crate::extract::{Authenticated, IdempotencyHeader, Json, PageQuery, path_id};
use crate::problem::{ApiError, Problem};
use crate::respond::{idempotently, ok, stored};

fn render_started(call: &CallSession) -> StoredResponse {
    stored(
        StatusCode::CREATED,
        &CallResponse::from(call),
        Some(format!("/api/v1/calls/{}", call.id)),
    )
}

fn render_ended(call: &CallSession) -> StoredResponse {
    stored(StatusCode::OK, &CallResponse::from(call), None)
}

/// Starts a call. The caller must afford the first minute; funds for the minutes the wallet can
/// cover (up to a limit) are held until the call ends.
#[utoipa::path(post, path = "/api/v1/calls", tag = "calls", security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retried request safe")),
    request_body = CallRequest,
    responses(
        (status = 201, description = "Call started", body = CallResponse),
        (status = 422, description = "Unknown receiver, yourself, bad rate, or cannot afford the first minute", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn start<U: UnitOfWork>(
    state: State<U>,
    caller: Authenticated,
    req: HttpRequest,
    key: IdempotencyHeader,
    body: Json<CallRequest>,
) -> Result<HttpResponse, ApiError> {
    let currency = currency("currency", &body.value.currency)?;
    let request = StartCall {
        receiver_id: UserId::from_uuid(body.value.receiver_id),
        rate_per_minute: positive_amount("rate_per_minute", &body.value.rate_per_minute, currency)?,
    };
    let caller = caller.0;
    idempotently(&state, Some(caller.user_id), key, (&req, &body.raw), render_started, |idempotent| {
        state.app.start_call(&caller, request, idempotent)
    })
    .await
}

/// Ends a call (its caller, its receiver or an admin): every started minute is charged and paid
/// to the receiver.
#[utoipa::path(post, path = "/api/v1/calls/{id}/end", tag = "calls", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Call id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retried request safe")),
    responses(
        (status = 200, description = "Ended and charged", body = CallResponse),
        (status = 404, description = "No such call of yours", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already ended", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn end<U: UnitOfWork>(
    state: State<U>,
    caller: Authenticated,
    path: web::Path<String>,
    req: HttpRequest,
    key: IdempotencyHeader,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path, CallId::parse)?;
    let caller = caller.0;
    idempotently(&state, Some(caller.user_id), key, (&req, &[]), render_ended, |idempotent| {
        state.app.end_call(&caller, id, idempotent)
    })
    .await
}

/// Calls the caller made or received, newest first.
#[utoipa::path(get, path = "/api/v1/calls", tag = "calls", security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, description = "A page of calls", body = PageOf<CallResponse>)))]
pub async fn list<U: UnitOfWork>(state: State<U>, caller: Authenticated, query: web::Query<PageQuery>) -> Result<HttpResponse, ApiError> {
    let page = state.app.list_calls(&caller.0, &query.page()?).await?;
    Ok(ok(&PageOf::from_page(&page, |item| CallResponse::from(item))))
}
