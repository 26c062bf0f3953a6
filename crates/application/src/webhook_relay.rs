//! The webhook relay: fans the outbox's events out to the endpoints that take them, then
//! delivers, each run a round of the job.
//!
//! Fan-out takes the oldest unpublished events in order (`SKIP LOCKED`, so instances share the
//! outbox), records one delivery per event and endpoint, and marks the events published, in one
//! transaction: an event is fanned out exactly once. Delivery claims endpoints that have
//! deliveries due (again skipping those another instance holds) for a lease longer than a turn
//! can take, so one endpoint is never sent two events at once; an instance that dies leaves its
//! endpoints to be claimed again when their lease runs out, and its unrecorded attempts to be made
//! again: every event reaches each of its endpoints at least once (receivers deduplicate by the
//! event id). Attempts call the endpoint outside any transaction; a turn's attempts are recorded
//! together, in one transaction that also releases the endpoint.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration as StdDuration;

use domain::events::OutboxEvent;
use domain::ids::{EventId, UserId, WebhookEndpointId};
use domain::webhook::{API_VERSION, AttemptOutcome, AttemptRecord, Audience, EndpointOwner, WebhookDelivery, WebhookEndpoint};
use time::{Duration, OffsetDateTime};

use crate::context::App;
use crate::ports::store::{
    DeliveryBacklog, EventOutbox, OrderRepository, PaymentRepository, ProductRepository, RefundRepository, StoreError, UnitOfWork,
    WebhookRepository,
};
use crate::ports::system::{IdGenerator, next_id};
use crate::ports::webhooks::{OutgoingWebhook, SendError};
use crate::transact::{transact, work};

/// What one round of the relay did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelayRound {
    /// Events fanned out.
    pub events: usize,
    /// Of those, the payments' and refunds' outcomes, by public type (`payment.succeeded`,
    /// `refund.failed`, ...) and provider (`wallet` for a refund to a wallet): each counted once,
    /// when its event is fanned out, whichever instance does it.
    pub money_outcomes: BTreeMap<(&'static str, String), usize>,
    /// Attempts the endpoint answered 2xx.
    pub delivered: usize,
    /// Attempts that failed and will be retried.
    pub retrying: usize,
    /// Deliveries given up (refused, or out of retries).
    pub failed: usize,
}

impl RelayRound {
    fn add(mut self, other: RelayRound) -> RelayRound {
        self.events += other.events;
        self.delivered += other.delivered;
        self.retrying += other.retrying;
        self.failed += other.failed;
        self
    }
}

/// The outbox's lag and the deliveries still to make, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WebhookBacklog {
    /// How long the oldest unpublished event has waited.
    pub outbox_lag: Duration,
    pub deliveries: DeliveryBacklog,
}

crate::repositories!(FanOutTx: EventOutbox, WebhookRepository, OrderRepository, PaymentRepository, ProductRepository, RefundRepository);

impl<U: UnitOfWork> App<U> {
    /// One round: fans out the waiting events, then makes the deliveries due.
    #[tracing::instrument(name = "relay_webhooks", skip_all)]
    pub async fn relay_webhooks(&self) -> Result<RelayRound, StoreError> {
        let (ids, now, batch) = (self.ids.as_ref(), self.clock.now(), self.settings.webhooks.events_per_round);
        let (events, money_outcomes) = transact(&self.store, |tx| work(fan_out(tx, ids, batch, now))).await?;
        let delivered = self.deliver_due().await?;
        Ok(RelayRound {
            events,
            money_outcomes,
            ..delivered
        })
    }

    /// Deletes up to `batch` deliveries that ended longer ago than `DELIVERY_HISTORY_KEPT`;
    /// returns how many, for the job to go on while there are more.
    pub async fn prune_webhook_history(&self, batch: usize) -> Result<usize, StoreError> {
        let before = self.clock.now() - domain::webhook::DELIVERY_HISTORY_KEPT;
        let pruned = transact(&self.store, |tx| work(tx.prune_settled_webhook_deliveries(before, batch))).await?;
        Ok(usize::try_from(pruned).unwrap_or(usize::MAX))
    }

    /// The outbox's lag and the deliveries waiting.
    pub async fn webhook_backlog(&self) -> Result<WebhookBacklog, StoreError> {
        let now = self.clock.now();
        let (oldest, deliveries) = transact(&self.store, |tx| {
            work(async move {
                let oldest = tx.oldest_unpublished_event().await?;
                Ok::<_, StoreError>((oldest, tx.webhook_delivery_backlog().await?))
            })
        })
        .await?;
        let outbox_lag = oldest.map_or(Duration::ZERO, |at| (now - at).max(Duration::ZERO));
        Ok(WebhookBacklog { outbox_lag, deliveries })
    }

