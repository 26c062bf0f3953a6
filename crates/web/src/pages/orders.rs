//! Orders: the buyer's list, an order with its payment, refunds and status history; paying again
//! for a card order whose payment failed, cancelling, refunding and fulfilling; the buyer's refund
//! requests and their decisions; each refused or allowed by its use case.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use application::checkout::{Checkout, CheckoutError};
use application::idempotency::StoredResponse;
use application::orders::{OrderCommandError, OrderDetails};
use application::pagination::PageRequest;
use application::ports::store::UnitOfWork;
use application::refund_requests::{AskRefund, RefundRequestQuery, RefundRequestUseError};
use application::refunds::{RefundCommand, RefundError};
use domain::ids::{OrderId, RefundRequestId, UserId};
use domain::money::Money;
use domain::order::{Order, OrderStatus, PaymentMethod};
use domain::payment::Refund;
use domain::refund_request::{RefundRequest, RefundRequestStatus};
use domain::user::Role;
use maud::{Markup, html};
use serde::Deserialize;

use super::{ListQuery, State, parse_id};
use crate::error::PageError;
use crate::form::{Form, KeyedForm};
use crate::money;
use crate::once::{self, Once};
use crate::session::{self, RETURN_COOKIE, Visitor};
use crate::view::{self, Errors, Field};

pub fn order_error(error: OrderCommandError) -> PageError {
    match error {
        OrderCommandError::NotFound => PageError::NotFound,
        OrderCommandError::Forbidden => PageError::Forbidden,
        other => PageError::internal(other),
    }
}

/// A table of orders linking to each.
pub fn table(orders: &[Order]) -> Markup {
    html! {
        @if orders.is_empty() { p { "No orders yet." } } @else {
            div.table-wrap { table {
                thead { tr { th scope="col" { "Order" } th scope="col" { "Placed" } th scope="col" { "Items" } th scope="col" { "Status" } th.num scope="col" { "Total" } } }
                tbody {
                    @for order in orders {
                        tr {
                            td { a href={ "/orders/" (order.id()) } { "#" (short(&order.id().to_string())) } }
                            td { (view::when(order.created_at())) }
                            td { (order.items().iter().map(|i| i.product_name.as_str()).collect::<Vec<_>>().join(", ")) }
                            td { (view::status(order.status().as_str())) }
                            td.num { (money::format(order.total())) }
                        }
                    }
                }
            } }
        }
    }
}

/// The last 8 characters of an id: what people read out.
pub fn short(id: &str) -> &str {
    &id[id.len().saturating_sub(8)..]
}

pub async fn list<U: UnitOfWork>(state: State<U>, visitor: Visitor, query: web::Query<ListQuery>) -> Result<HttpResponse, PageError> {
    let caller = visitor.require("/orders")?;
    let page = state.app.my_orders(&caller, &query.page(20)).await.map_err(order_error)?;
    let body = html! {
        (view::notice(query.notice.as_deref()))
        (table(&page.items))
        (view::next_link("/orders", page.next_cursor.map(|c| c.encode())))
    };
    Ok(view::ok(&visitor, "Your orders", body))
}

