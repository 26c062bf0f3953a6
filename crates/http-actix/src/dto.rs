//! The JSON shapes of the API. Requests reject unknown fields; amounts travel as decimal strings
//! in major units next to a currency code; timestamps are RFC 3339 in UTC.

use application::adjustments::Adjustment;
use application::auth::Session;
use application::catalog::CatalogEntry;
use application::checkout::Checkout;
use application::ledger::LedgerReport;
use application::orders::OrderDetails;
use application::pagination::Page;
use application::ports::store::{JournalRecord, PostingRecord, ReceivedWebhook};
use application::statements::{Statement, StatementLine};
use domain::call::CallSession;
use domain::catalog::{Product, Stock};
use domain::follow_up::FollowUp;
use domain::money::{Currency, Money};
use domain::order::{Order, OrderItem, StatusChange};
use domain::payment::{Payment, PaymentPurpose, Refund};
use domain::refund_request::RefundRequest;
use domain::user::User;
use domain::wallet::{Transfer, Wallet, WalletOwner};
use domain::webhook::{EndpointOwner, WebhookDelivery, WebhookEndpoint};
use domain::withdrawal::Withdrawal;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::problem::ApiError;

pub fn timestamp(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

pub fn currency(field: &str, code: &str) -> Result<Currency, ApiError> {
    Currency::parse(code).map_err(|e| ApiError::invalid_field(field, e.to_string()))
}

/// A strictly positive amount in `currency`.
pub fn positive_amount(field: &str, text: &str, currency: Currency) -> Result<Money, ApiError> {
    Money::parse_positive(text, currency).map_err(|e| ApiError::invalid_field(field, e.to_string()))
}

// ---------------------------------------------------------------- requests

/// An integer field. JSON Schema counts `3.0` as an integer, so it is accepted as 3; `3.5` is not.
pub fn integral<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    struct Integral;

    impl serde::de::Visitor<'_> for Integral {
        type Value = i64;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an integer")
        }

        fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<i64, E> {
            Ok(value)
        }

        fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<i64, E> {
            i64::try_from(value).map_err(|_| E::custom("the integer is too large"))
        }

        fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<i64, E> {
            // Exactly representable integers only; every bound of this API is far below 2^53.
            let exact = value.fract() == 0.0 && value.abs() <= 9_007_199_254_740_992.0;
            if exact {
                Ok(value as i64)
            } else {
                Err(E::custom(format!("expected an integer, not {value}")))
            }
        }
    }

    deserializer.deserialize_any(Integral)
}

