//! Outbound webhooks: the endpoints merchants (and the platform's admins) register, the public
//! event types they subscribe to, and the deliveries of events to them.
//!
//! Every domain event has a public type (`order.paid`, `refund.succeeded`, ...): the name a
//! receiver subscribes to and sees. A delivery is one event for one endpoint; it is attempted
//! until the endpoint answers 2xx, retried with backoff for `RETRY_WINDOW` on failures that may
//! pass (timeouts, connection errors, 408, 429, 5xx), and given up at once on a refusal (any other
//! 4xx). An endpoint that has failed every attempt for `DISABLE_AFTER` is disabled, with the
//! reason, until its owner enables it again.

use std::collections::BTreeSet;

use time::{Duration, OffsetDateTime};

use crate::events::DomainEvent;
use crate::follow_up::RetryPolicy;
use crate::ids::{EventId, OrderId, PaymentId, ProductId, UserId, WebhookDeliveryId, WebhookEndpointId};
use crate::order::OrderStatus;
use crate::refund_request::RefundRequestStatus;
use crate::withdrawal::WithdrawalStatus;

/// The version of the payloads' shape, sent with every delivery.
pub const API_VERSION: &str = "2026-11-29";

/// How long a delivery is retried before it is given up.
pub const RETRY_WINDOW: Duration = Duration::days(3);

/// How long a delivery that ended (succeeded or failed) is kept for its endpoint's owner to list
/// or redeliver; redelivery ranges reach back as far.
pub const DELIVERY_HISTORY_KEPT: Duration = Duration::days(30);

/// How long an endpoint may fail every delivery before it is disabled: within the retry window, so
/// that a receiver down for good is disabled while its deliveries still wait for it (enabling it
/// again resumes them).
pub const DISABLE_AFTER: Duration = Duration::days(2);

/// The backoff of deliveries: 30 s, 1 min, 2 min, ... capped at 6 h (`RETRY_WINDOW` ends it).
pub const DELIVERY_RETRY: RetryPolicy = RetryPolicy {
    attempts_max: u32::MAX,
    first_delay: Duration::seconds(30),
    delay_max: Duration::hours(6),
};

/// The longest response body kept on a delivery, and the longest error.
pub const RESPONSE_CHARS_MAX: usize = 1_000;

/// A public event type: its name, what it announces, and the attributes of its object (`?` marks
/// one that not every event of the type has).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventType {
    /// The type's name, such as `order.paid`: what receivers subscribe to and see.
    pub name: &'static str,
    /// One sentence on what the type announces, for the API's documentation.
    pub description: &'static str,
    /// The attributes of the event's object; a trailing `?` marks one that may be absent.
    pub object: &'static [&'static str],
}

const fn kind(name: &'static str, description: &'static str, object: &'static [&'static str]) -> EventType {
    EventType { name, description, object }
}

const ORDER: &[&str] = &["order_id", "from?", "to"];
const WITHDRAWAL: &[&str] = &["withdrawal_id", "user_id", "amount", "currency", "status", "reason?"];
const REFUND_REQUEST: &[&str] = &["refund_request_id", "order_id", "buyer_id", "merchant_id", "status", "refund_id?"];

