//! The back office. Every page calls an admin use case, which refuses anyone else: that refusal
//! is the 403 page a customer or merchant sees.

use actix_web::{HttpResponse, web};
use application::idempotency::StoredResponse;
use application::pagination::PageRequest;
use application::ports::store::{AdminOrderFilter, AdminPaymentFilter, AdminRefundFilter, UnitOfWork, UserFilter, WithdrawalFilter};
use application::withdrawals::{WithdrawalDecision, WithdrawalError};
use domain::follow_up::FollowUpState;
use domain::ids::{UserId, WithdrawalId};
use domain::withdrawal::{Withdrawal, WithdrawalStatus};
use maud::{Markup, html};
use serde::Deserialize;

use super::admin_reads::{JournalQuery, journal};
use super::orders::{order_error, short, table};
use super::{ListQuery, State, parse_id};
use crate::error::PageError;
use crate::form::{Form, KeyedForm};
use crate::money;
use crate::once::{self, Once};
use crate::session::Visitor;
use crate::view::{self, Errors};

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
    let open = application::refund_requests::RefundRequestQuery {
        order: None,
        status: Some(domain::refund_request::RefundRequestStatus::Open),
    };
    let requests = state
        .app
        .refund_requests(&caller, open, &PageRequest::first(100))
        .await
        .map_err(PageError::internal)?;
    let body = html! {
        ul.grid {
            li.card { h2 { a href="/admin/withdrawals" { "Withdrawals to approve" } } p.price { (pending.items.len()) } }
            li.card { h2 { a href="#refund-requests" { "Refund requests open" } } p.price { (requests.items.len()) } }
            li.card { h2 { a href="/admin/follow-ups" { "Stuck items" } } p.price { (stuck.items.len()) } }
            li.card { h2 { a href="/admin/ledger" { "Ledger" } } p { "Verify that every transaction sums to zero." } }
        }
        h2 #refund-requests { "Refund requests open" }
        @if requests.items.is_empty() { p { "None." } } @else {
            ul {
                @for request in &requests.items {
                    li {
                        a href={ "/orders/" (request.order_id()) "#refund-requests" } { "Order " (request.order_id()) }
                        ": " @match request.amount() { Some(amount) => (crate::money::format(amount)), None => "everything left" }
                        " · " (request.reason()) " · " (view::when(request.created_at()))
                    }
                }
            }
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

/// What an admin does with a withdrawal: decide a requested one, or settle by hand an approved
/// one no provider pays out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    Approve,
    Reject,
    MarkPaid,
    MarkFailed,
}

impl Act {
    fn path(self) -> &'static str {
        match self {
            Act::Approve => "approve",
            Act::Reject => "reject",
            Act::MarkPaid => "mark-paid",
            Act::MarkFailed => "mark-failed",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Act::Approve => "Approve",
            Act::Reject => "Reject",
            Act::MarkPaid => "Mark paid",
            Act::MarkFailed => "Mark failed",
        }
    }
}

/// A refusal of an act on one withdrawal, shown in its row.
struct Refused<'a> {
    id: WithdrawalId,
    act: Act,
    errors: &'a Errors,
}