#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoleChoice {
    #[default]
    Customer,
    Merchant,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    #[schema(example = "ann@example.com")]
    pub email: String,
    /// At least 10 characters (at most 72 bytes) with a letter and a digit.
    #[schema(example = "correct horse 9")]
    pub password: String,
    /// `customer` (default) or `merchant`; admins are created by operators.
    #[serde(default)]
    pub role: RoleChoice,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopUpRequestBody {
    /// A positive decimal in major units of the wallet's currency.
    #[schema(example = "25.00")]
    pub amount: String,
    /// A configured card provider (`GET /api/v1/providers`: `stripe`, `monnify`, `paystack`,
    /// `simulated`); if omitted, the first of the currency's route.
    pub provider: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawalRequestBody {
    #[schema(example = "10.00")]
    pub amount: String,
    /// Where the money goes, e.g. a bank account reference.
    pub destination: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferRequestBody {
    /// The recipient's user id; give this or `to_email`.
    pub to_user_id: Option<Uuid>,
    /// The recipient's e-mail address; give this or `to_user_id`.
    pub to_email: Option<String>,
    #[schema(example = "12.50")]
    pub amount: String,
    #[schema(example = "USD")]
    pub currency: String,
    pub note: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductRequest {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[schema(example = "9.99")]
    pub price: String,
    #[schema(example = "USD")]
    pub currency: String,
    /// Units on sale.
    #[serde(deserialize_with = "integral")]
    pub stock: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    /// In the product's currency.
    pub price: Option<String>,
    pub active: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StockRequest {
    /// Units on sale from now on (reserved units are not affected).
    #[serde(deserialize_with = "integral")]
    pub available: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderItemRequest {
    pub product_id: Uuid,
    /// 1 to 10,000.
    #[serde(deserialize_with = "integral")]
    pub quantity: i64,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethodChoice {
    Wallet,
    Card,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderRequest {
    pub items: Vec<OrderItemRequest>,
    pub payment_method: PaymentMethodChoice,
    /// For card payments: a configured card provider (`GET /api/v1/providers`); if omitted, the
    /// first of the order currency's route.
    pub provider: Option<String>,
    /// For wallet payments: `automatic` (the default) pays at once; `manual` holds each
    /// merchant's part of the wallet until the merchant captures it (the order is `authorised`).
    pub capture: Option<CaptureChoice>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaptureChoice {
    Automatic,
    Manual,
}

/// Paying again for a card order awaiting payment.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PayAgainRequest {
    /// A configured card provider (`GET /api/v1/providers`); the previous payment's if omitted.
    pub provider: Option<String>,
}

/// What a merchant captures of its part of an authorised order.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderCaptureRequest {
    /// The units of its items the merchant takes; items not named are released. All of its items
    /// when omitted.
    pub items: Option<Vec<OrderItemRequest>>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundRequestBody {
    /// In the order's currency; everything refundable if omitted.
    pub amount: Option<String>,
    /// Whose share to refund (admins, for orders with several merchants).
    pub merchant_id: Option<Uuid>,
    pub reason: Option<String>,
}

/// A buyer's request for (part of) a merchant's share of a paid order back.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundAskBody {
    /// In the order's currency; everything left of the share if omitted.
    pub amount: Option<String>,
    /// Whose share; may be left out when the order has one merchant.
    pub merchant_id: Option<Uuid>,
    /// Why, for the merchant who decides.
    pub reason: String,
}

/// Why a refund request is declined, for the buyer.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundDeclineBody {
    pub note: String,
}

/// A buyer's refund request: `open` until the merchant of the share (or an admin) approves it
/// (`refund_id` names the refund made) or declines it (`note` says why), or the buyer withdraws it;
/// `refund_failed` when the provider refused the approved refund (the buyer may ask again).
#[derive(Debug, Serialize, ToSchema)]
pub struct RefundRequestResponse {
    pub id: Uuid,
    pub order_id: Uuid,
    pub buyer_id: Uuid,
    pub merchant_id: Uuid,
    /// None: everything left of the share when it is approved.
    pub amount: Option<String>,
    pub currency: Option<String>,
    pub reason: String,
    #[schema(pattern = "^(open|approved|declined|withdrawn|refund_failed)$")]
    pub status: String,
    pub decided_by: Option<Uuid>,
    pub note: Option<String>,
    pub refund_id: Option<Uuid>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl From<&RefundRequest> for RefundRequestResponse {
    fn from(request: &RefundRequest) -> Self {
        let r = request.record();
        RefundRequestResponse {
            id: r.id.as_uuid(),
            order_id: r.order_id.as_uuid(),
            buyer_id: r.buyer_id.as_uuid(),
            merchant_id: r.merchant_id.as_uuid(),
            amount: r.amount.map(|amount| amount.to_major_string()),
            currency: r.amount.map(|amount| amount.currency().code().to_owned()),
            reason: r.reason.clone(),
            status: r.status.as_str().to_owned(),
            decided_by: r.decided_by.map(|id| id.as_uuid()),
            note: r.note.clone(),
            refund_id: r.refund_id.map(|id| id.as_uuid()),
            created_at: timestamp(r.created_at),
            updated_at: timestamp(r.updated_at),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallRequest {
    pub receiver_id: Uuid,
    #[schema(example = "0.50")]
    pub rate_per_minute: String,
    #[schema(example = "USD")]
    pub currency: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustmentRequestBody {
    /// Positive credits the wallet, negative (`"-5.00"`) debits it.
    #[schema(example = "-5.00")]
    pub amount: String,
    #[schema(example = "USD")]
    pub currency: String,
    pub reason: String,
}

// ---------------------------------------------------------------- responses

#[derive(Debug, Serialize, ToSchema)]
pub struct UserResponse {
    pub id: Uuid,
    pub email: String,
    #[schema(example = "customer")]
    pub role: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// When an admin suspended the account; absent while it is active.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub suspended_at: Option<String>,
    /// The user's wallets with their balances, in the admins' listing only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wallets: Option<Vec<WalletResponse>>,
}

impl UserResponse {
    /// A user with their wallets, as admins list them.
    pub fn with_wallets((user, wallets): &(User, Vec<Wallet>)) -> UserResponse {
        UserResponse {
            wallets: Some(wallets.iter().map(WalletResponse::from).collect()),
            ..UserResponse::from(user)
        }
    }
}

/// One entry of the admins' audit trail.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminActionResponse {
    pub id: Uuid,
    /// The admin who acted.
    pub admin_id: Uuid,
    /// user.suspended, user.reactivated or wallet.adjusted.
    pub action: String,
    /// What was acted on: `user:<id>`.
    pub subject: String,
    pub reason: String,
    /// What changed, e.g. an adjustment's amount and journal transaction.
    pub details: String,
    #[schema(format = DateTime)]
    pub at: String,
}

impl From<&domain::user::AdminAction> for AdminActionResponse {
    fn from(action: &domain::user::AdminAction) -> Self {
        AdminActionResponse {
            id: action.id.as_uuid(),
            admin_id: action.admin_id.as_uuid(),
            action: action.kind.as_str().to_owned(),
            subject: action.subject.clone(),
            reason: action.reason.clone(),
            details: action.details.clone(),
            at: timestamp(action.at),
        }
    }
}

impl From<&User> for UserResponse {
    fn from(user: &User) -> Self {
        UserResponse {
            id: user.id.as_uuid(),
            email: user.email.to_string(),
            role: user.role.as_str().to_owned(),
            created_at: timestamp(user.created_at),
            suspended_at: user.suspended_at.map(timestamp),
            wallets: None,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionResponse {
    pub access_token: String,
    #[schema(example = "Bearer")]
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    pub refresh_token: String,
    #[schema(format = DateTime)]
    pub refresh_expires_at: String,
    pub user: UserResponse,
}

impl SessionResponse {
    pub fn new(session: &Session, now: OffsetDateTime) -> SessionResponse {
        SessionResponse {
            access_token: session.access_token.token.clone(),
            token_type: "Bearer".into(),
            expires_in: (session.access_token.expires_at - now).whole_seconds().max(0),
            refresh_token: session.refresh_token.clone(),
            refresh_expires_at: timestamp(session.refresh_expires_at),
            user: UserResponse::from(&session.user),
        }
    }
}

/// Any wallet, as admins see it: a user's (`owner_user_id`) or a system account's
/// (`system_account`, e.g. `platform_revenue` or `gateway_clearing:stripe`).
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminWalletResponse {
    pub id: Uuid,
    /// `user` or `system`.
    pub owner: String,
    pub owner_user_id: Option<Uuid>,
    pub system_account: Option<String>,
    #[schema(example = "USD")]
    pub currency: String,
    /// May be negative for a system account.
    pub balance: String,
    /// Reserved by pending holds.
    pub held: String,
    /// Balance minus held.
    pub available: String,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<&Wallet> for AdminWalletResponse {
    fn from(wallet: &Wallet) -> Self {
        let (owner, owner_user_id, system_account) = match wallet.owner() {
            WalletOwner::User(user) => ("user", Some(user.as_uuid()), None),
            WalletOwner::System(account) => ("system", None, Some(account.code())),
        };
        AdminWalletResponse {
            id: wallet.id().as_uuid(),
            owner: owner.to_owned(),
            owner_user_id,
            system_account,
            currency: wallet.currency().code().to_owned(),
            balance: wallet.balance().to_major_string(),
            held: wallet.held().to_major_string(),
            available: wallet.available().to_major_string(),
            created_at: timestamp(wallet.created_at()),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WalletResponse {
    pub id: Uuid,
    #[schema(example = "USD")]
    pub currency: String,
    #[schema(example = "120.00")]
    pub balance: String,
    /// Reserved by pending holds.
    #[schema(example = "20.00")]
    pub held: String,
    /// Balance minus held: what may be spent.
    #[schema(example = "100.00")]
    pub available: String,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<&Wallet> for WalletResponse {
    fn from(wallet: &Wallet) -> Self {
        WalletResponse {
            id: wallet.id().as_uuid(),
            currency: wallet.currency().code().to_owned(),
            balance: wallet.balance().to_major_string(),
            held: wallet.held().to_major_string(),
            available: wallet.available().to_major_string(),
            created_at: timestamp(wallet.created_at()),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WalletList {
    pub items: Vec<WalletResponse>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PostingResponse {
    pub transaction_id: Uuid,
    /// top_up, withdrawal, transfer, purchase, refund, call_charge, adjustment or reversal.
    pub kind: String,
    /// Signed: negative when money left the wallet.
    #[schema(example = "-12.50")]
    pub amount: String,
    pub currency: String,
    /// The balance before this movement: `balance_after` less `amount`.
    pub balance_before: String,
    pub balance_after: String,
    /// What the movement was for, e.g. `order:<id>`.
    pub reference: String,
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// One posting of a journal transaction: a wallet's credit (positive) or debit (negative).
#[derive(Debug, Serialize, ToSchema)]
pub struct JournalPostingResponse {
    pub wallet_id: Uuid,
    /// Signed, in major units.
    pub amount: String,
    pub currency: String,
    /// The wallet's balance after this posting.
    pub balance_after: String,
}

/// A journal transaction with all its postings (which sum to zero per currency).
#[derive(Debug, Serialize, ToSchema)]
pub struct JournalTransactionResponse {
    pub id: Uuid,
    /// top_up, withdrawal, transfer, purchase, refund, call_charge, adjustment or reversal.
    pub kind: String,
    /// What it is for (an order, a payment, a transfer, ...).
    pub reference: String,
    pub postings: Vec<JournalPostingResponse>,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<&JournalRecord> for JournalTransactionResponse {
    fn from(record: &JournalRecord) -> Self {
        let postings = record
            .postings
            .iter()
            .map(|PostingRecord { posting, .. }| JournalPostingResponse {
                wallet_id: posting.wallet_id.as_uuid(),
                amount: posting.amount.to_major_string(),
                currency: posting.amount.currency().code().to_owned(),
                balance_after: Money::from_minor(posting.balance_after_minor, posting.amount.currency()).to_major_string(),
            })
            .collect();
        JournalTransactionResponse {
            id: record.id.as_uuid(),
            kind: record.kind.as_str().to_owned(),
            reference: record.reference.clone(),
            postings,
            created_at: timestamp(record.created_at),
        }
    }
}

impl From<&PostingRecord> for PostingResponse {
    fn from(record: &PostingRecord) -> Self {
        let posting = &record.posting;
        PostingResponse {
            transaction_id: posting.transaction_id.as_uuid(),
            kind: posting.kind.as_str().to_owned(),
            amount: posting.amount.to_major_string(),
            currency: posting.amount.currency().code().to_owned(),
            balance_before: Money::from_minor(
                posting.balance_after_minor.saturating_sub(posting.amount.amount_minor()),
                posting.amount.currency(),
            )
            .to_major_string(),
            balance_after: Money::from_minor(posting.balance_after_minor, posting.amount.currency()).to_major_string(),
            reference: posting.reference.clone(),
            created_at: timestamp(posting.created_at),
        }
    }
}

/// A page of a list. `next_cursor` is absent on the last page.
#[derive(Debug, Serialize, ToSchema)]
pub struct PageOf<T: ToSchema> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T: ToSchema> PageOf<T> {
    pub fn from_page<S>(page: &Page<S>, map: impl Fn(&S) -> T) -> PageOf<T> {
        PageOf {
            items: page.items.iter().map(map).collect(),
            next_cursor: page.next_cursor.map(|c| c.encode()),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentResponse {
    pub id: Uuid,
    /// `order` or `top_up`.
    pub purpose: String,
    pub order_id: Option<Uuid>,
    /// Who pays: the buyer of the order, or the user topping up.
    pub payer_id: Uuid,
    /// pending, succeeded, failed, expired or cancelled.
    pub status: String,
    pub provider: String,
    pub amount: String,
    pub currency: String,
    /// Where the payer completes the payment, while it is pending.
    pub checkout_url: Option<String>,
    pub disputed: bool,
    /// Money arrived after the payment had been given up (it is refunded or flagged).
    pub late_success: bool,
    #[schema(format = DateTime)]
    pub expires_at: String,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<&Payment> for PaymentResponse {
    fn from(payment: &Payment) -> Self {
        let (purpose, order_id) = match payment.purpose() {
            PaymentPurpose::Order(id) => ("order", Some(id.as_uuid())),
            PaymentPurpose::TopUp(_) => ("top_up", None),
        };
        PaymentResponse {
            id: payment.id().as_uuid(),
            purpose: purpose.to_owned(),
            order_id,
            payer_id: payment.payer_id().as_uuid(),
            status: payment.status().as_str().to_owned(),
            provider: payment.provider().to_string(),
            amount: payment.amount().to_major_string(),
            currency: payment.currency().code().to_owned(),
            checkout_url: payment.checkout_url().map(str::to_owned),
            disputed: payment.disputed(),
            late_success: payment.late_success(),
            expires_at: timestamp(payment.expires_at()),
            created_at: timestamp(payment.created_at()),
        }
    }
}

/// A withdrawal and how far it got: `requested` (held, waiting for an admin), `approved` (held,
/// being paid out, or waiting for manual settlement), `paid` (the money left the wallet), `failed`
/// or `rejected` (the hold released).
#[derive(Debug, Serialize, ToSchema)]
pub struct WithdrawalResponse {
    pub id: Uuid,
    pub user_id: Uuid,
    pub amount: String,
    pub currency: String,
    pub destination: String,
    #[schema(pattern = "^(requested|approved|paid|failed|rejected)$")]
    pub status: String,
    /// The hold that keeps the amount while the withdrawal is in flight (none for withdrawals
    /// made before they had a lifecycle).
    pub hold_id: Option<Uuid>,
    /// The admin who approved or rejected it (none when approved at once, at or below the
    /// threshold).
    pub decided_by: Option<Uuid>,
    #[schema(format = DateTime)]
    pub decided_at: Option<String>,
    /// The admin's reason for the decision.
    pub reason: Option<String>,
    /// How an approved withdrawal is paid out: `payout` (through `provider`) or `manual` (an admin
    /// marks it paid or failed).
    #[schema(pattern = "^(payout|manual)$")]
    pub settlement: Option<String>,
    pub provider: Option<String>,
    pub provider_reference: Option<String>,
    pub failure_reason: Option<String>,
    /// The admin who marked a manual withdrawal paid or failed.
    pub settled_by: Option<Uuid>,
    /// The journal transaction that moved the money, once paid.
    pub transaction_id: Option<Uuid>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl From<&Withdrawal> for WithdrawalResponse {
    fn from(w: &Withdrawal) -> Self {
        WithdrawalResponse {
            id: w.id().as_uuid(),
            user_id: w.user_id().as_uuid(),
            amount: w.amount().to_major_string(),
            currency: w.amount().currency().code().to_owned(),
            destination: w.destination().to_owned(),
            status: w.status().as_str().to_owned(),
            hold_id: w.hold_id().map(|id| id.as_uuid()),
            decided_by: w.decided_by().map(|id| id.as_uuid()),
            decided_at: w.decided_at().map(timestamp),
            reason: w.reason().map(str::to_owned),
            settlement: w.settlement().map(|s| s.kind().to_owned()),
            provider: w.settlement().and_then(|s| s.provider()).map(|p| p.as_str().to_owned()),
            provider_reference: w.provider_reference().map(str::to_owned),
            failure_reason: w.failure_reason().map(str::to_owned),
            settled_by: w.settled_by().map(|id| id.as_uuid()),
            transaction_id: w.transaction_id().map(|id| id.as_uuid()),
            created_at: timestamp(w.created_at()),
            updated_at: timestamp(w.updated_at()),
        }
    }
}

/// An admin's decision on a withdrawal.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawalDecisionBody {
    /// Why: required to reject and to mark failed, at most 500 characters.
    #[schema(max_length = 500)]
    pub reason: Option<String>,
    /// Marking paid: the outside payment's reference (a bank's), at most 500 characters.
    #[schema(max_length = 500)]
    pub reference: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TransferResponse {
    pub id: Uuid,
    pub from_user_id: Uuid,
    pub to_user_id: Uuid,
    pub amount: String,
    pub currency: String,
    pub note: String,
    pub transaction_id: Uuid,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<&Transfer> for TransferResponse {
    fn from(t: &Transfer) -> Self {
        TransferResponse {
            id: t.id.as_uuid(),
            from_user_id: t.from_user_id.as_uuid(),
            to_user_id: t.to_user_id.as_uuid(),
            amount: t.amount.to_major_string(),
            currency: t.amount.currency().code().to_owned(),
            note: t.note.clone(),
            transaction_id: t.transaction_id.as_uuid(),
            created_at: timestamp(t.created_at),
        }
    }
}

/// A provider's webhook event as the inbox received it, and what applying it did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReceivedWebhookResponse {
    pub id: Uuid,
    /// The provider that sent and signed it (`stripe`, `paystack`, ...).
    pub provider: String,
    /// The provider's id of the event: redeliveries carry the same and have no effect.
    pub event_id: String,
    pub event_type: String,
    /// Our payment the event is about, when it names one.
    pub payment_id: Option<Uuid>,
    /// The provider's id of the payment or checkout session, when the event names one.
    pub provider_reference: Option<String>,
    #[schema(format = DateTime)]
    pub received_at: String,
    /// `applied`, `ignored`, `late_success` or `refused`; absent for events received before
    /// outcomes were kept.
    pub outcome: Option<String>,
    /// Why it was ignored or refused.
    pub outcome_detail: Option<String>,
}

impl From<&ReceivedWebhook> for ReceivedWebhookResponse {
    fn from(event: &ReceivedWebhook) -> Self {
        ReceivedWebhookResponse {
            id: event.id.as_uuid(),
            provider: event.provider.to_string(),
            event_id: event.event_id.clone(),
            event_type: event.event_type.clone(),
            payment_id: event.payment_id.map(|id| id.as_uuid()),
            provider_reference: event.provider_reference.clone(),
            received_at: timestamp(event.received_at),
            outcome: event.outcome.as_ref().map(|outcome| outcome.kind.to_owned()),
            outcome_detail: event.outcome.as_ref().and_then(|outcome| outcome.detail.clone()),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StockResponse {
    pub available: i64,
    /// Set aside for card checkouts that are not paid yet.
    pub reserved: i64,
}

/// A product's stock, as the admins' inventory shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct InventoryResponse {
    pub product_id: Uuid,
    pub merchant_id: Uuid,
    pub name: String,
    pub active: bool,
    /// When it was deleted; `null` while it is in the catalog.
    #[schema(format = DateTime)]
    pub archived_at: Option<String>,
    pub available: i64,
    /// Set aside for card checkouts that are not paid yet.
    pub reserved: i64,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<&(Product, Stock)> for InventoryResponse {
    fn from((product, stock): &(Product, Stock)) -> Self {
        InventoryResponse {
            product_id: product.id.as_uuid(),
            merchant_id: product.merchant_id.as_uuid(),
            name: product.name.clone(),
            active: product.active,
            archived_at: product.archived_at.map(timestamp),
            available: stock.available(),
            reserved: stock.reserved(),
            created_at: timestamp(product.created_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductResponse {
    pub id: Uuid,
    pub merchant_id: Uuid,
    pub name: String,
    pub description: String,
    #[schema(example = "9.99")]
    pub price: String,
    pub currency: String,
    pub active: bool,
    pub stock: StockResponse,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl From<&CatalogEntry> for ProductResponse {
    fn from(entry: &CatalogEntry) -> Self {
        let p = &entry.product;
        ProductResponse {
            id: p.id.as_uuid(),
            merchant_id: p.merchant_id.as_uuid(),
            name: p.name.clone(),
            description: p.description.clone(),
            price: p.price.to_major_string(),
            currency: p.price.currency().code().to_owned(),
            active: p.active,
            stock: StockResponse {
                available: entry.stock.available(),
                reserved: entry.stock.reserved(),
            },
            created_at: timestamp(p.created_at),
            updated_at: timestamp(p.updated_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderItemResponse {
    pub product_id: Uuid,
    pub merchant_id: Uuid,
    /// The product's name when the order was placed.
    pub name: String,
    /// The quantity ordered (authorised, for manual capture).
    pub quantity: u32,
    /// For manual capture, the units the merchant captured once it settled its part.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub captured_quantity: Option<u32>,
    /// The price when the order was placed.
    pub unit_price: String,
    /// What the buyer pays for the line (for manual capture: the captured units, once settled).
    pub line_total: String,
}

impl From<&OrderItem> for OrderItemResponse {
    fn from(item: &OrderItem) -> Self {
        OrderItemResponse {
            product_id: item.product_id.as_uuid(),
            merchant_id: item.merchant_id.as_uuid(),
            name: item.product_name.clone(),
            quantity: item.quantity.get(),
            captured_quantity: item.captured,
            unit_price: item.unit_price.to_major_string(),
            line_total: item.line_total().map(|m| m.to_major_string()).unwrap_or_default(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RefundResponse {
    pub id: Uuid,
    pub order_id: Uuid,
    pub merchant_id: Uuid,
    pub amount: String,
    pub currency: String,
    /// pending, succeeded or failed.
    pub status: String,
    pub reason: String,
    pub provider_refund_id: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<&Refund> for RefundResponse {
    fn from(r: &Refund) -> Self {
        RefundResponse {
            id: r.id().as_uuid(),
            order_id: r.order_id().as_uuid(),
            merchant_id: r.merchant_id().as_uuid(),
            amount: r.amount().to_major_string(),
            currency: r.amount().currency().code().to_owned(),
            status: r.status().as_str().to_owned(),
            reason: r.reason().to_owned(),
            provider_refund_id: r.provider_refund_id().map(str::to_owned),
            created_at: timestamp(r.created_at()),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RefundList {
    pub refunds: Vec<RefundResponse>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderResponse {
    pub id: Uuid,
    pub buyer_id: Uuid,
    /// created, payment_pending, authorised, paid, fulfilled, cancelled, partially_refunded or
    /// refunded.
    pub status: String,
    pub payment_method: PaymentMethodChoice,
    /// `manual`: each merchant captures its part of the held wallet funds.
    pub capture: CaptureChoice,
    pub total: String,
    pub refunded: String,
    pub currency: String,
    pub items: Vec<OrderItemResponse>,
    /// The card payment, for card orders.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment: Option<PaymentResponse>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refunds: Option<Vec<RefundResponse>>,
    /// For manual capture (in an order's details): the hold of each merchant's part, with what it
    /// captured and when it expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorisations: Option<Vec<HoldResponse>>,
    /// In an order's details: every status change and note, oldest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<OrderHistoryEntry>>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

/// One step of an order's history, as everyone who sees the order may read it.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderHistoryEntry {
    pub from: Option<String>,
    /// The status reached (the same as `from` for a note, such as a declined payment).
    pub to: String,
    /// Who acted, without naming them: `buyer`, `merchant`, `admin`, `system` or
    /// `gateway:<provider>`.
    pub by: String,
    pub reason: String,
    #[schema(format = DateTime)]
    pub at: String,
}

impl From<&Order> for OrderResponse {
    fn from(order: &Order) -> Self {
        OrderResponse {
            id: order.id().as_uuid(),
            buyer_id: order.buyer_id().as_uuid(),
            status: order.status().as_str().to_owned(),
            payment_method: match order.payment_method() {
                domain::order::PaymentMethod::Wallet => PaymentMethodChoice::Wallet,
                domain::order::PaymentMethod::Card => PaymentMethodChoice::Card,
            },
            capture: match order.capture_method() {
                domain::order::CaptureMethod::Automatic => CaptureChoice::Automatic,
                domain::order::CaptureMethod::Manual => CaptureChoice::Manual,
            },
            total: order.total().to_major_string(),
            refunded: order.refunded().to_major_string(),
            currency: order.currency().code().to_owned(),
            items: order.items().iter().map(OrderItemResponse::from).collect(),
            payment: None,
            refunds: None,
            authorisations: None,
            history: None,
            created_at: timestamp(order.created_at()),
            updated_at: timestamp(order.updated_at()),
        }
    }
}

impl From<&Checkout> for OrderResponse {
    fn from(checkout: &Checkout) -> Self {
        OrderResponse {
            payment: checkout.payment.as_ref().map(PaymentResponse::from),
            ..OrderResponse::from(&checkout.order)
        }
    }
}

impl From<&OrderDetails> for OrderResponse {
    fn from(details: &OrderDetails) -> Self {
        OrderResponse {
            payment: details.payment.as_ref().map(PaymentResponse::from),
            refunds: Some(details.refunds.iter().map(RefundResponse::from).collect()),
            authorisations: (!details.holds.is_empty()).then(|| details.holds.iter().map(HoldResponse::from).collect()),
            history: Some(
                details
                    .history
                    .iter()
                    .map(|change| OrderHistoryEntry {
                        from: change.from.map(|status| status.as_str().to_owned()),
                        to: change.to.as_str().to_owned(),
                        by: change.actor.party_to(&details.order),
                        reason: change.reason.clone(),
                        at: timestamp(change.at),
                    })
                    .collect(),
            ),
            ..OrderResponse::from(&details.order)
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CallResponse {
    pub id: Uuid,
    pub caller_id: Uuid,
    pub receiver_id: Uuid,
    pub rate_per_minute: String,
    pub currency: String,
    /// active or ended.
    pub status: String,
    /// Minutes reserved at the start; the call should end before they run out.
    pub authorized_minutes: u32,
    pub max_duration_seconds: u64,
    pub billed_minutes: u32,
    pub charged: String,
    #[schema(format = DateTime)]
    pub started_at: String,
    #[schema(format = DateTime)]
    pub ended_at: Option<String>,
}

impl From<&CallSession> for CallResponse {
    fn from(c: &CallSession) -> Self {
        CallResponse {
            id: c.id.as_uuid(),
            caller_id: c.caller_id.as_uuid(),
            receiver_id: c.receiver_id.as_uuid(),
            rate_per_minute: c.rate_per_minute.to_major_string(),
            currency: c.rate_per_minute.currency().code().to_owned(),
            status: c.status.as_str().to_owned(),
            authorized_minutes: c.authorized_minutes,
            max_duration_seconds: u64::from(c.authorized_minutes) * 60,
            billed_minutes: c.billed_minutes,
            charged: c.charged.to_major_string(),
            started_at: timestamp(c.started_at),
            ended_at: c.ended_at.map(timestamp),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdjustmentResponse {
    pub transaction_id: Uuid,
    pub user_id: Uuid,
    pub amount: String,
    pub currency: String,
    pub balance_after: String,
    pub reason: String,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<&Adjustment> for AdjustmentResponse {
    fn from(a: &Adjustment) -> Self {
        AdjustmentResponse {
            transaction_id: a.transaction_id.as_uuid(),
            user_id: a.user_id.as_uuid(),
            amount: a.amount.to_major_string(),
            currency: a.amount.currency().code().to_owned(),
            balance_after: a.balance_after.to_major_string(),
            reason: a.reason.clone(),
            created_at: timestamp(a.created_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CurrencyTotal {
    pub currency: String,
    /// Sum of every posting in minor units; zero when the books balance.
    pub total_minor: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerReportResponse {
    /// Whether every invariant holds.
    pub ok: bool,
    pub problems: Vec<String>,
    /// Merchant wallets whose all-time statement was checked against their postings and balance.
    pub statements_checked: u64,
    pub transaction_count: u64,
    pub posting_count: u64,
    pub wallet_count: u64,
    pub totals: Vec<CurrencyTotal>,
}

impl From<&LedgerReport> for LedgerReportResponse {
    fn from(report: &LedgerReport) -> Self {
        LedgerReportResponse {
            ok: report.is_ok(),
            problems: report.problems.clone(),
            statements_checked: report.statements_checked,
            transaction_count: report.audit.transaction_count,
            posting_count: report.audit.posting_count,
            wallet_count: report.audit.wallet_count,
            totals: report
                .audit
                .totals_by_currency
                .iter()
                .map(|(currency, total)| CurrencyTotal {
                    currency: currency.code().to_owned(),
                    total_minor: total.to_string(),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatusChangeResponse {
    pub order_id: Uuid,
    pub from: Option<String>,
    pub to: String,
    /// `user:<id>`, `system` or `gateway:<provider>`.
    pub actor: String,
    pub reason: String,
    #[schema(format = DateTime)]
    pub at: String,
}

impl From<&StatusChange> for StatusChangeResponse {
    fn from(c: &StatusChange) -> Self {
        StatusChangeResponse {
            order_id: c.order_id.as_uuid(),
            from: c.from.map(|s| s.as_str().to_owned()),
            to: c.to.as_str().to_owned(),
            actor: c.actor.to_string(),
            reason: c.reason.clone(),
            at: timestamp(c.at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FollowUpResponse {
    /// `refund` (a card refund to send), `late_success_refund` (a payment to give back) or
    /// `recover_shortfall` (a merchant owes what their wallet could not cover).
    pub kind: String,
    /// The refund's or payment's id.
    pub subject_id: Uuid,
    /// pending, done or stuck.
    pub state: String,
    pub attempts: u32,
    #[schema(format = DateTime)]
    pub next_attempt_at: String,
    pub last_error: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl From<&FollowUp> for FollowUpResponse {
    fn from(f: &FollowUp) -> Self {
        FollowUpResponse {
            kind: f.task.kind().to_owned(),
            subject_id: f.task.subject(),
            state: f.state.as_str().to_owned(),
            attempts: f.attempts,
            next_attempt_at: timestamp(f.next_attempt_at),
            last_error: f.last_error.clone(),
            created_at: timestamp(f.created_at),
            updated_at: timestamp(f.updated_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookAck {
    pub received: bool,
    /// applied, duplicate, ignored, late_success or refused (a verified event that is not ours
    /// to apply, such as a checkout session we did not create).
    pub outcome: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HealthResponse {
    /// ok, degraded or unavailable.
    pub status: String,
    /// Each configured dependency: ok, degraded or unavailable.
    pub checks: std::collections::BTreeMap<String, String>,
    /// Readiness only: each configured card provider, as this process's latest real calls to
    /// it found it (the probe itself calls no provider).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub providers: std::collections::BTreeMap<String, ProviderHealthResponse>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderHealthResponse {
    pub configured: bool,
    /// unknown (no call yet), ok, or failing (the latest call got no usable answer).
    pub state: String,
    /// The provider's latest answer (refusing one of our requests is an answer).
    pub last_success_at: Option<String>,
    pub last_error_at: Option<String>,
    pub last_error: Option<String>,
}

impl From<&application::ports::gateway::ProviderHealth> for ProviderHealthResponse {
    fn from(health: &application::ports::gateway::ProviderHealth) -> Self {
        ProviderHealthResponse {
            configured: true,
            state: health.state().to_owned(),
            last_success_at: health.last_success_at.map(timestamp),
            last_error_at: health.last_error_at.map(timestamp),
            last_error: health.last_error.clone(),
        }
    }
}

/// The card providers this server offers.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProvidersResponse {
    pub providers: Vec<ProviderResponse>,
    /// Per currency, the providers a card payment goes to, the first unless the request names
    /// one (`provider`).
    pub routes: Vec<ProviderRouteResponse>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderResponse {
    /// The name a request's `provider` field takes.
    pub name: String,
    /// ISO 4217 codes.
    pub currencies: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderRouteResponse {
    pub currency: String,
    /// In order of preference.
    pub providers: Vec<String>,
}

// ---------------------------------------------------------------- outbound webhooks

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookEndpointRequest {
    /// Where deliveries are POSTed: `https`, or plain `http` where the server allows it (demo mode,
    /// `WEBHOOK_ALLOW_HTTP`).
    #[schema(example = "https://merchant.example/payments/webhooks")]
    pub url: String,
    /// The event types to receive (see `GET /api/v1/webhook-event-types`), or `["*"]` for all.
    #[serde(default = "all_events")]
    pub events: Vec<String>,
    #[serde(default)]
    pub description: String,
}

fn all_events() -> Vec<String> {
    vec!["*".to_owned()]
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookEndpointPatch {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub description: Option<String>,
    /// Enabling an endpoint the platform disabled starts it afresh.
    pub enabled: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollSecretRequest {
    /// How long the old secret keeps signing too, 0 to 604800 seconds (default a day).
    #[serde(default = "default_overlap", deserialize_with = "integral")]
    pub overlap_seconds: i64,
}

fn default_overlap() -> i64 {
    86_400
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeliverRangeRequest {
    /// Events that occurred at or after this time (RFC 3339)...
    #[schema(format = DateTime)]
    pub from: String,
    /// ...and before this one, at most 30 days later.
    #[schema(format = DateTime)]
    pub to: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookEndpointResponse {
    pub id: Uuid,
    /// The merchant who owns it; none for the platform's.
    pub owner_id: Option<Uuid>,
    pub url: String,
    /// The event types it receives; `["*"]` for all.
    pub events: Vec<String>,
    pub description: String,
    pub enabled: bool,
    /// Why the platform disabled it, if it did.
    pub disabled_reason: Option<String>,
    /// Since when every delivery has failed.
    #[schema(format = DateTime)]
    pub failing_since: Option<String>,
    /// The signing secret: only in the answer that creates the endpoint or rolls its secret.
    pub secret: Option<String>,
    /// Until when the previous secret signs too, after a roll.
    #[schema(format = DateTime)]
    pub previous_secret_expires_at: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl WebhookEndpointResponse {
    /// The endpoint as listed: without its secret.
    pub fn hidden(endpoint: &WebhookEndpoint) -> WebhookEndpointResponse {
        WebhookEndpointResponse {
            id: endpoint.id.as_uuid(),
            owner_id: match endpoint.owner {
                EndpointOwner::Platform => None,
                EndpointOwner::Merchant(user) => Some(user.as_uuid()),
            },
            url: endpoint.url.as_str().to_owned(),
            events: endpoint.events.to_list(),
            description: endpoint.description.clone(),
            enabled: endpoint.enabled,
            disabled_reason: endpoint.disabled_reason.clone(),
            failing_since: endpoint.failing_since.map(timestamp),
            secret: None,
            previous_secret_expires_at: endpoint.retiring.as_ref().map(|retiring| timestamp(retiring.until)),
            created_at: timestamp(endpoint.created_at),
            updated_at: timestamp(endpoint.updated_at),
        }
    }

    /// The endpoint with its current secret, shown once.
    pub fn with_secret(endpoint: &WebhookEndpoint) -> WebhookEndpointResponse {
        WebhookEndpointResponse {
            secret: Some(endpoint.secret.clone()),
            ..WebhookEndpointResponse::hidden(endpoint)
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookAttemptResponse {
    #[schema(format = DateTime)]
    pub at: String,
    /// The endpoint's HTTP status; none when it did not answer.
    pub status_code: Option<u16>,
    pub latency_ms: u32,
    /// The start of the answer's body, or why there was no answer.
    pub response: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookDeliveryResponse {
    pub id: Uuid,
    pub event_id: Uuid,
    pub endpoint_id: Uuid,
    pub event_type: String,
    /// pending, succeeded or failed.
    pub status: String,
    pub attempts: u32,
    /// When a pending delivery is attempted next.
    #[schema(format = DateTime)]
    pub next_attempt_at: String,
    pub last_attempt: Option<WebhookAttemptResponse>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl From<&WebhookDelivery> for WebhookDeliveryResponse {
    fn from(d: &WebhookDelivery) -> Self {
        WebhookDeliveryResponse {
            id: d.id.as_uuid(),
            event_id: d.event_id.as_uuid(),
            endpoint_id: d.endpoint_id.as_uuid(),
            event_type: d.event_type.clone(),
            status: d.status.as_str().to_owned(),
            attempts: d.attempts,
            next_attempt_at: timestamp(d.next_attempt_at),
            last_attempt: d.last_attempt.as_ref().map(|a| WebhookAttemptResponse {
                at: timestamp(a.at),
                status_code: a.status_code,
                latency_ms: a.latency_ms,
                response: a.response.clone(),
            }),
            created_at: timestamp(d.created_at),
            updated_at: timestamp(d.updated_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RedeliveryResponse {
    /// How many deliveries were queued again.
    pub requeued: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookEventTypeResponse {
    /// The name endpoints subscribe to.
    #[serde(rename = "type")]
    pub event_type: String,
    pub description: String,
    /// The attributes of the event's `data.object` (all strings); those ending in `?` may be
    /// absent.
    pub object: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldRequestBody {
    /// The merchant the caller authorises to capture.
    pub merchant_id: Uuid,
    #[schema(example = "40.00")]
    pub amount: String,
    #[schema(example = "USD")]
    pub currency: String,
    /// What the hold is for, shown to both parties.
    pub description: Option<String>,
    /// How long the merchant may capture, 60 to 2592000 seconds (default `HOLD_TTL_SECS`).
    pub expires_in_seconds: Option<i64>,
    /// Whose wallet: only the caller's own. A merchant naming a customer is refused with
    /// `consent_required`: the customer places the hold, naming the merchant.
    pub customer_id: Option<Uuid>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaptureRequestBody {
    /// How much of what remains to take (all of it when absent), in the hold's currency.
    #[schema(example = "15.00")]
    pub amount: Option<String>,
    /// Releases whatever remains after this capture; otherwise the hold stays open for more.
    #[serde(default, rename = "final")]
    pub final_capture: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HoldResponse {
    pub id: Uuid,
    /// pending (capturable), captured, released (voided) or expired.
    pub status: String,
    pub merchant_id: Uuid,
    /// The manual-capture order whose part this hold pays for, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<Uuid>,
    pub amount: String,
    pub currency: String,
    /// Captured so far.
    pub captured: String,
    /// Still held for the merchant to capture.
    pub remaining: String,
    pub description: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
    #[schema(format = DateTime)]
    pub settled_at: Option<String>,
}

impl From<&domain::wallet::Hold> for HoldResponse {
    fn from(hold: &domain::wallet::Hold) -> Self {
        HoldResponse {
            id: hold.id.as_uuid(),
            status: hold.status.as_str().to_owned(),
            merchant_id: hold.payee.map(|payee| payee.as_uuid()).unwrap_or_default(),
            order_id: hold.order_id.map(|order| order.as_uuid()),
            amount: hold.amount.to_major_string(),
            currency: hold.amount.currency().code().to_owned(),
            captured: hold.captured.to_major_string(),
            remaining: hold.remaining().to_major_string(),
            description: hold.reference.clone(),
            created_at: timestamp(hold.created_at),
            expires_at: timestamp(hold.expires_at),
            settled_at: hold.settled_at.map(timestamp),
        }
    }
}

/// One line of a statement.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatementLineResponse {
    /// gross_sales, refunds, purchases, refunds_received, top_ups, transfers_in, transfers_out,
    /// withdrawals, call_earnings, call_charges, adjustments or reversals.
    #[schema(example = "gross_sales")]
    pub line: String,
    /// Signed: negative when money left the wallet.
    #[schema(example = "120.00")]
    pub amount: String,
    /// How many postings the line sums.
    pub postings: u64,
}

/// A merchant's statement for one currency over `[from, to)`, computed from the ledger: the
/// opening balance plus every line is the closing balance, exactly. The platform charges no fees,
/// so there is no fee line.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatementResponse {
    pub merchant_id: Uuid,
    #[schema(example = "USD")]
    pub currency: String,
    /// Start of the period (included).
    #[schema(format = DateTime)]
    pub from: String,
    /// End of the period (excluded).
    #[schema(format = DateTime)]
    pub to: String,
    #[schema(example = "800.00")]
    pub opening_balance: String,
    /// What buyers paid for orders in the period.
    #[schema(example = "2000.00")]
    pub gross_sales: String,
    /// What was refunded to buyers in the period (zero or negative).
    #[schema(example = "-1000.00")]
    pub refunds: String,
    /// Gross sales plus refunds.
    #[schema(example = "1000.00")]
    pub net_sales: String,
    /// The sum of every line: closing less opening balance.
    #[schema(example = "600.00")]
    pub net_change: String,
    #[schema(example = "1400.00")]
    pub closing_balance: String,
    /// Every line, in a fixed order, those without postings included.
    pub lines: Vec<StatementLineResponse>,
}

impl StatementResponse {
    pub fn new(statement: &Statement, from: OffsetDateTime, to: OffsetDateTime) -> StatementResponse {
        StatementResponse {
            merchant_id: statement.merchant_id().as_uuid(),
            currency: statement.currency().code().to_owned(),
            from: timestamp(from),
            to: timestamp(to),
            opening_balance: statement.opening_balance().to_major_string(),
            gross_sales: statement.line(StatementLine::GrossSales).amount.to_major_string(),
            refunds: statement.line(StatementLine::Refunds).amount.to_major_string(),
            net_sales: statement.net_sales().to_major_string(),
            net_change: statement.net_change().to_major_string(),
            closing_balance: statement.closing_balance().to_major_string(),
            lines: statement
                .lines()
                .iter()
                .map(|line| StatementLineResponse {
                    line: line.line.as_str().to_owned(),
                    amount: line.amount.to_major_string(),
                    postings: line.postings,
                })
                .collect(),
        }
    }
}
