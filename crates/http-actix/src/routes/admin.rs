//! Admin tools: wallet adjustments, ledger verification and the order audit trail.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use application::adjustments::{Adjustment, AdjustmentRequest};
use application::idempotency::StoredResponse;
use application::ports::store::{UnitOfWork, UserFilter};
use domain::follow_up::FollowUpState;
use domain::ids::{OrderId, UserId};
use domain::money::Money;
use serde::Deserialize;
use utoipa::IntoParams;

use super::State;
use super::admin_reads::{created_within, page, parsed};
use crate::dto::{
    AdjustmentRequestBody, AdjustmentResponse, FollowUpResponse, LedgerReportResponse, PageOf, StatusChangeResponse, currency,
};
use crate::extract::{Authenticated, IdempotencyHeader, Json, path_id};
use crate::problem::{ApiError, Problem};
use crate::respond::{idempotently, ok, stored};

fn render_adjustment(adjustment: &Adjustment) -> StoredResponse {
    stored(StatusCode::CREATED, &AdjustmentResponse::from(adjustment), None)
}

/// Credits or debits a user's wallet through the ledger, against the adjustments account.
#[utoipa::path(post, path = "/api/v1/admin/wallets/{user_id}/adjustments", tag = "admin", security(("bearer" = [])),
    params(("user_id" = uuid::Uuid, Path, description = "The wallet's owner"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retried request safe")),
    request_body = AdjustmentRequestBody,
    responses(
        (status = 201, description = "Posted", body = AdjustmentResponse),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad amount or reason, or the debit would overdraw", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn adjust<U: UnitOfWork>(
    state: State<U>,
    caller: Authenticated,
    path: web::Path<String>,
    req: HttpRequest,
    key: IdempotencyHeader,
    body: Json<AdjustmentRequestBody>,
) -> Result<HttpResponse, ApiError> {
    let user_id = path_id(&path, UserId::parse)?;
    let currency = currency("currency", &body.value.currency)?;
    let amount = Money::parse(&body.value.amount, currency).map_err(|e| ApiError::invalid_field("amount", e.to_string()))?;
    let request = AdjustmentRequest {
        user_id,
        amount,
        reason: body.value.reason.clone(),
    };
    let caller = caller.0;
    idempotently(
        &state,
        Some(caller.user_id),
        key,
        (&req, &body.raw),
        render_adjustment,
        |idempotent| state.app.adjust_wallet(&caller, request, idempotent),
    )
    .await
}

/// Checks every ledger invariant: each transaction sums to zero, each cached balance and held
/// amount matches its postings and holds, no user wallet is overdrawn, the books sum to zero.
#[utoipa::path(get, path = "/api/v1/admin/ledger/verify", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 200, description = "The verdict (`ok` false lists the problems)", body = LedgerReportResponse),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn verify_ledger<U: UnitOfWork>(state: State<U>, caller: Authenticated) -> Result<HttpResponse, ApiError> {
    let report = state.app.verify_ledger(&caller.0).await?;
    Ok(ok(&LedgerReportResponse::from(&report)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only this order's history.
    pub order_id: Option<uuid::Uuid>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// The order status history (who moved which order where, when and why), newest first.
#[utoipa::path(get, path = "/api/v1/admin/audit", tag = "admin", security(("bearer" = [])),
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of status changes", body = PageOf<StatusChangeResponse>),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn audit<U: UnitOfWork>(state: State<U>, caller: Authenticated, query: web::Query<AuditQuery>) -> Result<HttpResponse, ApiError> {
    let page = page(query.limit, query.cursor.as_ref())?;
    let trail = state
        .app
        .order_audit(&caller.0, query.order_id.map(OrderId::from_uuid), &page)
        .await?;
    Ok(ok(&PageOf::from_page(&trail, |item| StatusChangeResponse::from(item))))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FollowUpQuery {
    /// `stuck` (the default: what an admin must settle), `pending` or `done`.
    #[param(pattern = "^(stuck|pending|done)$")]
    pub state: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// Provider calls that multi-step flows still owe (a card refund to send, a late payment to give
/// back) and items only a person can settle, with their attempts and last error. Stuck ones are
/// what an admin must look at.
#[utoipa::path(get, path = "/api/v1/admin/follow-ups", tag = "admin", security(("bearer" = [])),
    params(FollowUpQuery),
    responses(
        (status = 200, description = "A page of follow-ups, most recently changed first", body = PageOf<FollowUpResponse>),
        (status = 400, description = "Unknown state, bad limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn follow_ups<U: UnitOfWork>(
    state: State<U>,
    caller: Authenticated,
    query: web::Query<FollowUpQuery>,
) -> Result<HttpResponse, ApiError> {
    let wanted = match query.state.as_deref() {
        None => FollowUpState::Stuck,
        Some(text) => FollowUpState::parse(text).ok_or_else(|| {
            ApiError::bad_request("invalid_query", format!("unknown state `{text}`")).with_field("state", "unknown state")
        })?,
    };
    let page = page(query.limit, query.cursor.as_ref())?;
    let follow_ups = state.app.follow_ups(&caller.0, wanted, &page).await?;
    Ok(ok(&PageOf::from_page(&follow_ups, |item| FollowUpResponse::from(item))))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsersQuery {
    /// customer, merchant or admin.
    pub role: Option<String>,
    /// `active` or `suspended`.
    pub status: Option<String>,
    /// The one user with this e-mail address (case does not matter).
    pub email: Option<String>,
    /// Registered at or after this time (RFC 3339).
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// Registered before this time (RFC 3339).
    #[param(format = DateTime)]
    pub to: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// Every user, newest first, filtered, each with their wallets and balances.
#[utoipa::path(get, path = "/api/v1/admin/users", tag = "admin", security(("bearer" = [])),
    params(UsersQuery),
    responses(
        (status = 200, description = "A page of users", body = PageOf<crate::dto::UserResponse>),
        (status = 400, description = "A bad filter, limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn users<U: UnitOfWork>(state: State<U>, caller: Authenticated, query: web::Query<UsersQuery>) -> Result<HttpResponse, ApiError> {
    let filter = UserFilter {
        role: parsed(
            "role",
            "customer, merchant or admin",
            query.role.as_deref(),
            domain::user::Role::parse,
        )?,
        suspended: parsed("status", "active or suspended", query.status.as_deref(), |status| match status {
            "active" => Some(false),
            "suspended" => Some(true),
            _ => None,
        })?,
        email: parsed("email", "an e-mail address", query.email.as_deref(), |text| {
            domain::user::Email::parse(text).ok()
        })?,
        created: created_within(query.from.as_deref(), query.to.as_deref())?,
    };
    let page = page(query.limit, query.cursor.as_ref())?;
    let users = state.app.admin_users_with_wallets(&caller.0, &filter, &page).await?;
    Ok(ok(&PageOf::from_page(&users, crate::dto::UserResponse::with_wallets)))
}

/// Any user by id, with their wallets and balances.
#[utoipa::path(get, path = "/api/v1/admin/users/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "User id")),
    responses(
        (status = 200, description = "The user", body = crate::dto::UserResponse),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn user<U: UnitOfWork>(state: State<U>, caller: Authenticated, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path, UserId::parse)?;
    let found = state.app.admin_user(&caller.0, id).await?;
    Ok(ok(&crate::dto::UserResponse::with_wallets(&found)))
}

/// Why an admin acts on an account.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminReasonBody {
    /// 1 to 500 characters, kept in the audit trail.
    pub reason: String,
}

/// Suspends a user: their sessions end at once (refresh tokens revoked, access tokens refused) and
/// they cannot sign in until reactivated. Recorded in the audit trail with the acting admin.
#[utoipa::path(post, path = "/api/v1/admin/users/{id}/suspend", tag = "admin", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "User id")),
    request_body = AdminReasonBody,
    responses(
        (status = 200, description = "Suspended", body = crate::dto::UserResponse),
        (status = 403, description = "Not an admin, or the user is an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already suspended", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No reason, or one too long", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn suspend<U: UnitOfWork>(
    state: State<U>,
    caller: Authenticated,
    path: web::Path<String>,
    body: Json<AdminReasonBody>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path, UserId::parse)?;
    let user = state.app.suspend_user(&caller.0, id, &body.value.reason).await?;
    state.standing.forget(id);
    Ok(ok(&crate::dto::UserResponse::from(&user)))
}

/// Lets a suspended user sign in again. Recorded in the audit trail with the acting admin.
#[utoipa::path(post, path = "/api/v1/admin/users/{id}/reactivate", tag = "admin", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "User id")),
    request_body = AdminReasonBody,
    responses(
        (status = 200, description = "Reactivated", body = crate::dto::UserResponse),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not suspended", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No reason, or one too long", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn reactivate<U: UnitOfWork>(
    state: State<U>,
    caller: Authenticated,
    path: web::Path<String>,
    body: Json<AdminReasonBody>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path, UserId::parse)?;
    let user = state.app.reactivate_user(&caller.0, id, &body.value.reason).await?;
    Ok(ok(&crate::dto::UserResponse::from(&user)))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AdminActionsQuery {
    /// Only actions on this subject, e.g. `user:<id>`.
    pub subject: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// The admins' audit trail, newest first: suspensions, reactivations and wallet adjustments, each
/// with the acting admin, the subject, the reason and the time.
#[utoipa::path(get, path = "/api/v1/admin/actions", tag = "admin", security(("bearer" = [])),
    params(AdminActionsQuery),
    responses(
        (status = 200, description = "A page of admin actions", body = PageOf<crate::dto::AdminActionResponse>),
        (status = 400, description = "Bad limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn actions<U: UnitOfWork>(
    state: State<U>,
    caller: Authenticated,
    query: web::Query<AdminActionsQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = page(query.limit, query.cursor.as_ref())?;
    let actions = state.app.admin_actions(&caller.0, query.subject.as_deref(), &page).await?;
    Ok(ok(&PageOf::from_page(&actions, |action| {
        crate::dto::AdminActionResponse::from(action)
    })))
}

/// An admin cancels an order still awaiting payment, with a reason kept in the audit trail: its
/// checkout is closed at the provider and its reserved stock goes back on sale.
#[utoipa::path(post, path = "/api/v1/admin/orders/{id}/cancel", tag = "admin", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Order id")),
    request_body = AdminReasonBody,
    responses(
        (status = 200, description = "Cancelled", body = crate::dto::OrderResponse),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not awaiting payment, or its checkout has just been paid", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No reason, or one too long", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The provider would not close the checkout yet", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn cancel_order<U: UnitOfWork>(
    state: State<U>,
    caller: Authenticated,
    path: web::Path<String>,
    body: Json<AdminReasonBody>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path, OrderId::parse)?;
    let order = state.app.admin_cancel_order(&caller.0, id, &body.value.reason).await?;
    Ok(ok(&crate::dto::OrderResponse::from(&order)))
}
