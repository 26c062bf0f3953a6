//! The simulated card provider: it implements the `PaymentGateway` and `PayoutGateway` ports and
//! keeps the provider's own view of what happened (sessions opened, payments made, refunds and
//! payouts), from which the provider's webhooks are made.
//!
//! Each call's fate is chosen by the seed: it succeeds, fails before taking effect, is refused,
//! or takes effect and then reports a failure (a timeout after the provider acted, the worst case
//! for the caller). Calls take a seeded number of polls, so other tasks run meanwhile.

use std::sync::{Arc, Mutex, MutexGuard};

use application::ports::gateway::{
    CheckoutClosure, CheckoutRequest, CheckoutSession, GatewayError, GatewayEvent, GatewayEventKind, GatewayRefund, GatewayRefundStatus,
    PaymentGateway, PaymentReference, Payout, PayoutGateway, PayoutRequest, PayoutStatus, RefundRequest, RefundUpdate, WebhookError,
    WebhookHeaders,
};
use async_trait::async_trait;
use domain::ids::{PaymentId, RefundId};
use domain::money::{Currency, Money};
use domain::payment::ProviderName;
use time::OffsetDateTime;

use crate::executor::Delay;
use crate::rng::Rng;

pub const PROVIDER: &str = "simpay";

/// A checkout session as the provider sees it.
#[derive(Debug, Clone)]
pub struct Session {
    pub payment_id: PaymentId,
    pub session_id: String,
    pub amount: Money,
    /// Whether the application gave the payer the session's page: a payer can only pay a session
    /// they were sent to.
    pub delivered: bool,
    pub paid: bool,
    pub closed: bool,
}

/// A refund the provider accepted, and whether it has told us how it ended.
#[derive(Debug, Clone)]
pub struct ProviderRefund {
    pub refund_id: RefundId,
    pub provider_refund_id: String,
    pub amount: Money,
    pub status: GatewayRefundStatus,
}

#[derive(Debug)]
pub struct Provider {
    rng: Rng,
    pub sessions: Vec<Session>,
    pub refunds: Vec<ProviderRefund>,
    /// Payouts made, by idempotency key: one per key, as a real provider keeps it.
    pub payouts: Vec<(String, Money)>,
    /// Events made and not yet delivered: the webhook actor delivers them in any order, some
    /// twice.
    pub outbox: Vec<GatewayEvent>,
    events_made: u64,
}

impl Provider {
    pub fn event(&mut self, event_type: &str, kind: GatewayEventKind) {
        self.events_made += 1;
        self.outbox.push(GatewayEvent {
            event_id: format!("evt_{}", self.events_made),
            event_type: event_type.into(),
            kind,
        });
    }
}

/// How a call ends, chosen by the seed.
enum Fate {
    Works,
    FailsBefore,
    Refused,
    /// Takes effect, then the answer is lost.
    TimesOutAfter,
}

#[derive(Debug, Clone)]
pub struct SimGateway {
    name: ProviderName,
    provider: Arc<Mutex<Provider>>,
}

pub fn reference(payment_id: PaymentId, session_id: Option<&str>) -> PaymentReference {
    PaymentReference {
        payment_id: Some(payment_id),
        session_id: session_id.map(str::to_owned),
        provider_payment_id: Some(format!("pi_{}", payment_id.as_uuid().simple())),
    }
}

impl SimGateway {
    pub fn new(seed: u64) -> SimGateway {
        let name = ProviderName::parse(PROVIDER).unwrap_or_else(|e| panic!("{e}"));
        let provider = Provider {
            rng: Rng::new(seed ^ 0x5EED_6A7E),
            sessions: Vec::new(),
            refunds: Vec::new(),
            payouts: Vec::new(),
            outbox: Vec::new(),
            events_made: 0,
        };
        SimGateway {
            name,
            provider: Arc::new(Mutex::new(provider)),
        }
    }

    pub fn provider(&self) -> MutexGuard<'_, Provider> {
        self.provider.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The application answered a payer with this session's page.
    pub fn deliver(&self, session_id: &str) {
        let mut provider = self.provider();
        if let Some(session) = provider.sessions.iter_mut().find(|s| s.session_id == session_id) {
            session.delivered = true;
        }
    }

    /// The call's fate and how many polls it takes. A call under a key the provider has seen
    /// is answered as the first was (it is not refused now), though the network may still fail.
    fn fate(&self, known_key: bool) -> (Fate, u32) {
        let mut provider = self.provider();
        let polls = u32::try_from(provider.rng.below(4)).unwrap_or(0);
        let fate = match provider.rng.below(100) {
            0..70 => Fate::Works,
            70..80 => Fate::FailsBefore,
            80..90 if known_key => Fate::Works,
            80..90 => Fate::Refused,
            _ => Fate::TimesOutAfter,
        };
        (fate, polls)
    }
}

