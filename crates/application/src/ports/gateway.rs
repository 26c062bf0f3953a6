//! The card gateway port: hosted checkout sessions, refunds, and verified webhook events; and
//! the payout port (`PayoutGateway`) a gateway may also offer, through `PaymentGateway::payouts`.
//!
//! Gateways are chosen at run time from configuration, so this port is object safe
//! (`Arc<dyn PaymentGateway>`). Nothing provider-specific crosses it: adapters translate the
//! provider's JSON into `GatewayEvent` and the provider's errors into `GatewayError`.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use domain::ids::{PaymentId, RefundId, WithdrawalId};
use domain::money::{Currency, Money};
use domain::payment::ProviderName;
use time::OffsetDateTime;
use tracing::Instrument;

use crate::ports::system::Clock;

/// One line of a hosted checkout page, as the buyer sees it there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutLine {
    /// The product's name.
    pub name: String,
    /// The price of one unit.
    pub unit_amount: Money,
    /// How many units.
    pub quantity: u32,
}

/// What the gateway needs to open a hosted checkout page for one payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutRequest {
    /// The payment the checkout is for; the adapter puts it in the provider's metadata, so events
    /// name it.
    pub payment_id: PaymentId,
    /// What the provider is to take.
    pub amount: Money,
    /// What the page says the payment is for (an order, a top-up).
    pub description: String,
    /// The order's lines; empty for a top-up.
    pub lines: Vec<CheckoutLine>,
    /// The payer's address, for the provider's receipt.
    pub customer_email: String,
    /// When the checkout is to stop taking payment (the payment's expiry).
    pub expires_at: OffsetDateTime,
    /// Sent as the provider's idempotency key, so a retried call opens no second session.
    pub idempotency_key: String,
}

/// A hosted checkout the provider opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutSession {
    /// The provider's id of the session (Stripe's `cs_...`).
    pub session_id: String,
    /// The page the buyer is sent to.
    pub checkout_url: String,
}

/// What the gateway needs to refund a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    /// Our refund, put in the provider's metadata so refund events name it.
    pub refund_id: RefundId,
    /// Our payment being refunded.
    pub payment_id: PaymentId,
    /// The provider's id of the payment being refunded (Stripe `pi_...`, Monnify transaction ref).
    pub provider_payment_id: String,
    /// What to give back, at most what is left of the payment.
    pub amount: Money,
    /// Why, as the person who asked put it.
    pub reason: String,
    /// `refund-<refund id>`, the same on every attempt, so a retry never refunds twice.
    pub idempotency_key: String,
}

/// A refund as the gateway reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayRefundStatus {
    /// Accepted, not finished; a webhook (or the job asking again) tells the outcome.
    Pending,
    /// The money went back.
    Succeeded,
    /// It will not happen.
    Failed,
}

/// The gateway's answer to a refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayRefund {
    /// The provider's id of the refund.
    pub provider_refund_id: String,
    /// How far it got.
    pub status: GatewayRefundStatus,
}

/// A provider's failure or refusal, translated by its adapter. Whether asking again may help is
/// [`may_pass`](GatewayError::may_pass).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// The payer's card or bank refused.
    #[error("the card was declined: {0}")]
    Declined(String),
    /// The provider refused what we asked (a bad amount, an unknown payment...).
    #[error("the gateway refused the request: {0}")]
    InvalidRequest(String),
    /// Too many requests; may pass.
    #[error("the gateway is rate limiting us")]
    RateLimited,
    /// Down or unreachable, or timed out; may pass, and the request may or may not have taken effect.
    #[error("the gateway is unavailable: {0}")]
    Unavailable(String),
    /// The provider refused our key: a configuration fault.
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
    /// Headers as the HTTP layer received them.
    pub fn new(pairs: impl IntoIterator<Item = (String, String)>) -> WebhookHeaders {
        WebhookHeaders(pairs.into_iter().map(|(name, value)| (name.to_ascii_lowercase(), value)).collect())
    }

    /// A header's value, whatever the case of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(&name.to_ascii_lowercase()).map(String::as_str)
    }
}

