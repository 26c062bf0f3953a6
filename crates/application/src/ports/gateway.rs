//! The card gateway port: hosted checkout sessions, refunds, and verified webhook events.
//!
//! Gateways are chosen at run time from configuration, so this port is object safe
//! (`Arc<dyn PaymentGateway>`). Nothing provider-specific crosses it: adapters translate the
//! provider's JSON into `GatewayEvent` and the provider's errors into `GatewayError`.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use domain::ids::{PaymentId, RefundId};
use domain::money::{Currency, Money};
use domain::payment::ProviderName;
use time::OffsetDateTime;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutLine {
    pub name: String,
    pub unit_amount: Money,
    pub quantity: u32,
}

/// What the gateway needs to open a hosted checkout page for one payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutRequest {
    pub payment_id: PaymentId,
    pub amount: Money,
    pub description: String,
    pub lines: Vec<CheckoutLine>,
    pub customer_email: String,
    pub expires_at: OffsetDateTime,
    /// Sent as the provider's idempotency key, so a retried call opens no second session.
    pub idempotency_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutSession {
    pub session_id: String,
    pub checkout_url: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    pub refund_id: RefundId,
    pub payment_id: PaymentId,
    /// The provider's id of the payment being refunded (Stripe `pi_...`, Monnify transaction ref).
    pub provider_payment_id: String,
    pub amount: Money,
    pub reason: String,
    pub idempotency_key: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayRefundStatus {
    Pending,
    Succeeded,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayRefund {
    pub provider_refund_id: String,
    pub status: GatewayRefundStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    #[error("the card was declined: {0}")]
    Declined(String),
    #[error("the gateway refused the request: {0}")]
    InvalidRequest(String),
    #[error("the gateway is rate limiting us")]
    RateLimited,
    #[error("the gateway is unavailable: {0}")]
    Unavailable(String),
    #[error("the gateway rejected our credentials")]
    Authentication,
    /// The gateway's answer could not be read: the request may or may not have taken effect.
    #[error("unexpected gateway answer: {0}")]
    Unexpected(String),
}

impl GatewayError {
    /// Whether asking again (with the same provider idempotency key) may succeed: the gateway
    /// was busy or down, or answered something unreadable. A refusal, a decline or bad
    /// credentials will not pass by themselves.
    pub fn may_pass(&self) -> bool {
        match self {
            GatewayError::RateLimited | GatewayError::Unavailable(_) | GatewayError::Unexpected(_) => true,
            GatewayError::Declined(_) | GatewayError::InvalidRequest(_) | GatewayError::Authentication => false,
        }
    }
}

/// What closing a hosted checkout found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckoutClosure {
    /// Closed now: it can no longer be paid.
    Closed,
    /// It was closed already (expired or declined).
    AlreadyClosed,
    /// The payer completed it: the payment is on its way, so it cannot be closed.
    Completed,
    /// The provider offers no way to close a checkout.
    NotSupported,
}

/// Headers of an incoming webhook, names lower-cased.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookHeaders(BTreeMap<String, String>);

impl WebhookHeaders {
    pub fn new(pairs: impl IntoIterator<Item = (String, String)>) -> WebhookHeaders {
        WebhookHeaders(pairs.into_iter().map(|(name, value)| (name.to_ascii_lowercase(), value)).collect())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(&name.to_ascii_lowercase()).map(String::as_str)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("the signature header is missing")]
    MissingSignature,
    #[error("the signature header is malformed")]
    MalformedSignature,
    #[error("no signature matches the body")]
    BadSignature,
    #[error("the signature timestamp is outside the tolerance")]
    StaleTimestamp,
    #[error("the payload is not a valid event: {0}")]
    MalformedPayload(String),
}

/// Where an event points: at least one of these identifies our payment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PaymentReference {
    pub payment_id: Option<PaymentId>,
    pub session_id: Option<String>,
    pub provider_payment_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayEventKind {
    /// The customer paid (or, with `paid: false`, completed checkout with a payment that settles
    /// later).
    CheckoutCompleted {
        reference: PaymentReference,
        amount: Option<Money>,
        paid: bool,
    },
    /// A payment (possibly a delayed one) settled.
    PaymentSucceeded {
        reference: PaymentReference,
        amount: Option<Money>,
    },
    /// The payment failed for good.
    PaymentFailed { reference: PaymentReference, reason: String },
    /// One payment attempt failed; the customer may still retry within the same checkout.
    PaymentAttemptFailed { reference: PaymentReference, reason: String },
    /// The checkout session expired without payment.
    CheckoutExpired { reference: PaymentReference },
    /// Refunds of a payment, as the gateway now sees them.
    Refunded {
        reference: PaymentReference,
        refunds: Vec<RefundUpdate>,
        /// How much of the payment has been refunded in all, when the gateway says (Stripe's
        /// `amount_refunded`): refunds made outside the API (the provider's dashboard) are what
        /// it has refunded beyond the refunds we know of.
        refunded_total: Option<Money>,
    },
    /// A refund changed status.
    RefundUpdated(RefundUpdate),
    DisputeOpened {
        reference: PaymentReference,
        amount: Option<Money>,
        reason: String,
    },
    /// A well-formed, verified event of a type we do not act on.
    Ignored,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundUpdate {
    pub provider_refund_id: String,
    pub refund_id: Option<RefundId>,
    pub amount: Option<Money>,
    pub status: GatewayRefundStatus,
}

/// What the provider says about a payment when asked directly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfirmedPayment {
    pub paid: bool,
    pub amount: Option<Money>,
}

/// A verified event from a gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayEvent {
    pub event_id: String,
    pub event_type: String,
    pub kind: GatewayEventKind,
}

