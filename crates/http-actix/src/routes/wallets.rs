//! Wallets, card top-ups, withdrawals and transfers.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use application::idempotency::StoredResponse;
use application::ports::store::PaymentFilter;
use application::ports::store::UnitOfWork;
use application::top_ups::TopUpRequest;
use application::transfers::{Recipient, TransferRequest};
use application::withdrawals::WithdrawalRequest;
use domain::ids::{PaymentId, TransferId, UserId, WithdrawalId};
use domain::payment::{Payment, PaymentStatus, ProviderName};
use domain::wallet::Transfer;
use domain::withdrawal::Withdrawal;

use super::State;
use crate::dto::{
    PageOf, PaymentResponse, PostingResponse, TopUpRequestBody, TransferRequestBody, TransferResponse, WalletList, WalletResponse,
    WithdrawalRequestBody, WithdrawalResponse, currency, positive_amount,
};
use crate::extract::{Authenticated, IdempotencyHeader, Json, PageQuery, path_id};
use crate::problem::{ApiError, Problem};
use crate::respond::{idempotently, ok, stored};

/// Every wallet of the caller.
#[utoipa::path(get, path = "/api/v1/wallets", tag = "wallets", security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's wallets", body = WalletList),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list<U: UnitOfWork>(state: State<U>, caller: Authenticated) -> Result<HttpResponse, ApiError> {
    let wallets = state.app.list_wallets(&caller.0).await?;
    Ok(ok(&WalletList {
        items: wallets.iter().map(WalletResponse::from).collect(),
    }))
}