/// Why a webhook's body is not accepted as the provider's. The HTTP layer answers 400 for all
/// of these, and nothing in the body is used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// The provider's signature header is absent.
    #[error("the signature header is missing")]
    MissingSignature,
    /// The header cannot be read as the provider's signature format.
    #[error("the signature header is malformed")]
    MalformedSignature,
    /// No signature made with our secret matches the raw body.
    #[error("no signature matches the body")]
    BadSignature,
    /// The signed timestamp is too old or in the future: a replay, or a clock far off.
    #[error("the signature timestamp is outside the tolerance")]
    StaleTimestamp,
    /// The signature holds but the body is not an event the adapter can read.
    #[error("the payload is not a valid event: {0}")]
    MalformedPayload(String),
}

/// Where an event points: at least one of these identifies our payment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PaymentReference {
    /// Our payment id, if the event carries it (in metadata or a reference).
    pub payment_id: Option<PaymentId>,
    /// The provider's checkout session id.
    pub session_id: Option<String>,
    /// The provider's payment id.
    pub provider_payment_id: Option<String>,
}

/// What a verified provider event means, in provider-neutral terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayEventKind {
    /// The customer paid (or, with `paid: false`, completed checkout with a payment that settles
    /// later).
    CheckoutCompleted {
        /// The payment the checkout was for.
        reference: PaymentReference,
        /// What was paid, if the event says.
        amount: Option<Money>,
        /// Whether the money was taken now (`false`: it settles later, and a later event says).
        paid: bool,
    },
    /// A payment (possibly a delayed one) settled.
    PaymentSucceeded {
        /// The payment.
        reference: PaymentReference,
        /// What was paid, if the event says.
        amount: Option<Money>,
    },
    /// The payment failed for good.
    PaymentFailed {
        /// The payment.
        reference: PaymentReference,
        /// The provider's reason.
        reason: String,
    },
    /// One payment attempt failed; the customer may still retry within the same checkout.
    PaymentAttemptFailed {
        /// The payment.
        reference: PaymentReference,
        /// The provider's reason.
        reason: String,
    },
    /// The checkout session expired without payment.
    CheckoutExpired {
        /// The payment whose checkout expired.
        reference: PaymentReference,
    },
    /// Refunds of a payment, as the gateway now sees them.
    Refunded {
        /// The payment refunded.
        reference: PaymentReference,
        /// Each refund the event lists.
        refunds: Vec<RefundUpdate>,
        /// How much of the payment has been refunded in all, when the gateway says (Stripe's
        /// `amount_refunded`): refunds made outside the API (the provider's dashboard) are what
        /// it has refunded beyond the refunds we know of.
        refunded_total: Option<Money>,
    },
    /// A refund changed status.
    RefundUpdated(RefundUpdate),
    /// A refund of a payment changed status, named only by the payment and the amount (providers
    /// whose refund events carry neither our refund id nor theirs, like Paystack's): it settles
    /// our pending refund of that payment and amount, the one with this provider id if any, else
    /// the oldest.
    PaymentRefundUpdated {
        /// The payment refunded.
        reference: PaymentReference,
        /// The refund's amount.
        amount: Money,
        /// Its new status.
        status: GatewayRefundStatus,
        /// The provider's id of the refund, if it gives one.
        provider_refund_id: Option<String>,
    },
    /// The payer disputed the payment with their bank.
    DisputeOpened {
        /// The payment disputed.
        reference: PaymentReference,
        /// The amount disputed, if the event says.
        amount: Option<Money>,
        /// The provider's reason code.
        reason: String,
    },
    /// A well-formed, verified event of a type we do not act on.
    Ignored,
}

impl GatewayEventKind {
    /// The payment the event is about, when it names one.
    pub fn reference(&self) -> Option<&PaymentReference> {
        match self {
            GatewayEventKind::CheckoutCompleted { reference, .. }
            | GatewayEventKind::PaymentSucceeded { reference, .. }
            | GatewayEventKind::PaymentFailed { reference, .. }
            | GatewayEventKind::PaymentAttemptFailed { reference, .. }
            | GatewayEventKind::CheckoutExpired { reference }
            | GatewayEventKind::Refunded { reference, .. }
            | GatewayEventKind::PaymentRefundUpdated { reference, .. }
            | GatewayEventKind::DisputeOpened { reference, .. } => Some(reference),
            GatewayEventKind::RefundUpdated(_) | GatewayEventKind::Ignored => None,
        }
    }
}

