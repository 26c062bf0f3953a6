//! Gateway events (verified webhooks) and the expiry of abandoned checkouts.
//!
//! Every event is recorded in the webhook inbox in the same transaction as its effect, so a
//! redelivered event finds its id and does nothing. Events only ever move a payment forward: a
//! success for a payment that already succeeded changes nothing, and a success for one that was
//! given up (expired, cancelled, failed) is flagged as a *late success* and handled (an order's
//! money is refunded; a top-up is credited after all), never dropped.

use domain::catalog::StockError;
use domain::events::DomainEvent;
use domain::follow_up::{FollowUp, FollowUpTask};
use domain::ids::ProductId;
use domain::ledger::{Entry, JournalTransaction, LedgerError, TransactionKind};
use domain::money::{Money, MoneyError};
use domain::order::{Actor, OrderError, OrderStatus, StatusChange, TransitionError};
use domain::payment::{Payment, PaymentPurpose, PaymentStatus, ProviderName, RefundStatus, RefundTransitionError};
use domain::wallet::SystemAccount;
use time::OffsetDateTime;

use crate::context::App;
use crate::follow_ups::{FOLLOW_UP_LEASE, finish_follow_up};
use crate::ledger::{PostingError, post};
use crate::orders::{Cancellation, OrderCommandError, PaymentEnd, cancel_unpaid, event, pay_merchants, status_events};
use crate::ports::gateway::{
    GatewayEvent, GatewayEventKind, GatewayRefundStatus, PaymentReference, RefundUpdate, WebhookError, WebhookHeaders,
};
use crate::ports::store::{PaymentLookup, PaymentRepository, StoreError, Transaction, UnitOfWork, WebhookInbox};
use crate::ports::system::{IdGenerator, next_id};
use crate::refunds::record_outside_refunds;
use crate::retryable;
use crate::transact::transact;
use crate::wallets::system_wallet;

