//! The back office. Every page calls an admin use case, which refuses anyone else: that refusal
//! is the 403 page a customer or merchant sees.

use actix_web::{HttpResponse, web};
use application::pagination::PageRequest;
use application::ports::store::{AdminOrderFilter, AdminPaymentFilter, AdminRefundFilter, UnitOfWork, UserFilter, WithdrawalFilter};
use application::withdrawals::{WithdrawalDecision, WithdrawalError};
use domain::follow_up::FollowUpState;
use domain::ids::{UserId, WithdrawalId};
use domain::withdrawal::WithdrawalStatus;
use maud::{Markup, html};
use serde::Deserialize;

use super::admin_reads::{JournalQuery, journal};
use super::orders::{order_error, short, table};
use super::{ListQuery, State, parse_id};
use crate::error::PageError;
use crate::form::Form;
use crate::money;
use crate::session::Visitor;
use crate::view;

fn forbidden_or(error: impl std::fmt::Display + std::fmt::Debug, forbidden: bool) -> PageError {
    if forbidden {
        PageError::Forbidden
    } else {
        PageError::internal(error)
    }
}

fn menu() -> Markup {
    html! {
        nav.actions aria-label="Back office" {
            a href="/admin/users" { "Users" } a href="/admin/orders" { "Orders" } a href="/admin/payments" { "Payments" }
            a href="/admin/refunds" { "Refunds" } a href="/admin/withdrawals" { "Withdrawals" } a href="/admin/follow-ups" { "Stuck items" }
            a href="/admin/ledger" { "Ledger" } a href="/admin/audit" { "Audit trail" }
        }
    }
}

pub(super) fn page(visitor: &Visitor, title: &str, notice: Option<&str>, body: Markup) -> HttpResponse {
    view::ok(visitor, title, html! { (view::notice(notice)) (menu()) (body) })
}

/// A back-office page whose form is shown again with its errors (422).
pub(super) fn invalid(visitor: &Visitor, title: &str, body: Markup) -> HttpResponse {
    view::invalid(visitor, title, html! { (menu()) (body) })
}

pub async fn dashboard<U: UnitOfWork>(state: State<U>, visitor: Visitor) -> Result<HttpResponse, PageError> {
    let caller = visitor.require("/admin")?;
    let pending = state
        .app
        .admin_withdrawals(
            &caller,
            WithdrawalFilter {
                status: Some(WithdrawalStatus::Requested),
                ..WithdrawalFilter::default()
            },
            &PageRequest::first(100),
        )
        .await
        .map_err(|e| forbidden_or(&e, matches!(e, WithdrawalError::Forbidden)))?;
    let stuck = state
        .app
        .follow_ups(&caller, FollowUpState::Stuck, &PageRequest::first(100))
        .await
        .map_err(PageError::internal)?;
    let body = html! {
        ul.grid {
            li.card { h2 { a href="/admin/withdrawals" { "Withdrawals to approve" } } p.price { (pending.items.len()) } }
            li.card { h2 { a href="/admin/follow-ups" { "Stuck items" } } p.price { (stuck.items.len()) } }
            li.card { h2 { a href="/admin/ledger" { "Ledger" } } p { "Verify that every transaction sums to zero." } }
        }
    };
    Ok(page(&visitor, "Back office", None, body))
}