/// Every public event type.
pub const EVENT_TYPES: &[EventType] = &[
    kind(
        "user.registered",
        "A user registered (platform endpoints only).",
        &["user_id", "role"],
    ),
    kind(
        "wallet.credited",
        "A wallet was credited by a card top-up (`payment_id`) or an admin's adjustment (`transaction_id`).",
        &["payment_id?", "transaction_id?", "user_id", "amount", "currency"],
    ),
    kind(
        "wallet.debited",
        "A wallet was debited by an admin's adjustment.",
        &["transaction_id", "user_id", "amount", "currency"],
    ),
    kind(
        "withdrawal.requested",
        "A withdrawal above the approval threshold was requested; its amount is held until an admin decides.",
        WITHDRAWAL,
    ),
    kind(
        "withdrawal.approved",
        "A withdrawal was approved (by an admin, or at once at or below the threshold) and is being paid out.",
        WITHDRAWAL,
    ),
    kind(
        "withdrawal.rejected",
        "An admin rejected a withdrawal (`reason`); its amount is available again.",
        WITHDRAWAL,
    ),
    kind(
        "withdrawal.completed",
        "A withdrawal was paid: the money left the wallet.",
        WITHDRAWAL,
    ),
    kind(
        "withdrawal.failed",
        "A withdrawal's payout failed (`reason`); its amount is available again.",
        WITHDRAWAL,
    ),
    kind(
        "transfer.completed",
        "Money moved from one user's wallet to another's.",
        &["transfer_id", "from_user_id", "to_user_id", "amount", "currency"],
    ),
    kind(
        "product.created",
        "A merchant put a product in the catalog.",
        &["product_id", "merchant_id"],
    ),
    kind("product.updated", "A product changed.", &["product_id"]),
    kind("product.archived", "A product was deleted (archived).", &["product_id"]),
    kind(
        "product.stock_changed",
        "The units of a product on sale changed.",
        &["product_id", "available"],
    ),
    kind("order.created", "An order was placed.", ORDER),
    kind("order.awaiting_payment", "An order waits for its card payment.", ORDER),
    kind(
        "order.authorised",
        "A wallet order's funds were held for its merchants to capture.",
        ORDER,
    ),
    kind(
        "order.paid",
        "An order was paid (for a manual-capture order: what its merchants captured).",
        ORDER,
    ),
    kind("order.fulfilled", "A merchant fulfilled an order.", ORDER),
    kind(
        "order.cancelled",
        "An order awaiting payment was cancelled (by its buyer, or unpaid), or an authorised one voided.",
        ORDER,
    ),
    kind("order.refunded", "An order was refunded in part or in full.", ORDER),
    kind(
        "order.disputed",
        "A dispute of an order's payment was recorded on the order.",
        ORDER,
    ),
    kind(
        "payment.succeeded",
        "A card payment succeeded.",
        &["payment_id", "amount", "currency"],
    ),
    kind("payment.failed", "A card payment failed or was cancelled.", &["payment_id"]),
    kind("payment.expired", "A card checkout expired unpaid.", &["payment_id"]),
    kind(
        "payment.late_success",
        "A card payment succeeded after it had been given up; it is refunded.",
        &["payment_id", "amount", "currency"],
    ),
    kind("payment.disputed", "The payer disputed a card payment.", &["payment_id"]),
    kind(
        "refund.succeeded",
        "A refund reached the buyer.",
        &["refund_id", "order_id", "amount", "currency"],
    ),
    kind(
        "refund.failed",
        "A refund failed; the merchant got the money back.",
        &["refund_id", "order_id"],
    ),
    kind(
        "refund_request.opened",
        "A buyer asked for (part of) a merchant's share of an order back.",
        REFUND_REQUEST,
    ),
    kind(
        "refund_request.approved",
        "A refund request was approved and refunded (`refund_id`).",
        REFUND_REQUEST,
    ),
    kind("refund_request.declined", "A refund request was declined.", REFUND_REQUEST),
    kind("refund_request.withdrawn", "The buyer withdrew a refund request.", REFUND_REQUEST),
    kind(
        "refund_request.refund_failed",
        "The provider refused the refund an approved request made (`refund_id`); the buyer may ask again.",
        REFUND_REQUEST,
    ),
    kind("call.started", "A metered call started.", &["call_id", "caller_id", "receiver_id"]),
    kind(
        "call.ended",
        "A metered call ended and was billed.",
        &["call_id", "minutes", "charged", "currency"],
    ),
    kind(
        "hold.authorised",
        "A customer authorised a merchant to capture up to an amount of their wallet.",
        &["hold_id", "user_id", "merchant_id", "amount", "currency"],
    ),
    kind(
        "hold.captured",
        "A merchant captured part or all of a hold (`captured`: in all so far).",
        &["hold_id", "user_id", "merchant_id", "amount", "currency", "captured"],
    ),
    kind(
        "hold.voided",
        "A hold was voided; what remained of it is available to its customer again.",
        &["hold_id", "user_id", "merchant_id", "released", "currency"],
    ),
    kind(
        "hold.expired",
        "A hold outlived its expiry; what remained of it is available to its customer again.",
        &["hold_id", "user_id", "merchant_id", "released", "currency"],
    ),
    kind(
        "webhook_endpoint.test",
        "A test event an endpoint's owner asked for.",
        &["endpoint_id"],
    ),
];

/// Whether `name` is a public event type.
pub fn is_event_type(name: &str) -> bool {
    EVENT_TYPES.iter().any(|known| known.name == name)
}

impl DomainEvent {
    /// The public type receivers see for this event.
    pub fn public_type(&self) -> &'static str {
        use DomainEvent::*;
        match self {
            OrderStatusChanged { from, to, .. } => order_event_type(*from, *to),
            TopUpCompleted { .. } => "wallet.credited",
            AdjustmentPosted { amount, .. } if amount.is_negative() => "wallet.debited",
            AdjustmentPosted { .. } => "wallet.credited",
            WithdrawalChanged { status, .. } => withdrawal_event_type(*status),
            RefundRequestChanged { status, .. } => refund_request_event_type(*status),
            TransferCompleted { .. } => "transfer.completed",
            other => other.name(),
        }
    }
}