/// What became of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventOutcome {
    Applied,
    /// The event id was seen before.
    Duplicate,
    /// Verified, but nothing to do (unknown type, unknown payment, already settled).
    Ignored(&'static str),
    /// Money arrived for a payment that had been given up.
    LateSuccess,
    /// Verified, but not ours to apply (a checkout session we did not create); logged.
    Refused(&'static str),
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayEventError {
    #[error("no gateway called {0} is configured")]
    UnknownProvider(String),
    #[error(transparent)]
    Verification(#[from] WebhookError),
    #[error("the event is for {received} but the payment is for {expected}")]
    AmountMismatch { expected: Money, received: Money },
    #[error("the gateway does not confirm that this payment succeeded")]
    NotConfirmed,
    #[error(transparent)]
    Gateway(#[from] crate::ports::gateway::GatewayError),
    #[error(transparent)]
    Ledger(LedgerError),
    #[error(transparent)]
    Order(#[from] OrderError),
    #[error(transparent)]
    Stock(#[from] StockError),
    #[error(transparent)]
    Refund(#[from] RefundTransitionError),
    #[error(transparent)]
    Money(#[from] MoneyError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

retryable!(GatewayEventError);

impl From<PostingError> for GatewayEventError {
    fn from(error: PostingError) -> Self {
        match error {
            PostingError::Store(error) => GatewayEventError::Store(error),
            PostingError::Ledger(error) => GatewayEventError::Ledger(error),
        }
    }
}

impl From<LedgerError> for GatewayEventError {
    fn from(error: LedgerError) -> Self {
        GatewayEventError::Ledger(error)
    }
}

impl From<TransitionError> for GatewayEventError {
    fn from(error: TransitionError) -> Self {
        GatewayEventError::Order(OrderError::Transition(error))
    }
}

impl From<OrderCommandError> for GatewayEventError {
    fn from(error: OrderCommandError) -> Self {
        match error {
            OrderCommandError::Store(error) => GatewayEventError::Store(error),
            OrderCommandError::Transition(error) => error.into(),
            OrderCommandError::Stock(error) => GatewayEventError::Stock(error),
            OrderCommandError::CheckoutNotClosed(error) => GatewayEventError::Gateway(error),
            OrderCommandError::CheckoutCompleted => {
                GatewayEventError::Store(StoreError::Corrupt("a checkout completed during settlement".into()))
            }
            OrderCommandError::NotFound | OrderCommandError::Forbidden => {
                GatewayEventError::Store(StoreError::Corrupt("a payment points at a missing order".into()))
            }
        }
    }
}

fn lookup_of(reference: &PaymentReference) -> Option<PaymentLookup> {
    reference
        .payment_id
        .map(PaymentLookup::Ours)
        .or_else(|| reference.session_id.clone().map(PaymentLookup::Session))
        .or_else(|| reference.provider_payment_id.clone().map(PaymentLookup::ProviderPayment))
}

/// The longest event id or type recorded in the webhook inbox.
const EVENT_NAME_CHARS_MAX: usize = 255;

/// An event's id and type are stored in the inbox: even signed, they must be short, printable
/// text (PostgreSQL refuses NUL, and a log line must not be forged).
fn check_event_names(event: &GatewayEvent) -> Result<(), WebhookError> {
    for (what, text) in [("id", &event.event_id), ("type", &event.event_type)] {
        let printable = !text.is_empty() && text.chars().count() <= EVENT_NAME_CHARS_MAX && !text.chars().any(char::is_control);
        if !printable {
            return Err(WebhookError::MalformedPayload(format!(
                "the event {what} must be 1 to {EVENT_NAME_CHARS_MAX} printable characters"
            )));
        }
    }
    Ok(())
}

/// For providers that want it, asks the gateway itself before believing a success, and uses the
/// amount it reports.
async fn confirm_success(
    gateway: &dyn crate::ports::gateway::PaymentGateway,
    mut event: GatewayEvent,
) -> Result<GatewayEvent, GatewayEventError> {
    let (reference, amount) = match &mut event.kind {
        GatewayEventKind::CheckoutCompleted {
            reference,
            amount,
            paid: true,
        }
        | GatewayEventKind::PaymentSucceeded { reference, amount } => (reference.clone(), amount),
        _ => return Ok(event),
    };
    match gateway.confirm_payment(&reference).await? {
        None => Ok(event),
        Some(confirmed) if !confirmed.paid => {
            tracing::warn!(event_id = %event.event_id, "a success event the gateway does not confirm: refused");
            Err(GatewayEventError::NotConfirmed)
        }
        Some(confirmed) => {
            if confirmed.amount.is_some() {
                *amount = confirmed.amount;
            }
            Ok(event)
        }
    }
}

/// Effects of one event inside its transaction.
struct Applied {
    outcome: EventOutcome,
    /// Products whose cached stock is now stale.
    products: Vec<ProductId>,
    /// A late success whose money must go back through the gateway.
    refund_late: Option<Payment>,
}

impl Applied {
    fn just(outcome: EventOutcome) -> Applied {
        Applied {
            outcome,
            products: Vec::new(),
            refund_late: None,
        }
    }
}

impl<U: UnitOfWork> App<U> {
    /// Verifies a webhook with the named provider's gateway and applies it.
    pub async fn receive_webhook(&self, provider: &str, headers: &WebhookHeaders, body: &[u8]) -> Result<EventOutcome, GatewayEventError> {
        let name = ProviderName::parse(provider).map_err(|_| GatewayEventError::UnknownProvider(provider.chars().take(32).collect()))?;
        let gateway = self
            .gateways
            .get(&name)
            .ok_or_else(|| GatewayEventError::UnknownProvider(name.to_string()))?;
        let event = gateway.verify_webhook(headers, body, self.clock.now())?;
        check_event_names(&event)?;
        let event = confirm_success(gateway.as_ref(), event).await?;
        self.apply_gateway_event(&name, &event).await
    }

    /// Applies a verified gateway event exactly once.
    pub async fn apply_gateway_event(&self, provider: &ProviderName, event: &GatewayEvent) -> Result<EventOutcome, GatewayEventError> {
        let now = self.clock.now();
        let ids = self.ids.as_ref();
        let applied = transact(&self.store, move |mut tx| async move {
            let result: Result<_, GatewayEventError> = async {
                if !tx.record_webhook_event(provider, &event.event_id, &event.event_type, now).await? {
                    return Ok(Applied::just(EventOutcome::Duplicate));
                }
                apply_event(&mut tx, ids, provider, &event.kind, now).await
            }
            .await;
            (tx, result)
        })
        .await?;
        if !applied.products.is_empty() {
            self.invalidate_catalog(&applied.products).await;
        }
        if let Some(payment) = &applied.refund_late {
            self.refund_late_success(payment).await;
        }
        tracing::info!(provider = %provider, event_id = %event.event_id, event_type = %event.event_type, outcome = ?applied.outcome, "gateway event handled");
        Ok(applied.outcome)
    }

    /// Records the gateway's answer about one of our refunds.
    pub(crate) async fn apply_refund_update(
        &self,
        provider: &ProviderName,
        update: &RefundUpdate,
    ) -> Result<EventOutcome, GatewayEventError> {
        let now = self.clock.now();
        let ids = self.ids.as_ref();
        transact(&self.store, move |mut tx| async move {
            let result = settle_refund(&mut tx, ids, provider, update, now).await;
            (tx, result)
        })
        .await
    }

    /// Cancels card orders and top-ups whose checkout expired unpaid, releasing reserved stock.
    /// Safe to run on several servers at once: each payment is locked, and locked ones skipped.
    pub async fn expire_abandoned_checkouts(&self, batch_size: usize) -> Result<usize, GatewayEventError> {
        let now = self.clock.now();
        let ids = self.ids.as_ref();
        let (sessions, products) = transact(&self.store, move |mut tx| async move {
            let result: Result<_, GatewayEventError> = async {
                let payments = tx.lock_expired_payments(now, batch_size).await?;
                let mut sessions = Vec::with_capacity(payments.len());
                let mut products = Vec::new();
                for payment in payments {
                    sessions.push((payment.provider.clone(), payment.provider_session_id.clone()));
                    products.extend(
                        end_unpaid(
                            &mut tx,
                            ids,
                            payment,
                            PaymentEnd::Expired,
                            Actor::System,
                            "the checkout expired",
                            now,
                        )
                        .await?,
                    );
                }
                Ok((sessions, products))
            }
            .await;
            (tx, result)
        })
        .await?;
        if !products.is_empty() {
            self.invalidate_catalog(&products).await;
        }
        for (provider, session) in &sessions {
            let (Some(gateway), Some(session)) = (self.gateways.get(provider), session) else {
                continue;
            };
            if let Err(error) = gateway.expire_checkout(session).await.map(drop) {
                tracing::warn!(%error, %provider, session, "could not close the expired checkout at the gateway; a late payment will be refunded");
            }
        }
        Ok(sessions.len())
    }
}

async fn apply_event<Tx: Transaction>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    provider: &ProviderName,
    kind: &GatewayEventKind,
    now: OffsetDateTime,
) -> Result<Applied, GatewayEventError> {
    match kind {
        GatewayEventKind::CheckoutCompleted {
            reference,
            amount,
            paid: true,
        }
        | GatewayEventKind::PaymentSucceeded { reference, amount } => settle_success(tx, ids, provider, reference, *amount, now).await,
        GatewayEventKind::CheckoutCompleted { paid: false, .. } => Ok(Applied::just(EventOutcome::Ignored("payment not settled yet"))),
        GatewayEventKind::PaymentFailed { reference, .. } => {
            settle_unpaid(tx, ids, provider, reference, PaymentEnd::Failed, "the payment failed", now).await
        }
        GatewayEventKind::CheckoutExpired { reference } => {
            settle_unpaid(tx, ids, provider, reference, PaymentEnd::Expired, "the checkout expired", now).await
        }
        GatewayEventKind::PaymentAttemptFailed { .. } => Ok(Applied::just(EventOutcome::Ignored(
            "an attempt failed; the checkout is still open",
        ))),
        GatewayEventKind::Refunded {
            reference,
            refunds,
            refunded_total,
        } => {
            let mut outcome = EventOutcome::Ignored("no refund of ours changed");
            for update in refunds {
                if settle_refund(tx, ids, provider, update, now).await? == EventOutcome::Applied {
                    outcome = EventOutcome::Applied;
                }
            }
            if let Some(total) = refunded_total
                && record_outside_refunds(tx, ids, provider, reference, *total, now).await? == EventOutcome::Applied
            {
                outcome = EventOutcome::Applied;
            }
            Ok(Applied::just(outcome))
        }
        GatewayEventKind::RefundUpdated(update) => Ok(Applied::just(settle_refund(tx, ids, provider, update, now).await?)),
        GatewayEventKind::DisputeOpened { reference, reason, .. } => record_dispute(tx, ids, provider, reference, reason, now).await,
        GatewayEventKind::Ignored => Ok(Applied::just(EventOutcome::Ignored("event type not handled"))),
    }
}

pub(crate) async fn lock_referenced<Tx: PaymentRepository + Send>(
    tx: &mut Tx,
    provider: &ProviderName,
    reference: &PaymentReference,
) -> Result<Option<Payment>, StoreError> {
    match lookup_of(reference) {
        Some(lookup) => tx.lock_payment(provider, &lookup).await,
        None => Ok(None),
    }
}

async fn settle_success<Tx: Transaction>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    provider: &ProviderName,
    reference: &PaymentReference,
    amount: Option<Money>,
    now: OffsetDateTime,
) -> Result<Applied, GatewayEventError> {
    let Some(payment) = lock_referenced(tx, provider, reference).await? else {
        return Ok(Applied::just(EventOutcome::Ignored("unknown payment")));
    };
    if let Some(session) = &reference.session_id
        && payment.provider_session_id.as_ref() != Some(session)
    {
        tracing::error!(payment_id = %payment.id, session, "a success for a checkout session we did not create names our payment: refused");
        return Ok(Applied::just(EventOutcome::Refused("the checkout session is not the payment's")));
    }
    if let Some(received) = amount.filter(|received| *received != payment.amount) {
        tracing::error!(payment_id = %payment.id, expected = %payment.amount, %received, "gateway amount mismatch: event refused");
        return Err(GatewayEventError::AmountMismatch {
            expected: payment.amount,
            received,
        });
    }
    let provider_payment_id = reference.provider_payment_id.clone();
    match payment.status {
        PaymentStatus::Succeeded => {
            if payment.provider_payment_id.is_none() && provider_payment_id.is_some() {
                let mut payment = payment;
                payment.provider_payment_id = provider_payment_id;
                payment.updated_at = now;
                tx.update_payment(&payment).await?;
            }
            Ok(Applied::just(EventOutcome::Ignored("payment already succeeded")))
        }
        PaymentStatus::Pending => {
            let payment = payment
                .succeed(provider_payment_id, now)
                .map_err(|_| StoreError::Corrupt("pending payment refused success".into()))?;
            tx.update_payment(&payment).await?;
            let mut events = vec![event(
                ids,
                DomainEvent::PaymentSucceeded {
                    payment_id: payment.id,
                    amount: payment.amount,
                },
                now,
            )];
            let products = match payment.purpose {
                PaymentPurpose::Order(order_id) => pay_order(tx, ids, provider, &payment, order_id, &mut events, now).await?,
                PaymentPurpose::TopUp(user_id) => {
                    credit_top_up(tx, ids, provider, &payment, now).await?;
                    events.push(event(
                        ids,
                        DomainEvent::TopUpCompleted {
                            payment_id: payment.id,
                            user_id,
                            amount: payment.amount,
                        },
                        now,
                    ));
                    Vec::new()
                }
            };
            tx.enqueue_events(&events).await?;
            Ok(Applied {
                outcome: EventOutcome::Applied,
                products,
                refund_late: None,
            })
        }
        PaymentStatus::Failed | PaymentStatus::Expired | PaymentStatus::Cancelled => {
            let payment = payment.flag_late_success(provider_payment_id, now);
            tx.update_payment(&payment).await?;
            let mut events = vec![event(
                ids,
                DomainEvent::PaymentLateSuccess {
                    payment_id: payment.id,
                    amount: payment.amount,
                },
                now,
            )];
            tracing::warn!(payment_id = %payment.id, status = payment.status.as_str(), "payment succeeded after it was given up");
            let refund_late = match payment.purpose {
                PaymentPurpose::Order(_) => {
                    // Asked at once after the commit; the job asks again if that fails.
                    let task = FollowUpTask::LateSuccessRefund(payment.id);
                    tx.insert_follow_up(&FollowUp::schedule(task, now + FOLLOW_UP_LEASE, now)).await?;
                    Some(payment)
                }
                PaymentPurpose::TopUp(user_id) => {
                    // The buyer meant to fund the wallet: honour it rather than bounce the money.
                    credit_top_up(tx, ids, provider, &payment, now).await?;
                    events.push(event(
                        ids,
                        DomainEvent::TopUpCompleted {
                            payment_id: payment.id,
                            user_id,
                            amount: payment.amount,
                        },
                        now,
                    ));
                    None
                }
            };
            tx.enqueue_events(&events).await?;
            Ok(Applied {
                outcome: EventOutcome::LateSuccess,
                products: Vec::new(),
                refund_late,
            })
        }
    }
}

/// The card payment of an order succeeded: commit the reserved stock, pay the merchants from the
/// gateway's clearing account, and mark the order paid.
async fn pay_order<Tx: Transaction>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    provider: &ProviderName,
    payment: &Payment,
    order_id: domain::ids::OrderId,
    events: &mut Vec<domain::events::OutboxEvent>,
    now: OffsetDateTime,
) -> Result<Vec<ProductId>, GatewayEventError> {
    let order = tx
        .lock_order(order_id)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("payment {} has no order", payment.id)))?;
    let mut product_ids: Vec<ProductId> = order.items.iter().map(|item| item.product_id).collect();
    product_ids.sort();
    let mut stock = tx.lock_stock(&product_ids).await?;
    for item in &order.items {
        let row = stock
            .iter_mut()
            .find(|s| s.product_id == item.product_id)
            .ok_or_else(|| StoreError::Corrupt(format!("order {order_id} has no stock row for {}", item.product_id)))?;
        row.commit(item.quantity)?;
    }
    let (order, change) = order.mark_paid(Actor::Gateway(provider.clone()), now)?;
    let clearing = system_wallet(
        tx,
        &SystemAccount::GatewayClearing(provider.clone()),
        order.currency(),
        next_id(ids),
        now,
    )
    .await?;
    pay_merchants(tx, ids, &order, clearing, now).await?;
    tx.update_stock(&stock).await?;
    tx.update_order(&order).await?;
    tx.append_status_changes(std::slice::from_ref(&change)).await?;
    events.extend(status_events(ids, std::slice::from_ref(&change)));
    Ok(product_ids)
}

async fn credit_top_up<Tx: Transaction>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    provider: &ProviderName,
    payment: &Payment,
    now: OffsetDateTime,
) -> Result<(), GatewayEventError> {
    let currency = payment.currency();
    let wallet = tx.ensure_user_wallet(payment.payer_id, currency, next_id(ids), now).await?;
    let clearing = system_wallet(tx, &SystemAccount::GatewayClearing(provider.clone()), currency, next_id(ids), now).await?;
    let journal = JournalTransaction::new(
        next_id(ids),
        TransactionKind::TopUp,
        format!("payment:{}", payment.id),
        vec![Entry::debit(clearing, payment.amount)?, Entry::credit(wallet, payment.amount)],
        now,
    )?;
    post(tx, &journal).await?;
    Ok(())
}

/// The payment failed or its checkout expired.
async fn settle_unpaid<Tx: Transaction>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    provider: &ProviderName,
    reference: &PaymentReference,
    end: PaymentEnd,
    reason: &str,
    now: OffsetDateTime,
) -> Result<Applied, GatewayEventError> {
    let Some(payment) = lock_referenced(tx, provider, reference).await? else {
        return Ok(Applied::just(EventOutcome::Ignored("unknown payment")));
    };
    if payment.status != PaymentStatus::Pending {
        return Ok(Applied::just(EventOutcome::Ignored("payment already settled")));
    }
    let products = end_unpaid(tx, ids, payment, end, Actor::Gateway(provider.clone()), reason, now).await?;
    Ok(Applied {
        outcome: EventOutcome::Applied,
        products,
        refund_late: None,
    })
}

/// Ends a locked, pending payment that will not be paid, with its order if it has one.
async fn end_unpaid<Tx: Transaction>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    payment: Payment,
    end: PaymentEnd,
    actor: Actor,
    reason: &str,
    now: OffsetDateTime,
) -> Result<Vec<ProductId>, GatewayEventError> {
    if let PaymentPurpose::Order(order_id) = payment.purpose {
        let order = tx
            .lock_order(order_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("payment {} has no order", payment.id)))?;
        if order.status == OrderStatus::PaymentPending {
            let cancellation = Cancellation { end, actor, reason };
            return Ok(cancel_unpaid(tx, ids, order, Some(payment), cancellation, now).await?);
        }
    }
    let (settled, payment_event) = match end {
        PaymentEnd::Expired => (payment.clone().expire(now), DomainEvent::PaymentExpired { payment_id: payment.id }),
        PaymentEnd::Failed | PaymentEnd::Cancelled => (payment.clone().fail(now), DomainEvent::PaymentFailed { payment_id: payment.id }),
    };
    if let Ok(settled) = settled {
        tx.update_payment(&settled).await?;
        tx.enqueue_events(&[event(ids, payment_event, now)]).await?;
    }
    Ok(Vec::new())
}

