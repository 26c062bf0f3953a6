//! A card gateway simulator for demo mode and tests.
//!
//! It behaves like a hosted-checkout provider: `create_checkout` opens a session whose page is
//! served by this very server (`/simulator/checkout/{id}`); when the customer pays or declines
//! there, the simulator sends the server a webhook signed exactly like Stripe's
//! (`Stripe-Signature: t=...,v1=...`, HMAC-SHA256 of `t.body`), so the real webhook route, its
//! signature check, deduplication and ledger effects all run end to end. Refunds succeed at once.
//!
//! It pays out withdrawals too (`PayoutGateway`), deciding by the destination so that tests and
//! demos can ask for each outcome: one containing `fail` is refused by the "bank" (the payout
//! fails), `pending` is accepted and paid when asked again under the same key, `unavailable`
//! gets no answer (the gateway is down); any other is paid at once. A payout asked for again
//! under its idempotency key answers as it did (or, once pending, as paid).

mod events;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use application::ports::gateway::{
    CheckoutClosure, CheckoutRequest, CheckoutSession, ChoiceError, CustomerChoice, GatewayError, GatewayEvent, GatewayRefund,
    GatewayRefundStatus, HostedCheckout, HostedSession, HostedSessionState, PaymentGateway, Payout, PayoutGateway, PayoutRequest,
    PayoutStatus, RefundRequest, WebhookError, WebhookHeaders,
};
use application::ports::system::Clock;
use async_trait::async_trait;
use domain::money::Currency;
use domain::payment::ProviderName;
use time::OffsetDateTime;
use uuid::Uuid;

pub use stripe_signature as signature;
pub use stripe_signature::TOLERANCE;

/// The provider name under which the simulator is registered, and the last path segment of its
/// webhook route.
pub const PROVIDER: &str = "simulated";

/// How often a webhook delivery is attempted before the customer's page reports a failure.
const DELIVERY_ATTEMPTS: u32 = 3;

#[derive(Debug)]
struct Session {
    hosted: HostedSession,
    payment_intent: String,
}

pub struct SimulatedGateway {
    provider: ProviderName,
    secret: Vec<u8>,
    /// Where this server can be reached: the base of the hosted pages and of the webhook target.
    /// Set once the listener is bound (tests bind port 0).
    base_url: RwLock<String>,
    sessions: Mutex<HashMap<String, Session>>,
    /// Payouts made, by idempotency key.
    payouts: Mutex<HashMap<String, Payout>>,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for SimulatedGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatedGateway")
            .field("provider", &self.provider)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl SimulatedGateway {
    /// # Errors
    /// An HTTP client that cannot be built (no TLS is involved, so in practice never).
    pub fn new(secret: Vec<u8>, base_url: &str, clock: Arc<dyn Clock>) -> Result<SimulatedGateway, GatewayError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| GatewayError::Unexpected(e.to_string()))?;
        Ok(SimulatedGateway {
            provider: ProviderName::parse(PROVIDER).map_err(|e| GatewayError::Unexpected(e.to_string()))?,
            secret,
            base_url: RwLock::new(base_url.trim_end_matches('/').to_owned()),
            sessions: Mutex::new(HashMap::new()),
            payouts: Mutex::new(HashMap::new()),
            http,
            clock,
        })
    }

    /// Points pages and webhooks at the server's real address once it is known.
    pub fn set_base_url(&self, base_url: &str) {
        let mut current = self.base_url.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        *current = base_url.trim_end_matches('/').to_owned();
    }

    fn base_url(&self) -> String {
        self.base_url.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Signs and posts an event to our own webhook route, retrying transient failures.
    async fn deliver(&self, body: String) -> Result<(), GatewayError> {
        let url = format!("{}/api/v1/webhooks/{PROVIDER}", self.base_url());
        let mut last_error = String::new();
        for attempt in 1..=DELIVERY_ATTEMPTS {
            let header = signature::sign(&self.secret, self.clock.now().unix_timestamp(), body.as_bytes());
            let sent = self
                .http
                .post(&url)
                .header("content-type", "application/json")
                .header(signature::HEADER, header)
                .body(body.clone())
                .send()
                .await;
            match sent {
                Ok(response) if response.status().is_success() => return Ok(()),
                Ok(response) if response.status().is_client_error() => {
                    return Err(GatewayError::Unexpected(format!(
                        "the webhook was refused with {}",
                        response.status()
                    )));
                }
                Ok(response) => last_error = format!("status {}", response.status()),
                Err(error) => last_error = error.to_string(),
            }
            tracing::warn!(attempt, %last_error, "simulated webhook delivery failed; retrying");
            tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
        }
        Err(GatewayError::Unavailable(format!("webhook delivery failed: {last_error}")))
    }
}

#[async_trait]
impl PaymentGateway for SimulatedGateway {
    fn provider(&self) -> &ProviderName {
        &self.provider
    }

    fn supports_currency(&self, _currency: Currency) -> bool {
        true
    }

    async fn create_checkout(&self, request: CheckoutRequest) -> Result<CheckoutSession, GatewayError> {
        if !request.amount.is_positive() {
            return Err(GatewayError::InvalidRequest("the amount must be positive".into()));
        }
        let mut sessions = self.sessions();
        // The idempotency key names the payment: a retried request gets the same session back.
        if let Some(existing) = sessions.values().find(|s| s.hosted.payment_id == request.payment_id) {
            let url = format!("{}/simulator/checkout/{}", self.base_url(), existing.hosted.session_id);
            return Ok(CheckoutSession {
                session_id: existing.hosted.session_id.clone(),
                checkout_url: url,
            });
        }
        let session_id = format!("cs_sim_{}", Uuid::now_v7().simple());
        let hosted = HostedSession {
            session_id: session_id.clone(),
            payment_id: request.payment_id,
            amount: request.amount,
            description: request.description,
            lines: request.lines,
            customer_email: request.customer_email,
            expires_at: request.expires_at,
            state: HostedSessionState::Open,
        };
        let payment_intent = format!("pi_sim_{}", Uuid::now_v7().simple());
        sessions.insert(session_id.clone(), Session { hosted, payment_intent });
        let checkout_url = format!("{}/simulator/checkout/{session_id}", self.base_url());
        Ok(CheckoutSession { session_id, checkout_url })
    }

