//! Provider events and answers about refunds: ours settled (never backwards), and refunds made
//! in the provider's dashboard recorded from the payment's refunded total.

use domain::events::DomainEvent;
use domain::follow_up::{FollowUpState, FollowUpTask};
use domain::ledger::{Entry, JournalTransaction, TransactionKind};
use domain::money::Money;
use domain::order::{Actor, Order};
use domain::payment::{PaymentPurpose, ProviderName, Refund};
use domain::refund_request::RefundRequestStatus;
use time::OffsetDateTime;

use super::outside_refunds::record_outside_refunds;
use super::{EventOutcome, GatewayEventError, SettlementTx};
use crate::effects::{clearing_wallet, event, lock_referenced, publish, record_order_change};
use crate::follow_ups::mark_follow_up_done;
use crate::ledger::post;
use crate::ports::gateway::{GatewayRefundStatus, PaymentReference, RefundUpdate};
use crate::ports::store::StoreError;
use crate::ports::system::{IdGenerator, next_id};

/// `charge.refunded` and its like: each refund of ours it lists is settled, then whatever the
/// provider refunded beyond the refunds we know of is recorded as refunded outside the API.
pub(super) async fn settle_refunded<Tx: SettlementTx>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    provider: &ProviderName,
    reference: &PaymentReference,
    refunds: &[RefundUpdate],
    refunded_total: Option<Money>,
    now: OffsetDateTime,
) -> Result<EventOutcome, GatewayEventError> {
    let mut outcome = EventOutcome::Ignored("no refund of ours changed");
    for update in refunds {
        if settle_refund(tx, ids, provider, update, now).await? == EventOutcome::Applied {
            outcome = EventOutcome::Applied;
        }
    }
    if let Some(total) = refunded_total
        && record_outside_refunds(tx, ids, provider, reference, total, now).await? == EventOutcome::Applied
    {
        outcome = EventOutcome::Applied;
    }
    Ok(outcome)
}

/// A refund of ours changed at the gateway: settle it (never backwards).
pub(super) async fn settle_refund<Tx: SettlementTx>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    provider: &ProviderName,
    update: &RefundUpdate,
    now: OffsetDateTime,
) -> Result<EventOutcome, GatewayEventError> {
    let Some((order, refund)) = lock_refund_of(tx, update).await? else {
        return settle_late_success_refund(tx, update, now).await;
    };
    if !refund.is_pending() {
        return Ok(EventOutcome::Ignored("refund already settled"));
    }
    let refund = refund.record_provider_refund_id(&update.provider_refund_id, now);
    match update.status {
        GatewayRefundStatus::Pending => tx.update_refund(&refund).await?,
        GatewayRefundStatus::Succeeded => refund_succeeded(tx, ids, provider, order, refund, now).await?,
        GatewayRefundStatus::Failed => refund_failed(tx, ids, provider, &order, refund, now).await?,
    }
    Ok(EventOutcome::Applied)
}

/// A refund event for the refund of a late success (which is not a refund of ours: its id is
/// the payment's) ends the late success's follow-up: done when it succeeded, flagged for admins
/// when it failed.
async fn settle_late_success_refund<Tx: SettlementTx>(
    tx: &mut Tx,
    update: &RefundUpdate,
    now: OffsetDateTime,
) -> Result<EventOutcome, GatewayEventError> {
    let Some(refund_id) = update.refund_id else {
        return Ok(EventOutcome::Ignored("unknown refund"));
    };
    let payment_id = domain::ids::PaymentId::from_uuid(refund_id.as_uuid());
    let late = tx
        .find_payment(payment_id)
        .await?
        .filter(|payment| payment.late_success() && matches!(payment.purpose(), PaymentPurpose::Order(_)));
    if late.is_none() || crate::late_success::late_success_refund_id(payment_id) != refund_id {
        return Ok(EventOutcome::Ignored("unknown refund"));
    }
    let task = FollowUpTask::LateSuccessRefund(payment_id);
    let Some(follow_up) = tx.lock_follow_up(&task).await?.filter(|f| f.state == FollowUpState::Pending) else {
        return Ok(EventOutcome::Ignored("the late success's refund is settled already"));
    };
    let settled = match update.status {
        GatewayRefundStatus::Pending => return Ok(EventOutcome::Ignored("the late success's refund is still pending")),
        GatewayRefundStatus::Succeeded => follow_up.done(now),
        GatewayRefundStatus::Failed => follow_up.give_up("the provider reports the late success's refund failed", now),
    };
    tx.update_follow_up(&settled).await?;
    Ok(EventOutcome::Applied)
}

/// A refund event that names the payment and the amount, not the refund.
pub(super) struct PaymentRefund<'a> {
    pub reference: &'a PaymentReference,
    pub amount: Money,
    pub status: GatewayRefundStatus,
    pub provider_refund_id: Option<&'a str>,
}