/// One refund as a provider event reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundUpdate {
    /// The provider's id of the refund.
    pub provider_refund_id: String,
    /// Our refund id, if the provider carried it back (from our metadata).
    pub refund_id: Option<RefundId>,
    /// The refund's amount, if the event says.
    pub amount: Option<Money>,
    /// Its status.
    pub status: GatewayRefundStatus,
}

/// What the provider says about a payment when asked directly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfirmedPayment {
    /// Whether the provider has taken the money.
    pub paid: bool,
    /// How much it took, if it says.
    pub amount: Option<Money>,
}

/// A verified event from a gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayEvent {
    /// The provider's own id of the event, which the inbox dedupes on.
    pub event_id: String,
    /// The provider's event type, kept for the inbox and logs.
    pub event_type: String,
    /// What it means.
    pub kind: GatewayEventKind,
}

/// A card payment provider: hosted checkouts, refunds, and verified webhook events. Object safe
/// (used as `Arc<dyn PaymentGateway>`), because gateways are chosen from configuration at run time.
#[async_trait]
pub trait PaymentGateway: Send + Sync + std::fmt::Debug + 'static {
    /// The provider's name, which keys its clearing account, its webhook path and its payments.
    fn provider(&self) -> &ProviderName;

    /// Whether the provider takes card payments in `currency`.
    fn supports_currency(&self, currency: Currency) -> bool;

    /// Opens a hosted checkout page.
    ///
    /// # Errors
    /// `GatewayError` as translated from the provider; `RateLimited` and `Unavailable` are
    /// temporary, the others are not.
    async fn create_checkout(&self, request: CheckoutRequest) -> Result<CheckoutSession, GatewayError>;

    /// Refunds all or part of a payment.
    ///
    /// # Errors
    /// `GatewayError` as translated from the provider; `RateLimited`, `Unavailable` and `Unexpected`
    /// may pass (ask again under the same idempotency key), the others are refusals.
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

    /// The provider's payouts, if it offers them (none by default: withdrawals are then settled
    /// by hand).
    fn payouts(&self) -> Option<&dyn PayoutGateway> {
        None
    }
}

/// What a provider is asked to pay out: a withdrawal's amount, to its destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayoutRequest {
    /// The withdrawal paid out.
    pub withdrawal_id: WithdrawalId,
    /// What to pay.
    pub amount: Money,
    /// Where to pay it, as the user gave it.
    pub destination: String,
    /// `payout-<withdrawal id>`, the same on every attempt: a provider that already took the
    /// payout answers with it again instead of paying twice.
    pub idempotency_key: String,
}

/// How far a payout got, as the provider says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayoutStatus {
    /// Accepted, not finished: ask again later (under the same key) for the outcome.
    Pending,
    /// The money reached the destination.
    Paid,
    /// It will not happen, and why.
    Failed(String),
}

/// The provider's answer to a payout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payout {
    /// The provider's id of the payout.
    pub provider_reference: String,
    /// How far it got.
    pub status: PayoutStatus,
}

/// Payouts to outside destinations, offered by some gateways (`PaymentGateway::payouts`).
#[async_trait]
pub trait PayoutGateway: Send + Sync + std::fmt::Debug + 'static {
    /// Whether the provider pays out in `currency`.
    fn supports_payout_currency(&self, currency: Currency) -> bool;

    /// Pays out, or reports the payout made earlier under the same idempotency key.
    ///
    /// # Errors
    /// `GatewayError` as translated from the provider: `RateLimited`, `Unavailable` and
    /// `Unexpected` may pass (the payout may or may not have been made: ask again under the same
    /// key); the others are refusals, and the payout was not made.
    async fn create_payout(&self, request: PayoutRequest) -> Result<Payout, GatewayError>;
}