fn items(details: &OrderDetails) -> Markup {
    let order = &details.order;
    html! {
        div.table-wrap { table {
            thead { tr { th scope="col" { "Product" } th.num scope="col" { "Price" } th.num scope="col" { "Quantity" } th.num scope="col" { "Subtotal" } } }
            tbody {
                @for item in order.items() {
                    tr {
                        td { a href={ "/products/" (item.product_id) } { (item.product_name) } }
                        td.num { (money::format(item.unit_price)) }
                        td.num { (item.quantity.get()) }
                        td.num { @if let Ok(total) = item.line_total() { (money::format(total)) } }
                    }
                }
            }
            tfoot {
                tr { th scope="row" colspan="3" { "Total" } td.num #order-total { strong { (money::format(order.total())) } } }
                @if order.refunded().is_positive() {
                    tr { th scope="row" colspan="3" { "Refunded" } td.num #order-refunded { (money::format(order.refunded())) } }
                }
            }
        } }
    }
}

fn payment_and_refunds(details: &OrderDetails) -> Markup {
    html! {
        @if let Some(payment) = &details.payment {
            h2 { "Card payment" }
            p { (view::status(payment.status().as_str())) " " (money::format(payment.amount())) " through " (payment.provider().as_str()) }
            @if payment.is_pending() {
                div.progress role="status" data-refresh="3" {
                    span.spinner aria-hidden="true" {}
                    span { "Waiting for the card provider to confirm the payment. This page updates by itself." }
                    @if let Some(url) = payment.checkout_url() { a href=(url) { "Open the payment page" } }
                }
            }
        }
        @if !details.refunds.is_empty() {
            h2 { "Refunds" }
            ul #refunds {
                @for refund in &details.refunds {
                    li { (view::status(refund.status().as_str())) " " (money::format(refund.amount())) " on " (view::when(refund.created_at()))
                        @if !refund.reason().is_empty() { " · " (refund.reason()) } }
                }
            }
        }
    }
}

/// The merchants of an order, each named by what they sold in it.
fn merchants(order: &Order) -> Vec<(UserId, String)> {
    let mut merchants: Vec<(UserId, String)> = Vec::new();
    for item in order.items() {
        match merchants.iter_mut().find(|(id, _)| *id == item.merchant_id) {
            Some((_, names)) => {
                names.push_str(", ");
                names.push_str(&item.product_name);
            }
            None => merchants.push((item.merchant_id, item.product_name.clone())),
        }
    }
    merchants
}

fn refund_form(visitor: &Visitor, order: &Order, errors: &Errors) -> Markup {
    let is_admin = visitor.user.as_ref().is_some_and(|u| u.role == Role::Admin);
    let merchants = merchants(order);
    html! {
        h2 #refund { "Refund" }
        (errors.summary())
        form.stack method="post" action={ "/orders/" (order.id()) "/refund" } data-confirm="Refund this order?" {
            (view::csrf(visitor))
            (once::field())
            @if is_admin && merchants.len() > 1 {
                div.field {
                    label for="f-merchant" { "Whose share" }
                    select #f-merchant name="merchant" {
                        @for (id, names) in &merchants { option value=(id) { "The merchant of " (names) } }
                    }
                }
            }
            (Field::new("amount", "Amount").amount().optional().hint("Leave empty to refund everything that is left.").render(errors))
            (Field::new("reason", "Reason").optional().render(errors))
            button.danger type="submit" data-busy="Refunding…" { "Refund" }
        }
    }
}

