//! Provider events about payments: succeeded (on time or late), given up, disputed.

use domain::events::{DomainEvent, OutboxEvent};
use domain::follow_up::{FollowUp, FollowUpTask};
use domain::ids::OrderId;
use domain::ledger::{Entry, JournalTransaction, TransactionKind};
use domain::money::Money;
use domain::order::{Actor, StatusChange};
use domain::payment::{Payment, PaymentPurpose, PaymentStatus, ProviderName};
use time::OffsetDateTime;

use super::{Applied, EventOutcome, GatewayEventError, SettlementTx};
use crate::cancellation::{Cancellation, PaymentEnd, give_up_payment};
use crate::effects::{clearing_wallet, event, lock_referenced, pay_merchants, status_events};
use crate::follow_ups::FOLLOW_UP_LEASE;
use crate::ledger::post;
use crate::ports::gateway::PaymentReference;
use crate::ports::store::{LedgerRepository, StoreError, WalletRepository};
use crate::ports::system::{IdGenerator, next_id};

/// A success for a payment of ours: checked against the payment, then applied as its status
/// says (pending: paid; given up: a late success; succeeded: nothing but the provider's id).
pub(super) async fn settle_success<Tx: SettlementTx>(
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
        && payment.provider_session_id() != Some(session.as_str())
    {
        tracing::error!(payment_id = %payment.id(), session, "a success for a checkout session we did not create names our payment: refused");
        return Ok(Applied::just(EventOutcome::Refused("the checkout session is not the payment's")));
    }
    if let Some(received) = amount.filter(|received| *received != payment.amount()) {
        tracing::error!(payment_id = %payment.id(), expected = %payment.amount(), %received, "gateway amount mismatch: event refused");
        return Err(GatewayEventError::AmountMismatch {
            expected: payment.amount(),
            received,
        });
    }
    let provider_payment_id = reference.provider_payment_id.clone();
    match payment.status() {
        PaymentStatus::Succeeded => {
            if payment.provider_payment_id().is_none()
                && let Some(provider_payment_id) = provider_payment_id
            {
                tx.update_payment(&payment.record_provider_payment_id(provider_payment_id, now))
                    .await?;
            }
            Ok(Applied::just(EventOutcome::Ignored("payment already succeeded")))
        }
        PaymentStatus::Pending => record_success(tx, ids, provider, payment, provider_payment_id, now).await,
        PaymentStatus::Failed | PaymentStatus::Expired | PaymentStatus::Cancelled => {
            record_late_success(tx, ids, provider, payment, provider_payment_id, now).await
        }
    }
}