    /// Claims the endpoints with deliveries due and serves them concurrently, each one delivery
    /// after another.
    async fn deliver_due(&self) -> Result<RelayRound, StoreError> {
        let now = self.clock.now();
        let (until, limit) = (now + self.settings.webhooks.lease, self.settings.webhooks.endpoints_per_round);
        let endpoints = transact(&self.store, |tx| work(tx.claim_webhook_endpoints(now, until, limit))).await?;
        let rounds = futures::future::join_all(endpoints.into_iter().map(|endpoint| self.serve_endpoint(endpoint))).await;
        let mut total = RelayRound::default();
        for round in rounds {
            total = total.add(round?);
        }
        Ok(total)
    }

    /// Makes the endpoint's due deliveries in order, stopping at the first that fails (the
    /// endpoint is then failing; the rest keep their turn) or when the endpoint's time is up;
    /// then records every attempt and releases the endpoint in one transaction. Reading the
    /// deliveries with their events and recording them in bulk keeps the relay's own database
    /// work to two transactions per endpoint and turn, whatever the number of deliveries.
    async fn serve_endpoint(&self, endpoint: WebhookEndpoint) -> Result<RelayRound, StoreError> {
        let (id, now, limit) = (endpoint.id, self.clock.now(), self.settings.webhooks.deliveries_per_endpoint);
        let time_up = now + self.settings.webhooks.endpoint_budget;
        let (due, events) = transact(&self.store, |tx| {
            work(async move {
                let due = tx.due_webhook_deliveries(id, now, limit).await?;
                let ids: Vec<EventId> = due.iter().map(|delivery| delivery.event_id).collect();
                Ok::<_, StoreError>((due, tx.find_events(&ids).await?))
            })
        })
        .await?;
        let events: HashMap<EventId, OutboxEvent> = events.into_iter().map(|event| (event.id, event)).collect();
        let mut attempts = Vec::with_capacity(due.len());
        for delivery in &due {
            let event = events
                .get(&delivery.event_id)
                .ok_or_else(|| StoreError::Corrupt(format!("delivery {} names a missing event", delivery.id)))?;
            let attempt = self.attempt(&endpoint, delivery, event).await;
            let outcome = attempt.outcome;
            attempts.push(attempt);
            if outcome != AttemptOutcome::Delivered || self.clock.now() >= time_up {
                break;
            }
        }
        let mut round = RelayRound::default();
        for attempt in &attempts {
            match attempt.outcome {
                AttemptOutcome::Delivered => round.delivered += 1,
                AttemptOutcome::Retry { .. } => round.retrying += 1,
                AttemptOutcome::Refused => round.failed += 1,
            }
        }
        let (attempts, lease) = (&attempts, self.settings.webhooks.lease);
        transact(&self.store, |tx| work(record_attempts(tx, id, attempts, lease))).await?;
        Ok(round)
    }

    /// One attempt at one delivery, outside any transaction.
    #[tracing::instrument(
        name = "webhook_delivery",
        skip_all,
        fields(endpoint_id = %endpoint.id, delivery_id = %delivery.id, event_id = %event.id, event_type = %delivery.event_type, status = tracing::field::Empty)
    )]
    async fn attempt(&self, endpoint: &WebhookEndpoint, delivery: &WebhookDelivery, event: &OutboxEvent) -> Attempt {
        let started = self.clock.now();
        let webhook = outgoing(endpoint, delivery, event, started);
        let answer = self.webhooks.send(&webhook).await;
        let (record, outcome) = attempt_record(answer, started, self.clock.now());
        if let Some(status) = record.status_code {
            tracing::Span::current().record("status", status);
        }
        if let Some(status) = record.status_code.filter(|_| outcome != AttemptOutcome::Delivered) {
            tracing::info!(endpoint_id = %endpoint.id, delivery_id = %delivery.id, status, "a webhook delivery was not accepted");
        }
        Attempt {
            delivery: delivery.clone(),
            record,
            outcome,
        }
    }
}