fn unavailable() -> GatewayError {
    GatewayError::Unavailable("simulated outage".into())
}

fn timed_out() -> GatewayError {
    GatewayError::Unexpected("simulated timeout after the provider acted".into())
}

#[async_trait]
impl PaymentGateway for SimGateway {
    fn provider(&self) -> &ProviderName {
        &self.name
    }

    fn supports_currency(&self, currency: Currency) -> bool {
        currency == Currency::Usd
    }

    async fn create_checkout(&self, request: CheckoutRequest) -> Result<CheckoutSession, GatewayError> {
        // The provider's idempotency key: a retried call gets the session opened before.
        let session_id = format!("cs_{}", request.idempotency_key);
        let known = self.provider().sessions.iter().any(|s| s.session_id == session_id);
        let (fate, polls) = self.fate(known);
        Delay(polls).await;
        if matches!(fate, Fate::FailsBefore) {
            return Err(unavailable());
        }
        if matches!(fate, Fate::Refused) {
            return Err(GatewayError::Declined("simulated decline".into()));
        }
        let mut provider = self.provider();
        if !provider.sessions.iter().any(|s| s.session_id == session_id) {
            provider.sessions.push(Session {
                payment_id: request.payment_id,
                session_id: session_id.clone(),
                amount: request.amount,
                delivered: false,
                paid: false,
                closed: false,
            });
        }
        if matches!(fate, Fate::TimesOutAfter) {
            return Err(timed_out());
        }
        drop(provider);
        Ok(CheckoutSession {
            checkout_url: format!("https://pay.example/{session_id}"),
            session_id,
        })
    }

    async fn refund(&self, request: RefundRequest) -> Result<GatewayRefund, GatewayError> {
        let provider_refund_id = format!("re_{}", request.idempotency_key);
        let known = self.provider().refunds.iter().any(|r| r.provider_refund_id == provider_refund_id);
        let (fate, polls) = self.fate(known);
        Delay(polls).await;
        match fate {
            Fate::FailsBefore => return Err(unavailable()),
            Fate::Refused => return Err(GatewayError::InvalidRequest("simulated refusal".into())),
            Fate::Works | Fate::TimesOutAfter => {}
        }
        let mut provider = self.provider();
        let status = match provider.refunds.iter().find(|r| r.provider_refund_id == provider_refund_id) {
            Some(known) => known.status,
            None => {
                let status = if provider.rng.chance(30) {
                    GatewayRefundStatus::Pending
                } else {
                    GatewayRefundStatus::Succeeded
                };
                provider.refunds.push(ProviderRefund {
                    refund_id: request.refund_id,
                    provider_refund_id: provider_refund_id.clone(),
                    amount: request.amount,
                    status,
                });
                // Like Stripe, the provider also announces a refund that succeeded at once.
                if status == GatewayRefundStatus::Succeeded {
                    let update = RefundUpdate {
                        provider_refund_id: provider_refund_id.clone(),
                        refund_id: Some(request.refund_id),
                        amount: Some(request.amount),
                        status,
                    };
                    provider.event("charge.refund.updated", GatewayEventKind::RefundUpdated(update));
                }
                status
            }
        };
        drop(provider);
        if matches!(fate, Fate::TimesOutAfter) {
            return Err(timed_out());
        }
        Ok(GatewayRefund {
            provider_refund_id,
            status,
        })
    }

    async fn expire_checkout(&self, session_id: &str) -> Result<CheckoutClosure, GatewayError> {
        let (fate, polls) = self.fate(false);
        Delay(polls).await;
        if matches!(fate, Fate::FailsBefore) {
            return Err(unavailable());
        }
        let mut provider = self.provider();
        let Some(session) = provider.sessions.iter_mut().find(|s| s.session_id == session_id) else {
            return Ok(CheckoutClosure::AlreadyClosed);
        };
        let closure = match (session.paid, session.closed) {
            (true, _) => CheckoutClosure::Completed,
            (false, true) => CheckoutClosure::AlreadyClosed,
            (false, false) => {
                session.closed = true;
                CheckoutClosure::Closed
            }
        };
        drop(provider);
        if matches!(fate, Fate::TimesOutAfter) {
            return Err(timed_out());
        }
        Ok(closure)
    }

    fn verify_webhook(&self, _: &WebhookHeaders, _: &[u8], _: OffsetDateTime) -> Result<GatewayEvent, WebhookError> {
        // The simulation hands the application verified events (`apply_gateway_event`).
        Err(WebhookError::MissingSignature)
    }

    fn payouts(&self) -> Option<&dyn PayoutGateway> {
        Some(self)
    }
}

