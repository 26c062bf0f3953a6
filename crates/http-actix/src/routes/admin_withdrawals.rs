//! Admins' withdrawal desk: the list, and the decisions (approve, reject) and manual settlements
//! (mark paid, mark failed), each recorded with the acting admin and the reason.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use application::idempotency::StoredResponse;
use application::ports::store::{UnitOfWork, WithdrawalFilter};
use application::withdrawals::WithdrawalDecision;
use domain::ids::WithdrawalId;
use domain::withdrawal::{Withdrawal, WithdrawalStatus};
use serde::Deserialize;
use utoipa::IntoParams;

use super::State;
use super::admin_reads::{created_within, currency_filter, page, parsed, user_filter};
use crate::dto::{PageOf, WithdrawalDecisionBody, WithdrawalResponse};
use crate::extract::{Authenticated, IdempotencyHeader, parse_optional_json, path_id};
use crate::problem::{ApiError, Problem};
use crate::respond::{idempotently, ok, stored};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AdminWithdrawalsQuery {
    /// Only withdrawals in this status.
    #[param(pattern = "^(requested|approved|paid|failed|rejected)$")]
    pub status: Option<String>,
    /// Only this user's (a user id).
    #[param(format = Uuid)]
    pub user: Option<String>,
    /// Only in this currency (ISO 4217).
    pub currency: Option<String>,
    /// Requested at or after this time (RFC 3339).
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// Requested before this time (RFC 3339).
    #[param(format = DateTime)]
    pub to: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// Every user's withdrawals, newest first, filtered; `status=requested` is what waits for a
/// decision, `status=approved` includes those waiting for manual settlement.
#[utoipa::path(get, path = "/api/v1/admin/withdrawals", operation_id = "withdrawals", tag = "admin", security(("bearer" = [])),
    params(AdminWithdrawalsQuery),
    responses(
        (status = 200, description = "A page of withdrawals", body = PageOf<WithdrawalResponse>),
        (status = 400, description = "A bad filter, limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list<U: UnitOfWork>(
    state: State<U>,
    caller: Authenticated,
    query: web::Query<AdminWithdrawalsQuery>,
) -> Result<HttpResponse, ApiError> {
    let filter = WithdrawalFilter {
        status: parsed(
            "status",
            "requested, approved, paid, failed or rejected",
            query.status.as_deref(),
            WithdrawalStatus::parse,
        )?,
        user: user_filter("user", query.user.as_deref())?,
        currency: currency_filter(query.currency.as_deref())?,
        created: created_within(query.from.as_deref(), query.to.as_deref())?,
    };
    let page = page(query.limit, query.cursor.as_ref())?;
    let withdrawals = state.app.admin_withdrawals(&caller.0, filter, &page).await?;
    Ok(ok(&PageOf::from_page(&withdrawals, |w| WithdrawalResponse::from(w))))
}

fn render(withdrawal: &Withdrawal) -> StoredResponse {
    stored(StatusCode::OK, &WithdrawalResponse::from(withdrawal), None)
}

#[derive(Debug, Clone, Copy)]
enum Act {
    Approve,
    Reject,
    MarkPaid,
    MarkFailed,
}

async fn act<U: UnitOfWork>(
    state: State<U>,
    caller: Authenticated,
    path: web::Path<String>,
    req: HttpRequest,
    key: IdempotencyHeader,
    raw: web::Bytes,
    act: Act,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path, WithdrawalId::parse)?;
    let body: WithdrawalDecisionBody = parse_optional_json(&raw)?;
    let decision = WithdrawalDecision {
        reason: body.reason,
        reference: body.reference,
    };
    let caller = caller.0;
    let app = &state.app;
    idempotently(&state, Some(caller.user_id), key, (&req, &raw), render, |idempotent| async move {
        match act {
            Act::Approve => app.approve_withdrawal(&caller, id, decision, idempotent).await,
            Act::Reject => app.reject_withdrawal(&caller, id, decision, idempotent).await,
            Act::MarkPaid => app.mark_withdrawal_paid(&caller, id, decision, idempotent).await,
            Act::MarkFailed => app.mark_withdrawal_failed(&caller, id, decision, idempotent).await,
        }
    })
    .await
}

/// Approves a requested withdrawal (an optional `reason` is recorded with the admin); it is then
/// paid out through a provider, or left `approved` with `settlement: manual` when no configured
/// provider pays out its currency. Approving one already approved, paid or failed answers it as
/// it is.
#[utoipa::path(post, path = "/api/v1/admin/withdrawals/{id}/approve", operation_id = "approve_withdrawal", tag = "admin", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Withdrawal id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retried request safe")),
    request_body(content = Option<WithdrawalDecisionBody>, description = "An optional reason"),
    responses(
        (status = 200, description = "The withdrawal as the approval left it (paid, failed, or approved while the payout is pending)", body = WithdrawalResponse),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such withdrawal", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The withdrawal was rejected", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A reason too long", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn approve<U: UnitOfWork>(
    state: State<U>,
    caller: Authenticated,
    path: web::Path<String>,
    req: HttpRequest,
    key: IdempotencyHeader,
    raw: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    act(state, caller, path, req, key, raw, Act::Approve).await
}

/// Rejects a requested withdrawal with a `reason` (required); its amount is available again.
/// Rejecting a rejected one answers it as it is.
#[utoipa::path(post, path = "/api/v1/admin/withdrawals/{id}/reject", operation_id = "reject_withdrawal", tag = "admin", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Withdrawal id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retried request safe")),
    request_body = WithdrawalDecisionBody,
    responses(
        (status = 200, description = "Rejected", body = WithdrawalResponse),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such withdrawal", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The withdrawal was approved already", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No reason, or one too long", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn reject<U: UnitOfWork>(
    state: State<U>,
    caller: Authenticated,
    path: web::Path<String>,
    req: HttpRequest,
    key: IdempotencyHeader,
    raw: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    act(state, caller, path, req, key, raw, Act::Reject).await
}

/// Records that an approved withdrawal left for manual settlement was paid outside the platform
/// (an optional `reference`, a bank's): the money leaves the wallet for the payouts account.
#[utoipa::path(post, path = "/api/v1/admin/withdrawals/{id}/mark-paid", operation_id = "mark_withdrawal_paid", tag = "admin", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Withdrawal id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retried request safe")),
    request_body(content = Option<WithdrawalDecisionBody>, description = "An optional reason and reference"),
    responses(
        (status = 200, description = "Paid", body = WithdrawalResponse),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such withdrawal", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not approved, or paid out through a provider", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A reason or reference too long", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn mark_paid<U: UnitOfWork>(
    state: State<U>,
    caller: Authenticated,
    path: web::Path<String>,
    req: HttpRequest,
    key: IdempotencyHeader,
    raw: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    act(state, caller, path, req, key, raw, Act::MarkPaid).await
}

/// Records that an approved withdrawal left for manual settlement could not be paid, with a
/// `reason` (required): its amount is available again.
#[utoipa::path(post, path = "/api/v1/admin/withdrawals/{id}/mark-failed", operation_id = "mark_withdrawal_failed", tag = "admin", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Withdrawal id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retried request safe")),
    request_body = WithdrawalDecisionBody,
    responses(
        (status = 200, description = "Failed", body = WithdrawalResponse),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such withdrawal", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not approved, or paid out through a provider", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No reason, or one too long", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn mark_failed<U: UnitOfWork>(
    state: State<U>,
    caller: Authenticated,
    path: web::Path<String>,
    req: HttpRequest,
    key: IdempotencyHeader,
    raw: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    act(state, caller, path, req, key, raw, Act::MarkFailed).await
}
