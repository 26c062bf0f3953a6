//! Holds: a customer authorises a merchant to capture up to an amount of their wallet; the
//! merchant captures in parts and voids the rest.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use application::holds::{CaptureRequest, HoldRequest};
use application::idempotency::StoredResponse;
use application::ports::store::UnitOfWork;
use domain::ids::{HoldId, UserId};
use domain::wallet::Hold;
use time::Duration;

use super::State;
use crate::dto::{CaptureRequestBody, HoldRequestBody, HoldResponse, currency, positive_amount};
use crate::extract::{Authenticated, IdempotencyHeader, Json, parse_optional_json, path_id};
use crate::problem::{ApiError, Problem};
use crate::respond::{idempotently, ok, stored};

fn render_placed(hold: &Hold) -> StoredResponse {
    stored(
        StatusCode::CREATED,
        &HoldResponse::from(hold),
        Some(format!("/api/v1/holds/{}", hold.id)),
    )
}

fn render_changed(hold: &Hold) -> StoredResponse {
    stored(StatusCode::OK, &HoldResponse::from(hold), None)
}

/// Authorises a merchant to capture up to `amount` of the caller's wallet until the hold expires:
/// the funds stay in the balance but are no longer available.
#[utoipa::path(post, path = "/api/v1/holds", tag = "holds", security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retried request safe")),
    request_body = HoldRequestBody,
    responses(
        (status = 201, description = "Authorised", body = HoldResponse),
        (status = 403, description = "A hold on someone else's wallet (`consent_required`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad amount or expiry, unknown merchant, or insufficient funds", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn authorise<U: UnitOfWork>(
    state: State<U>,
    caller: Authenticated,
    req: HttpRequest,
    key: IdempotencyHeader,
    body: Json<HoldRequestBody>,
) -> Result<HttpResponse, ApiError> {
    let currency = currency("currency", &body.value.currency)?;
    let expires_in = match body.value.expires_in_seconds {
        Some(seconds) if seconds <= 0 => return Err(ApiError::invalid_field("expires_in_seconds", "must be positive")),
        other => other.map(Duration::seconds),
    };
    let request = HoldRequest {
        merchant_id: UserId::from_uuid(body.value.merchant_id),
        amount: positive_amount("amount", &body.value.amount, currency)?,
        description: body.value.description.clone().unwrap_or_default(),
        expires_in,
        customer_id: body.value.customer_id.map(UserId::from_uuid),
    };
    let caller = caller.0;
    idempotently(&state, Some(caller.user_id), key, (&req, &body.raw), render_placed, |idempotent| {
        state.app.authorise_hold(&caller, request, idempotent)
    })
    .await
}

/// A hold, for its customer, its merchant or an admin.
#[utoipa::path(get, path = "/api/v1/holds/{id}", tag = "holds", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Hold id")),
    responses(
        (status = 200, description = "The hold", body = HoldResponse),
        (status = 404, description = "No such hold of yours", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn show<U: UnitOfWork>(state: State<U>, caller: Authenticated, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path, HoldId::parse)?;
    let hold = state.app.hold(&caller.0, id).await?;
    Ok(ok(&HoldResponse::from(&hold)))
}

/// The hold's merchant takes part or all of what remains, paid into its wallet; the hold stays
/// open for more unless the capture is `final` or takes everything.
#[utoipa::path(post, path = "/api/v1/holds/{id}/capture", tag = "holds", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Hold id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retried request safe")),
    request_body(content = Option<CaptureRequestBody>, description = "An empty body captures everything that remains"),
    responses(
        (status = 200, description = "Captured", body = HoldResponse),
        (status = 404, description = "No such hold for you to capture", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The hold was captured, voided or expired", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "More than remains, or a bad amount", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn capture<U: UnitOfWork>(
    state: State<U>,
    caller: Authenticated,
    path: web::Path<String>,
    req: HttpRequest,
    key: IdempotencyHeader,
    raw: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path, HoldId::parse)?;
    let body: CaptureRequestBody = parse_optional_json(&raw)?;
    let caller = caller.0;
    let hold = state.app.hold(&caller, id).await?;
    let amount = match &body.amount {
        Some(text) => Some(positive_amount("amount", text, hold.amount.currency())?),
        None => None,
    };
    let request = CaptureRequest {
        amount,
        final_capture: body.final_capture,
    };
    idempotently(&state, Some(caller.user_id), key, (&req, &raw), render_changed, |idempotent| {
        state.app.capture_hold(&caller, id, request, idempotent)
    })
    .await
}

/// Ends the hold, giving what remains back to the customer: its merchant or an admin at any time,
/// its customer while nothing has been captured.
#[utoipa::path(post, path = "/api/v1/holds/{id}/void", tag = "holds", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Hold id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retried request safe")),
    responses(
        (status = 200, description = "Voided", body = HoldResponse),
        (status = 403, description = "The customer, after the merchant has captured", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such hold of yours", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The hold was captured, voided or expired", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn void<U: UnitOfWork>(
    state: State<U>,
    caller: Authenticated,
    path: web::Path<String>,
    req: HttpRequest,
    key: IdempotencyHeader,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path, HoldId::parse)?;
    let caller = caller.0;
    idempotently(&state, Some(caller.user_id), key, (&req, &[]), render_changed, |idempotent| {
        state.app.void_hold(&caller, id, idempotent)
    })
    .await
}