/// The inline form of one act on one withdrawal: a reason where the use case wants one (to
/// reject, to mark failed), a bank's reference to mark paid, and the act's refusal if it was.
fn act_form(visitor: &Visitor, w: &Withdrawal, act: Act, refused: Option<&Refused<'_>>) -> Markup {
    let none = Errors::default();
    let errors = refused.filter(|r| r.id == w.id() && r.act == act).map_or(&none, |r| r.errors);
    let id = |field: &str| format!("{}-{field}-{}", act.path(), w.id());
    let (reason, reference) = (id("reason"), id("reference"));
    let error_of = |field: &str| {
        errors
            .get(field)
            .map(|message| (format!("{}-error", id(field)), message.to_owned()))
    };
    let reason_error = error_of("reason");
    let general = errors.get("").map(str::to_owned);
    html! {
        form.inline method="post" action={ "/admin/withdrawals/" (w.id()) "/" (act.path()) } {
            (view::csrf(visitor))
            (once::field())
            @if matches!(act, Act::Reject | Act::MarkFailed) {
                label.muted for=(reason) { "Reason " }
                input id=(reason) name="reason" required aria-invalid=[reason_error.as_ref().map(|_| "true")]
                    aria-describedby=[reason_error.as_ref().map(|(id, _)| id.as_str())];
                " "
            }
            @if act == Act::MarkPaid {
                label.muted for=(reference) { "Bank reference " }
                input id=(reference) name="reference";
                " "
            }
            @if act == Act::Approve || act == Act::MarkPaid { button type="submit" { (act.label()) } } @else { button.danger type="submit" { (act.label()) } }
            @if let Some((id, message)) = &reason_error { p.field-error id=(id) { (message) } }
            @if let Some(message) = &general { p.field-error role="alert" { (message) } }
        }
    }
}

fn withdrawal_row(visitor: &Visitor, w: &Withdrawal, refused: Option<&Refused<'_>>) -> Markup {
    let acts: &[Act] = if w.status() == WithdrawalStatus::Requested {
        &[Act::Approve, Act::Reject]
    } else if w.awaits_manual_settlement() {
        &[Act::MarkPaid, Act::MarkFailed]
    } else {
        &[]
    };
    // A refusal of an act this row no longer offers (a form of a page since overtaken).
    let stale = refused.filter(|r| r.id == w.id() && !acts.contains(&r.act));
    html! {
        tr {
            td { (view::when(w.created_at())) }
            td { a href={ "/admin/users/" (w.user_id()) } { "user #" (short(&w.user_id().to_string())) } }
            td { (w.destination()) }
            td { (view::status(w.status().as_str()))
                @if let Some(settlement) = w.settlement() { br; span.muted { (settlement.kind()) @if let Some(p) = settlement.provider() { " · " (p.as_str()) } } }
                @if let Some(reason) = w.failure_reason().or(w.reason()) { br; span.muted { (reason) } } }
            td.num { (money::format(w.amount())) }
            td {
                @for act in acts { (act_form(visitor, w, *act, refused)) " " }
                @if let Some(refused) = stale { @if let Some(message) = refused.errors.get("") { p.field-error role="alert" { (message) } } }
            }
        }
    }
}

async fn withdrawals_page<U: UnitOfWork>(
    state: &State<U>,
    visitor: &Visitor,
    query: &ListQuery,
    refused: Option<&Refused<'_>>,
) -> Result<Markup, PageError> {
    let caller = visitor.require("/admin/withdrawals")?;
    let withdrawals = state
        .app
        .admin_withdrawals(&caller, WithdrawalFilter::default(), &query.page(50))
        .await
        .map_err(|e| forbidden_or(&e, matches!(e, WithdrawalError::Forbidden)))?;
    Ok(html! {
        (view::notice(query.notice.as_deref()))
        (menu())
        p.muted { "Approve or reject what users asked for. Approved withdrawals that no provider pays out are paid by a person, who then marks them paid or failed here." }
        div.table-wrap { table #withdrawals {
            thead { tr { th scope="col" { "Requested" } th scope="col" { "User" } th scope="col" { "Destination" } th scope="col" { "Status" } th.num scope="col" { "Amount" } th scope="col" { "Action" } } }
            tbody { @for w in &withdrawals.items { (withdrawal_row(visitor, w, refused)) } }
        } }
        (view::next_link("/admin/withdrawals", withdrawals.next_cursor.map(|c| c.encode())))
    })
}