/// Whose endpoints (besides the platform's) an event goes to: the merchants who are a party to it.
/// Some parties are known from the event; others are found from what it names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Audience {
    /// The platform's endpoints only.
    Platform,
    /// These users' merchant endpoints (a transfer's two parties, a hold's customer and merchant...).
    Users(Vec<UserId>),
    /// The merchants with an item in the order.
    Order(OrderId),
    /// The payer of a top-up, or the merchants of the order a payment pays for.
    Payment(PaymentId),
    /// The product's merchant.
    Product(ProductId),
    /// One endpoint, and no other (a test event).
    Endpoint(WebhookEndpointId),
}

impl DomainEvent {
    /// Whose endpoints receive this event, besides the platform's. Some audiences name an order, a
    /// payment or a product, whose merchants the relay looks up.
    pub fn audience(&self) -> Audience {
        use DomainEvent::*;
        match self {
            UserRegistered { .. } => Audience::Platform,
            TopUpCompleted { user_id, .. } | WithdrawalChanged { user_id, .. } | AdjustmentPosted { user_id, .. } => {
                Audience::Users(vec![*user_id])
            }
            TransferCompleted { from, to, .. } => Audience::Users(vec![*from, *to]),
            RefundRequestChanged { buyer_id, merchant_id, .. } => Audience::Users(vec![*buyer_id, *merchant_id]),
            ProductCreated { merchant_id, .. } => Audience::Users(vec![*merchant_id]),
            ProductUpdated { product_id } | ProductArchived { product_id } | StockChanged { product_id, .. } => {
                Audience::Product(*product_id)
            }
            OrderStatusChanged { order_id, .. }
            | OrderDisputed { order_id, .. }
            | RefundSucceeded { order_id, .. }
            | RefundFailed { order_id, .. } => Audience::Order(*order_id),
            PaymentSucceeded { payment_id, .. }
            | PaymentFailed { payment_id }
            | PaymentExpired { payment_id }
            | PaymentLateSuccess { payment_id, .. }
            | PaymentDisputed { payment_id } => Audience::Payment(*payment_id),
            CallStarted {
                caller_id, receiver_id, ..
            } => Audience::Users(vec![*caller_id, *receiver_id]),
            // The call's parties are not in the event; its receiver is paid, and sees the credit.
            CallEnded { .. } => Audience::Platform,
            HoldAuthorised { user_id, merchant_id, .. }
            | HoldCaptured { user_id, merchant_id, .. }
            | HoldVoided { user_id, merchant_id, .. }
            | HoldExpired { user_id, merchant_id, .. } => Audience::Users(vec![*user_id, *merchant_id]),
            WebhookEndpointTested { endpoint_id } => Audience::Endpoint(*endpoint_id),
        }
    }
}

fn refund_request_event_type(status: RefundRequestStatus) -> &'static str {
    match status {
        RefundRequestStatus::Open => "refund_request.opened",
        RefundRequestStatus::Approved => "refund_request.approved",
        RefundRequestStatus::Declined => "refund_request.declined",
        RefundRequestStatus::Withdrawn => "refund_request.withdrawn",
        RefundRequestStatus::RefundFailed => "refund_request.refund_failed",
    }
}

fn withdrawal_event_type(status: WithdrawalStatus) -> &'static str {
    match status {
        WithdrawalStatus::Requested => "withdrawal.requested",
        WithdrawalStatus::Approved => "withdrawal.approved",
        WithdrawalStatus::Rejected => "withdrawal.rejected",
        // The name it had when every withdrawal was paid at once, kept for subscribers.
        WithdrawalStatus::Paid => "withdrawal.completed",
        WithdrawalStatus::Failed => "withdrawal.failed",
    }
}

fn order_event_type(from: Option<OrderStatus>, to: OrderStatus) -> &'static str {
    match to {
        // A second partial refund leaves the order partially refunded: still a refund.
        OrderStatus::PartiallyRefunded => "order.refunded",
        // Disputes are `OrderDisputed` now; before, they were recorded as a change to the same
        // status, as events already in the outbox (or redelivered) may still be.
        _ if from == Some(to) => "order.disputed",
        OrderStatus::Created => "order.created",
        OrderStatus::PaymentPending => "order.awaiting_payment",
        OrderStatus::Authorised => "order.authorised",
        OrderStatus::Paid => "order.paid",
        OrderStatus::Fulfilled => "order.fulfilled",
        OrderStatus::Cancelled => "order.cancelled",
        OrderStatus::Refunded => "order.refunded",
    }
}