/// Why no gateway was chosen for a card payment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// No configured gateway takes the currency.
    #[error("no card gateway takes {0}")]
    NoGateway(Currency),
    /// The request named a provider this server has not configured.
    #[error("the card provider {requested} is not configured on this server (configured: {configured})")]
    NotConfigured {
        /// The provider asked for.
        requested: ProviderName,
        /// The configured providers, comma-separated, to say what may be asked for.
        configured: String,
    },
    /// The named provider does not take the currency.
    #[error("the card provider {provider} does not take {currency}")]
    CurrencyNotTaken {
        /// The provider asked for.
        provider: ProviderName,
        /// The payment's currency.
        currency: Currency,
    },
}

/// Which providers a currency's card payments go to, in order of preference. A provider listed
/// but not configured is skipped; a currency whose listed providers are all missing falls back
/// to any configured gateway that takes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routes(BTreeMap<Currency, Vec<ProviderName>>);

impl Routes {
    /// No routes: every currency goes to the default gateway, or any that takes it.
    pub fn new() -> Routes {
        Routes::default()
    }

    /// Sets (replaces) the providers of `currency`.
    pub fn route(mut self, currency: Currency, providers: Vec<ProviderName>) -> Routes {
        self.0.insert(currency, providers);
        self
    }

    /// The providers listed for `currency`, most preferred first; empty when none are.
    pub fn providers_for(&self, currency: Currency) -> &[ProviderName] {
        self.0.get(&currency).map_or(&[], Vec::as_slice)
    }

    /// Every currency's route.
    pub fn iter(&self) -> impl Iterator<Item = (&Currency, &Vec<ProviderName>)> {
        self.0.iter()
    }
}

/// What readiness reports about a provider: the outcome of this process's latest real calls
/// (no probe calls the provider). `last_success_at` is its latest answer (a refusal of one of our
/// requests is an answer); `last_error` its latest failure or refusal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderHealth {
    /// When the provider last answered.
    pub last_success_at: Option<OffsetDateTime>,
    /// When a call last failed (or was refused).
    pub last_error_at: Option<OffsetDateTime>,
    /// That failure, cut to 300 characters.
    pub last_error: Option<String>,
}

impl ProviderHealth {
    /// `unknown` before any call, `failing` while the latest call failed, `ok` otherwise.
    pub fn state(&self) -> &'static str {
        match (self.last_success_at, self.last_error_at) {
            (None, None) => "unknown",
            (Some(success), Some(error)) if error > success => "failing",
            (None, Some(_)) => "failing",
            _ => "ok",
        }
    }
}

/// A gateway whose calls' outcomes are recorded for readiness, each call in a span of its own
/// (`gateway_call`, a client span named for the provider and operation: `stripe refund`), so
/// every provider's calls are traced alike.
struct Monitored {
    inner: Arc<dyn PaymentGateway>,
    clock: Arc<dyn Clock>,
    health: Arc<Mutex<ProviderHealth>>,
}

impl std::fmt::Debug for Monitored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitored").field("inner", &self.inner).finish_non_exhaustive()
    }
}

/// The span of one call to a provider.
fn call_span(provider: &ProviderName, operation: &'static str) -> tracing::Span {
    tracing::info_span!(
        "gateway_call",
        otel.name = %format_args!("{provider} {operation}"),
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        provider = %provider,
        operation,
        error = tracing::field::Empty,
    )
}

/// Runs a call to `provider` in its span, and marks the span failed with the error, if any.
pub(crate) async fn traced<T>(
    provider: &ProviderName,
    operation: &'static str,
    call: impl Future<Output = Result<T, GatewayError>>,
) -> Result<T, GatewayError> {
    let span = call_span(provider, operation);
    let outcome = call.instrument(span.clone()).await;
    if let Err(error) = &outcome {
        span.record("otel.status_code", "ERROR");
        span.record("error", tracing::field::display(error));
    }
    outcome
}

