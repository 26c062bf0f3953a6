//! Limbo bounds: nothing the application started stays pending longer than its bound.
//!
//! At the end of a run, after `World::quiesce` ran the jobs (the last time at `last_round`) and
//! delivered every webhook: no card payment is pending past its expiry, no order awaits its
//! money, no hold is pending past its expiry, no call runs past what it authorised (the calls'
//! job, caught up with the clock, extends or ends each), and no
//! follow-up is still being retried (the quiesce outlasts every retry schedule). Refunds pending
//! at our side are checked by `invariants::reconcile`. Refund requests and withdrawals awaiting a
//! person's decision have no bound: a person ends them.
//!
//! During the run, against the manual clock: a checkout whose expiry had passed when an expiry
//! round started, and that was pending (committed) before that round, is no longer pending once
//! the round has finished without filling its batch. In process only: PostgreSQL's round skips
//! rows that a concurrent transaction has locked (`SKIP LOCKED`), which may then roll back and
//! leave the payment for the next round, as designed.

use application::pagination::PageRequest;
use application::ports::store::{
    AdminPaymentFilter, CallRepository, FollowUpRepository, HoldRepository, OrderRepository, PaymentFilter, PaymentRepository, StoreError,
};
use domain::follow_up::FollowUpState;
use domain::ids::PaymentId;
use domain::order::OrderStatus;
use domain::payment::PaymentStatus;
use time::OffsetDateTime;

/// Rows a limbo check reads at most of each kind: far more than a run makes.
const ROWS_MAX: usize = 10_000;

/// Every pending payment and its expiry.
pub async fn pending_payments<Tx>(tx: &mut Tx) -> Result<Vec<(PaymentId, OffsetDateTime)>, StoreError>
where
    Tx: PaymentRepository + Send,
{
    let filter = AdminPaymentFilter {
        of: PaymentFilter {
            status: Some(PaymentStatus::Pending),
            top_ups: None,
        },
        ..AdminPaymentFilter::default()
    };
    let mut pending = Vec::new();
    let mut page = PageRequest::first(PageRequest::LIMIT_MAX as usize);
    loop {
        let payments = tx.list_payments(&filter, &page).await?;
        pending.extend(payments.items.iter().map(|p| (p.id(), p.expires_at())));
        match payments.next_cursor {
            Some(cursor) => page.after = Some(cursor),
            None => break,
        }
    }
    Ok(pending)
}

/// What is still in limbo after the world quiesced (see the module docs).
pub async fn after_quiesce<Tx>(tx: &mut Tx, last_round: OffsetDateTime) -> Result<Vec<String>, StoreError>
where
    Tx: PaymentRepository + OrderRepository + HoldRepository + CallRepository + FollowUpRepository + Send,
{
    let mut broken = Vec::new();
    for (payment, expires_at) in pending_payments(tx).await? {
        if expires_at <= last_round {
            broken.push(format!("limbo: payment {payment} is pending past its expiry ({expires_at})"));
        }
    }
    for status in [OrderStatus::Created, OrderStatus::PaymentPending] {
        let filter = application::ports::store::OrderFilter::All(application::ports::store::AdminOrderFilter {
            status: Some(status),
            ..Default::default()
        });
        let orders = tx.list_orders(filter, &PageRequest::first(PageRequest::LIMIT_MAX as usize)).await?;
        for order in &orders.items {
            broken.push(format!("limbo: order {} is still {status:?}", order.id()));
        }
    }
    for hold in tx.find_expired_holds(last_round, ROWS_MAX).await? {
        broken.push(format!("limbo: hold {} is pending past its expiry ({})", hold.id, hold.expires_at));
    }
    for call in tx.find_calls_authorized_until(last_round, ROWS_MAX).await? {
        broken.push(format!("limbo: call {call} runs past what it authorised"));
    }
    let mut page = PageRequest::first(PageRequest::LIMIT_MAX as usize);
    loop {
        let follow_ups = tx.list_follow_ups(FollowUpState::Pending, &page).await?;
        for follow_up in &follow_ups.items {
            broken.push(format!(
                "limbo: follow-up {:?} still pending after {} attempts (next at {}, last error {:?})",
                follow_up.task, follow_up.attempts, follow_up.next_attempt_at, follow_up.last_error
            ));
        }
        match follow_ups.next_cursor {
            Some(cursor) => page.after = Some(cursor),
            None => break,
        }
    }
    Ok(broken)
}