/// Who an endpoint belongs to: a merchant, who receives the events they are a party to, or the
/// platform (its admins), which receives every event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndpointOwner {
    /// The platform's admins, who receive every event.
    Platform,
    /// A merchant, who receives the events they are a party to.
    Merchant(UserId),
}

/// The event types an endpoint receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventSelection {
    /// Every event type, including those added later.
    All,
    /// Only these types, each a known public type.
    Only(BTreeSet<String>),
}

impl EventSelection {
    /// Whether an event of `event_type` is selected.
    pub fn includes(&self, event_type: &str) -> bool {
        match self {
            EventSelection::All => true,
            EventSelection::Only(types) => types.contains(event_type),
        }
    }

    /// The stored form: `*` for all, else the types in order.
    pub fn to_list(&self) -> Vec<String> {
        match self {
            EventSelection::All => vec!["*".to_owned()],
            EventSelection::Only(types) => types.iter().cloned().collect(),
        }
    }

    /// From a list of types (`*` alone for all), each one known.
    pub fn from_list(types: &[String]) -> Result<EventSelection, WebhookError> {
        if types.iter().any(|t| t == "*") {
            return if types.len() == 1 {
                Ok(EventSelection::All)
            } else {
                Err(WebhookError::EventTypes("`*` stands alone".into()))
            };
        }
        if types.is_empty() {
            return Err(WebhookError::EventTypes("name at least one event type, or `*`".into()));
        }
        if let Some(unknown) = types.iter().find(|t| !is_event_type(t)) {
            return Err(WebhookError::EventTypes(format!(
                "unknown event type `{}`",
                unknown.chars().take(64).collect::<String>()
            )));
        }
        Ok(EventSelection::Only(types.iter().cloned().collect()))
    }
}

/// Why an endpoint's registration or change is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// The URL is not an absolute https URL without credentials or fragment (the text says why).
    #[error("the endpoint URL is not acceptable: {0}")]
    Url(String),
    /// The event type list is empty, mixes `*` with types, or names an unknown type.
    #[error("the event types are not acceptable: {0}")]
    EventTypes(String),
    /// The description is too long.
    #[error("the description must have at most {max} characters")]
    Description {
        /// The limit, [`WebhookEndpoint::DESCRIPTION_CHARS_MAX`].
        max: usize,
    },
}

/// An endpoint's URL: absolute `https` (or `http` where allowed), at most 2,048 characters,
/// without credentials or a fragment. Where it may point is checked again at each delivery,
/// against the addresses its host resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointUrl(String);

impl EndpointUrl {
    /// The longest URL accepted.
    pub const CHARS_MAX: usize = 2_048;

    /// Checks a URL an owner gave. `allow_http` accepts plain `http://` too, which the operator
    /// allows only where receivers are not on the internet (demo mode, development, tests).
    ///
    /// ```
    /// use domain::webhook::EndpointUrl;
    ///
    /// let url = EndpointUrl::parse("https://shop.example:8443/hooks?v=1", false).unwrap();
    /// assert_eq!(url.host(), "shop.example");
    /// assert!(EndpointUrl::parse("http://shop.example/hooks", false).is_err());
    /// assert!(EndpointUrl::parse("https://user:pw@shop.example/", false).is_err());
    /// ```
    ///
    /// # Errors
    ///
    /// [`WebhookError::Url`], saying what is wrong with it.
    pub fn parse(text: &str, allow_http: bool) -> Result<EndpointUrl, WebhookError> {
        let invalid = |why: &str| WebhookError::Url(why.to_owned());
        if text.is_empty() || text.len() > EndpointUrl::CHARS_MAX || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid("it must be 1 to 2048 printable characters without spaces"));
        }
        let rest = match (text.strip_prefix("https://"), text.strip_prefix("http://")) {
            (Some(rest), _) => rest,
            (None, Some(rest)) if allow_http => rest,
            (None, Some(_)) => return Err(invalid("it must use https")),
            (None, None) => return Err(invalid("it must be an absolute https URL")),
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.is_empty() || authority.contains('@') {
            return Err(invalid("it must name a host, without credentials"));
        }
        if text.contains('#') {
            return Err(invalid("it must not have a fragment"));
        }
        Ok(EndpointUrl(text.to_owned()))
    }

    /// The URL as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The host, without port or brackets.
    pub fn host(&self) -> &str {
        let rest = self.0.split_once("://").map_or("", |(_, rest)| rest);
        let authority = rest.split(['/', '?']).next().unwrap_or_default();
        match authority.strip_prefix('[') {
            Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
            None => authority.rsplit_once(':').map_or(authority, |(host, _)| host),
        }
    }
}

