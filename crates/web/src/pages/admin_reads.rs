//! The back office's records, each read through the admin use case the API's admin routes call
//! (`App::admin_payment`, `admin_refund`, `admin_journal`, `admin_journal_transaction`): a
//! payment, a refund, and the ledger's journal with each transaction's postings. Only admins
//! read them; anyone else gets the use case's refusal, and an id that names nothing is a 404.

use std::collections::HashMap;

use actix_web::{HttpResponse, web};
use application::admin_reads::AdminReadError;
use application::auth::Caller;
use application::ports::store::{JournalFilter, JournalRecord, UnitOfWork};
use domain::ids::{PaymentId, RefundId, TransactionId, UserId, WalletId};
use domain::money::Money;
use domain::payment::PaymentPurpose;
use domain::wallet::WalletOwner;
use maud::{Markup, html};
use serde::Deserialize;

use super::admin::page;
use super::orders::short;
use super::{State, parse_id};
use crate::error::PageError;
use crate::money;
use crate::session::Visitor;
use crate::view;

pub fn read_error(error: AdminReadError) -> PageError {
    match error {
        AdminReadError::Forbidden => PageError::Forbidden,
        AdminReadError::NotFound(_) => PageError::NotFound,
        AdminReadError::Store(error) => PageError::internal(error),
    }
}

/// A user's id as a link to their back-office page.
pub fn user_link(id: UserId) -> Markup {
    html! { a href={ "/admin/users/" (id) } { "user #" (short(&id.to_string())) } }
}

/// A user as the back office names them: their e-mail address, linked to their page.
pub async fn person<U: UnitOfWork>(state: &State<U>, caller: &Caller, id: UserId) -> Result<Markup, PageError> {
    match state.app.admin_user(caller, id).await {
        Ok((user, _)) => Ok(html! { a href={ "/admin/users/" (id) } { (user.email.as_str()) } }),
        Err(AdminReadError::NotFound(_)) => Ok(user_link(id)),
        Err(other) => Err(read_error(other)),
    }
}

fn optional(text: Option<&str>) -> Markup {
    html! { @match text { Some(text) => code { (text) }, None => span.muted { "none" } } }
}

/// `GET /admin/payments/{id}`: a card payment, what it pays for and its provider's ids.
pub async fn payment<U: UnitOfWork>(state: State<U>, visitor: Visitor, path: web::Path<String>) -> Result<HttpResponse, PageError> {
    let id = parse_id(&path, PaymentId::parse)?;
    let caller = visitor.require(&format!("/admin/payments/{id}"))?;
    let payment = state.app.admin_payment(&caller, id).await.map_err(read_error)?;
    let payer = person(&state, &caller, payment.payer_id()).await?;
    let body = html! {
        dl.facts #payment {
            dt { "Status" } dd { (view::status(payment.status().as_str()))
                @if payment.disputed() { " " (view::status("disputed")) }
                @if payment.late_success() { " " span.muted { "a success arrived after it was settled otherwise" } } }
            dt { "Amount" } dd #payment-amount { (money::format(payment.amount())) }
            dt { "For" } dd { @match payment.purpose() {
                PaymentPurpose::Order(order) => { "order " a href={ "/orders/" (order) } { "#" (short(&order.to_string())) } }
                PaymentPurpose::TopUp(_) => { "a wallet top-up" }
            } }
            dt { "Payer" } dd { (payer) }
            dt { "Provider" } dd { (payment.provider().as_str()) }
            dt { "Provider's checkout" } dd { (optional(payment.provider_session_id())) }
            dt { "Provider's payment" } dd { (optional(payment.provider_payment_id())) }
            dt { "Created" } dd { (view::when(payment.created_at())) }
            dt { "Expires" } dd { (view::when(payment.expires_at())) }
            dt { "Last change" } dd { (view::when(payment.updated_at())) }
        }
        p { a href="/admin/payments" { "← Payments" } }
    };
    Ok(page(&visitor, &format!("Payment #{}", short(&id.to_string())), None, body))
}

/// `GET /admin/refunds/{id}`: a refund, whose share it came from and who asked for it.
pub async fn refund<U: UnitOfWork>(state: State<U>, visitor: Visitor, path: web::Path<String>) -> Result<HttpResponse, PageError> {
    let id = parse_id(&path, RefundId::parse)?;
    let caller = visitor.require(&format!("/admin/refunds/{id}"))?;
    let refund = state.app.admin_refund(&caller, id).await.map_err(read_error)?;
    let merchant = person(&state, &caller, refund.merchant_id()).await?;
    let asked = match refund.requested_by() {
        Some(by) => person(&state, &caller, by).await?,
        None => html! { span.muted { "the provider's dashboard" } },
    };
    let body = html! {
        dl.facts #refund {
            dt { "Status" } dd { (view::status(refund.status().as_str())) }
            dt { "Amount" } dd #refund-amount { (money::format(refund.amount())) }
            dt { "Order" } dd { a href={ "/orders/" (refund.order_id()) } { "#" (short(&refund.order_id().to_string())) } }
            dt { "Paid back" } dd { @match refund.payment_id() {
                Some(payment) => { "to the card of payment " a href={ "/admin/payments/" (payment) } { "#" (short(&payment.to_string())) } }
                None => { "to the buyer's wallet" }
            } }
            dt { "From the share of" } dd { (merchant) }
            dt { "Asked for by" } dd { (asked) }
            dt { "Reason" } dd { @if refund.reason().is_empty() { span.muted { "none given" } } @else { (refund.reason()) } }
            dt { "Provider's refund" } dd { (optional(refund.provider_refund_id())) }
            dt { "Created" } dd { (view::when(refund.created_at())) }
            dt { "Last change" } dd { (view::when(refund.updated_at())) }
        }
        p { a href="/admin/refunds" { "← Refunds" } }
    };
    Ok(page(&visitor, &format!("Refund #{}", short(&id.to_string())), None, body))
}

