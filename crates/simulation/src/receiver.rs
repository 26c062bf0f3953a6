//! Merchants' and the platform's webhook receivers, as the relay's `WebhookSender`: every attempt
//! is answered 200, or, while a fault lasts, 503; each is logged, so that the invariants can say
//! whether a delivery the store records as succeeded was sent again.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use application::ports::webhooks::{OutgoingWebhook, SendError, WebhookAnswer, WebhookSender};
use async_trait::async_trait;
use domain::ids::WebhookDeliveryId;

/// One attempt, as the receiver saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub delivery: WebhookDeliveryId,
    pub event_type: String,
    /// Whether it was answered 2xx.
    pub accepted: bool,
    /// Whether it carried at least one signing secret.
    pub signed: bool,
}

#[derive(Debug, Default)]
struct State {
    /// Attempts still to be refused with 503.
    failing: u32,
    attempts: Vec<Attempt>,
}

/// The receivers of every endpoint. Deterministic: the world decides when they fail.
#[derive(Debug, Default)]
pub struct SimReceiver {
    state: Mutex<State>,
}

impl SimReceiver {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The next `attempts` attempts are answered 503 (0 ends a fault).
    pub fn fail_next(&self, attempts: u32) {
        self.state().failing = attempts;
    }

    /// Every attempt so far.
    pub fn attempts(&self) -> Vec<Attempt> {
        self.state().attempts.clone()
    }

    /// How many attempts each delivery has had so far.
    pub fn attempts_by_delivery(&self) -> BTreeMap<WebhookDeliveryId, usize> {
        let mut counts = BTreeMap::new();
        for attempt in &self.state().attempts {
            *counts.entry(attempt.delivery).or_default() += 1;
        }
        counts
    }

    /// Attempts sent without a signing secret.
    pub fn unsigned(&self) -> Vec<String> {
        self.state()
            .attempts
            .iter()
            .filter(|attempt| !attempt.signed)
            .map(|attempt| format!("delivery {} ({}) was sent unsigned", attempt.delivery, attempt.event_type))
            .collect()
    }
}

#[async_trait]
impl WebhookSender for SimReceiver {
    async fn send(&self, webhook: &OutgoingWebhook) -> Result<WebhookAnswer, SendError> {
        let mut state = self.state();
        let accepted = state.failing == 0;
        state.failing = state.failing.saturating_sub(1);
        state.attempts.push(Attempt {
            delivery: webhook.delivery_id,
            event_type: webhook.event_type.clone(),
            accepted,
            signed: !webhook.secrets.is_empty(),
        });
        Ok(WebhookAnswer {
            status: if accepted { 200 } else { 503 },
            body: String::new(),
            retry_after: None,
            latency: std::time::Duration::from_millis(1),
        })
    }
}