/// A refund of ours changed at the gateway: settle it (never backwards).
async fn settle_refund<Tx: Transaction>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    provider: &ProviderName,
    update: &RefundUpdate,
    now: OffsetDateTime,
) -> Result<EventOutcome, GatewayEventError> {
    let found = match update.refund_id {
        Some(id) => tx.find_refund(id).await?,
        None if !update.provider_refund_id.is_empty() => tx.find_refund_by_provider_id(&update.provider_refund_id).await?,
        None => None,
    };
    let Some(found) = found else {
        // A refund made outside the API: recorded from the charge's refunded total, which
        // `charge.refunded` carries (a refund event alone does not say how much was refunded in all).
        tracing::info!(provider_refund_id = %update.provider_refund_id, "the gateway reports a refund we did not make");
        return Ok(EventOutcome::Ignored("unknown refund"));
    };
    let order = tx
        .lock_order(found.order_id)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("refund {} has no order", found.id)))?;
    let mut refund = tx
        .lock_refund(found.id)
        .await?
        .ok_or_else(|| StoreError::Corrupt("refund vanished".into()))?;
    if refund.status != RefundStatus::Pending {
        return Ok(EventOutcome::Ignored("refund already settled"));
    }
    if refund.provider_refund_id.is_none() && !update.provider_refund_id.is_empty() {
        refund.provider_refund_id = Some(update.provider_refund_id.clone());
        refund.updated_at = now;
    }
    match update.status {
        GatewayRefundStatus::Pending => {
            tx.update_refund(&refund).await?;
        }
        GatewayRefundStatus::Succeeded => {
            let refund = refund.succeed(now)?;
            tx.update_refund(&refund).await?;
            finish_follow_up(tx, FollowUpTask::Refund(refund.id), now).await?;
            let actor = Actor::Gateway(provider.clone());
            let (order, change) = order.record_refund(refund.amount, actor, &refund.reason, now)?;
            tx.update_order(&order).await?;
            tx.append_status_changes(std::slice::from_ref(&change)).await?;
            let mut events = status_events(ids, std::slice::from_ref(&change));
            events.push(event(
                ids,
                DomainEvent::RefundSucceeded {
                    refund_id: refund.id,
                    order_id: order.id,
                    amount: refund.amount,
                },
                now,
            ));
            tx.enqueue_events(&events).await?;
        }
        GatewayRefundStatus::Failed => {
            let refund = refund.fail(now)?;
            tx.update_refund(&refund).await?;
            finish_follow_up(tx, FollowUpTask::Refund(refund.id), now).await?;
            // Give the merchant back what the refund had taken out of their wallet.
            let currency = refund.amount.currency();
            let clearing = system_wallet(tx, &SystemAccount::GatewayClearing(provider.clone()), currency, next_id(ids), now).await?;
            let merchant = tx.ensure_user_wallet(refund.merchant_id, currency, next_id(ids), now).await?;
            let journal = JournalTransaction::new(
                next_id(ids),
                TransactionKind::Reversal,
                format!("refund:{}", refund.id),
                vec![Entry::debit(clearing, refund.amount)?, Entry::credit(merchant, refund.amount)],
                now,
            )?;
            post(tx, &journal).await?;
            tx.enqueue_events(&[event(
                ids,
                DomainEvent::RefundFailed {
                    refund_id: refund.id,
                    order_id: order.id,
                },
                now,
            )])
            .await?;
        }
    }
    Ok(EventOutcome::Applied)
}

async fn record_dispute<Tx: Transaction>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    provider: &ProviderName,
    reference: &PaymentReference,
    reason: &str,
    now: OffsetDateTime,
) -> Result<Applied, GatewayEventError> {
    let Some(payment) = lock_referenced(tx, provider, reference).await? else {
        return Ok(Applied::just(EventOutcome::Ignored("unknown payment")));
    };
    let payment = payment.record_dispute(now);
    tx.update_payment(&payment).await?;
    let mut events = vec![event(ids, DomainEvent::PaymentDisputed { payment_id: payment.id }, now)];
    if let PaymentPurpose::Order(order_id) = payment.purpose
        && let Some(order) = tx.lock_order(order_id).await?
    {
        // The audit trail records the dispute without changing the order's status.
        let note = StatusChange {
            order_id,
            from: Some(order.status),
            to: order.status,
            actor: Actor::Gateway(provider.clone()),
            reason: format!("dispute opened: {reason}"),
            at: now,
        };
        tx.append_status_changes(std::slice::from_ref(&note)).await?;
        events.extend(status_events(ids, std::slice::from_ref(&note)));
    }
    tx.enqueue_events(&events).await?;
    Ok(Applied::just(EventOutcome::Applied))
}