/// A signing secret that still signs after it was replaced, until `until`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetiringSecret {
    /// The replaced secret.
    pub secret: String,
    /// When it stops signing.
    pub until: OffsetDateTime,
}

/// A receiver of events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    /// The endpoint's id.
    pub id: WebhookEndpointId,
    /// Whose endpoint it is, which decides the events it may see.
    pub owner: EndpointOwner,
    /// Where deliveries are POSTed.
    pub url: EndpointUrl,
    /// The event types it subscribed to.
    pub events: EventSelection,
    /// The owner's note on what the endpoint is for.
    pub description: String,
    /// Whether deliveries are made; off by the owner's choice or after failing for [`DISABLE_AFTER`].
    pub enabled: bool,
    /// Signs every delivery; shown to the owner once, when created or rolled.
    pub secret: String,
    /// The secret before the last roll, still signing until its time is up.
    pub retiring: Option<RetiringSecret>,
    /// Since when every delivery has failed; `None` after a success.
    pub failing_since: Option<OffsetDateTime>,
    /// Why the endpoint was disabled by the platform, if it was.
    pub disabled_reason: Option<String>,
    /// When the endpoint was registered.
    pub created_at: OffsetDateTime,
    /// When it last changed.
    pub updated_at: OffsetDateTime,
}

/// What an endpoint's owner may change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointChanges {
    /// A new URL.
    pub url: Option<EndpointUrl>,
    /// A new selection of event types.
    pub events: Option<EventSelection>,
    /// A new description.
    pub description: Option<String>,
    /// Enabled or disabled by the owner; enabling clears a disabled reason and the failure streak.
    pub enabled: Option<bool>,
}

impl WebhookEndpoint {
    /// The longest description accepted, in characters.
    pub const DESCRIPTION_CHARS_MAX: usize = 500;

    /// A new, enabled endpoint with its signing secret.
    ///
    /// # Errors
    ///
    /// [`WebhookError::Description`] if the description is too long.
    #[allow(clippy::too_many_arguments)]
    pub fn register(
        id: WebhookEndpointId,
        owner: EndpointOwner,
        url: EndpointUrl,
        events: EventSelection,
        description: &str,
        secret: String,
        at: OffsetDateTime,
    ) -> Result<WebhookEndpoint, WebhookError> {
        Ok(WebhookEndpoint {
            id,
            owner,
            url,
            events,
            description: checked_description(description)?,
            enabled: true,
            secret,
            retiring: None,
            failing_since: None,
            disabled_reason: None,
            created_at: at,
            updated_at: at,
        })
    }

    /// Applies the owner's changes.
    ///
    /// # Errors
    ///
    /// [`WebhookError::Description`] if the new description is too long; nothing is changed then.
    pub fn change(mut self, changes: EndpointChanges, at: OffsetDateTime) -> Result<WebhookEndpoint, WebhookError> {
        if let Some(url) = changes.url {
            self.url = url;
        }
        if let Some(events) = changes.events {
            self.events = events;
        }
        if let Some(description) = changes.description {
            self.description = checked_description(&description)?;
        }
        if let Some(enabled) = changes.enabled {
            self.enabled = enabled;
            if enabled {
                // Enabled again by its owner: a fresh start.
                self.disabled_reason = None;
                self.failing_since = None;
            }
        }
        self.updated_at = at;
        Ok(self)
    }

    /// Whether the endpoint takes events of this type now.
    pub fn receives(&self, event_type: &str) -> bool {
        self.enabled && (self.events.includes(event_type) || event_type == "webhook_endpoint.test")
    }

    /// The secrets that sign a delivery made at `now`: the current one, and the one it replaced
    /// while its overlap lasts.
    pub fn signing_secrets(&self, now: OffsetDateTime) -> Vec<&str> {
        let mut secrets = vec![self.secret.as_str()];
        if let Some(retiring) = self.retiring.as_ref().filter(|retiring| retiring.until > now) {
            secrets.push(retiring.secret.as_str());
        }
        secrets
    }

    /// Replaces the secret; the old one keeps signing for `overlap`.
    pub fn roll_secret(mut self, secret: String, overlap: Duration, at: OffsetDateTime) -> WebhookEndpoint {
        let old = std::mem::replace(&mut self.secret, secret);
        self.retiring = (overlap > Duration::ZERO).then_some(RetiringSecret {
            secret: old,
            until: at + overlap,
        });
        self.updated_at = at;
        self
    }

    /// A delivery reached the endpoint.
    pub fn delivered(mut self, at: OffsetDateTime) -> WebhookEndpoint {
        if self.failing_since.is_some() {
            self.failing_since = None;
            self.updated_at = at;
        }
        self
    }