#[async_trait]
pub trait PaymentGateway: Send + Sync + std::fmt::Debug + 'static {
    fn provider(&self) -> &ProviderName;

    fn supports_currency(&self, currency: Currency) -> bool;

    /// Opens a hosted checkout page.
    ///
    /// # Errors
    /// `GatewayError` as translated from the provider; `RateLimited` and `Unavailable` are
    /// temporary, the others are not.
    async fn create_checkout(&self, request: CheckoutRequest) -> Result<CheckoutSession, GatewayError>;

    /// Refunds all or part of a payment.
    async fn refund(&self, request: RefundRequest) -> Result<GatewayRefund, GatewayError>;

    /// Asks the provider for the state of a payment an event claims succeeded. Providers whose
    /// webhooks carry no timestamp (Monnify) confirm every success this way before it is applied,
    /// which also defeats replays; `Ok(None)` means the signed event is enough (the default).
    async fn confirm_payment(&self, _reference: &PaymentReference) -> Result<Option<ConfirmedPayment>, GatewayError> {
        Ok(None)
    }

    /// Closes a hosted checkout we gave up on, so the customer can no longer pay it, and says how
    /// it ended. A provider without a way to close checkouts (the default) says so; a payment that
    /// still arrives is then handled as a late success and refunded.
    async fn expire_checkout(&self, _session_id: &str) -> Result<CheckoutClosure, GatewayError> {
        Ok(CheckoutClosure::NotSupported)
    }

    /// Verifies a webhook's signature over the raw body and parses it. Nothing in the body is
    /// trusted before the signature is.
    fn verify_webhook(&self, headers: &WebhookHeaders, body: &[u8], now: OffsetDateTime) -> Result<GatewayEvent, WebhookError>;
}

/// The gateways this server offers, by provider name.
#[derive(Debug, Clone, Default)]
pub struct Gateways {
    by_name: BTreeMap<ProviderName, Arc<dyn PaymentGateway>>,
    default_card: Option<ProviderName>,
}

impl Gateways {
    pub fn new() -> Gateways {
        Gateways::default()
    }

    /// Adds a gateway; the first added is the default for card payments.
    pub fn with(mut self, gateway: Arc<dyn PaymentGateway>) -> Gateways {
        let name = gateway.provider().clone();
        if self.default_card.is_none() {
            self.default_card = Some(name.clone());
        }
        self.by_name.insert(name, gateway);
        self
    }

    pub fn get(&self, provider: &ProviderName) -> Option<&Arc<dyn PaymentGateway>> {
        self.by_name.get(provider)
    }

    pub fn providers(&self) -> impl Iterator<Item = &ProviderName> {
        self.by_name.keys()
    }

    /// The gateway for a card payment in `currency`: the requested provider if given, otherwise
    /// the default one if it takes the currency, otherwise any that does.
    pub fn for_currency(&self, requested: Option<&ProviderName>, currency: Currency) -> Option<&Arc<dyn PaymentGateway>> {
        if let Some(name) = requested {
            return self.get(name).filter(|g| g.supports_currency(currency));
        }
        let default = self.default_card.as_ref().and_then(|name| self.get(name));
        default
            .filter(|g| g.supports_currency(currency))
            .or_else(|| self.by_name.values().find(|g| g.supports_currency(currency)))
    }
}

/// The state of a checkout on a hosted page this server serves itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostedSessionState {
    Open,
    Paid,
    Declined,
    Expired,
}

/// A checkout session as its hosted page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostedSession {
    pub session_id: String,
    pub payment_id: PaymentId,
    pub amount: Money,
    pub description: String,
    pub lines: Vec<CheckoutLine>,
    pub customer_email: String,
    pub expires_at: OffsetDateTime,
    pub state: HostedSessionState,
}

/// Why a choice on a hosted checkout page was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChoiceError {
    #[error("no such checkout session")]
    UnknownSession,
    #[error("this checkout was already {0}")]
    Closed(&'static str),
    #[error("this checkout has expired")]
    Expired,
    #[error("the payment could not be reported to the shop: {0}")]
    Delivery(GatewayError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomerChoice {
    Pay,
    Decline,
}

/// A gateway whose hosted checkout pages are served by this server (the demo-mode simulator). The
/// HTTP layer renders its pages; the customer's choice makes the gateway send us a signed webhook,
/// so the real webhook path runs end to end.
#[async_trait]
pub trait HostedCheckout: Send + Sync + std::fmt::Debug + 'static {
    fn session(&self, session_id: &str) -> Option<HostedSession>;

    /// Records the customer's choice and delivers the resulting webhook.
    async fn choose(&self, session_id: &str, choice: CustomerChoice) -> Result<HostedSession, ChoiceError>;
}