/// The caller's wallet in one currency.
#[utoipa::path(get, path = "/api/v1/wallets/{currency}", tag = "wallets", security(("bearer" = [])),
    params(("currency" = String, Path, description = "ISO 4217 code, e.g. USD")),
    responses(
        (status = 200, description = "The wallet", body = WalletResponse),
        (status = 404, description = "No wallet in that currency", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unsupported currency", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn show<U: UnitOfWork>(state: State<U>, caller: Authenticated, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let currency = currency("currency", &path)?;
    let wallet = state.app.wallet(&caller.0, currency).await?;
    Ok(ok(&WalletResponse::from(&wallet)))
}

/// The wallet's postings, newest first.
#[utoipa::path(get, path = "/api/v1/wallets/{currency}/transactions", tag = "wallets", security(("bearer" = [])),
    params(("currency" = String, Path, description = "ISO 4217 code"), PageQuery),
    responses(
        (status = 200, description = "A page of postings", body = PageOf<PostingResponse>),
        (status = 400, description = "Bad limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No wallet in that currency", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn history<U: UnitOfWork>(
    state: State<U>,
    caller: Authenticated,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let currency = currency("currency", &path)?;
    let page = state.app.wallet_history(&caller.0, currency, &query.page()?).await?;
    Ok(ok(&PageOf::from_page(&page, |item| PostingResponse::from(item))))
}

fn render_payment(payment: &Payment) -> StoredResponse {
    stored(
        StatusCode::CREATED,
        &PaymentResponse::from(payment),
        Some(format!("/api/v1/payments/{}", payment.id())),
    )
}

fn provider(field: &str, name: Option<&str>) -> Result<Option<ProviderName>, ApiError> {
    name.map(|n| ProviderName::parse(n).map_err(|e| ApiError::invalid_field(field, e.to_string())))
        .transpose()
}

/// Starts a card top-up: returns the payment with the gateway's checkout URL. The wallet is
/// credited when the gateway confirms the payment (by webhook), never before.
#[utoipa::path(post, path = "/api/v1/wallets/{currency}/top-ups", tag = "wallets", security(("bearer" = [])),
    params(("currency" = String, Path, description = "ISO 4217 code"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retried request safe")),
    request_body = TopUpRequestBody,
    responses(
        (status = 201, description = "Payment opened; send the payer to checkout_url", body = PaymentResponse),
        (status = 422, description = "Bad amount or no gateway for the currency", body = Problem, content_type = "application/problem+json"),
        (status = 402, description = "The card was declined (`card_declined`)", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The gateway failed (`gateway_error`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The gateway is unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn top_up<U: UnitOfWork>(
    state: State<U>,
    caller: Authenticated,
    path: web::Path<String>,
    req: HttpRequest,
    key: IdempotencyHeader,
    body: Json<TopUpRequestBody>,
) -> Result<HttpResponse, ApiError> {
    let currency = currency("currency", &path)?;
    let request = TopUpRequest {
        amount: positive_amount("amount", &body.value.amount, currency)?,
        provider: provider("provider", body.value.provider.as_deref())?,
    };
    let caller = caller.0;
    idempotently(&state, Some(caller.user_id), key, (&req, &body.raw), render_payment, |idempotent| {
        state.app.start_top_up(&caller, request, idempotent)
    })
    .await
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PaymentQuery {
    /// pending, succeeded, failed, expired or cancelled.
    pub status: Option<String>,
    /// `top_up` or `order`.
    pub kind: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// The caller's card payments, top-ups and order checkouts, newest first, with their status.
#[utoipa::path(get, path = "/api/v1/payments", tag = "wallets", security(("bearer" = [])),
    params(PaymentQuery),
    responses(
        (status = 200, description = "A page of payments", body = PageOf<PaymentResponse>),
        (status = 400, description = "Bad status, kind, limit or cursor", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn payments<U: UnitOfWork>(
    state: State<U>,
    caller: Authenticated,
    query: web::Query<PaymentQuery>,
) -> Result<HttpResponse, ApiError> {
    let status = match query.status.as_deref() {
        None => None,
        Some(text) => Some(
            PaymentStatus::parse(text)
                .ok_or_else(|| ApiError::bad_request("invalid_query", "status must be pending, succeeded, failed, expired or cancelled"))?,
        ),
    };
    let top_ups = match query.kind.as_deref() {
        None => None,
        Some("top_up") => Some(true),
        Some("order") => Some(false),
        Some(_) => return Err(ApiError::bad_request("invalid_query", "kind must be top_up or order")),
    };
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor.clone(),
    }
    .page()?;
    let payments = state.app.my_payments(&caller.0, PaymentFilter { status, top_ups }, &page).await?;
    Ok(ok(&PageOf::from_page(&payments, |payment| PaymentResponse::from(payment))))
}

/// The caller's withdrawals, newest first.
#[utoipa::path(get, path = "/api/v1/withdrawals", tag = "wallets", security(("bearer" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "A page of withdrawals", body = PageOf<WithdrawalResponse>),
        (status = 400, description = "Bad limit or cursor", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn withdrawals<U: UnitOfWork>(
    state: State<U>,
    caller: Authenticated,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = state.app.my_withdrawals(&caller.0, &query.page()?).await?;
    Ok(ok(&PageOf::from_page(&page, |withdrawal| WithdrawalResponse::from(withdrawal))))
}

/// A card payment of the caller (a top-up or an order's).
#[utoipa::path(get, path = "/api/v1/payments/{id}", tag = "wallets", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Payment id")),
    responses(
        (status = 200, description = "The payment", body = PaymentResponse),
        (status = 404, description = "No such payment of yours", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn payment<U: UnitOfWork>(state: State<U>, caller: Authenticated, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path, PaymentId::parse)?;
    let payment = state.app.payment_details(&caller.0, id).await?;
    Ok(ok(&PaymentResponse::from(&payment)))
}

/// 201 once the withdrawal ended (paid, or failed), 202 while it is in flight (waiting for an
/// admin, or for its payout); the body says which.
fn render_withdrawal(withdrawal: &Withdrawal) -> StoredResponse {
    let status = if withdrawal.status().is_in_flight() {
        StatusCode::ACCEPTED
    } else {
        StatusCode::CREATED
    };
    stored(
        status,
        &WithdrawalResponse::from(withdrawal),
        Some(format!("/api/v1/withdrawals/{}", withdrawal.id())),
    )
}

/// Pays money out of the wallet: the amount is held at once; at or below the approval threshold
/// the withdrawal is approved and paid out (or left for manual settlement when no provider pays
/// out the currency), above it it waits for an admin.
#[utoipa::path(post, path = "/api/v1/wallets/{currency}/withdrawals", tag = "wallets", security(("bearer" = [])),
    params(("currency" = String, Path, description = "ISO 4217 code"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retried request safe")),
    request_body = WithdrawalRequestBody,
    responses(
        (status = 201, description = "Paid out (`paid`), or refused by the provider (`failed`, the amount released)", body = WithdrawalResponse),
        (status = 202, description = "In flight: `requested` (waiting for an admin) or `approved` (payout pending, or manual settlement); the amount is held", body = WithdrawalResponse),
        (status = 422, description = "Bad amount or destination, or insufficient funds", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn withdraw<U: UnitOfWork>(
    state: State<U>,
    caller: Authenticated,
    path: web::Path<String>,
    req: HttpRequest,
    key: IdempotencyHeader,
    body: Json<WithdrawalRequestBody>,
) -> Result<HttpResponse, ApiError> {
    let currency = currency("currency", &path)?;
    let request = WithdrawalRequest {
        amount: positive_amount("amount", &body.value.amount, currency)?,
        destination: body.value.destination.clone(),
    };
    let caller = caller.0;
    idempotently(
        &state,
        Some(caller.user_id),
        key,
        (&req, &body.raw),
        render_withdrawal,
        |idempotent| state.app.withdraw(&caller, request, idempotent),
    )
    .await
}

/// A withdrawal of the caller.
#[utoipa::path(get, path = "/api/v1/withdrawals/{id}", tag = "wallets", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Withdrawal id")),
    responses(
        (status = 200, description = "The withdrawal", body = WithdrawalResponse),
        (status = 404, description = "No such withdrawal of yours", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn withdrawal<U: UnitOfWork>(state: State<U>, caller: Authenticated, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path, WithdrawalId::parse)?;
    let withdrawal = state.app.withdrawal(&caller.0, id).await?;
    Ok(ok(&WithdrawalResponse::from(&withdrawal)))
}

fn render_transfer(transfer: &Transfer) -> StoredResponse {
    stored(
        StatusCode::CREATED,
        &TransferResponse::from(transfer),
        Some(format!("/api/v1/transfers/{}", transfer.id)),
    )
}

fn recipient(body: &TransferRequestBody) -> Result<Recipient, ApiError> {
    match (body.to_user_id, &body.to_email) {
        (Some(id), None) => Ok(Recipient::Id(UserId::from_uuid(id))),
        (None, Some(email)) => Ok(Recipient::Email(email.clone())),
        _ => Err(ApiError::invalid_field("to_user_id", "give exactly one of to_user_id and to_email")),
    }
}

/// Sends money to another user, by id or e-mail address.
#[utoipa::path(post, path = "/api/v1/transfers", tag = "wallets", security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retried request safe")),
    request_body = TransferRequestBody,
    responses(
        (status = 201, description = "Transferred", body = TransferResponse),
        (status = 422, description = "Bad amount, unknown recipient, yourself, or insufficient funds", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn transfer<U: UnitOfWork>(
    state: State<U>,
    caller: Authenticated,
    req: HttpRequest,
    key: IdempotencyHeader,
    body: Json<TransferRequestBody>,
) -> Result<HttpResponse, ApiError> {
    let currency = currency("currency", &body.value.currency)?;
    let request = TransferRequest {
        to: recipient(&body.value)?,
        amount: positive_amount("amount", &body.value.amount, currency)?,
        note: body.value.note.clone().unwrap_or_default(),
    };
    let caller = caller.0;
    idempotently(
        &state,
        Some(caller.user_id),
        key,
        (&req, &body.raw),
        render_transfer,
        |idempotent| state.app.transfer(&caller, request, idempotent),
    )
    .await
}

/// A transfer the caller sent or received.
#[utoipa::path(get, path = "/api/v1/transfers/{id}", tag = "wallets", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Transfer id")),
    responses(
        (status = 200, description = "The transfer", body = TransferResponse),
        (status = 404, description = "No such transfer of yours", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn transfer_details<U: UnitOfWork>(
    state: State<U>,
    caller: Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path, TransferId::parse)?;
    let transfer = state.app.transfer_details(&caller.0, id).await?;
    Ok(ok(&TransferResponse::from(&transfer)))
}