    /// A delivery attempt failed. An endpoint failing since `DISABLE_AFTER` ago is disabled.
    pub fn failed(mut self, at: OffsetDateTime) -> WebhookEndpoint {
        let since = *self.failing_since.get_or_insert(at);
        if self.enabled && at - since >= DISABLE_AFTER {
            self.enabled = false;
            self.disabled_reason = Some(format!("every delivery failed since {since}; fix the endpoint and enable it again"));
        }
        self.updated_at = at;
        self
    }
}

fn checked_description(description: &str) -> Result<String, WebhookError> {
    let description = description.trim();
    if description.chars().count() > WebhookEndpoint::DESCRIPTION_CHARS_MAX {
        return Err(WebhookError::Description {
            max: WebhookEndpoint::DESCRIPTION_CHARS_MAX,
        });
    }
    Ok(description.to_owned())
}

/// Where a delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    /// Due or in progress: attempted at `next_attempt_at`.
    Pending,
    /// The endpoint answered 2xx.
    Succeeded,
    /// Given up: refused by the endpoint, or still failing when the retry window ran out.
    Failed,
}

impl DeliveryStatus {
    /// Every status, for parsing and for tests.
    pub const ALL: [DeliveryStatus; 3] = [DeliveryStatus::Pending, DeliveryStatus::Succeeded, DeliveryStatus::Failed];

    /// The stable code stored in the database and used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
        }
    }

    /// The status whose [`as_str`](DeliveryStatus::as_str) code is `text`, if any.
    pub fn parse(text: &str) -> Option<DeliveryStatus> {
        DeliveryStatus::ALL.into_iter().find(|status| status.as_str() == text)
    }
}

/// How the endpoint answered one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    /// When the attempt started.
    pub at: OffsetDateTime,
    /// `None` when no answer came (timeout, connection refused, an address refused).
    pub status_code: Option<u16>,
    /// How long the attempt took, in milliseconds.
    pub latency_ms: u32,
    /// The start of the response body, or why there was no answer.
    pub response: String,
}

/// What an attempt's outcome means for the delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The endpoint answered 2xx.
    Delivered,
    /// May pass: try again, not before `retry_after` if the endpoint said so.
    Retry {
        /// The wait the endpoint asked for in its `Retry-After`, if any.
        retry_after: Option<Duration>,
    },
    /// The endpoint refused the event for good.
    Refused,
}

impl AttemptOutcome {
    /// The meaning of an HTTP status: 2xx delivered; 408, 429 and 5xx (and 3xx, as redirects are
    /// not followed) retried; any other 4xx refused.
    pub fn of_status(status: u16, retry_after: Option<Duration>) -> AttemptOutcome {
        match status {
            200..=299 => AttemptOutcome::Delivered,
            408 | 429 | 500..=599 | 300..=399 => AttemptOutcome::Retry { retry_after },
            _ => AttemptOutcome::Refused,
        }
    }
}

/// One event for one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookDelivery {
    /// The delivery's id.
    pub id: WebhookDeliveryId,
    /// The event delivered, whose id receivers dedupe on.
    pub event_id: EventId,
    /// The endpoint it goes to.
    pub endpoint_id: WebhookEndpointId,
    /// The event's public type, kept for listing and filtering.
    pub event_type: String,
    /// Where the delivery is.
    pub status: DeliveryStatus,
    /// Attempts made (or begun) so far.
    pub attempts: u32,
    /// When the next attempt is due; while one is in progress, when its lease runs out.
    pub next_attempt_at: OffsetDateTime,
    /// The outcome of the latest attempt.
    pub last_attempt: Option<AttemptRecord>,
    /// When the delivery was last queued (created, or redelivered): the retry window runs from it.
    pub queued_at: OffsetDateTime,
    /// When the delivery was created.
    pub created_at: OffsetDateTime,
    /// When it last changed.
    pub updated_at: OffsetDateTime,
}

impl WebhookDelivery {
    /// A new delivery, due at once.
    pub fn schedule(
        id: WebhookDeliveryId,
        event_id: EventId,
        endpoint_id: WebhookEndpointId,
        event_type: &str,
        at: OffsetDateTime,
    ) -> WebhookDelivery {
        WebhookDelivery {
            id,
            event_id,
            endpoint_id,
            event_type: event_type.to_owned(),
            status: DeliveryStatus::Pending,
            attempts: 0,
            next_attempt_at: at,
            last_attempt: None,
            queued_at: at,
            created_at: at,
            updated_at: at,
        }
    }