/// Settles our pending refund of the payment and amount an event names: the one with the event's
/// provider id if there is one, else the oldest. Refunds of one amount settle in the order they
/// were made, which is the order the provider processes them in; a refund of an amount we never
/// asked for is not ours and is left alone.
pub(super) async fn settle_refund_of_payment<Tx: SettlementTx>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    provider: &ProviderName,
    named: PaymentRefund<'_>,
    now: OffsetDateTime,
) -> Result<EventOutcome, GatewayEventError> {
    let Some(payment) = lock_referenced(tx, provider, named.reference).await? else {
        return Ok(EventOutcome::Ignored("unknown payment"));
    };
    let PaymentPurpose::Order(order_id) = payment.purpose() else {
        return Ok(EventOutcome::Ignored("refund of a payment that has no order"));
    };
    let refunds = tx.list_order_refunds(order_id).await?;
    let pending: Vec<&Refund> = refunds
        .iter()
        .filter(|r| r.is_pending() && r.payment_id() == Some(payment.id()) && r.amount() == named.amount)
        .collect();
    let by_provider_id = named
        .provider_refund_id
        .and_then(|id| pending.iter().find(|r| r.provider_refund_id() == Some(id)));
    let Some(refund) = by_provider_id.or(pending.first()) else {
        tracing::info!(payment_id = %payment.id(), amount = %named.amount, "the gateway reports a refund with no pending refund of ours to match");
        return Ok(EventOutcome::Ignored("no pending refund of this payment and amount"));
    };
    let update = RefundUpdate {
        provider_refund_id: named.provider_refund_id.unwrap_or_default().to_owned(),
        refund_id: Some(refund.id()),
        amount: Some(named.amount),
        status: named.status,
    };
    settle_refund(tx, ids, provider, &update, now).await
}

/// The refund an update names, locked with its order (order first, as the lock order says).
async fn lock_refund_of<Tx: SettlementTx>(tx: &mut Tx, update: &RefundUpdate) -> Result<Option<(Order, Refund)>, StoreError> {
    let found = match update.refund_id {
        Some(id) => tx.find_refund(id).await?,
        None if !update.provider_refund_id.is_empty() => tx.find_refund_by_provider_id(&update.provider_refund_id).await?,
        None => None,
    };
    let Some(found) = found else {
        // A refund made outside the API: recorded from the charge's refunded total, which
        // `charge.refunded` carries (a refund event alone does not say how much was refunded in all).
        tracing::info!(provider_refund_id = %update.provider_refund_id, "the gateway reports a refund we did not make");
        return Ok(None);
    };
    let order = tx
        .lock_order(found.order_id())
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("refund {} has no order", found.id())))?;
    let refund = tx
        .lock_refund(found.id())
        .await?
        .ok_or_else(|| StoreError::Corrupt("refund vanished".into()))?;
    Ok(Some((order, refund)))
}

/// The money reached the buyer: the order records the refund.
async fn refund_succeeded<Tx: SettlementTx>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    provider: &ProviderName,
    order: Order,
    refund: Refund,
    now: OffsetDateTime,
) -> Result<(), GatewayEventError> {
    let refund = refund.succeed(now)?;
    tx.update_refund(&refund).await?;
    mark_follow_up_done(tx, FollowUpTask::Refund(refund.id()), now).await?;
    let actor = Actor::Gateway(provider.clone());
    let (order, change) = order.record_refund(refund.amount(), actor, refund.reason(), now)?;
    let succeeded = DomainEvent::RefundSucceeded {
        refund_id: refund.id(),
        order_id: order.id(),
        amount: refund.amount(),
    };
    record_order_change(tx, ids, &order, change, vec![event(ids, succeeded, now)]).await?;
    Ok(())
}

/// The provider would not refund: the merchant gets back what the refund had taken out of their
/// wallet.
async fn refund_failed<Tx: SettlementTx>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    provider: &ProviderName,
    order: &Order,
    refund: Refund,
    now: OffsetDateTime,
) -> Result<(), GatewayEventError> {
    let refund = refund.fail(now)?;
    tx.update_refund(&refund).await?;
    mark_follow_up_done(tx, FollowUpTask::Refund(refund.id()), now).await?;
    let (amount, currency) = (refund.amount(), refund.amount().currency());
    let clearing = clearing_wallet(tx, ids, provider, currency, now).await?;
    let merchant = tx.ensure_user_wallet(refund.merchant_id(), currency, next_id(ids), now).await?;
    let entries = vec![Entry::debit(clearing, amount)?, Entry::credit(merchant, amount)];
    let journal = JournalTransaction::new(
        next_id(ids),
        TransactionKind::Reversal,
        format!("refund:{}", refund.id()),
        entries,
        now,
    )?;
    post(tx, &journal).await?;
    let failed = DomainEvent::RefundFailed {
        refund_id: refund.id(),
        order_id: order.id(),
    };
    publish(tx, ids, failed, now).await?;
    fail_approved_request(tx, ids, order, &refund, now).await
}

/// The buyer's request that this refund approved, if any, says that its refund failed. Locked
/// after the refund, under the order's lock, which every approval takes first.
async fn fail_approved_request<Tx: SettlementTx>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    order: &Order,
    refund: &Refund,
    now: OffsetDateTime,
) -> Result<(), GatewayEventError> {
    let approved = crate::ports::store::RefundRequestFilter {
        order: Some(order.id()),
        merchant: Some(refund.merchant_id()),
        status: Some(RefundRequestStatus::Approved),
        ..Default::default()
    };
    let page = crate::pagination::PageRequest::first(crate::pagination::PageRequest::LIMIT_MAX as usize);
    let requests = tx.list_refund_requests(&approved, &page).await?;
    let Some(request) = requests.items.iter().find(|r| r.record().refund_id == Some(refund.id())) else {
        return Ok(());
    };
    let Some(locked) = tx.lock_refund_request(request.id()).await? else {
        return Ok(());
    };
    let failed = locked
        .refund_failed(now)
        .map_err(|e| StoreError::Corrupt(format!("refund request of refund {}: {e}", refund.id())))?;
    tx.update_refund_request(&failed).await?;
    publish(tx, ids, crate::refund_requests::changed(&failed), now).await?;
    Ok(())
}