/// Who holds each wallet of the postings: a user (linked) or a system account.
async fn owners<U: UnitOfWork>(state: &State<U>, caller: &Caller, record: &JournalRecord) -> Result<HashMap<WalletId, Markup>, PageError> {
    let mut owners = HashMap::new();
    for posting in &record.postings {
        let wallet_id = posting.posting.wallet_id;
        if owners.contains_key(&wallet_id) {
            continue;
        }
        let wallet = state.app.admin_wallet(caller, wallet_id).await.map_err(read_error)?;
        let owner = match wallet.owner() {
            WalletOwner::User(user) => person(state, caller, *user).await?,
            WalletOwner::System(account) => html! { "system: " (account.code()) },
        };
        owners.insert(wallet_id, owner);
    }
    Ok(owners)
}

/// `GET /admin/ledger/transactions/{id}`: a journal transaction and its postings, which sum to
/// zero.
pub async fn transaction<U: UnitOfWork>(state: State<U>, visitor: Visitor, path: web::Path<String>) -> Result<HttpResponse, PageError> {
    let id = parse_id(&path, TransactionId::parse)?;
    let caller = visitor.require(&format!("/admin/ledger/transactions/{id}"))?;
    let record = state.app.admin_journal_transaction(&caller, id).await.map_err(read_error)?;
    let owners = owners(&state, &caller, &record).await?;
    let body = html! {
        dl.facts {
            dt { "Kind" } dd { (record.kind.as_str().replace('_', " ")) }
            dt { "Reference" } dd { (record.reference) }
            dt { "Posted" } dd { (view::when(record.created_at)) }
        }
        div.table-wrap { table #postings {
            caption.muted { "Postings, in the order they were made" }
            thead { tr { th scope="col" { "Account" } th scope="col" { "Wallet" } th.num scope="col" { "Amount" } th.num scope="col" { "Balance after" } } }
            tbody {
                @for record in &record.postings {
                    @let posting = &record.posting;
                    tr {
                        td { @if let Some(owner) = owners.get(&posting.wallet_id) { (owner) } }
                        td { a href={ "/admin/ledger?wallet=" (posting.wallet_id) } { "#" (short(&posting.wallet_id.to_string())) } }
                        td.num { (money::format(posting.amount)) }
                        td.num { (money::format(Money::from_minor(posting.balance_after_minor, posting.amount.currency()))) }
                    }
                }
            }
        } }
        p { a href="/admin/ledger" { "← Ledger" } }
    };
    Ok(page(
        &visitor,
        &format!("Journal transaction #{}", short(&id.to_string())),
        None,
        body,
    ))
}

#[derive(Debug, Default, Deserialize)]
pub struct JournalQuery {
    cursor: Option<String>,
    /// Only the transactions that post to this wallet.
    wallet: Option<String>,
}

/// The journal, newest first, each transaction linking to its postings; one wallet's alone
/// with `?wallet=`.
pub async fn journal<U: UnitOfWork>(state: &State<U>, caller: &Caller, query: &JournalQuery) -> Result<Markup, PageError> {
    let wallet = match query.wallet.as_deref().filter(|w| !w.is_empty()) {
        Some(text) => Some(parse_id(text, WalletId::parse)?),
        None => None,
    };
    let filter = JournalFilter {
        wallet,
        ..JournalFilter::default()
    };
    let page = super::ListQuery {
        notice: None,
        cursor: query.cursor.clone(),
    }
    .page(50);
    let journal = state.app.admin_journal(caller, filter, &page).await.map_err(read_error)?;
    let base = match wallet {
        Some(wallet) => format!("/admin/ledger?wallet={wallet}"),
        None => "/admin/ledger".to_owned(),
    };
    Ok(html! {
        h2 #journal { @if let Some(wallet) = wallet { "Journal of wallet #" (short(&wallet.to_string())) } @else { "Journal" } }
        @if wallet.is_some() { p { a href="/admin/ledger" { "All transactions" } } }
        @if journal.items.is_empty() { p { "No transaction yet." } } @else {
            div.table-wrap { table {
                thead { tr { th scope="col" { "Transaction" } th scope="col" { "Posted" } th scope="col" { "Kind" } th scope="col" { "Reference" } th.num scope="col" { "Postings" } } }
                tbody {
                    @for record in &journal.items {
                        tr {
                            td { a href={ "/admin/ledger/transactions/" (record.id) } { "#" (short(&record.id.to_string())) } }
                            td { (view::when(record.created_at)) }
                            td { (record.kind.as_str().replace('_', " ")) }
                            td { (record.reference) }
                            td.num { (record.postings.len()) }
                        }
                    }
                }
            } }
        }
        (view::next_link(&base, journal.next_cursor.map(|c| c.encode())))
    })
}