    /// Counts an attempt about to be made and moves the next one `lease` ahead, so that no other
    /// worker makes it meanwhile.
    pub fn begin_attempt(mut self, at: OffsetDateTime, lease: Duration) -> WebhookDelivery {
        self.attempts = self.attempts.saturating_add(1);
        self.next_attempt_at = at + lease;
        self.updated_at = at;
        self
    }

    /// Records an attempt's outcome: delivered, retried after the backoff (or the endpoint's
    /// `Retry-After`, whichever is later) while the retry window lasts, or given up.
    pub fn record(mut self, attempt: AttemptRecord, outcome: AttemptOutcome, jitter: u16) -> WebhookDelivery {
        let at = attempt.at;
        self.last_attempt = Some(AttemptRecord {
            response: truncated(&attempt.response),
            ..attempt
        });
        self.updated_at = at;
        self.status = match outcome {
            AttemptOutcome::Delivered => DeliveryStatus::Succeeded,
            AttemptOutcome::Refused => DeliveryStatus::Failed,
            AttemptOutcome::Retry { retry_after } => {
                let backoff = DELIVERY_RETRY.delay(self.attempts.max(1), jitter);
                let wait = retry_after.map_or(backoff, |asked| asked.max(backoff));
                self.next_attempt_at = at + wait;
                if self.next_attempt_at - self.queued_at > RETRY_WINDOW {
                    DeliveryStatus::Failed
                } else {
                    DeliveryStatus::Pending
                }
            }
        };
        self
    }

    /// Queues the event again (an owner's redelivery), whatever became of it.
    pub fn redeliver(mut self, at: OffsetDateTime) -> WebhookDelivery {
        self.status = DeliveryStatus::Pending;
        self.next_attempt_at = at;
        self.queued_at = at;
        self.updated_at = at;
        self
    }
}