/// The order's refund requests the visitor may see, with what each party may do about the open
/// ones: the buyer withdraws, the merchant of the share or an admin approves or declines.
fn refund_requests(visitor: &Visitor, order: &Order, requests: &[RefundRequest]) -> Markup {
    let me = visitor.user.as_ref();
    let deciding = |request: &RefundRequest| me.is_some_and(|u| u.role == Role::Admin || u.id == request.merchant_id());
    let base = format!("/orders/{}/refund-requests", order.id());
    html! {
        @if !requests.is_empty() {
            h2 { "Refund requests" }
            ul #refund-requests {
                @for request in requests {
                    li {
                        (view::status(request.status().as_str())) " "
                        @match request.amount() { Some(amount) => (money::format(amount)), None => "everything left" }
                        " asked on " (view::when(request.created_at())) " · " (request.reason())
                        @if let Some(note) = &request.record().note { " · declined: " (note) }
                        @if request.status() == RefundRequestStatus::Open {
                            div.actions {
                                @if me.is_some_and(|u| u.id == request.buyer_id()) {
                                    form.inline method="post" action={ (base) "/" (request.id()) "/withdraw" } {
                                        (view::csrf(visitor))
                                        button.secondary type="submit" { "Withdraw request" }
                                    }
                                }
                                @if deciding(request) {
                                    form.inline method="post" action={ (base) "/" (request.id()) "/approve" } data-confirm="Refund what this request asks?" {
                                        (view::csrf(visitor))
                                        (once::field())
                                        button type="submit" data-busy="Refunding…" { "Approve and refund" }
                                    }
                                    form.inline method="post" action={ (base) "/" (request.id()) "/decline" } {
                                        (view::csrf(visitor))
                                        label.muted for={ "f-note-" (request.id()) } { "Note for the buyer " }
                                        input id={ "f-note-" (request.id()) } name="note" required maxlength="500";
                                        " "
                                        button.secondary type="submit" { "Decline" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The buyer asks for money back: whose share (when the order has several merchants), how much
/// (all that is left if empty), and why.
fn ask_form(visitor: &Visitor, order: &Order, errors: &Errors) -> Markup {
    let merchants = merchants(order);
    html! {
        h2 #ask-refund { "Ask for a refund" }
        form.stack method="post" action={ "/orders/" (order.id()) "/refund-requests" } {
            (view::csrf(visitor))
            (once::field())
            @if merchants.len() > 1 {
                div.field {
                    label for="f-ask-merchant" { "Which items" }
                    select #f-ask-merchant name="merchant" {
                        @for (id, names) in &merchants { option value=(id) { (names) } }
                    }
                }
            }
            (Field::new("ask_amount", "Amount").amount().optional().hint("Leave empty to ask for everything that is left.").render(errors))
            (Field::new("ask_reason", "Why").hint("The merchant reads this to decide.").render(errors))
            button type="submit" data-busy="Sending…" { "Send the request" }
        }
    }
}

/// A buyer may pay again for a card order awaiting payment whose payment failed, expired or
/// never opened.
fn payable_again(details: &OrderDetails) -> bool {
    details.order.status() == OrderStatus::PaymentPending
        && details.order.payment_method() == PaymentMethod::Card
        && !details.payment.as_ref().is_some_and(|payment| payment.is_pending())
}

fn order_page(visitor: &Visitor, details: &OrderDetails, requests: &[RefundRequest], errors: &Errors, notice: Option<&str>) -> Markup {
    let order = &details.order;
    let role = visitor.user.as_ref().map(|u| u.role);
    let is_buyer = visitor.user.as_ref().is_some_and(|u| u.id == order.buyer_id());
    let refundable = matches!(
        order.status(),
        OrderStatus::Paid | OrderStatus::Fulfilled | OrderStatus::PartiallyRefunded
    );
    html! {
        (view::notice(notice))
        dl.facts {
            dt { "Status" } dd #order-status { (view::status(order.status().as_str())) }
            dt { "Placed" } dd { (view::when(order.created_at())) }
            dt { "Paid by" } dd { (order.payment_method().as_str()) }
        }
        (items(details))
        (payment_and_refunds(details))
        div.actions {
            @if is_buyer && payable_again(details) {
                form.inline method="post" action={ "/orders/" (order.id()) "/pay" } {
                    (view::csrf(visitor))
                    (once::field())
                    button type="submit" data-busy="Opening the payment page…" { "Pay again" }
                }
            }
            @if is_buyer && order.status() == OrderStatus::PaymentPending {
                form.inline method="post" action={ "/orders/" (order.id()) "/cancel" } data-confirm="Cancel this order?" {
                    (view::csrf(visitor))
                    button.secondary type="submit" { "Cancel order" }
                }
            } @else if role == Some(Role::Admin) && matches!(order.status(), OrderStatus::Created | OrderStatus::PaymentPending | OrderStatus::Authorised) {
                form.inline method="post" action={ "/orders/" (order.id()) "/cancel" } data-confirm="Cancel this order?" {
                    (view::csrf(visitor))
                    label.muted for="f-cancel-reason" { "Reason " }
                    input #f-cancel-reason name="reason" required;
                    " "
                    button.secondary type="submit" { "Cancel order" }
                }
            }
            @if matches!(role, Some(Role::Merchant | Role::Admin)) && order.status() == OrderStatus::Paid {
                form.inline method="post" action={ "/orders/" (order.id()) "/fulfil" } {
                    (view::csrf(visitor))
                    button.secondary type="submit" { "Mark fulfilled" }
                }
            }
        }
        @if matches!(role, Some(Role::Merchant | Role::Admin)) && refundable { (refund_form(visitor, order, errors)) }
        (refund_requests(visitor, order, requests))
        @if is_buyer && refundable { (ask_form(visitor, order, errors)) }
        (history(details))
        p { a href="/orders" { "← Your orders" } }
    }
}

/// The status history, oldest first, naming who acted by their part in the order.
fn history(details: &OrderDetails) -> Markup {
    html! {
        h2 { "Status history" }
        ol #history {
            @for change in &details.history {
                li { (view::when(change.at)) ": " (change.from.map(|s| s.as_str()).unwrap_or("—")) " → " strong { (change.to.as_str()) }
                    " by " (change.actor.party_to(&details.order)) @if !change.reason.is_empty() { " (" (change.reason) ")" } }
            }
        }
    }
}

async fn render<U: UnitOfWork>(
    state: &State<U>,
    visitor: &Visitor,
    id: OrderId,
    errors: &Errors,
    notice: Option<&str>,
) -> Result<Markup, PageError> {
    let caller = visitor.require(&format!("/orders/{id}"))?;
    let details = state.app.order_details(&caller, id).await.map_err(order_error)?;
    let query = RefundRequestQuery {
        order: Some(id),
        status: None,
    };
    let page = PageRequest::first(PageRequest::LIMIT_MAX as usize);
    let requests = state
        .app
        .refund_requests(&caller, query, &page)
        .await
        .map_err(PageError::internal)?;
    Ok(order_page(visitor, &details, &requests.items, errors, notice))
}

pub async fn show<U: UnitOfWork>(
    state: State<U>,
    visitor: Visitor,
    path: web::Path<String>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, PageError> {
    let id = parse_id(&path, OrderId::parse)?;
    let body = render(&state, &visitor, id, &Errors::default(), query.notice.as_deref()).await?;
    Ok(view::ok(&visitor, &format!("Order #{}", short(&id.to_string())), body))
}

#[derive(Debug, Deserialize)]
pub struct Empty {}

#[derive(Debug, Deserialize)]
pub struct CancelForm {
    reason: Option<String>,
}

/// The buyer cancels their order; an admin cancels anyone's, with a reason for the audit trail.
pub async fn cancel<U: UnitOfWork>(
    state: State<U>,
    visitor: Visitor,
    path: web::Path<String>,
    Form(form): Form<CancelForm>,
) -> Result<HttpResponse, PageError> {
    let id = parse_id(&path, OrderId::parse)?;
    let caller = visitor.require(&format!("/orders/{id}"))?;
    let cancelled = match form.reason.as_deref().map(str::trim) {
        Some(reason) if caller.is_admin() => state.app.admin_cancel_order(&caller, id, reason).await,
        _ => state.app.cancel_order(&caller, id).await,
    };
    match cancelled {
        Ok(_) => Ok(view::see_other(&format!("/orders/{id}?notice=cancelled"))),
        Err(error @ (OrderCommandError::NotFound | OrderCommandError::Forbidden | OrderCommandError::Store(_))) => Err(order_error(error)),
        Err(other) => {
            let body = render(&state, &visitor, id, &Errors::one("", other.to_string()), None).await?;
            Ok(view::invalid(&visitor, &format!("Order #{}", short(&id.to_string())), body))
        }
    }
}

/// Where paying again sends the buyer: the provider's new page, or back to the order.
fn paying_again(checkout: &Checkout) -> StoredResponse {
    let order = format!("/orders/{}", checkout.order.id());
    match checkout.payment.as_ref().and_then(|payment| payment.checkout_url()) {
        Some(url) => once::redirect(url.to_owned(), &order),
        None => once::redirect(order.clone(), &order),
    }
}

/// The buyer pays again: a new checkout at the provider for the same order and reserved stock,
/// then back to the order (the same return as a first checkout).
pub async fn pay_again<U: UnitOfWork>(
    state: State<U>,
    visitor: Visitor,
    path: web::Path<String>,
    posted: KeyedForm<Empty>,
) -> Result<HttpResponse, PageError> {
    let id = parse_id(&path, OrderId::parse)?;
    let caller = visitor.require(&format!("/orders/{id}"))?;
    let order = format!("/orders/{id}");
    let ran = once::once(&state.app, &caller, posted.key, paying_again, |idempotent| {
        state.app.pay_again(&caller, id, None, idempotent)
    })
    .await?;
    let answer = match ran {
        Once::Done(answer) => answer,
        Once::Ran(Ok(checkout)) => paying_again(&checkout),
        Once::Ran(Err(CheckoutError::OrderNotFound)) => return Err(PageError::NotFound),
        Once::Ran(Err(CheckoutError::Store(error))) => return Err(PageError::internal(error)),
        Once::Ran(Err(other)) => {
            let body = render(&state, &visitor, id, &Errors::one("", other.to_string()), None).await?;
            return Ok(view::invalid(&visitor, &format!("Order #{}", short(&id.to_string())), body));
        }
    };
    match once::location(&answer) {
        Some(url) if !url.starts_with('/') => Ok(HttpResponse::SeeOther()
            .insert_header((header::LOCATION, url.to_owned()))
            .append_header((
                header::SET_COOKIE,
                session::set_cookie(RETURN_COOKIE, &order, 3600, state.settings.secure_cookies),
            ))
            .finish()),
        _ => Ok(view::see_other(&order)),
    }
}

pub async fn fulfil<U: UnitOfWork>(
    state: State<U>,
    visitor: Visitor,
    path: web::Path<String>,
    _form: Form<Empty>,
) -> Result<HttpResponse, PageError> {
    let id = parse_id(&path, OrderId::parse)?;
    let caller = visitor.require(&format!("/orders/{id}"))?;
    match state.app.fulfil_order(&caller, id).await {
        Ok(_) => Ok(view::see_other(&format!("/orders/{id}?notice=fulfilled"))),
        Err(error @ (OrderCommandError::NotFound | OrderCommandError::Forbidden | OrderCommandError::Store(_))) => Err(order_error(error)),
        Err(other) => {
            let body = render(&state, &visitor, id, &Errors::one("", other.to_string()), None).await?;
            Ok(view::invalid(&visitor, &format!("Order #{}", short(&id.to_string())), body))
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct RefundForm {
    #[serde(default)]
    amount: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    merchant: String,
}

fn refund_errors(error: RefundError) -> Result<Errors, PageError> {
    Ok(match error {
        RefundError::NotFound => return Err(PageError::NotFound),
        RefundError::Forbidden => return Err(PageError::Forbidden),
        RefundError::Store(error) => return Err(PageError::internal(error)),
        error @ (RefundError::InvalidAmount | RefundError::ExceedsRefundable { .. } | RefundError::Money(_)) => {
            Errors::one("amount", error.to_string())
        }
        error @ RefundError::Reason => Errors::one("reason", error.to_string()),
        other => Errors::one("", other.to_string()),
    })
}

// `refund_order` answers a `Vec`: the key's renderer takes what the use case answers.
#[allow(clippy::ptr_arg)]
fn refunded(refunds: &Vec<Refund>) -> StoredResponse {
    match refunds.first() {
        Some(refund) => once::redirect(format!("/orders/{}?notice=refunded", refund.order_id()), ""),
        None => once::redirect("/orders".to_owned(), ""),
    }
}

pub async fn refund<U: UnitOfWork>(
    state: State<U>,
    visitor: Visitor,
    path: web::Path<String>,
    posted: KeyedForm<RefundForm>,
) -> Result<HttpResponse, PageError> {
    let id = parse_id(&path, OrderId::parse)?;
    let caller = visitor.require(&format!("/orders/{id}"))?;
    let details = state.app.order_details(&caller, id).await.map_err(order_error)?;
    let title = format!("Order #{}", short(&id.to_string()));
    let form = posted.form;
    let amount = form.amount.trim();
    let amount = if amount.is_empty() {
        None
    } else {
        match Money::parse_positive(amount, details.order.total().currency()) {
            Ok(amount) => Some(amount),
            Err(error) => {
                let body = render(&state, &visitor, id, &Errors::one("amount", error.to_string()), None).await?;
                return Ok(view::invalid(&visitor, &title, body));
            }
        }
    };
    let merchant_id = UserId::parse(form.merchant.trim()).ok();
    let command = RefundCommand {
        amount,
        merchant_id,
        reason: form.reason.trim().to_owned(),
    };
    let ran = once::once(&state.app, &caller, posted.key, refunded, |idempotent| {
        state.app.refund_order(&caller, id, command, idempotent)
    })
    .await?;
    match ran {
        // The order of this page: a stored answer names no other.
        Once::Done(_) | Once::Ran(Ok(_)) => Ok(view::see_other(&format!("/orders/{id}?notice=refunded"))),
        Once::Ran(Err(error)) => {
            let errors = refund_errors(error)?;
            let body = render(&state, &visitor, id, &errors, None).await?;
            Ok(view::invalid(&visitor, &title, body))
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct AskForm {
    #[serde(default)]
    ask_amount: String,
    #[serde(default)]
    ask_reason: String,
    #[serde(default)]
    merchant: String,
}

fn ask_errors(error: RefundRequestUseError) -> Result<Errors, PageError> {
    use RefundRequestUseError as E;
    Ok(match error {
        E::OrderNotFound | E::NotFound => return Err(PageError::NotFound),
        E::Store(error) => return Err(PageError::internal(error)),
        error @ (E::ExceedsRefundable { .. } | E::Currency | E::NothingToRefund) => Errors::one("ask_amount", error.to_string()),
        E::Request(error @ domain::refund_request::RefundRequestError::Amount) => Errors::one("ask_amount", error.to_string()),
        E::Request(error @ domain::refund_request::RefundRequestError::Reason) => Errors::one("ask_reason", error.to_string()),
        other => Errors::one("", other.to_string()),
    })
}

fn asked(request: &RefundRequest) -> StoredResponse {
    once::redirect(format!("/orders/{}?notice=refund-asked", request.order_id()), "")
}

/// The buyer asks for (part of) a share of a paid order back.
pub async fn ask_refund<U: UnitOfWork>(
    state: State<U>,
    visitor: Visitor,
    path: web::Path<String>,
    posted: KeyedForm<AskForm>,
) -> Result<HttpResponse, PageError> {
    let id = parse_id(&path, OrderId::parse)?;
    let caller = visitor.require(&format!("/orders/{id}"))?;
    let details = state.app.order_details(&caller, id).await.map_err(order_error)?;
    let title = format!("Order #{}", short(&id.to_string()));
    let form = posted.form;
    let amount = match form.ask_amount.trim() {
        "" => None,
        text => match Money::parse_positive(text, details.order.total().currency()) {
            Ok(amount) => Some(amount),
            Err(error) => {
                let body = render(&state, &visitor, id, &Errors::one("ask_amount", error.to_string()), None).await?;
                return Ok(view::invalid(&visitor, &title, body));
            }
        },
    };
    let ask = AskRefund {
        merchant_id: UserId::parse(form.merchant.trim()).ok(),
        amount,
        reason: form.ask_reason.trim().to_owned(),
    };
    let ran = once::once(&state.app, &caller, posted.key, asked, |idempotent| {
        state.app.request_refund(&caller, id, ask, idempotent)
    })
    .await?;
    match ran {
        Once::Done(_) | Once::Ran(Ok(_)) => Ok(view::see_other(&format!("/orders/{id}?notice=refund-asked"))),
        Once::Ran(Err(error)) => {
            let errors = ask_errors(error)?;
            let body = render(&state, &visitor, id, &errors, None).await?;
            Ok(view::invalid(&visitor, &title, body))
        }
    }
}

/// The order and request a decision's path names.
fn decision_path(path: &(String, String)) -> Result<(OrderId, RefundRequestId), PageError> {
    Ok((parse_id(&path.0, OrderId::parse)?, parse_id(&path.1, RefundRequestId::parse)?))
}

// `approve_refund_request` answers a `Vec`: the key's renderer takes what the use case answers.
#[allow(clippy::ptr_arg)]
fn approved(refunds: &Vec<Refund>) -> StoredResponse {
    match refunds.first() {
        Some(refund) => once::redirect(format!("/orders/{}?notice=refund-approved", refund.order_id()), ""),
        None => once::redirect("/orders".to_owned(), ""),
    }
}

/// The merchant of the share, or an admin, approves a request: it is refunded, once.
pub async fn approve_refund_request<U: UnitOfWork>(
    state: State<U>,
    visitor: Visitor,
    path: web::Path<(String, String)>,
    posted: KeyedForm<Empty>,
) -> Result<HttpResponse, PageError> {
    let (order, request) = decision_path(&path)?;
    let caller = visitor.require(&format!("/orders/{order}"))?;
    let ran = once::once(&state.app, &caller, posted.key, approved, |idempotent| {
        state.app.approve_refund_request(&caller, request, idempotent)
    })
    .await?;
    match ran {
        Once::Done(_) | Once::Ran(Ok(_)) => Ok(view::see_other(&format!("/orders/{order}?notice=refund-approved"))),
        Once::Ran(Err(RefundError::RequestNotFound | RefundError::NotFound)) => Err(PageError::NotFound),
        Once::Ran(Err(RefundError::Forbidden)) => Err(PageError::Forbidden),
        Once::Ran(Err(RefundError::Store(error))) => Err(PageError::internal(error)),
        Once::Ran(Err(other)) => {
            let body = render(&state, &visitor, order, &Errors::one("", other.to_string()), None).await?;
            Ok(view::invalid(&visitor, &format!("Order #{}", short(&order.to_string())), body))
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct DeclineForm {
    #[serde(default)]
    note: String,
}

/// The merchant of the share, or an admin, declines a request with a note for the buyer.
pub async fn decline_refund_request<U: UnitOfWork>(
    state: State<U>,
    visitor: Visitor,
    path: web::Path<(String, String)>,
    Form(form): Form<DeclineForm>,
) -> Result<HttpResponse, PageError> {
    let (order, request) = decision_path(&path)?;
    let caller = visitor.require(&format!("/orders/{order}"))?;
    let declined = state.app.decline_refund_request(&caller, request, &form.note).await;
    decided(&state, &visitor, order, declined.map(|_| "refund-declined")).await
}

/// The buyer withdraws an open request.
pub async fn withdraw_refund_request<U: UnitOfWork>(
    state: State<U>,
    visitor: Visitor,
    path: web::Path<(String, String)>,
    _form: Form<Empty>,
) -> Result<HttpResponse, PageError> {
    let (order, request) = decision_path(&path)?;
    let caller = visitor.require(&format!("/orders/{order}"))?;
    let withdrawn = state.app.withdraw_refund_request(&caller, request).await;
    decided(&state, &visitor, order, withdrawn.map(|_| "refund-withdrawn")).await
}

/// Back to the order with a notice, or the order again with the refusal.
async fn decided<U: UnitOfWork>(
    state: &State<U>,
    visitor: &Visitor,
    order: OrderId,
    outcome: Result<&str, RefundRequestUseError>,
) -> Result<HttpResponse, PageError> {
    use RefundRequestUseError as E;
    match outcome {
        Ok(notice) => Ok(view::see_other(&format!("/orders/{order}?notice={notice}"))),
        Err(E::NotFound) => Err(PageError::NotFound),
        Err(E::NotDecider | E::NotBuyer) => Err(PageError::Forbidden),
        Err(E::Store(error)) => Err(PageError::internal(error)),
        Err(other) => {
            let body = render(state, visitor, order, &Errors::one("", other.to_string()), None).await?;
            Ok(view::invalid(visitor, &format!("Order #{}", short(&order.to_string())), body))
        }
    }
}
