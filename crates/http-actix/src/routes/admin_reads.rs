//! Admins' reads: every payment, refund, product's stock, wallet, journal transaction, transfer,
//! call and provider webhook received, each listing filterable and cursor-paginated newest first, and each item by id.
//!
//! Filters are query parameters; a malformed one is a 400 `invalid_query` naming the field, like
//! the other listings. Dates are RFC 3339: `from` is included and `to` excluded.

use actix_web::{HttpResponse, web};
use application::ports::store::{
    AdminPaymentFilter, AdminRefundFilter, CallFilter, CreatedWithin, InboxOutcome, InventoryFilter, JournalFilter, PaymentFilter,
    ReceivedWebhookFilter, TransferFilter, UnitOfWork, WalletFilter,
};
use domain::call::CallStatus;
use domain::ids::{CallId, PaymentId, ReceivedWebhookId, RefundId, TransactionId, TransferId, UserId, WalletId};
use domain::ledger::TransactionKind;
use domain::money::Currency;
use domain::payment::{PaymentStatus, ProviderName, RefundStatus};
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::IntoParams;

use super::State;
use crate::dto::{
    AdminWalletResponse, CallResponse, InventoryResponse, JournalTransactionResponse, PageOf, PaymentResponse, ReceivedWebhookResponse,
    RefundResponse, TransferResponse,
};
use crate::extract::{Authenticated, PageQuery, path_id};
use crate::problem::{ApiError, Problem};
use crate::respond::ok;

/// A filter value the listing cannot use: 400 `invalid_query` naming the field.
fn invalid(field: &'static str, expected: &str) -> ApiError {
    ApiError::bad_request("invalid_query", format!("`{field}` must be {expected}")).with_field(field, expected)
}