/// A pending payment succeeded: an order is paid, a top-up credited.
async fn record_success<Tx: SettlementTx>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    provider: &ProviderName,
    payment: Payment,
    provider_payment_id: Option<String>,
    now: OffsetDateTime,
) -> Result<Applied, GatewayEventError> {
    let payment = payment
        .succeed(provider_payment_id, now)
        .map_err(|_| StoreError::Corrupt("pending payment refused success".into()))?;
    tx.update_payment(&payment).await?;
    let succeeded = DomainEvent::PaymentSucceeded {
        payment_id: payment.id(),
        amount: payment.amount(),
    };
    let mut events = vec![event(ids, succeeded, now)];
    let products = match payment.purpose() {
        PaymentPurpose::Order(order_id) => return pay_order(tx, ids, provider, &payment, order_id, events, now).await,
        PaymentPurpose::TopUp(user_id) => {
            events.push(credit_top_up(tx, ids, provider, &payment, user_id, now).await?);
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

/// A success for a payment that had been given up: an order's money goes back (asked at once
/// after the commit, and by the job until done); a top-up is credited after all, as the buyer
/// meant to fund the wallet.
async fn record_late_success<Tx: SettlementTx>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    provider: &ProviderName,
    payment: Payment,
    provider_payment_id: Option<String>,
    now: OffsetDateTime,
) -> Result<Applied, GatewayEventError> {
    let payment = payment.flag_late_success(provider_payment_id, now);
    tx.update_payment(&payment).await?;
    let late = DomainEvent::PaymentLateSuccess {
        payment_id: payment.id(),
        amount: payment.amount(),
    };
    let mut events = vec![event(ids, late, now)];
    tracing::warn!(payment_id = %payment.id(), status = payment.status().as_str(), "payment succeeded after it was given up");
    let refund_late = match payment.purpose() {
        PaymentPurpose::Order(_) => {
            let task = FollowUpTask::LateSuccessRefund(payment.id());
            tx.insert_follow_up(&FollowUp::schedule(task, now + FOLLOW_UP_LEASE, now)).await?;
            Some(payment)
        }
        PaymentPurpose::TopUp(user_id) => {
            events.push(credit_top_up(tx, ids, provider, &payment, user_id, now).await?);
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

/// The card payment of an order succeeded: commit the reserved stock, pay the merchants from the
/// gateway's clearing account, and mark the order paid, publishing `events` with its own.
async fn pay_order<Tx: SettlementTx>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    provider: &ProviderName,
    payment: &Payment,
    order_id: OrderId,
    events: Vec<OutboxEvent>,
    now: OffsetDateTime,
) -> Result<Applied, GatewayEventError> {
    let order = tx
        .lock_order(order_id)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("payment {} has no order", payment.id())))?;
    let product_ids = order.product_ids();
    let mut stock = tx.lock_stock(&product_ids).await?;
    for item in order.items() {
        let row = stock
            .iter_mut()
            .find(|s| s.product_id == item.product_id)
            .ok_or_else(|| StoreError::Corrupt(format!("order {order_id} has no stock row for {}", item.product_id)))?;
        row.commit(item.quantity)?;
    }
    let (order, change) = order.mark_paid(Actor::Gateway(provider.clone()), now)?;
    let clearing = clearing_wallet(tx, ids, provider, order.currency(), now).await?;
    pay_merchants(tx, ids, &order, clearing, now).await?;
    tx.update_stock(&stock).await?;
    tx.update_order(&order).await?;
    tx.append_status_changes(std::slice::from_ref(&change)).await?;
    // The payment's events first, then the order's.
    let mut events = events;
    events.extend(status_events(ids, std::slice::from_ref(&change)));
    tx.enqueue_events(&events).await?;
    Ok(Applied {
        outcome: EventOutcome::Applied,
        products: product_ids,
        refund_late: None,
    })
}

/// Credits a top-up from the gateway's clearing account; returns its event.
async fn credit_top_up<Tx>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    provider: &ProviderName,
    payment: &Payment,
    user_id: domain::ids::UserId,
    now: OffsetDateTime,
) -> Result<OutboxEvent, GatewayEventError>
where
    Tx: WalletRepository + LedgerRepository + Send,
{
    let (amount, currency) = (payment.amount(), payment.currency());
    let wallet = tx.ensure_user_wallet(payment.payer_id(), currency, next_id(ids), now).await?;
    let clearing = clearing_wallet(tx, ids, provider, currency, now).await?;
    let entries = vec![Entry::debit(clearing, amount)?, Entry::credit(wallet, amount)];
    let journal = JournalTransaction::new(
        next_id(ids),
        TransactionKind::TopUp,
        format!("payment:{}", payment.id()),
        entries,
        now,
    )?;
    post(tx, &journal).await?;
    let completed = DomainEvent::TopUpCompleted {
        payment_id: payment.id(),
        user_id,
        amount,
    };
    Ok(event(ids, completed, now))
}

/// How the provider says a payment ended unpaid.
pub(super) struct GivenUp {
    pub end: PaymentEnd,
    pub reason: &'static str,
}

/// The payment failed or its checkout expired.
pub(super) async fn settle_given_up<Tx: SettlementTx>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    provider: &ProviderName,
    reference: &PaymentReference,
    given_up: GivenUp,
    now: OffsetDateTime,
) -> Result<Applied, GatewayEventError> {
    let Some(payment) = lock_referenced(tx, provider, reference).await? else {
        return Ok(Applied::just(EventOutcome::Ignored("unknown payment")));
    };
    if !payment.is_pending() {
        return Ok(Applied::just(EventOutcome::Ignored("payment already settled")));
    }
    let cancellation = Cancellation {
        end: given_up.end,
        actor: Actor::Gateway(provider.clone()),
        reason: given_up.reason,
    };
    let products = give_up_payment(tx, ids, payment, cancellation, now).await?;
    Ok(Applied {
        outcome: EventOutcome::Applied,
        products,
        refund_late: None,
    })
}