pub async fn users<U: UnitOfWork>(state: State<U>, visitor: Visitor, query: web::Query<ListQuery>) -> Result<HttpResponse, PageError> {
    let caller = visitor.require("/admin/users")?;
    let users = state
        .app
        .admin_users_with_wallets(&caller, &UserFilter::default(), &query.page(50))
        .await
        .map_err(|e| forbidden_or(&e, matches!(e, application::admin_reads::AdminReadError::Forbidden)))?
        .map(|(user, _wallets)| user);
    let body = html! {
        div.table-wrap { table {
            thead { tr { th scope="col" { "E-mail" } th scope="col" { "Role" } th scope="col" { "Since" } th scope="col" { "Standing" } } }
            tbody {
                @for user in &users.items {
                    tr {
                        td { a href={ "/admin/users/" (user.id) } { (user.email.as_str()) } }
                        td { (user.role.as_str()) }
                        td { (view::when(user.created_at)) }
                        td {
                            @let (action, label) = if user.is_suspended() { ("reactivate", "Reactivate") } else { ("suspend", "Suspend") };
                            @if user.is_suspended() { (view::status("suspended")) " " } @else { (view::status("active")) " " }
                            @if user.id != caller.user_id {
                                form.inline method="post" action={ "/admin/users/" (user.id) "/" (action) } {
                                    (view::csrf(&visitor))
                                    label.muted for={ "r-" (user.id) } { "Reason " }
                                    input id={ "r-" (user.id) } name="reason" required;
                                    " "
                                    button.secondary type="submit" { (label) }
                                }
                            }
                        }
                    }
                }
            }
        } }
        (view::next_link("/admin/users", users.next_cursor.map(|c| c.encode())))
    };
    Ok(page(&visitor, "Users", query.notice.as_deref(), body))
}

#[derive(Debug, Deserialize)]
pub struct Reason {
    #[serde(default)]
    reason: String,
}

async fn standing<U: UnitOfWork>(
    state: &State<U>,
    visitor: &Visitor,
    id: &str,
    reason: &str,
    suspend: bool,
) -> Result<HttpResponse, PageError> {
    let caller = visitor.require("/admin/users")?;
    let id = parse_id(id, UserId::parse)?;
    let done = if suspend {
        state.app.suspend_user(&caller, id, reason.trim()).await
    } else {
        state.app.reactivate_user(&caller, id, reason.trim()).await
    };
    match done {
        Ok(_) => Ok(view::see_other(if suspend {
            "/admin/users?notice=suspended"
        } else {
            "/admin/users?notice=reactivated"
        })),
        Err(application::administration::AdminActionError::Forbidden) => Err(PageError::Forbidden),
        Err(application::administration::AdminActionError::Store(error)) => Err(PageError::internal(error)),
        Err(other) => Err(PageError::BadRequest(other.to_string())),
    }
}

pub async fn suspend<U: UnitOfWork>(
    state: State<U>,
    visitor: Visitor,
    path: web::Path<String>,
    Form(form): Form<Reason>,
) -> Result<HttpResponse, PageError> {
    standing(&state, &visitor, &path, &form.reason, true).await
}

pub async fn reactivate<U: UnitOfWork>(
    state: State<U>,
    visitor: Visitor,
    path: web::Path<String>,
    Form(form): Form<Reason>,
) -> Result<HttpResponse, PageError> {
    standing(&state, &visitor, &path, &form.reason, false).await
}

pub async fn orders<U: UnitOfWork>(state: State<U>, visitor: Visitor, query: web::Query<ListQuery>) -> Result<HttpResponse, PageError> {
    let caller = visitor.require("/admin/orders")?;
    let orders = state
        .app
        .all_orders(&caller, AdminOrderFilter::default(), &query.page(50))
        .await
        .map_err(order_error)?;
    let body = html! {
        p.muted { "Open an order to refund it, cancel it or read its status history." }
        (table(&orders.items))
        (view::next_link("/admin/orders", orders.next_cursor.map(|c| c.encode())))
    };
    Ok(page(&visitor, "Orders", query.notice.as_deref(), body))
}

pub async fn payments<U: UnitOfWork>(state: State<U>, visitor: Visitor, query: web::Query<ListQuery>) -> Result<HttpResponse, PageError> {
    let caller = visitor.require("/admin/payments")?;
    let payments = state
        .app
        .admin_payments(&caller, &AdminPaymentFilter::default(), &query.page(50))
        .await
        .map_err(|e| forbidden_or(&e, matches!(e, application::admin_reads::AdminReadError::Forbidden)))?;
    let body = html! {
        div.table-wrap { table {
            thead { tr { th scope="col" { "Payment" } th scope="col" { "Created" } th scope="col" { "Provider" } th scope="col" { "Status" } th.num scope="col" { "Amount" } } }
            tbody {
                @for payment in &payments.items {
                    tr {
                        td { a href={ "/admin/payments/" (payment.id()) } { "#" (short(&payment.id().to_string())) } }
                        td { (view::when(payment.created_at())) }
                        td { (payment.provider().as_str()) }
                        td { (view::status(payment.status().as_str())) }
                        td.num { (money::format(payment.amount())) }
                    }
                }
            }
        } }
        (view::next_link("/admin/payments", payments.next_cursor.map(|c| c.encode())))
    };
    Ok(page(&visitor, "Payments", None, body))
}

