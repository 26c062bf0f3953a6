//! Orders: checkout, the buyer's, merchant's and admin's views, cancellation, fulfilment and
//! refunds.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use application::checkout::{Checkout, CheckoutCommand};
use application::idempotency::StoredResponse;
use application::ports::store::{AdminOrderFilter, UnitOfWork};
use application::refunds::RefundCommand;
use domain::catalog::Quantity;
use domain::ids::{OrderId, ProductId, UserId};
use domain::order::{CaptureMethod, Order, OrderStatus, PaymentMethod};
use domain::payment::{ProviderName, Refund};
use serde::Deserialize;
use utoipa::IntoParams;

use super::State;
use super::admin_reads::{created_within, currency_filter, page, parsed, user_filter};
use crate::dto::{
    CaptureChoice, OrderCaptureRequest, OrderItemRequest, OrderRequest, OrderResponse, PageOf, PayAgainRequest, PaymentMethodChoice,
    RefundList, RefundRequestBody, RefundResponse, positive_amount,
};
use crate::extract::{Authenticated, IdempotencyHeader, Json, PageQuery, parse_optional_json, path_id};
use crate::problem::{ApiError, Problem};
use crate::respond::{idempotently, ok, stored};

fn render_checkout(checkout: &Checkout) -> StoredResponse {
    stored(
        StatusCode::CREATED,
        &OrderResponse::from(checkout),
        Some(format!("/api/v1/orders/{}", checkout.order.id())),
    )
}

fn command(body: &OrderRequest) -> Result<CheckoutCommand, ApiError> {
    let items = cart_items(&body.items)?;
    let provider = body
        .provider
        .as_deref()
        .map(|p| ProviderName::parse(p).map_err(|e| ApiError::invalid_field("provider", e.to_string())))
        .transpose()?;
    let payment_method = match body.payment_method {
        PaymentMethodChoice::Wallet => PaymentMethod::Wallet,
        PaymentMethodChoice::Card => PaymentMethod::Card,
    };
    let capture = match body.capture {
        None | Some(CaptureChoice::Automatic) => CaptureMethod::Automatic,
        Some(CaptureChoice::Manual) => CaptureMethod::Manual,
    };
    Ok(CheckoutCommand {
        items,
        payment_method,
        provider,
        capture,
    })
}

fn cart_items(items: &[OrderItemRequest]) -> Result<Vec<(ProductId, Quantity)>, ApiError> {
    let mut cart = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let quantity =
            Quantity::new(item.quantity).map_err(|e| ApiError::invalid_field(format!("items[{index}].quantity"), e.to_string()))?;
        cart.push((ProductId::from_uuid(item.product_id), quantity));
    }
    Ok(cart)
}

fn render_settled(order: &Order) -> StoredResponse {
    stored(StatusCode::OK, &OrderResponse::from(order), None)
}