impl Monitored {
    fn record<T>(&self, outcome: &Result<T, GatewayError>) {
        let now = self.clock.now();
        let mut health = self.health.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match outcome {
            Ok(_) => health.last_success_at = Some(now),
            Err(error) => {
                health.last_error_at = Some(now);
                health.last_error = Some(error.to_string().chars().take(300).collect());
                // A refusal or a decline is the provider answering: it is up and takes our
                // credentials, so it is not failing.
                if matches!(error, GatewayError::Declined(_) | GatewayError::InvalidRequest(_)) {
                    health.last_success_at = Some(now);
                }
            }
        }
    }
}

#[async_trait]
impl PaymentGateway for Monitored {
    fn provider(&self) -> &ProviderName {
        self.inner.provider()
    }

    fn supports_currency(&self, currency: Currency) -> bool {
        self.inner.supports_currency(currency)
    }

    async fn create_checkout(&self, request: CheckoutRequest) -> Result<CheckoutSession, GatewayError> {
        let outcome = traced(self.inner.provider(), "create_checkout", self.inner.create_checkout(request)).await;
        self.record(&outcome);
        outcome
    }

    async fn refund(&self, request: RefundRequest) -> Result<GatewayRefund, GatewayError> {
        let outcome = traced(self.inner.provider(), "refund", self.inner.refund(request)).await;
        self.record(&outcome);
        outcome
    }

    async fn confirm_payment(&self, reference: &PaymentReference) -> Result<Option<ConfirmedPayment>, GatewayError> {
        let outcome = traced(self.inner.provider(), "confirm_payment", self.inner.confirm_payment(reference)).await;
        // `None` is the default answer of a gateway that asks nothing: not a call.
        if !matches!(outcome, Ok(None)) {
            self.record(&outcome);
        }
        outcome
    }

    async fn expire_checkout(&self, session_id: &str) -> Result<CheckoutClosure, GatewayError> {
        let outcome = traced(self.inner.provider(), "expire_checkout", self.inner.expire_checkout(session_id)).await;
        if !matches!(outcome, Ok(CheckoutClosure::NotSupported)) {
            self.record(&outcome);
        }
        outcome
    }

    fn verify_webhook(&self, headers: &WebhookHeaders, body: &[u8], now: OffsetDateTime) -> Result<GatewayEvent, WebhookError> {
        self.inner.verify_webhook(headers, body, now)
    }

    fn payouts(&self) -> Option<&dyn PayoutGateway> {
        self.inner.payouts()
    }
}

/// The gateways this server offers, by provider name, and how card payments are routed to them.
#[derive(Debug, Clone, Default)]
pub struct Gateways {
    by_name: BTreeMap<ProviderName, Arc<dyn PaymentGateway>>,
    default_card: Option<ProviderName>,
    routes: Routes,
    health: BTreeMap<ProviderName, Arc<Mutex<ProviderHealth>>>,
}

impl Gateways {
    /// No gateways: card payments and refunds through a provider are then refused.
    pub fn new() -> Gateways {
        Gateways::default()
    }

    /// Adds a gateway; the first added is the default for card payments in currencies no route
    /// names.
    pub fn with(mut self, gateway: Arc<dyn PaymentGateway>) -> Gateways {
        let name = gateway.provider().clone();
        if self.default_card.is_none() {
            self.default_card = Some(name.clone());
        }
        self.by_name.insert(name, gateway);
        self
    }

    /// Routes card payments by currency (see `Routes`).
    pub fn with_routes(mut self, routes: Routes) -> Gateways {
        self.routes = routes;
        self
    }

    /// Records the outcome of every call to each gateway added so far, timed by `clock`, for
    /// `health`.
    pub fn monitored(mut self, clock: &Arc<dyn Clock>) -> Gateways {
        for (name, gateway) in &mut self.by_name {
            let health = Arc::new(Mutex::new(ProviderHealth::default()));
            let monitored = Monitored {
                inner: gateway.clone(),
                clock: clock.clone(),
                health: health.clone(),
            };
            *gateway = Arc::new(monitored);
            self.health.insert(name.clone(), health);
        }
        self
    }