pub async fn refunds<U: UnitOfWork>(state: State<U>, visitor: Visitor, query: web::Query<ListQuery>) -> Result<HttpResponse, PageError> {
    let caller = visitor.require("/admin/refunds")?;
    let refunds = state
        .app
        .admin_refunds(&caller, &AdminRefundFilter::default(), &query.page(50))
        .await
        .map_err(|e| forbidden_or(&e, matches!(e, application::admin_reads::AdminReadError::Forbidden)))?;
    let body = html! {
        div.table-wrap { table {
            thead { tr { th scope="col" { "Refund" } th scope="col" { "Order" } th scope="col" { "Created" } th scope="col" { "Reason" } th scope="col" { "Status" } th.num scope="col" { "Amount" } } }
            tbody {
                @for refund in &refunds.items {
                    tr {
                        td { a href={ "/admin/refunds/" (refund.id()) } { "#" (short(&refund.id().to_string())) } }
                        td { a href={ "/orders/" (refund.order_id()) } { "#" (short(&refund.order_id().to_string())) } }
                        td { (view::when(refund.created_at())) }
                        td { (refund.reason()) }
                        td { (view::status(refund.status().as_str())) }
                        td.num { (money::format(refund.amount())) }
                    }
                }
            }
        } }
        (view::next_link("/admin/refunds", refunds.next_cursor.map(|c| c.encode())))
    };
    Ok(page(&visitor, "Refunds", None, body))
}