/// Places an order. `wallet` pays at once (201, status `paid`), or with `"capture": "manual"`
/// holds each merchant's part of the wallet (status `authorised`) until the merchants capture;
/// `card` reserves the stock and returns status `payment_pending` with the payment's
/// `checkout_url`.
#[utoipa::path(post, path = "/api/v1/orders", tag = "orders", security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retried request safe")),
    request_body = OrderRequest,
    responses(
        (status = 201, description = "Order placed", body = OrderResponse),
        (status = 409, description = "Out of stock", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad cart, unknown or inactive product, insufficient funds, or manual capture by card", body = Problem, content_type = "application/problem+json"),
        (status = 402, description = "The card was declined (`card_declined`)", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The card gateway failed (`gateway_error`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The card gateway is unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create<U: UnitOfWork>(
    state: State<U>,
    caller: Authenticated,
    req: HttpRequest,
    key: IdempotencyHeader,
    body: Json<OrderRequest>,
) -> Result<HttpResponse, ApiError> {
    let command = command(&body.value)?;
    let caller = caller.0;
    idempotently(
        &state,
        Some(caller.user_id),
        key,
        (&req, &body.raw),
        render_checkout,
        |idempotent| state.app.checkout(&caller, command, idempotent),
    )
    .await
}

/// The caller's orders, newest first.
#[utoipa::path(get, path = "/api/v1/orders", tag = "orders", security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, description = "A page of orders", body = PageOf<OrderResponse>)))]
pub async fn list_mine<U: UnitOfWork>(
    state: State<U>,
    caller: Authenticated,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = state.app.my_orders(&caller.0, &query.page()?).await?;
    Ok(ok(&PageOf::from_page(&page, |item| OrderResponse::from(item))))
}

/// An order with its payment and refunds: for its buyer, a merchant with an item in it, or an
/// admin.
#[utoipa::path(get, path = "/api/v1/orders/{id}", tag = "orders", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Order id")),
    responses(
        (status = 200, description = "The order", body = OrderResponse),
        (status = 404, description = "No such order of yours", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn show<U: UnitOfWork>(state: State<U>, caller: Authenticated, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path, OrderId::parse)?;
    let details = state.app.order_details(&caller.0, id).await?;
    Ok(ok(&OrderResponse::from(&details)))
}

/// The buyer cancels an order that awaits payment; its reserved stock goes back on sale.
#[utoipa::path(post, path = "/api/v1/orders/{id}/cancel", tag = "orders", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Order id")),
    responses(
        (status = 200, description = "Cancelled", body = OrderResponse),
        (status = 403, description = "Not the buyer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not awaiting payment", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn cancel<U: UnitOfWork>(state: State<U>, caller: Authenticated, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path, OrderId::parse)?;
    let order = state.app.cancel_order(&caller.0, id).await?;
    Ok(ok(&OrderResponse::from(&order)))
}

/// The buyer pays again for a card order still awaiting payment (its checkout could not be
/// opened, was abandoned, or is to be paid through another provider): the old checkout is closed
/// and a new one opened for the same order and reserved stock, with a new deadline. The response
/// carries the new payment's `checkout_url`.
#[utoipa::path(post, path = "/api/v1/orders/{id}/pay", tag = "orders", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Order id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retried request safe")),
    request_body(content = Option<PayAgainRequest>, description = "An empty body pays through the previous payment's provider"),
    responses(
        (status = 201, description = "A new checkout is open", body = OrderResponse),
        (status = 404, description = "No such order of yours", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The order is not awaiting payment, or its checkout has just been paid", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An unknown provider, or one that cannot take the order's currency", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The card gateway failed (`gateway_error`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The card gateway is unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn pay_again<U: UnitOfWork>(
    state: State<U>,
    caller: Authenticated,
    path: web::Path<String>,
    req: HttpRequest,
    key: IdempotencyHeader,
    raw: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path, OrderId::parse)?;
    let body: PayAgainRequest = parse_optional_json(&raw)?;
    let provider = body
        .provider
        .as_deref()
        .map(|p| ProviderName::parse(p).map_err(|e| ApiError::invalid_field("provider", e.to_string())))
        .transpose()?;
    let caller = caller.0;
    idempotently(&state, Some(caller.user_id), key, (&req, &raw), render_checkout, |idempotent| {
        state.app.pay_again(&caller, id, provider, idempotent)
    })
    .await
}

/// A merchant of an authorised (manual-capture) order captures its part: the units named, or all
/// of its items when the body is empty or has no `items`. What it does not take is released,
/// money and stock; once every part is settled the order is `paid` for what was captured (or
/// `cancelled` when nothing was).
#[utoipa::path(post, path = "/api/v1/orders/{id}/capture", tag = "orders", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Order id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retried request safe")),
    request_body(content = Option<OrderCaptureRequest>, description = "An empty body captures all of the merchant's items"),
    responses(
        (status = 200, description = "Captured", body = OrderResponse),
        (status = 403, description = "Not a merchant of the order", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The part was settled already, or the order is not authorised", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A product not among the merchant's items, or more units than authorised", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn capture<U: UnitOfWork>(
    state: State<U>,
    caller: Authenticated,
    path: web::Path<String>,
    req: HttpRequest,
    key: IdempotencyHeader,
    raw: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path, OrderId::parse)?;
    let body: OrderCaptureRequest = parse_optional_json(&raw)?;
    if body.items.as_ref().is_some_and(Vec::is_empty) {
        let detail = "name at least one item to capture, or void the part";
        return Err(ApiError::invalid_field("items", detail));
    }
    let items = body.items.as_deref().map(cart_items).transpose()?;
    let caller = caller.0;
    idempotently(&state, Some(caller.user_id), key, (&req, &raw), render_settled, |idempotent| {
        state.app.capture_order(&caller, id, items, idempotent)
    })
    .await
}

/// Voids an authorised (manual-capture) order: a merchant its own part; the buyer (while nothing
/// is captured) or an admin every part still pending, at once. The held money and the stock are
/// released.
#[utoipa::path(post, path = "/api/v1/orders/{id}/void", tag = "orders", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Order id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retried request safe")),
    responses(
        (status = 200, description = "Voided", body = OrderResponse),
        (status = 403, description = "The buyer, after a merchant has captured", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The part was settled already, or the order is not authorised", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn void<U: UnitOfWork>(
    state: State<U>,
    caller: Authenticated,
    path: web::Path<String>,
    req: HttpRequest,
    key: IdempotencyHeader,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path, OrderId::parse)?;
    let caller = caller.0;
    idempotently(&state, Some(caller.user_id), key, (&req, &[]), render_settled, |idempotent| {
        state.app.void_order(&caller, id, idempotent)
    })
    .await
}

/// A merchant of the order (or an admin) marks it fulfilled.
#[utoipa::path(post, path = "/api/v1/orders/{id}/fulfill", tag = "orders", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Order id")),
    responses(
        (status = 200, description = "Fulfilled", body = OrderResponse),
        (status = 403, description = "The buyer cannot fulfil", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not paid", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn fulfil<U: UnitOfWork>(state: State<U>, caller: Authenticated, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path, OrderId::parse)?;
    let order = state.app.fulfil_order(&caller.0, id).await?;
    Ok(ok(&OrderResponse::from(&order)))
}

// The idempotency renderer takes `&T` of the use case's output, here a `Vec`.
#[allow(clippy::ptr_arg)]
pub(super) fn render_refunds(refunds: &Vec<Refund>) -> StoredResponse {
    let location = refunds.first().map(|r| format!("/api/v1/orders/{}", r.order_id()));
    stored(
        StatusCode::CREATED,
        &RefundList {
            refunds: refunds.iter().map(RefundResponse::from).collect(),
        },
        location,
    )
}

/// Refunds all or part of an order (its merchants or an admin). Wallet payments go back to the
/// buyer's wallet at once; card payments go back through the gateway.
#[utoipa::path(post, path = "/api/v1/orders/{id}/refunds", tag = "orders", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Order id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retried request safe")),
    request_body = RefundRequestBody,
    responses(
        (status = 201, description = "Refunded (or, for cards, pending at the gateway)", body = RefundList),
        (status = 403, description = "Not a merchant or admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order of yours", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not refundable, or the merchant cannot cover it", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad amount or more than is refundable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn refund<U: UnitOfWork>(
    state: State<U>,
    caller: Authenticated,
    path: web::Path<String>,
    req: HttpRequest,
    key: IdempotencyHeader,
    body: Json<RefundRequestBody>,
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
    let command = RefundCommand {
        amount,
        merchant_id: body.value.merchant_id.map(UserId::from_uuid),
        reason: body.value.reason.clone().unwrap_or_default(),
    };
    idempotently(&state, Some(caller.user_id), key, (&req, &body.raw), render_refunds, |idempotent| {
        state.app.refund_order(&caller, id, command, idempotent)
    })
    .await
}

/// Orders with the merchant's products, newest first.
#[utoipa::path(get, path = "/api/v1/merchant/sales", tag = "orders", security(("bearer" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "A page of orders", body = PageOf<OrderResponse>),
        (status = 403, description = "Not a merchant", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn merchant_sales<U: UnitOfWork>(
    state: State<U>,
    caller: Authenticated,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = state.app.merchant_sales(&caller.0, &query.page()?).await?;
    Ok(ok(&PageOf::from_page(&page, |item| OrderResponse::from(item))))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AdminOrderQuery {
    /// Only orders in this status.
    pub status: Option<String>,
    /// Only this buyer's (a user id).
    #[param(format = Uuid)]
    pub buyer: Option<String>,
    /// Only orders with an item this merchant sold (a user id).
    #[param(format = Uuid)]
    pub merchant: Option<String>,
    /// Only in this currency (ISO 4217).
    pub currency: Option<String>,
    /// Placed at or after this time (RFC 3339).
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// Placed before this time (RFC 3339).
    #[param(format = DateTime)]
    pub to: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// Every order, newest first, filtered (admins).
#[utoipa::path(get, path = "/api/v1/admin/orders", operation_id = "orders", tag = "admin", security(("bearer" = [])),
    params(AdminOrderQuery),
    responses(
        (status = 200, description = "A page of orders", body = PageOf<OrderResponse>),
        (status = 400, description = "A bad filter, limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn admin_list<U: UnitOfWork>(
    state: State<U>,
    caller: Authenticated,
    query: web::Query<AdminOrderQuery>,
) -> Result<HttpResponse, ApiError> {
    let filter = AdminOrderFilter {
        status: parsed("status", "an order status", query.status.as_deref(), OrderStatus::parse)?,
        buyer: user_filter("buyer", query.buyer.as_deref())?,
        merchant: user_filter("merchant", query.merchant.as_deref())?,
        currency: currency_filter(query.currency.as_deref())?,
        created: created_within(query.from.as_deref(), query.to.as_deref())?,
    };
    let page = page(query.limit, query.cursor.as_ref())?;
    let orders = state.app.all_orders(&caller.0, filter, &page).await?;
    Ok(ok(&PageOf::from_page(&orders, |item| OrderResponse::from(item))))
}