fn truncated(text: &str) -> String {
    text.chars().take(RESPONSE_CHARS_MAX).collect()
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::money::{Currency, Money};

    fn at() -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH
    }

    fn endpoint() -> WebhookEndpoint {
        let url = EndpointUrl::parse("https://merchant.example/hooks", false).expect("url");
        let owner = EndpointOwner::Merchant(UserId::from_uuid(Uuid::from_u128(1)));
        WebhookEndpoint::register(
            WebhookEndpointId::from_uuid(Uuid::from_u128(2)),
            owner,
            url,
            EventSelection::All,
            "",
            "s1".into(),
            at(),
        )
        .expect("endpoint")
    }

    fn delivery() -> WebhookDelivery {
        WebhookDelivery::schedule(
            WebhookDeliveryId::from_uuid(Uuid::from_u128(3)),
            EventId::from_uuid(Uuid::from_u128(4)),
            WebhookEndpointId::from_uuid(Uuid::from_u128(2)),
            "order.paid",
            at(),
        )
    }

    fn attempt(at: OffsetDateTime, status_code: Option<u16>) -> AttemptRecord {
        AttemptRecord {
            at,
            status_code,
            latency_ms: 5,
            response: "x".repeat(5_000),
        }
    }

    #[test]
    fn urls_must_be_absolute_https_without_credentials() {
        assert!(EndpointUrl::parse("https://a.example/x?y=1", false).is_ok());
        assert!(EndpointUrl::parse("http://a.example/x", false).is_err());
        assert!(EndpointUrl::parse("http://127.0.0.1:9000/x", true).is_ok());
        for bad in [
            "",
            "a.example",
            "ftp://a.example",
            "https://user:pw@a.example",
            "https://a.example/#x",
            "https://a b",
        ] {
            assert!(EndpointUrl::parse(bad, true).is_err(), "{bad}");
        }
        let url = EndpointUrl::parse("https://[::1]:8443/hooks", false).expect("ipv6");
        assert_eq!(url.host(), "::1");
        assert_eq!(
            EndpointUrl::parse("https://a.example:8443/x", false).expect("port").host(),
            "a.example"
        );
    }

    #[test]
    fn selections_name_known_types_or_everything() {
        assert_eq!(EventSelection::from_list(&["*".into()]), Ok(EventSelection::All));
        assert!(EventSelection::from_list(&["*".into(), "order.paid".into()]).is_err());
        assert!(EventSelection::from_list(&[]).is_err());
        assert!(EventSelection::from_list(&["order.lost".into()]).is_err());
        let only = EventSelection::from_list(&["order.paid".into()]).expect("only");
        assert!(only.includes("order.paid") && !only.includes("order.cancelled"));
    }

    #[test]
    fn order_events_are_named_by_the_status_they_reach() {
        let changed = |from, to| DomainEvent::OrderStatusChanged {
            order_id: OrderId::from_uuid(Uuid::from_u128(9)),
            from,
            to,
        };
        assert_eq!(
            changed(Some(OrderStatus::PaymentPending), OrderStatus::Paid).public_type(),
            "order.paid"
        );
        assert_eq!(changed(Some(OrderStatus::Paid), OrderStatus::Paid).public_type(), "order.disputed");
        assert_eq!(
            changed(Some(OrderStatus::PartiallyRefunded), OrderStatus::PartiallyRefunded).public_type(),
            "order.refunded",
            "a second partial refund is a refund, not a dispute"
        );
        let disputed = DomainEvent::OrderDisputed {
            order_id: OrderId::from_uuid(Uuid::from_u128(9)),
            status: OrderStatus::PartiallyRefunded,
        };
        assert_eq!(disputed.public_type(), "order.disputed");
        assert_eq!(
            changed(Some(OrderStatus::Paid), OrderStatus::PartiallyRefunded).public_type(),
            "order.refunded"
        );
        let debit = DomainEvent::AdjustmentPosted {
            transaction_id: crate::ids::TransactionId::from_uuid(Uuid::from_u128(1)),
            user_id: UserId::from_uuid(Uuid::from_u128(1)),
            amount: Money::from_minor(-5, Currency::Usd),
        };
        assert_eq!(debit.public_type(), "wallet.debited");
        for known in EVENT_TYPES {
            assert!(is_event_type(known.name));
        }
    }

    #[test]
    fn a_rolled_secret_signs_until_its_overlap_ends() {
        let rolled = endpoint().roll_secret("s2".into(), Duration::hours(1), at());
        assert_eq!(rolled.signing_secrets(at()), vec!["s2", "s1"]);
        assert_eq!(rolled.signing_secrets(at() + Duration::hours(1)), vec!["s2"]);
    }

    #[test]
    fn an_endpoint_failing_for_days_is_disabled_and_a_success_forgives() {
        let failing = endpoint().failed(at()).failed(at() + Duration::days(1));
        assert!(failing.enabled);
        assert!(failing.clone().delivered(at() + Duration::days(2)).failing_since.is_none());
        let disabled = failing.failed(at() + DISABLE_AFTER);
        assert!(!disabled.enabled && disabled.disabled_reason.is_some());
        assert!(!disabled.receives("order.paid"));
        let enabled = disabled
            .change(
                EndpointChanges {
                    enabled: Some(true),
                    ..Default::default()
                },
                at() + Duration::days(4),
            )
            .expect("change");
        assert!(enabled.enabled && enabled.disabled_reason.is_none() && enabled.failing_since.is_none());
    }

    #[test]
    fn statuses_decide_between_delivered_retried_and_refused() {
        assert_eq!(AttemptOutcome::of_status(204, None), AttemptOutcome::Delivered);
        for retried in [408, 429, 500, 503, 302] {
            assert!(
                matches!(AttemptOutcome::of_status(retried, None), AttemptOutcome::Retry { .. }),
                "{retried}"
            );
        }
        for refused in [400, 401, 404, 410, 422] {
            assert_eq!(AttemptOutcome::of_status(refused, None), AttemptOutcome::Refused, "{refused}");
        }
    }

    #[test]
    fn a_delivery_backs_off_honours_retry_after_and_gives_up_after_the_window() {
        let first = delivery().begin_attempt(at(), Duration::minutes(1));
        let retried = first.record(attempt(at(), Some(503)), AttemptOutcome::Retry { retry_after: None }, 0);
        assert_eq!(retried.status, DeliveryStatus::Pending);
        assert_eq!(retried.next_attempt_at, at() + Duration::seconds(30));
        assert_eq!(
            retried.last_attempt.as_ref().map(|a| a.response.chars().count()),
            Some(RESPONSE_CHARS_MAX)
        );
        let asked = Some(Duration::minutes(10));
        let waited = retried.begin_attempt(at(), Duration::minutes(1)).record(
            attempt(at(), Some(429)),
            AttemptOutcome::Retry { retry_after: asked },
            0,
        );
        assert_eq!(waited.next_attempt_at, at() + Duration::minutes(10));
        let late = at() + RETRY_WINDOW;
        let given_up =
            waited
                .begin_attempt(late, Duration::minutes(1))
                .record(attempt(late, None), AttemptOutcome::Retry { retry_after: None }, 0);
        assert_eq!(given_up.status, DeliveryStatus::Failed);
        let refused = delivery()
            .begin_attempt(at(), Duration::minutes(1))
            .record(attempt(at(), Some(400)), AttemptOutcome::Refused, 0);
        assert_eq!(refused.status, DeliveryStatus::Failed);
        assert_eq!(refused.redeliver(late).status, DeliveryStatus::Pending);
    }
}