pub(super) fn parsed<T>(
    field: &'static str,
    expected: &str,
    text: Option<&str>,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Option<T>, ApiError> {
    text.map(|text| parse(text).ok_or_else(|| invalid(field, expected))).transpose()
}

pub(super) fn user_filter(field: &'static str, text: Option<&str>) -> Result<Option<UserId>, ApiError> {
    parsed(field, "a user id (UUID)", text, |text| UserId::parse(text).ok())
}

fn provider_filter(text: Option<&str>) -> Result<Option<ProviderName>, ApiError> {
    parsed("provider", "a provider name (a-z, 0-9, `_`, `-`)", text, |text| {
        ProviderName::parse(text).ok()
    })
}

pub(super) fn currency_filter(text: Option<&str>) -> Result<Option<Currency>, ApiError> {
    parsed("currency", "a supported ISO 4217 code", text, |text| Currency::parse(text).ok())
}

/// `from` (included) and `to` (excluded), RFC 3339; `to` may not come before `from`.
pub(super) fn created_within(from: Option<&str>, to: Option<&str>) -> Result<CreatedWithin, ApiError> {
    let time = |text: &str| OffsetDateTime::parse(text, &Rfc3339).ok();
    let from = parsed("from", "an RFC 3339 date-time", from, time)?;
    let to = parsed("to", "an RFC 3339 date-time", to, time)?;
    if let (Some(from), Some(to)) = (from, to)
        && to < from
    {
        return Err(invalid("to", "at or after `from`"));
    }
    Ok(CreatedWithin { from, to })
}

/// The page a listing's `limit` and `cursor` ask for.
pub(super) fn page(limit: Option<i64>, cursor: Option<&String>) -> Result<application::pagination::PageRequest, ApiError> {
    PageQuery {
        limit,
        cursor: cursor.cloned(),
    }
    .page()
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AdminPaymentsQuery {
    /// pending, succeeded, failed, expired or cancelled.
    pub status: Option<String>,
    /// `top_up` or `order`.
    pub kind: Option<String>,
    /// Only this payer's (a user id).
    #[param(format = Uuid)]
    pub user: Option<String>,
    /// Only through this provider (`stripe`, `simulated`, ...).
    pub provider: Option<String>,
    /// Only in this currency (ISO 4217).
    pub currency: Option<String>,
    /// Created at or after this time (RFC 3339).
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// Created before this time (RFC 3339).
    #[param(format = DateTime)]
    pub to: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// Every card payment (order checkouts and top-ups), newest first, filtered.
#[utoipa::path(get, path = "/api/v1/admin/payments", tag = "admin", security(("bearer" = [])),
    params(AdminPaymentsQuery),
    responses(
        (status = 200, description = "A page of payments", body = PageOf<PaymentResponse>),
        (status = 400, description = "A bad filter, limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn payments<U: UnitOfWork>(
    state: State<U>,
    caller: Authenticated,
    query: web::Query<AdminPaymentsQuery>,
) -> Result<HttpResponse, ApiError> {
    let status = parsed(
        "status",
        "pending, succeeded, failed, expired or cancelled",
        query.status.as_deref(),
        PaymentStatus::parse,
    )?;
    let top_ups = parsed("kind", "top_up or order", query.kind.as_deref(), |kind| match kind {
        "top_up" => Some(true),
        "order" => Some(false),
        _ => None,
    })?;
    let filter = AdminPaymentFilter {
        of: PaymentFilter { status, top_ups },
        payer: user_filter("user", query.user.as_deref())?,
        provider: provider_filter(query.provider.as_deref())?,
        currency: currency_filter(query.currency.as_deref())?,
        created: created_within(query.from.as_deref(), query.to.as_deref())?,
    };
    let page = page(query.limit, query.cursor.as_ref())?;
    let payments = state.app.admin_payments(&caller.0, &filter, &page).await?;
    Ok(ok(&PageOf::from_page(&payments, |payment| PaymentResponse::from(payment))))
}

/// Any card payment by id.
#[utoipa::path(get, path = "/api/v1/admin/payments/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Payment id")),
    responses(
        (status = 200, description = "The payment", body = PaymentResponse),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such payment", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn payment<U: UnitOfWork>(state: State<U>, caller: Authenticated, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path, PaymentId::parse)?;
    let payment = state.app.admin_payment(&caller.0, id).await?;
    Ok(ok(&PaymentResponse::from(&payment)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AdminRefundsQuery {
    /// pending, succeeded or failed.
    pub status: Option<String>,
    /// Only from this merchant's share (a user id).
    #[param(format = Uuid)]
    pub merchant: Option<String>,
    /// Only refunds of this provider's card payments (refunds to a wallet have none).
    pub provider: Option<String>,
    /// Only in this currency (ISO 4217).
    pub currency: Option<String>,
    /// Created at or after this time (RFC 3339).
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// Created before this time (RFC 3339).
    #[param(format = DateTime)]
    pub to: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// Every refund (through a provider or to a wallet), newest first, filtered.
#[utoipa::path(get, path = "/api/v1/admin/refunds", tag = "admin", security(("bearer" = [])),
    params(AdminRefundsQuery),
    responses(
        (status = 200, description = "A page of refunds", body = PageOf<RefundResponse>),
        (status = 400, description = "A bad filter, limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn refunds<U: UnitOfWork>(
    state: State<U>,
    caller: Authenticated,
    query: web::Query<AdminRefundsQuery>,
) -> Result<HttpResponse, ApiError> {
    let filter = AdminRefundFilter {
        status: parsed(
            "status",
            "pending, succeeded or failed",
            query.status.as_deref(),
            RefundStatus::parse,
        )?,
        merchant: user_filter("merchant", query.merchant.as_deref())?,
        provider: provider_filter(query.provider.as_deref())?,
        currency: currency_filter(query.currency.as_deref())?,
        created: created_within(query.from.as_deref(), query.to.as_deref())?,
    };
    let page = page(query.limit, query.cursor.as_ref())?;
    let refunds = state.app.admin_refunds(&caller.0, &filter, &page).await?;
    Ok(ok(&PageOf::from_page(&refunds, |refund| RefundResponse::from(refund))))
}

/// Any refund by id.
#[utoipa::path(get, path = "/api/v1/admin/refunds/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Refund id")),
    responses(
        (status = 200, description = "The refund", body = RefundResponse),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such refund", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn refund<U: UnitOfWork>(state: State<U>, caller: Authenticated, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path, RefundId::parse)?;
    let refund = state.app.admin_refund(&caller.0, id).await?;
    Ok(ok(&RefundResponse::from(&refund)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InventoryQuery {
    /// Only this merchant's products (a user id).
    #[param(format = Uuid)]
    pub merchant: Option<String>,
    /// `true` for products on sale, `false` for those taken off sale (or deleted).
    pub active: Option<String>,
    /// Low stock: only products with fewer units available than this.
    #[param(minimum = 0, maximum = 1_000_000_001)]
    pub below: Option<i64>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// Every product's stock (available and reserved), deleted ones included, newest first.
#[utoipa::path(get, path = "/api/v1/admin/inventory", tag = "admin", security(("bearer" = [])),
    params(InventoryQuery),
    responses(
        (status = 200, description = "A page of products with their stock", body = PageOf<InventoryResponse>),
        (status = 400, description = "A bad filter, limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn inventory<U: UnitOfWork>(
    state: State<U>,
    caller: Authenticated,
    query: web::Query<InventoryQuery>,
) -> Result<HttpResponse, ApiError> {
    let units = 0..=domain::catalog::Stock::UNITS_MAX + 1;
    if query.below.is_some_and(|below| !units.contains(&below)) {
        return Err(invalid("below", "a number of units from 0 to 1000000001"));
    }
    let filter = InventoryFilter {
        merchant: user_filter("merchant", query.merchant.as_deref())?,
        active: parsed("active", "true or false", query.active.as_deref(), |text| match text {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        })?,
        below: query.below,
    };
    let page = page(query.limit, query.cursor.as_ref())?;
    let products = state.app.admin_inventory(&caller.0, filter, &page).await?;
    Ok(ok(&PageOf::from_page(&products, |entry| InventoryResponse::from(entry))))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AdminWalletsQuery {
    /// Only this user's wallets (a user id); without it system accounts are listed too.
    #[param(format = Uuid)]
    pub user: Option<String>,
    /// Only in this currency (ISO 4217).
    pub currency: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// Every wallet, users' and system accounts', with balance, held and available, newest first.
#[utoipa::path(get, path = "/api/v1/admin/wallets", tag = "admin", security(("bearer" = [])),
    params(AdminWalletsQuery),
    responses(
        (status = 200, description = "A page of wallets", body = PageOf<AdminWalletResponse>),
        (status = 400, description = "A bad filter, limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn wallets<U: UnitOfWork>(
    state: State<U>,
    caller: Authenticated,
    query: web::Query<AdminWalletsQuery>,
) -> Result<HttpResponse, ApiError> {
    let filter = WalletFilter {
        owner: user_filter("user", query.user.as_deref())?,
        currency: currency_filter(query.currency.as_deref())?,
    };
    let page = page(query.limit, query.cursor.as_ref())?;
    let wallets = state.app.admin_wallets(&caller.0, filter, &page).await?;
    Ok(ok(&PageOf::from_page(&wallets, |wallet| AdminWalletResponse::from(wallet))))
}

/// Any wallet by id, a user's or a system account's.
#[utoipa::path(get, path = "/api/v1/admin/wallets/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Wallet id")),
    responses(
        (status = 200, description = "The wallet", body = AdminWalletResponse),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such wallet", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn wallet<U: UnitOfWork>(state: State<U>, caller: Authenticated, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path, WalletId::parse)?;
    let wallet = state.app.admin_wallet(&caller.0, id).await?;
    Ok(ok(&AdminWalletResponse::from(&wallet)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JournalQuery {
    /// top_up, withdrawal, transfer, purchase, refund, call_charge, adjustment or reversal.
    pub kind: Option<String>,
    /// Only transactions posting to this wallet (a wallet id, a user's or a system account's).
    #[param(format = Uuid)]
    pub wallet: Option<String>,
    /// Created at or after this time (RFC 3339).
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// Created before this time (RFC 3339).
    #[param(format = DateTime)]
    pub to: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// The journal: every ledger transaction with all its postings, newest first, filtered.
#[utoipa::path(get, path = "/api/v1/admin/journal", tag = "admin", security(("bearer" = [])),
    params(JournalQuery),
    responses(
        (status = 200, description = "A page of journal transactions", body = PageOf<JournalTransactionResponse>),
        (status = 400, description = "A bad filter, limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn journal<U: UnitOfWork>(
    state: State<U>,
    caller: Authenticated,
    query: web::Query<JournalQuery>,
) -> Result<HttpResponse, ApiError> {
    let filter = JournalFilter {
        kind: parsed(
            "kind",
            "top_up, withdrawal, transfer, purchase, refund, call_charge, adjustment or reversal",
            query.kind.as_deref(),
            TransactionKind::parse,
        )?,
        wallet: parsed("wallet", "a wallet id (UUID)", query.wallet.as_deref(), |text| {
            WalletId::parse(text).ok()
        })?,
        created: created_within(query.from.as_deref(), query.to.as_deref())?,
    };
    let page = page(query.limit, query.cursor.as_ref())?;
    let journal = state.app.admin_journal(&caller.0, filter, &page).await?;
    Ok(ok(&PageOf::from_page(&journal, |record| JournalTransactionResponse::from(record))))
}

/// One journal transaction by id, with all its postings.
#[utoipa::path(get, path = "/api/v1/admin/journal/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Journal transaction id")),
    responses(
        (status = 200, description = "The transaction", body = JournalTransactionResponse),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such transaction", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn journal_transaction<U: UnitOfWork>(
    state: State<U>,
    caller: Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path, TransactionId::parse)?;
    let record = state.app.admin_journal_transaction(&caller.0, id).await?;
    Ok(ok(&JournalTransactionResponse::from(&record)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AdminTransfersQuery {
    /// Only transfers this user sent or received (a user id).
    #[param(format = Uuid)]
    pub user: Option<String>,
    /// Only in this currency (ISO 4217).
    pub currency: Option<String>,
    /// Created at or after this time (RFC 3339).
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// Created before this time (RFC 3339).
    #[param(format = DateTime)]
    pub to: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// Every person-to-person transfer, newest first, filtered.
#[utoipa::path(get, path = "/api/v1/admin/transfers", tag = "admin", security(("bearer" = [])),
    params(AdminTransfersQuery),
    responses(
        (status = 200, description = "A page of transfers", body = PageOf<TransferResponse>),
        (status = 400, description = "A bad filter, limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn transfers<U: UnitOfWork>(
    state: State<U>,
    caller: Authenticated,
    query: web::Query<AdminTransfersQuery>,
) -> Result<HttpResponse, ApiError> {
    let filter = TransferFilter {
        user: user_filter("user", query.user.as_deref())?,
        currency: currency_filter(query.currency.as_deref())?,
        created: created_within(query.from.as_deref(), query.to.as_deref())?,
    };
    let page = page(query.limit, query.cursor.as_ref())?;
    let transfers = state.app.admin_transfers(&caller.0, filter, &page).await?;
    Ok(ok(&PageOf::from_page(&transfers, |transfer| TransferResponse::from(transfer))))
}

/// Any transfer by id.
#[utoipa::path(get, path = "/api/v1/admin/transfers/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Transfer id")),
    responses(
        (status = 200, description = "The transfer", body = TransferResponse),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such transfer", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn transfer<U: UnitOfWork>(state: State<U>, caller: Authenticated, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path, TransferId::parse)?;
    let transfer = state.app.admin_transfer(&caller.0, id).await?;
    Ok(ok(&TransferResponse::from(&transfer)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AdminCallsQuery {
    /// active or ended.
    pub status: Option<String>,
    /// Only calls this user made or received (a user id).
    #[param(format = Uuid)]
    pub user: Option<String>,
    /// Started at or after this time (RFC 3339).
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// Started before this time (RFC 3339).
    #[param(format = DateTime)]
    pub to: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// Every metered call, newest first by start, filtered.
#[utoipa::path(get, path = "/api/v1/admin/calls", tag = "admin", security(("bearer" = [])),
    params(AdminCallsQuery),
    responses(
        (status = 200, description = "A page of calls", body = PageOf<CallResponse>),
        (status = 400, description = "A bad filter, limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn calls<U: UnitOfWork>(
    state: State<U>,
    caller: Authenticated,
    query: web::Query<AdminCallsQuery>,
) -> Result<HttpResponse, ApiError> {
    let filter = CallFilter {
        status: parsed("status", "active or ended", query.status.as_deref(), CallStatus::parse)?,
        user: user_filter("user", query.user.as_deref())?,
        started: created_within(query.from.as_deref(), query.to.as_deref())?,
    };
    let page = page(query.limit, query.cursor.as_ref())?;
    let calls = state.app.admin_calls(&caller.0, filter, &page).await?;
    Ok(ok(&PageOf::from_page(&calls, |call| CallResponse::from(call))))
}

/// Any call by id.
#[utoipa::path(get, path = "/api/v1/admin/calls/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Call id")),
    responses(
        (status = 200, description = "The call", body = CallResponse),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such call", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn call<U: UnitOfWork>(state: State<U>, caller: Authenticated, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path, CallId::parse)?;
    let call = state.app.admin_call(&caller.0, id).await?;
    Ok(ok(&CallResponse::from(&call)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AdminWebhookEventsQuery {
    /// Only from this provider (`stripe`, `paystack`, ...).
    pub provider: Option<String>,
    /// Only of this provider event type (`checkout.session.completed`, ...).
    pub event_type: Option<String>,
    /// applied, ignored, late_success or refused.
    pub outcome: Option<String>,
    /// Only events about this payment of ours (a payment id).
    #[param(format = Uuid)]
    pub payment: Option<String>,
    /// Received at or after this time (RFC 3339).
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// Received before this time (RFC 3339).
    #[param(format = DateTime)]
    pub to: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// The longest event type a filter names (the inbox keeps no longer ones).
const EVENT_TYPE_CHARS_MAX: usize = 255;

/// Every provider webhook event received (the inbox), newest first, each with what applying it
/// did; a redelivered event is listed once.
#[utoipa::path(get, path = "/api/v1/admin/webhook-events", tag = "admin", security(("bearer" = [])),
    params(AdminWebhookEventsQuery),
    responses(
        (status = 200, description = "A page of received events", body = PageOf<ReceivedWebhookResponse>),
        (status = 400, description = "A bad filter, limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn webhook_events<U: UnitOfWork>(
    state: State<U>,
    caller: Authenticated,
    query: web::Query<AdminWebhookEventsQuery>,
) -> Result<HttpResponse, ApiError> {
    let event_type = parsed("event_type", "1 to 255 printable characters", query.event_type.as_deref(), |text| {
        let printable = !text.is_empty() && text.chars().count() <= EVENT_TYPE_CHARS_MAX && !text.chars().any(char::is_control);
        printable.then(|| text.to_owned())
    })?;
    let filter = ReceivedWebhookFilter {
        provider: provider_filter(query.provider.as_deref())?,
        event_type,
        outcome: parsed(
            "outcome",
            "applied, ignored, late_success or refused",
            query.outcome.as_deref(),
            InboxOutcome::kind_named,
        )?,
        payment: parsed("payment", "a payment id (UUID)", query.payment.as_deref(), |text| {
            PaymentId::parse(text).ok()
        })?,
        received: created_within(query.from.as_deref(), query.to.as_deref())?,
    };
    let page = page(query.limit, query.cursor.as_ref())?;
    let events = state.app.admin_webhook_events(&caller.0, &filter, &page).await?;
    Ok(ok(&PageOf::from_page(&events, |event| ReceivedWebhookResponse::from(event))))
}

/// Any received provider webhook event by our id.
#[utoipa::path(get, path = "/api/v1/admin/webhook-events/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Received event id (ours, not the provider's)")),
    responses(
        (status = 200, description = "The received event", body = ReceivedWebhookResponse),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such received event", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn webhook_event<U: UnitOfWork>(
    state: State<U>,
    caller: Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path, ReceivedWebhookId::parse)?;
    let event = state.app.admin_webhook_event(&caller.0, id).await?;
    Ok(ok(&ReceivedWebhookResponse::from(&event)))
}
