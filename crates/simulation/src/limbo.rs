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
//! the round has finished without filling its batch; likewise a follow-up due when a follow-up
//! round started has been attempted (it is no longer pending, or its next attempt is later). In
//! process only: PostgreSQL's rounds skip rows that a concurrent transaction has locked (`SKIP
//! LOCKED`), which may then roll back and leave them for the next round, as designed.

use application::pagination::PageRequest;
use application::ports::store::{
    AdminPaymentFilter, CallRepository, FollowUpRepository, HoldRepository, OrderRepository, PaymentFilter, PaymentRepository, StoreError,
};
use domain::follow_up::{FollowUpState, FollowUpTask};
use domain::ids::PaymentId;
use domain::order::OrderStatus;
use domain::payment::PaymentStatus;
use time::OffsetDateTime;

/// Rows a limbo check reads at most of each kind: far more than a run makes.
const ROWS_MAX: usize = 10_000;

/// What a check saw pending, with when each falls due.
#[derive(Debug, Clone, Default)]
pub struct Pending {
    /// Pending payments and their expiry.
    pub payments: Vec<(PaymentId, OffsetDateTime)>,
    /// Pending follow-ups and their next attempt.
    pub follow_ups: Vec<(FollowUpTask, OffsetDateTime)>,
}

/// What a job round that finished without filling its batch must have moved on, checked at the
/// next check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owed {
    /// An expiry round ended this checkout.
    Expired(PaymentId),
    /// A follow-up round attempted this follow-up, due when the round started at this time: it is
    /// no longer pending, or its next attempt is later.
    Attempted(FollowUpTask, OffsetDateTime),
}

impl Pending {
    /// Reads every pending payment and follow-up.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub async fn read<Tx>(tx: &mut Tx) -> Result<Pending, StoreError>
    where
        Tx: PaymentRepository + FollowUpRepository + Send,
    {
        let payments = pending_payments(tx).await?;
        let mut follow_ups = Vec::new();
        let mut page = PageRequest::first(PageRequest::LIMIT_MAX as usize);
        loop {
            let found = tx.list_follow_ups(FollowUpState::Pending, &page).await?;
            follow_ups.extend(found.items.iter().map(|f| (f.task, f.next_attempt_at)));
            match found.next_cursor {
                Some(cursor) => page.after = Some(cursor),
                None => break,
            }
        }
        Ok(Pending { payments, follow_ups })
    }

    /// What a round of `job` started at `now` owes if it does not fill its batch: everything
    /// this check saw due by then, and so committed before the round began.
    pub fn due(&self, job: &str, now: OffsetDateTime) -> Vec<Owed> {
        match job {
            "expire_abandoned_checkouts" => self.payments.iter().filter(|p| p.1 <= now).map(|p| Owed::Expired(p.0)).collect(),
            "run_follow_ups" => self
                .follow_ups
                .iter()
                .filter(|f| f.1 <= now)
                .map(|f| Owed::Attempted(f.0, now))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The debts this state (read after the rounds finished) shows unpaid, described.
    pub fn unpaid(&self, owed: &[Owed]) -> Vec<String> {
        let mut broken = Vec::new();
        for debt in owed {
            match *debt {
                Owed::Expired(payment) if self.payments.iter().any(|p| p.0 == payment) => broken.push(format!(
                    "limbo: payment {payment} was due when an expiry round started, which finished without filling its batch, and is still pending"
                )),
                Owed::Attempted(task, round) if self.follow_ups.iter().any(|f| f.0 == task && f.1 <= round) => broken.push(format!(
                    "limbo: follow-up {task:?} was due when a round started at {round}, which finished without filling its batch, and was not attempted"
                )),
                _ => {}
            }
        }
        broken
    }
}

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