/// The provider declined a payment for good. A card order still awaiting it keeps its reserved
/// stock until the payment's deadline, for the buyer to pay again (`App::pay_again`), and a
/// follow-up cancels it then if no payment came; a top-up, or an order past its deadline, is
/// given up at once.
pub(super) async fn settle_declined<Tx: SettlementTx>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    provider: &ProviderName,
    reference: &PaymentReference,
    provider_reason: &str,
    now: OffsetDateTime,
) -> Result<Applied, GatewayEventError> {
    let Some(payment) = lock_referenced(tx, provider, reference).await? else {
        return Ok(Applied::just(EventOutcome::Ignored("unknown payment")));
    };
    if !payment.is_pending() {
        return Ok(Applied::just(EventOutcome::Ignored("payment already settled")));
    }
    let deadline = payment.expires_at();
    let order = match payment.purpose() {
        PaymentPurpose::Order(order_id) if deadline > now => tx.lock_order(order_id).await?.filter(|order| order.is_awaiting_payment()),
        PaymentPurpose::Order(_) | PaymentPurpose::TopUp(_) => None,
    };
    let Some(order) = order else {
        let cancellation = Cancellation {
            end: PaymentEnd::Failed,
            actor: Actor::Gateway(provider.clone()),
            reason: "the payment failed",
        };
        let products = give_up_payment(tx, ids, payment, cancellation, now).await?;
        return Ok(Applied {
            outcome: EventOutcome::Applied,
            products,
            refund_late: None,
        });
    };
    let mut events = Vec::new();
    if let Some((failed, announced)) = PaymentEnd::Failed.apply(payment, now) {
        tx.update_payment(&failed).await?;
        events.push(event(ids, announced, now));
    }
    // The audit trail notes the decline without a change of status.
    let note = StatusChange {
        order_id: order.id(),
        from: Some(order.status()),
        to: order.status(),
        actor: Actor::Gateway(provider.clone()),
        reason: format!(
            "the payment was declined ({}); the order can be paid again until the payment's deadline",
            provider_reason.chars().take(200).collect::<String>(),
        ),
        at: now,
    };
    tx.append_status_changes(std::slice::from_ref(&note)).await?;
    events.extend(status_events(ids, std::slice::from_ref(&note)));
    tx.enqueue_events(&events).await?;
    keep_until(tx, FollowUpTask::UnpaidOrder(order.id()), deadline, now).await?;
    Ok(Applied::just(EventOutcome::Applied))
}

/// Schedules `task` for `deadline`: recorded, or moved there if it was recorded before (a buyer
/// declined again after paying again).
async fn keep_until<Tx: SettlementTx>(
    tx: &mut Tx,
    task: FollowUpTask,
    deadline: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    match tx.lock_follow_up(&task).await? {
        Some(follow_up) => tx.update_follow_up(&follow_up.reschedule(deadline, now)).await,
        None => tx.insert_follow_up(&FollowUp::schedule(task, deadline, now)).await,
    }
}

/// A dispute opened: the payment is flagged, and the order's audit trail records it without a
/// change of status.
pub(super) async fn record_dispute<Tx: SettlementTx>(
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
    let mut events = vec![event(ids, DomainEvent::PaymentDisputed { payment_id: payment.id() }, now)];
    if let PaymentPurpose::Order(order_id) = payment.purpose()
        && let Some(order) = tx.lock_order(order_id).await?
    {
        // The audit trail records the dispute without changing the order's status.
        let note = StatusChange {
            order_id,
            from: Some(order.status()),
            to: order.status(),
            actor: Actor::Gateway(provider.clone()),
            reason: format!("dispute opened: {reason}"),
            at: now,
        };
        tx.append_status_changes(std::slice::from_ref(&note)).await?;
        let disputed = DomainEvent::OrderDisputed {
            order_id,
            status: order.status(),
        };
        events.push(event(ids, disputed, now));
    }
    tx.enqueue_events(&events).await?;
    Ok(Applied::just(EventOutcome::Applied))
}