    /// The gateway of this provider, if configured.
    pub fn get(&self, provider: &ProviderName) -> Option<&Arc<dyn PaymentGateway>> {
        self.by_name.get(provider)
    }

    /// The configured providers, by name.
    pub fn providers(&self) -> impl Iterator<Item = &ProviderName> {
        self.by_name.keys()
    }

    /// The outcome of the provider's latest calls, if its calls are monitored.
    pub fn health(&self, provider: &ProviderName) -> Option<ProviderHealth> {
        self.health
            .get(provider)
            .map(|h| h.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone())
    }

    /// The currencies a provider takes.
    pub fn currencies(&self, provider: &ProviderName) -> Vec<Currency> {
        self.get(provider).map_or_else(Vec::new, |g| {
            Currency::ALL.into_iter().filter(|c| g.supports_currency(*c)).collect()
        })
    }

    /// The gateways that would take a card payment in `currency`, in the order they are
    /// preferred: those its route lists, then the default one, then the others by name.
    pub fn candidates(&self, currency: Currency) -> Vec<&Arc<dyn PaymentGateway>> {
        let routed = self.routes.providers_for(currency).iter();
        let names = routed.chain(self.default_card.iter()).chain(self.by_name.keys());
        let mut chosen: Vec<&Arc<dyn PaymentGateway>> = Vec::new();
        for name in names {
            if let Some(gateway) = self.get(name)
                && gateway.supports_currency(currency)
                && !chosen.iter().any(|g| g.provider() == name)
            {
                chosen.push(gateway);
            }
        }
        chosen
    }

    /// The provider that pays out withdrawals in `currency`: the first candidate (in the card
    /// routing's order) that offers payouts in it; `None` when withdrawals must be settled by hand.
    pub fn payout_provider(&self, currency: Currency) -> Option<ProviderName> {
        let routed = self.routes.providers_for(currency).iter();
        let names = routed.chain(self.default_card.iter()).chain(self.by_name.keys());
        for name in names {
            if let Some(gateway) = self.get(name)
                && gateway.payouts().is_some_and(|payouts| payouts.supports_payout_currency(currency))
            {
                return Some(name.clone());
            }
        }
        None
    }

    /// `route`, without saying why no gateway was found.
    pub fn for_currency(&self, requested: Option<&ProviderName>, currency: Currency) -> Option<&Arc<dyn PaymentGateway>> {
        self.route(requested, currency).ok()
    }

    /// The gateway for a card payment in `currency`: the requested provider if one is named
    /// (and it must be configured and take the currency), otherwise the first candidate.
    ///
    /// # Errors
    /// A named provider that is not configured or does not take the currency; no gateway at all
    /// for the currency.
    pub fn route(&self, requested: Option<&ProviderName>, currency: Currency) -> Result<&Arc<dyn PaymentGateway>, RouteError> {
        if let Some(name) = requested {
            let gateway = self.get(name).ok_or_else(|| RouteError::NotConfigured {
                requested: name.clone(),
                configured: self.by_name.keys().map(ProviderName::as_str).collect::<Vec<_>>().join(", "),
            })?;
            if !gateway.supports_currency(currency) {
                return Err(RouteError::CurrencyNotTaken {
                    provider: name.clone(),
                    currency,
                });
            }
            return Ok(gateway);
        }
        self.candidates(currency).into_iter().next().ok_or(RouteError::NoGateway(currency))
    }
}

/// The state of a checkout on a hosted page this server serves itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostedSessionState {
    /// Waiting for the customer's choice.
    Open,
    /// The customer paid.
    Paid,
    /// The customer declined.
    Declined,
    /// Its time ran out.
    Expired,
}

/// A checkout session as its hosted page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostedSession {
    /// The session's id.
    pub session_id: String,
    /// The payment it is for.
    pub payment_id: PaymentId,
    /// What it asks.
    pub amount: Money,
    /// What the page says it is for.
    pub description: String,
    /// The lines shown.
    pub lines: Vec<CheckoutLine>,
    /// The payer's address.
    pub customer_email: String,
    /// When it stops taking payment.
    pub expires_at: OffsetDateTime,
    /// Where it is.
    pub state: HostedSessionState,
}