pub async fn withdrawals<U: UnitOfWork>(
    state: State<U>,
    visitor: Visitor,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, PageError> {
    let body = withdrawals_page(&state, &visitor, &query, None).await?;
    Ok(view::ok(&visitor, "Withdrawals", body))
}

/// Where an act sends the admin, by what it left the withdrawal as (an approval may leave it
/// paid, or failed, when a provider pays it out at once).
fn decided(withdrawal: &Withdrawal) -> StoredResponse {
    let notice = match withdrawal.status() {
        WithdrawalStatus::Requested | WithdrawalStatus::Approved => "approved",
        WithdrawalStatus::Rejected => "rejected",
        WithdrawalStatus::Paid => "withdrawal-paid",
        WithdrawalStatus::Failed => "withdrawal-failed",
    };
    once::redirect(format!("/admin/withdrawals?notice={notice}"), "")
}

fn decision_errors(error: WithdrawalError) -> Result<Errors, PageError> {
    Ok(match error {
        WithdrawalError::Forbidden => return Err(PageError::Forbidden),
        WithdrawalError::NotFound => return Err(PageError::NotFound),
        WithdrawalError::Store(error) => return Err(PageError::internal(error)),
        error @ (WithdrawalError::ReasonRequired | WithdrawalError::Reason) => Errors::one("reason", error.to_string()),
        other => Errors::one("", other.to_string()),
    })
}

#[derive(Debug, Deserialize)]
pub struct Decision {
    #[serde(default)]
    reason: String,
    #[serde(default)]
    reference: String,
}

async fn act<U: UnitOfWork>(
    state: &State<U>,
    visitor: &Visitor,
    id: &str,
    posted: KeyedForm<Decision>,
    act: Act,
) -> Result<HttpResponse, PageError> {
    let caller = visitor.require("/admin/withdrawals")?;
    let id = parse_id(id, WithdrawalId::parse)?;
    let filled = |text: &str| Some(text.trim().to_owned()).filter(|t| !t.is_empty());
    let decision = WithdrawalDecision {
        reason: filled(&posted.form.reason),
        reference: filled(&posted.form.reference),
    };
    let app = &state.app;
    let ran = once::once(app, &caller, posted.key, decided, |idempotent| async move {
        match act {
            Act::Approve => app.approve_withdrawal(&caller, id, decision, idempotent).await,
            Act::Reject => app.reject_withdrawal(&caller, id, decision, idempotent).await,
            Act::MarkPaid => app.mark_withdrawal_paid(&caller, id, decision, idempotent).await,
            Act::MarkFailed => app.mark_withdrawal_failed(&caller, id, decision, idempotent).await,
        }
    })
    .await?;
    let errors = match ran {
        Once::Done(answer) => return Ok(view::see_other(once::location(&answer).unwrap_or("/admin/withdrawals"))),
        Once::Ran(Ok(withdrawal)) => {
            return Ok(view::see_other(
                once::location(&decided(&withdrawal)).unwrap_or("/admin/withdrawals"),
            ));
        }
        Once::Ran(Err(error)) => decision_errors(error)?,
    };
    let refused = Refused { id, act, errors: &errors };
    let body = withdrawals_page(state, visitor, &ListQuery::default(), Some(&refused)).await?;
    Ok(view::invalid(visitor, "Withdrawals", body))
}

pub async fn approve<U: UnitOfWork>(
    state: State<U>,
    visitor: Visitor,
    path: web::Path<String>,
    posted: KeyedForm<Decision>,
) -> Result<HttpResponse, PageError> {
    act(&state, &visitor, &path, posted, Act::Approve).await
}

pub async fn reject<U: UnitOfWork>(
    state: State<U>,
    visitor: Visitor,
    path: web::Path<String>,
    posted: KeyedForm<Decision>,
) -> Result<HttpResponse, PageError> {
    act(&state, &visitor, &path, posted, Act::Reject).await
}

pub async fn mark_paid<U: UnitOfWork>(
    state: State<U>,
    visitor: Visitor,
    path: web::Path<String>,
    posted: KeyedForm<Decision>,
) -> Result<HttpResponse, PageError> {
    act(&state, &visitor, &path, posted, Act::MarkPaid).await
}

pub async fn mark_failed<U: UnitOfWork>(
    state: State<U>,
    visitor: Visitor,
    path: web::Path<String>,
    posted: KeyedForm<Decision>,
) -> Result<HttpResponse, PageError> {
    act(&state, &visitor, &path, posted, Act::MarkFailed).await
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