pub async fn withdrawals<U: UnitOfWork>(
    state: State<U>,
    visitor: Visitor,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, PageError> {
    let caller = visitor.require("/admin/withdrawals")?;
    let withdrawals = state
        .app
        .admin_withdrawals(&caller, WithdrawalFilter::default(), &query.page(50))
        .await
        .map_err(|e| forbidden_or(&e, matches!(e, WithdrawalError::Forbidden)))?;
    let body = html! {
        div.table-wrap { table {
            thead { tr { th scope="col" { "Requested" } th scope="col" { "Destination" } th scope="col" { "Status" } th.num scope="col" { "Amount" } th scope="col" { "Decision" } } }
            tbody {
                @for w in &withdrawals.items {
                    tr {
                        td { (view::when(w.created_at())) }
                        td { (w.destination()) }
                        td { (view::status(w.status().as_str())) }
                        td.num { (money::format(w.amount())) }
                        td {
                            @if w.status() == WithdrawalStatus::Requested {
                                form.inline method="post" action={ "/admin/withdrawals/" (w.id()) "/approve" } {
                                    (view::csrf(&visitor))
                                    button type="submit" { "Approve" }
                                }
                                " "
                                form.inline method="post" action={ "/admin/withdrawals/" (w.id()) "/reject" } {
                                    (view::csrf(&visitor))
                                    label.muted for={ "r-" (w.id()) } { "Reason " }
                                    input id={ "r-" (w.id()) } name="reason" required;
                                    " "
                                    button.danger type="submit" { "Reject" }
                                }
                            }
                        }
                    }
                }
            }
        } }
        (view::next_link("/admin/withdrawals", withdrawals.next_cursor.map(|c| c.encode())))
    };
    Ok(page(&visitor, "Withdrawals", query.notice.as_deref(), body))
}

async fn decide<U: UnitOfWork>(
    state: &State<U>,
    visitor: &Visitor,
    id: &str,
    reason: &str,
    approve: bool,
) -> Result<HttpResponse, PageError> {
    let caller = visitor.require("/admin/withdrawals")?;
    let id = parse_id(id, WithdrawalId::parse)?;
    let reason = Some(reason.trim().to_owned()).filter(|r| !r.is_empty());
    let decision = WithdrawalDecision { reason, reference: None };
    let done = if approve {
        state.app.approve_withdrawal(&caller, id, decision, None).await
    } else {
        state.app.reject_withdrawal(&caller, id, decision, None).await
    };
    match done {
        Ok(_) => Ok(view::see_other(if approve {
            "/admin/withdrawals?notice=approved"
        } else {
            "/admin/withdrawals?notice=rejected"
        })),
        Err(WithdrawalError::Forbidden) => Err(PageError::Forbidden),
        Err(WithdrawalError::NotFound) => Err(PageError::NotFound),
        Err(WithdrawalError::Store(error)) => Err(PageError::internal(error)),
        Err(other) => Err(PageError::BadRequest(other.to_string())),
    }
}

pub async fn approve<U: UnitOfWork>(
    state: State<U>,
    visitor: Visitor,
    path: web::Path<String>,
    Form(form): Form<Reason>,
) -> Result<HttpResponse, PageError> {
    decide(&state, &visitor, &path, &form.reason, true).await
}

pub async fn reject<U: UnitOfWork>(
    state: State<U>,
    visitor: Visitor,
    path: web::Path<String>,
    Form(form): Form<Reason>,
) -> Result<HttpResponse, PageError> {
    decide(&state, &visitor, &path, &form.reason, false).await
}

pub async fn follow_ups<U: UnitOfWork>(state: State<U>, visitor: Visitor, query: web::Query<ListQuery>) -> Result<HttpResponse, PageError> {
    let caller = visitor.require("/admin/follow-ups")?;
    let stuck = state
        .app
        .follow_ups(&caller, FollowUpState::Stuck, &query.page(50))
        .await
        .map_err(|e| forbidden_or(&e, matches!(e, application::follow_ups::FollowUpError::Forbidden)))?;
    let body = html! {
        p { "Flows the job gave up on: each needs a person to look at it." }
        @if stuck.items.is_empty() { p.notice { "Nothing is stuck." } }
        ul {
            @for item in &stuck.items {
                li { strong { (item.task.kind()) } " · " (item.attempts) " attempts · since " (view::when(item.created_at))
                    @if let Some(error) = &item.last_error { " · " (error) } }
            }
        }
    };
    Ok(page(&visitor, "Stuck items", None, body))
}

pub async fn ledger<U: UnitOfWork>(state: State<U>, visitor: Visitor, query: web::Query<JournalQuery>) -> Result<HttpResponse, PageError> {
    let caller = visitor.require("/admin/ledger")?;
    let report = state
        .app
        .verify_ledger(&caller)
        .await
        .map_err(|e| forbidden_or(&e, matches!(e, application::ledger::VerifyLedgerError::Forbidden)))?;
    let journal = journal(&state, &caller, &query).await?;
    let body = html! {
        @if report.is_ok() {
            p.notice #ledger-ok { "The ledger balances: every transaction sums to zero, and every cached balance equals its postings. "
                (report.statements_checked) " merchant statements checked." }
        } @else {
            p.error-message { "The ledger has problems:" }
            ul { @for problem in &report.problems { li { (problem) } } }
        }
        (journal)
    };
    Ok(page(&visitor, "Ledger", None, body))
}

pub async fn audit<U: UnitOfWork>(state: State<U>, visitor: Visitor, query: web::Query<ListQuery>) -> Result<HttpResponse, PageError> {
    let caller = visitor.require("/admin/audit")?;
    let actions = state
        .app
        .admin_actions(&caller, None, &query.page(50))
        .await
        .map_err(|e| forbidden_or(&e, matches!(e, application::administration::AdminActionError::Forbidden)))?;
    let body = html! {
        @if actions.items.is_empty() { p { "No admin action yet." } }
        div.table-wrap { table {
            thead { tr { th scope="col" { "When" } th scope="col" { "Action" } th scope="col" { "Subject" } th scope="col" { "Reason" } } }
            tbody {
                @for action in &actions.items {
                    tr { td { (view::when(action.at)) } td { (action.kind.as_str()) } td { (action.subject) } td { (action.reason) } }
                }
            }
        } }
        (view::next_link("/admin/audit", actions.next_cursor.map(|c| c.encode())))
    };
    Ok(page(&visitor, "Audit trail", None, body))
}