/// The request of one attempt.
fn outgoing(endpoint: &WebhookEndpoint, delivery: &WebhookDelivery, event: &OutboxEvent, now: OffsetDateTime) -> OutgoingWebhook {
    OutgoingWebhook {
        url: endpoint.url.as_str().to_owned(),
        delivery_id: delivery.id,
        event_id: event.id,
        event_type: delivery.event_type.clone(),
        created_at: event.occurred_at,
        api_version: API_VERSION,
        object: event
            .event
            .attributes()
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect(),
        secrets: endpoint.signing_secrets(now).into_iter().map(str::to_owned).collect(),
        signed_at: now,
    }
}

/// What an answer (or its absence) means.
fn attempt_record(
    answer: Result<crate::ports::webhooks::WebhookAnswer, SendError>,
    started: OffsetDateTime,
    finished: OffsetDateTime,
) -> (AttemptRecord, AttemptOutcome) {
    let millis = |latency: StdDuration| u32::try_from(latency.as_millis()).unwrap_or(u32::MAX);
    match answer {
        Ok(answer) => {
            let retry_after = answer
                .retry_after
                .map(|wait| Duration::seconds(i64::try_from(wait.as_secs()).unwrap_or(i64::MAX)));
            let record = AttemptRecord {
                at: finished,
                status_code: Some(answer.status),
                latency_ms: millis(answer.latency),
                response: answer.body,
            };
            (record, AttemptOutcome::of_status(answer.status, retry_after))
        }
        Err(error) => {
            let elapsed = StdDuration::try_from(finished - started).unwrap_or_default();
            let record = AttemptRecord {
                at: finished,
                status_code: None,
                latency_ms: millis(elapsed),
                response: error.to_string(),
            };
            (record, AttemptOutcome::Retry { retry_after: None })
        }
    }
}

/// An attempt's outcome, to record.
struct Attempt {
    delivery: WebhookDelivery,
    record: AttemptRecord,
    outcome: AttemptOutcome,
}

/// Records a turn's attempts on their deliveries and on the endpoint (which a run of failures
/// disables), and releases the endpoint for the next turn.
async fn record_attempts<Tx: WebhookRepository + Send>(
    tx: &mut Tx,
    endpoint_id: WebhookEndpointId,
    attempts: &[Attempt],
    lease: Duration,
) -> Result<(), StoreError> {
    // An endpoint deleted during the turn took its deliveries with it: nothing to record.
    let Some(mut endpoint) = tx.lock_webhook_endpoint(endpoint_id).await? else {
        return Ok(());
    };
    let was_enabled = endpoint.enabled;
    // Only the endpoint's holder changes its deliveries' attempts, so the state read at the start
    // of the turn is theirs still.
    let mut recorded = Vec::with_capacity(attempts.len());
    for attempt in attempts {
        let at = attempt.record.at;
        endpoint = match attempt.outcome {
            AttemptOutcome::Delivered => endpoint.delivered(at),
            AttemptOutcome::Retry { .. } | AttemptOutcome::Refused => endpoint.failed(at),
        };
        let jitter = jitter(&attempt.delivery);
        let delivery = attempt
            .delivery
            .clone()
            .begin_attempt(at, lease)
            .record(attempt.record.clone(), attempt.outcome, jitter);
        recorded.push(delivery);
    }
    tx.update_webhook_deliveries(&recorded).await?;
    if was_enabled && !endpoint.enabled {
        tracing::warn!(endpoint_id = %endpoint.id, "a webhook endpoint failing for days was disabled");
    }
    if !attempts.is_empty() {
        tx.update_webhook_endpoint(&endpoint).await?;
    }
    tx.hold_webhook_endpoint(endpoint_id, None).await?;
    Ok(())
}

/// A spread for the retry delay, the same for the same delivery and attempt.
fn jitter(delivery: &WebhookDelivery) -> u16 {
    let mixed = delivery.id.as_uuid().as_u128() ^ u128::from(delivery.attempts).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (mixed % 1001) as u16
}