    async fn refund(&self, request: RefundRequest) -> Result<GatewayRefund, GatewayError> {
        let known = self
            .sessions()
            .values()
            .any(|s| s.payment_intent == request.provider_payment_id && s.hosted.state == HostedSessionState::Paid);
        if !known {
            return Err(GatewayError::InvalidRequest(format!(
                "no paid payment {}",
                request.provider_payment_id
            )));
        }
        Ok(GatewayRefund {
            provider_refund_id: format!("re_sim_{}", request.refund_id.as_uuid().simple()),
            status: GatewayRefundStatus::Succeeded,
        })
    }

    /// Like Stripe: an open session is closed (its page refuses payment from now on), a paid
    /// one cannot be.
    async fn expire_checkout(&self, session_id: &str) -> Result<CheckoutClosure, GatewayError> {
        let now = self.clock.now();
        let mut sessions = self.sessions();
        let session = sessions
            .get_mut(session_id)
            .ok_or_else(|| GatewayError::InvalidRequest(format!("no checkout session {session_id}")))?;
        Ok(match session.hosted.state {
            HostedSessionState::Open if session.hosted.expires_at > now => {
                session.hosted.state = HostedSessionState::Expired;
                CheckoutClosure::Closed
            }
            HostedSessionState::Open | HostedSessionState::Expired | HostedSessionState::Declined => {
                if session.hosted.state == HostedSessionState::Open {
                    session.hosted.state = HostedSessionState::Expired;
                }
                CheckoutClosure::AlreadyClosed
            }
            HostedSessionState::Paid => CheckoutClosure::Completed,
        })
    }

    fn verify_webhook(&self, headers: &WebhookHeaders, body: &[u8], now: OffsetDateTime) -> Result<GatewayEvent, WebhookError> {
        let header = headers.get(signature::HEADER).ok_or(WebhookError::MissingSignature)?;
        signature::verify(std::slice::from_ref(&self.secret), header, body, now.unix_timestamp(), TOLERANCE)?;
        events::parse(body)
    }

    fn payouts(&self) -> Option<&dyn PayoutGateway> {
        Some(self)
    }
}

#[async_trait]
impl HostedCheckout for SimulatedGateway {
    fn session(&self, session_id: &str) -> Option<HostedSession> {
        let now = self.clock.now();
        let mut sessions = self.sessions();
        let session = sessions.get_mut(session_id)?;
        if session.hosted.state == HostedSessionState::Open && session.hosted.expires_at <= now {
            session.hosted.state = HostedSessionState::Expired;
        }
        Some(session.hosted.clone())
    }

    async fn choose(&self, session_id: &str, choice: CustomerChoice) -> Result<HostedSession, ChoiceError> {
        // Checked and changed under one lock, so two presses of Pay cannot both pay.
        let (hosted, body) = {
            let now = self.clock.now();
            let mut sessions = self.sessions();
            let session = sessions.get_mut(session_id).ok_or(ChoiceError::UnknownSession)?;
            if session.hosted.state == HostedSessionState::Open && session.hosted.expires_at <= now {
                session.hosted.state = HostedSessionState::Expired;
            }
            match session.hosted.state {
                HostedSessionState::Open => {}
                HostedSessionState::Expired => return Err(ChoiceError::Expired),
                HostedSessionState::Paid => return Err(ChoiceError::Closed("paid")),
                HostedSessionState::Declined => return Err(ChoiceError::Closed("declined")),
            }
            let (state, body) = match choice {
                CustomerChoice::Pay => (
                    HostedSessionState::Paid,
                    events::completed(&session.hosted, &session.payment_intent, now),
                ),
                CustomerChoice::Decline => (
                    HostedSessionState::Declined,
                    events::declined(&session.hosted, &session.payment_intent, now),
                ),
            };
            session.hosted.state = state;
            (session.hosted.clone(), body)
        };
        self.deliver(body).await.map_err(ChoiceError::Delivery)?;
        Ok(hosted)
    }
}

#[async_trait]
impl PayoutGateway for SimulatedGateway {
    fn supports_payout_currency(&self, _currency: Currency) -> bool {
        true
    }

    async fn create_payout(&self, request: PayoutRequest) -> Result<Payout, GatewayError> {
        if !request.amount.is_positive() {
            return Err(GatewayError::InvalidRequest("the amount must be positive".into()));
        }
        let destination = request.destination.to_ascii_lowercase();
        if destination.contains("unavailable") {
            return Err(GatewayError::Unavailable("the simulated bank does not answer".into()));
        }
        let mut payouts = self.payouts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(earlier) = payouts.get_mut(&request.idempotency_key) {
            if earlier.status == PayoutStatus::Pending {
                earlier.status = PayoutStatus::Paid;
            }
            return Ok(earlier.clone());
        }
        let status = if destination.contains("fail") {
            PayoutStatus::Failed("the simulated bank refused the destination".into())
        } else if destination.contains("pending") {
            PayoutStatus::Pending
        } else {
            PayoutStatus::Paid
        };
        let payout = Payout {
            provider_reference: format!("po_sim_{}", request.withdrawal_id.as_uuid().simple()),
            status,
        };
        payouts.insert(request.idempotency_key, payout.clone());
        Ok(payout)
    }
}