/// Why a choice on a hosted checkout page was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChoiceError {
    /// The session does not exist.
    #[error("no such checkout session")]
    UnknownSession,
    /// The session was already paid or declined.
    #[error("this checkout was already {0}")]
    Closed(&'static str),
    /// The session's time ran out.
    #[error("this checkout has expired")]
    Expired,
    /// The simulated provider could not deliver its webhook to us.
    #[error("the payment could not be reported to the shop: {0}")]
    Delivery(GatewayError),
}

/// What the customer chose on a hosted checkout page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomerChoice {
    /// Pay the checkout.
    Pay,
    /// Decline it, as a card refused would.
    Decline,
}

/// A gateway whose hosted checkout pages are served by this server (the demo-mode simulator). The
/// HTTP layer renders its pages; the customer's choice makes the gateway send us a signed webhook,
/// so the real webhook path runs end to end.
#[async_trait]
pub trait HostedCheckout: Send + Sync + std::fmt::Debug + 'static {
    /// The session as its page shows it, if it exists.
    fn session(&self, session_id: &str) -> Option<HostedSession>;

    /// Records the customer's choice and delivers the resulting webhook.
    async fn choose(&self, session_id: &str, choice: CustomerChoice) -> Result<HostedSession, ChoiceError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::system::ManualClock;

    /// A gateway taking `currencies`, whose checkouts fail when `failing`.
    #[derive(Debug)]
    struct Fake {
        name: ProviderName,
        currencies: Vec<Currency>,
        failing: bool,
    }

    fn name(text: &str) -> ProviderName {
        ProviderName::parse(text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn fake(text: &str, currencies: &[Currency]) -> Arc<dyn PaymentGateway> {
        Arc::new(Fake {
            name: name(text),
            currencies: currencies.to_vec(),
            failing: text.starts_with("down"),
        })
    }

    #[async_trait]
    impl PaymentGateway for Fake {
        fn provider(&self) -> &ProviderName {
            &self.name
        }

        fn supports_currency(&self, currency: Currency) -> bool {
            self.currencies.contains(&currency)
        }

        async fn create_checkout(&self, request: CheckoutRequest) -> Result<CheckoutSession, GatewayError> {
            if self.failing {
                return Err(GatewayError::Unavailable("down for maintenance".into()));
            }
            Ok(CheckoutSession {
                session_id: request.payment_id.to_string(),
                checkout_url: "https://pay.example".into(),
            })
        }

        async fn refund(&self, _request: RefundRequest) -> Result<GatewayRefund, GatewayError> {
            Err(GatewayError::InvalidRequest("no refunds here".into()))
        }

        fn verify_webhook(&self, _: &WebhookHeaders, _: &[u8], _: OffsetDateTime) -> Result<GatewayEvent, WebhookError> {
            Err(WebhookError::MissingSignature)
        }
    }

    fn chosen(gateways: &Gateways, requested: Option<&str>, currency: Currency) -> Result<String, RouteError> {
        let requested = requested.map(name);
        gateways.route(requested.as_ref(), currency).map(|g| g.provider().to_string())
    }

    fn three() -> Gateways {
        Gateways::new()
            .with(fake("monnify", &[Currency::Ngn]))
            .with(fake("paystack", &[Currency::Ngn, Currency::Ghs, Currency::Usd]))
            .with(fake("stripe", &Currency::ALL))
    }

    #[test]
    fn a_currency_goes_to_the_first_configured_provider_of_its_route() -> Result<(), RouteError> {
        let routes = Routes::new()
            .route(Currency::Ngn, vec![name("paystack"), name("monnify")])
            .route(Currency::Usd, vec![name("stripe"), name("paystack")])
            .route(Currency::Kes, vec![name("paystack")]);
        let gateways = three().with_routes(routes);
        assert_eq!(chosen(&gateways, None, Currency::Ngn)?, "paystack");
        assert_eq!(chosen(&gateways, None, Currency::Usd)?, "stripe");
        assert_eq!(
            chosen(&gateways, None, Currency::Ghs)?,
            "paystack",
            "a currency without a route goes to whoever takes it"
        );
        // Paystack does not take KES here: the route falls through to any gateway that does.
        assert_eq!(chosen(&gateways, None, Currency::Kes)?, "stripe");
        let order: Vec<String> = gateways
            .candidates(Currency::Ngn)
            .iter()
            .map(|g| g.provider().to_string())
            .collect();
        assert_eq!(order, ["paystack", "monnify", "stripe"]);
        assert_eq!(
            gateways.currencies(&name("paystack")),
            [Currency::Ghs, Currency::Ngn, Currency::Usd]
        );
        Ok(())
    }

    #[test]
    fn a_named_provider_must_be_configured_and_take_the_currency() -> Result<(), RouteError> {
        let gateways = Gateways::new().with(fake("monnify", &[Currency::Ngn]));
        assert_eq!(chosen(&gateways, Some("monnify"), Currency::Ngn)?, "monnify");
        let missing = chosen(&gateways, Some("paystack"), Currency::Ngn);
        assert!(
            matches!(&missing, Err(RouteError::NotConfigured { configured, .. }) if configured == "monnify"),
            "{missing:?}"
        );
        assert!(missing.err().is_some_and(|e| e.to_string().contains("paystack is not configured")));
        assert_eq!(
            chosen(&gateways, Some("monnify"), Currency::Usd),
            Err(RouteError::CurrencyNotTaken {
                provider: name("monnify"),
                currency: Currency::Usd
            })
        );
        assert_eq!(chosen(&gateways, None, Currency::Usd), Err(RouteError::NoGateway(Currency::Usd)));
        Ok(())
    }

    fn checkout() -> CheckoutRequest {
        let amount = Money::from_minor(100, Currency::Ngn);
        CheckoutRequest {
            payment_id: PaymentId::from_uuid(uuid::Uuid::now_v7()),
            amount,
            description: "test".into(),
            lines: Vec::new(),
            customer_email: "a@example.com".into(),
            expires_at: OffsetDateTime::UNIX_EPOCH,
            idempotency_key: "k".into(),
        }
    }

    #[tokio::test]
    async fn monitored_gateways_record_their_latest_outcomes() {
        let start = OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
        let manual = Arc::new(ManualClock::new(start));
        let clock: Arc<dyn Clock> = manual.clone();
        let gateways = Gateways::new()
            .with(fake("up", &[Currency::Ngn]))
            .with(fake("down", &[Currency::Ngn]))
            .monitored(&clock);
        let health = |provider: &str| {
            gateways
                .health(&name(provider))
                .unwrap_or_else(|| panic!("{provider} is monitored"))
        };
        assert_eq!(health("up").state(), "unknown");
        for provider in ["up", "down"] {
            let gateway = gateways.get(&name(provider)).unwrap_or_else(|| panic!("{provider}"));
            let _ = gateway.create_checkout(checkout()).await;
        }
        assert_eq!((health("up").state(), health("up").last_success_at), ("ok", Some(start)));
        let down = health("down");
        assert_eq!((down.state(), down.last_success_at), ("failing", None));
        assert!(down.last_error.is_some_and(|e| e.contains("maintenance")));
        manual.advance(time::Duration::seconds(5));
        let up = gateways.get(&name("up")).unwrap_or_else(|| panic!("up"));
        let _ = up
            .refund(RefundRequest {
                refund_id: RefundId::from_uuid(uuid::Uuid::now_v7()),
                payment_id: PaymentId::from_uuid(uuid::Uuid::now_v7()),
                provider_payment_id: "p".into(),
                amount: Money::from_minor(1, Currency::Ngn),
                reason: String::new(),
                idempotency_key: "r".into(),
            })
            .await;
        // A refusal is an answer: recorded as the last error, but the provider is not failing.
        let after = health("up");
        let at = Some(start + time::Duration::seconds(5));
        assert_eq!((after.state(), after.last_error_at, after.last_success_at), ("ok", at, at));
        assert!(after.last_error.is_some_and(|e| e.contains("no refunds here")));
    }
}
