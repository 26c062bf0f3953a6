//! The port that sends outbound webhooks to merchants' endpoints.
//!
//! The adapter renders the event as receivers see it (a JSON object: `id`, `type`, `created`,
//! `api_version`, `data.object` with the event's attributes), signs it with every secret given
//! (`Payments-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, one `v1` per
//! secret, as Stripe signs), and POSTs it once: no redirects followed, a timeout per request, and
//! no address the operator has not allowed (private, loopback and link-local addresses are refused
//! unless allowed, whatever the URL's host resolves to). Retrying is the application's business.

use std::time::Duration;

use async_trait::async_trait;
use domain::ids::{EventId, WebhookDeliveryId};
use time::OffsetDateTime;

/// The header that carries the signatures.
pub const SIGNATURE_HEADER: &str = "payments-signature";
/// The header that carries the event id, for receivers to deduplicate.
pub const EVENT_ID_HEADER: &str = "payments-event-id";

/// One attempt at delivering one event to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingWebhook {
    /// Where to POST.
    pub url: String,
    /// The delivery being attempted.
    pub delivery_id: WebhookDeliveryId,
    /// The event, whose id is the payload's `id` and the `payments-event-id` header.
    pub event_id: EventId,
    /// The public type (`order.paid`).
    pub event_type: String,
    /// When the event occurred.
    pub created_at: OffsetDateTime,
    /// The payloads' version ([`domain::webhook::API_VERSION`]).
    pub api_version: &'static str,
    /// The event's attributes (`DomainEvent::attributes`), the payload's `data.object`.
    pub object: Vec<(String, String)>,
    /// Each signs the body; the receiver accepts any one it knows.
    pub secrets: Vec<String>,
    /// Signed at this time (`t=`).
    pub signed_at: OffsetDateTime,
}

/// How the endpoint answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookAnswer {
    /// The HTTP status.
    pub status: u16,
    /// The start of the response body.
    pub body: String,
    /// The endpoint's `Retry-After`, if it sent one.
    pub retry_after: Option<Duration>,
    /// How long the answer took.
    pub latency: Duration,
}

/// Why no answer came.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The URL's host is (or resolves to) an address webhooks may not reach.
    #[error("the endpoint's address is not allowed: {0}")]
    AddressNotAllowed(String),
    /// No answer came within this time.
    #[error("the endpoint did not answer within {0:?}")]
    Timeout(Duration),
    /// No connection could be made (DNS, refused, TLS...).
    #[error("the endpoint could not be reached: {0}")]
    Unreachable(String),
}

/// Sends outbound webhooks, one attempt at a time.
#[async_trait]
pub trait WebhookSender: Send + Sync + std::fmt::Debug + 'static {
    /// Makes one attempt; any HTTP answer is `Ok`, whatever its status.
    async fn send(&self, webhook: &OutgoingWebhook) -> Result<WebhookAnswer, SendError>;

    /// Why the sender would refuse this URL whatever its host resolves to (an address it may not
    /// reach, written in the URL), checked when an endpoint is registered; `None` if it would try.
    fn refusal(&self, _url: &str) -> Option<String> {
        None
    }
}