/// Fans the oldest unpublished events out to the endpoints that take them, and marks them
/// published. Returns how many events, and the money outcomes among them.
async fn fan_out<Tx: FanOutTx>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    batch: usize,
    now: OffsetDateTime,
) -> Result<(usize, MoneyOutcomes), StoreError> {
    let events = tx.lock_unpublished_events(batch).await?;
    if events.is_empty() {
        return Ok((0, MoneyOutcomes::new()));
    }
    let outcomes = money_outcomes(tx, &events).await;
    let endpoints = tx.enabled_webhook_endpoints().await?;
    let mut deliveries = Vec::new();
    // One purchase announces several events about one order: look its parties up once.
    let mut known: HashMap<Audience, Vec<UserId>> = HashMap::new();
    for event in &events {
        let event_type = event.event.public_type();
        let takers: Vec<&WebhookEndpoint> = endpoints.iter().filter(|endpoint| endpoint.receives(event_type)).collect();
        if takers.is_empty() {
            continue;
        }
        let audience = event.event.audience();
        let merchants = match takers.iter().any(|endpoint| matches!(endpoint.owner, EndpointOwner::Merchant(_))) {
            true => match known.get(&audience) {
                Some(users) => users.clone(),
                None => {
                    let users = parties(tx, &audience).await?;
                    known.insert(audience.clone(), users.clone());
                    users
                }
            },
            false => Vec::new(),
        };
        for endpoint in takers.into_iter().filter(|endpoint| admits(endpoint, &audience, &merchants)) {
            deliveries.push(WebhookDelivery::schedule(next_id(ids), event.id, endpoint.id, event_type, now));
        }
    }
    tx.insert_webhook_deliveries(&deliveries).await?;
    let published: Vec<_> = events.iter().map(|event| event.id).collect();
    tx.mark_events_published(&published, now).await?;
    Ok((events.len(), outcomes))
}

type MoneyOutcomes = BTreeMap<(&'static str, String), usize>;

/// The payments' and refunds' outcomes the events announce, by type and provider. Only for the
/// metrics: a lookup that fails counts the outcome under provider `unknown` rather than holding
/// up the relay.
async fn money_outcomes<Tx: FanOutTx>(tx: &mut Tx, events: &[OutboxEvent]) -> MoneyOutcomes {
    use domain::events::DomainEvent::*;
    let mut outcomes = MoneyOutcomes::new();
    for event in events {
        let provider = match &event.event {
            PaymentSucceeded { payment_id, .. }
            | PaymentFailed { payment_id }
            | PaymentExpired { payment_id }
            | PaymentLateSuccess { payment_id, .. }
            | PaymentDisputed { payment_id } => provider_of(tx, Some(*payment_id)).await,
            RefundSucceeded { refund_id, .. } | RefundFailed { refund_id, .. } => match tx.find_refund(*refund_id).await {
                Ok(Some(refund)) => provider_of(tx, refund.payment_id()).await,
                Ok(None) | Err(_) => "unknown".to_owned(),
            },
            _ => continue,
        };
        *outcomes.entry((event.event.public_type(), provider)).or_default() += 1;
    }
    outcomes
}

/// The provider of a card payment; `wallet` when there is none.
async fn provider_of<Tx: FanOutTx>(tx: &mut Tx, payment: Option<domain::ids::PaymentId>) -> String {
    let Some(id) = payment else {
        return "wallet".to_owned();
    };
    match tx.find_payment(id).await {
        Ok(Some(payment)) => payment.provider().as_str().to_owned(),
        Ok(None) | Err(_) => "unknown".to_owned(),
    }
}

/// Whether the endpoint is to receive an event for this audience.
fn admits(endpoint: &WebhookEndpoint, audience: &Audience, merchants: &[UserId]) -> bool {
    match (audience, endpoint.owner) {
        (Audience::Endpoint(id), _) => endpoint.id == *id,
        (_, EndpointOwner::Platform) => true,
        (_, EndpointOwner::Merchant(merchant)) => merchants.contains(&merchant),
    }
}

/// The users an event concerns, found from what it names.
async fn parties<Tx: FanOutTx>(tx: &mut Tx, audience: &Audience) -> Result<Vec<UserId>, StoreError> {
    let order_merchants = |order: Option<domain::order::Order>| -> Vec<UserId> {
        order.map_or_else(Vec::new, |order| order.items().iter().map(|item| item.merchant_id).collect())
    };
    Ok(match audience {
        Audience::Platform | Audience::Endpoint(_) => Vec::new(),
        Audience::Users(users) => users.clone(),
        Audience::Order(order_id) => order_merchants(tx.find_order(*order_id).await?),
        Audience::Payment(payment_id) => match tx.find_payment(*payment_id).await? {
            Some(payment) => match payment.purpose() {
                domain::payment::PaymentPurpose::TopUp(payer) => vec![payer],
                domain::payment::PaymentPurpose::Order(order_id) => order_merchants(tx.find_order(order_id).await?),
            },
            None => Vec::new(),
        },
        Audience::Product(product_id) => tx
            .find_product(*product_id)
            .await?
            .map_or_else(Vec::new, |(product, _)| vec![product.merchant_id]),
    })
}