#[async_trait]
impl PayoutGateway for SimGateway {
    fn supports_payout_currency(&self, currency: Currency) -> bool {
        currency == Currency::Usd
    }

    async fn create_payout(&self, request: PayoutRequest) -> Result<Payout, GatewayError> {
        let known = self.provider().payouts.iter().any(|(key, _)| *key == request.idempotency_key);
        let (fate, polls) = self.fate(known);
        Delay(polls).await;
        match fate {
            Fate::FailsBefore => return Err(unavailable()),
            Fate::Refused => {
                return Ok(Payout {
                    provider_reference: format!("po_{}", request.idempotency_key),
                    status: PayoutStatus::Failed("simulated refusal".into()),
                });
            }
            Fate::Works | Fate::TimesOutAfter => {}
        }
        let mut provider = self.provider();
        if !provider.payouts.iter().any(|(key, _)| *key == request.idempotency_key) {
            provider.payouts.push((request.idempotency_key.clone(), request.amount));
        }
        drop(provider);
        if matches!(fate, Fate::TimesOutAfter) {
            return Err(timed_out());
        }
        Ok(Payout {
            provider_reference: format!("po_{}", request.idempotency_key),
            status: PayoutStatus::Paid,
        })
    }
}

/// The provider acting on its own: a payer pays or abandons a session, a pending refund ends.
/// What it does becomes an event in its outbox.
pub fn provider_acts(gateway: &SimGateway) {
    let mut provider = gateway.provider();
    let choice = provider.rng.below(100);
    if choice < 20 {
        let pending: Vec<usize> = (0..provider.refunds.len())
            .filter(|&i| provider.refunds[i].status == GatewayRefundStatus::Pending)
            .collect();
        let Some(&index) = provider.rng.pick(&pending) else { return };
        let status = if provider.rng.chance(80) {
            GatewayRefundStatus::Succeeded
        } else {
            GatewayRefundStatus::Failed
        };
        provider.refunds[index].status = status;
        let refund = provider.refunds[index].clone();
        let update = RefundUpdate {
            provider_refund_id: refund.provider_refund_id,
            refund_id: Some(refund.refund_id),
            amount: Some(refund.amount),
            status,
        };
        provider.event("charge.refund.updated", GatewayEventKind::RefundUpdated(update));
        return;
    }
    let open: Vec<usize> = (0..provider.sessions.len()).filter(|&i| !provider.sessions[i].closed).collect();
    let Some(&index) = provider.rng.pick(&open) else { return };
    let session = provider.sessions[index].clone();
    let reference = reference(session.payment_id, Some(&session.session_id));
    if choice < 75 && session.delivered {
        provider.sessions[index].paid = true;
        provider.sessions[index].closed = true;
        let kind = GatewayEventKind::CheckoutCompleted {
            reference,
            amount: Some(session.amount),
            paid: true,
        };
        provider.event("checkout.session.completed", kind);
    } else if choice < 80 && session.delivered {
        provider.sessions[index].closed = true;
        let kind = GatewayEventKind::PaymentFailed {
            reference,
            reason: "simulated failure".into(),
        };
        provider.event("checkout.session.async_payment_failed", kind);
    } else if choice < 85 && session.delivered {
        let kind = GatewayEventKind::PaymentAttemptFailed {
            reference,
            reason: "simulated decline".into(),
        };
        provider.event("payment_intent.payment_failed", kind);
    } else {
        provider.sessions[index].closed = true;
        provider.event("checkout.session.expired", GatewayEventKind::CheckoutExpired { reference });
    }
}

/// Every refund still pending at the provider ends, succeeded, each with its event.
pub fn settle_pending_refunds(gateway: &SimGateway) {
    let mut provider = gateway.provider();
    let pending: Vec<usize> = (0..provider.refunds.len())
        .filter(|&i| provider.refunds[i].status == GatewayRefundStatus::Pending)
        .collect();
    for index in pending {
        provider.refunds[index].status = GatewayRefundStatus::Succeeded;
        let refund = provider.refunds[index].clone();
        let update = RefundUpdate {
            provider_refund_id: refund.provider_refund_id,
            refund_id: Some(refund.refund_id),
            amount: Some(refund.amount),
            status: GatewayRefundStatus::Succeeded,
        };
        provider.event("charge.refund.updated", GatewayEventKind::RefundUpdated(update));
    }
}

impl Provider {
    /// What the provider holds for the platform: what payers paid less what it refunded.
    pub fn net_minor(&self) -> i64 {
        let paid: i64 = self.sessions.iter().filter(|s| s.paid).map(|s| s.amount.amount_minor()).sum();
        let refunded: i64 = self
            .refunds
            .iter()
            .filter(|r| r.status == GatewayRefundStatus::Succeeded)
            .map(|r| r.amount.amount_minor())
            .sum();
        paid - refunded
    }
}
