//! Buyers' refund requests: asked on a paid order, listed by each party, approved (refunded) or
//! declined by the merchant of the share or an admin, withdrawn by the buyer.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use application::idempotency::StoredResponse;
use application::ports::store::UnitOfWork;
use application::refund_requests::{AskRefund, RefundRequestQuery};
use domain::ids::{OrderId, RefundRequestId, UserId};
use domain::refund_request::{RefundRequest, RefundRequestStatus};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use super::State;
use super::orders::render_refunds;
use crate::dto::{PageOf, RefundAskBody, RefundDeclineBody, RefundList, RefundRequestResponse, positive_amount};
use crate::extract::{Authenticated, IdempotencyHeader, Json, PageQuery, path_id};
use crate::problem::{ApiError, Problem};
use crate::respond::{idempotently, ok, stored};

fn render_request(request: &RefundRequest) -> StoredResponse {
    stored(
        StatusCode::CREATED,
        &RefundRequestResponse::from(request),
        Some(format!("/api/v1/refund-requests/{}", request.id())),
    )
}

/// The buyer of a paid order asks for all or part of one merchant's share back; that merchant
/// (or an admin) decides.
#[utoipa::path(post, path = "/api/v1/orders/{id}/refund-requests", tag = "refund requests", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Order id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retried request safe")),
    request_body = RefundAskBody,
    responses(
        (status = 201, description = "Asked", body = RefundRequestResponse),
        (status = 404, description = "No such order of yours", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The order is not paid, nothing is left to refund, or a request is open already", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad amount, merchant or reason", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn ask<U: UnitOfWork>(
    state: State<U>,
    caller: Authenticated,
    path: web::Path<String>,
    req: HttpRequest,
    key: IdempotencyHeader,
    body: Json<RefundAskBody>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path, OrderId::parse)?;
    let caller = caller.0;
    let amount = match &body.value.amount {
        Some(text) => {
            let order = state.app.order_details(&caller, id).await?;
            Some(positive_amount("amount", text, order.order.currency())?)
        }
        None => None,
    };
    let asked = AskRefund {
        merchant_id: body.value.merchant_id.map(UserId::from_uuid),
        amount,
        reason: body.value.reason.clone(),
    };
    idempotently(&state, Some(caller.user_id), key, (&req, &body.raw), render_request, |idempotent| {
        state.app.request_refund(&caller, id, asked, idempotent)
    })
    .await
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RefundRequestListQuery {
    /// open, approved, declined or withdrawn.
    pub status: Option<String>,
    /// Only the requests of this order.
    pub order_id: Option<Uuid>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// The refund requests the caller may see, newest first: a buyer's own, those of a merchant's
/// share, every one for an admin.
#[utoipa::path(get, path = "/api/v1/refund-requests", tag = "refund requests", security(("bearer" = [])),
    params(RefundRequestListQuery),
    responses(
        (status = 200, description = "A page of refund requests", body = PageOf<RefundRequestResponse>),
        (status = 400, description = "Bad status, limit or cursor", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list<U: UnitOfWork>(
    state: State<U>,
    caller: Authenticated,
    query: web::Query<RefundRequestListQuery>,
) -> Result<HttpResponse, ApiError> {
    let status = match query.status.as_deref() {
        None => None,
        Some(text) => Some(
            RefundRequestStatus::parse(text)
                .ok_or_else(|| ApiError::bad_request("invalid_query", "status must be open, approved, declined or withdrawn"))?,
        ),
    };
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor.clone(),
    }
    .page()?;
    let filter = RefundRequestQuery {
        order: query.order_id.map(OrderId::from_uuid),
        status,
    };
    let requests = state.app.refund_requests(&caller.0, filter, &page).await?;
    Ok(ok(&PageOf::from_page(&requests, |request| RefundRequestResponse::from(request))))
}

/// One refund request, for its buyer, the merchant of its share, or an admin.
#[utoipa::path(get, path = "/api/v1/refund-requests/{id}", tag = "refund requests", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Refund request id")),
    responses(
        (status = 200, description = "The refund request", body = RefundRequestResponse),
        (status = 404, description = "No such refund request of yours", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn show<U: UnitOfWork>(state: State<U>, caller: Authenticated, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path, RefundRequestId::parse)?;
    let request = state.app.refund_request(&caller.0, id).await?;
    Ok(ok(&RefundRequestResponse::from(&request)))
}

/// The merchant of the share, or an admin, approves an open request: it is refunded (its amount,
/// or all that is left of the share) and marked approved in one step, once.
#[utoipa::path(post, path = "/api/v1/refund-requests/{id}/approve", tag = "refund requests", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Refund request id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retried request safe")),
    responses(
        (status = 201, description = "Refunded (or, for cards, pending at the gateway)", body = RefundList),
        (status = 403, description = "The buyer cannot decide", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such refund request of yours", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Decided already, or the merchant cannot cover it", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "More than is left to refund", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn approve<U: UnitOfWork>(
    state: State<U>,
    caller: Authenticated,
    path: web::Path<String>,
    req: HttpRequest,
    key: IdempotencyHeader,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path, RefundRequestId::parse)?;
    let caller = caller.0;
    idempotently(&state, Some(caller.user_id), key, (&req, &[]), render_refunds, |idempotent| {
        state.app.approve_refund_request(&caller, id, idempotent)
    })
    .await
}

/// The merchant of the share, or an admin, declines an open request with a note for the buyer.
#[utoipa::path(post, path = "/api/v1/refund-requests/{id}/decline", tag = "refund requests", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Refund request id")),
    request_body = RefundDeclineBody,
    responses(
        (status = 200, description = "Declined", body = RefundRequestResponse),
        (status = 403, description = "The buyer cannot decide", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such refund request of yours", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Decided or withdrawn already", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No note", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn decline<U: UnitOfWork>(
    state: State<U>,
    caller: Authenticated,
    path: web::Path<String>,
    body: Json<RefundDeclineBody>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path, RefundRequestId::parse)?;
    let request = state.app.decline_refund_request(&caller.0, id, &body.value.note).await?;
    Ok(ok(&RefundRequestResponse::from(&request)))
}

/// The buyer withdraws an open request.
#[utoipa::path(post, path = "/api/v1/refund-requests/{id}/withdraw", tag = "refund requests", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Refund request id")),
    responses(
        (status = 200, description = "Withdrawn", body = RefundRequestResponse),
        (status = 403, description = "Only the buyer withdraws", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such refund request of yours", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Decided or withdrawn already", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn withdraw<U: UnitOfWork>(state: State<U>, caller: Authenticated, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path, RefundRequestId::parse)?;
    let request = state.app.withdraw_refund_request(&caller.0, id).await?;
    Ok(ok(&RefundRequestResponse::from(&request)))
}
