//! The follow-up job: retries the provider calls that multi-step flows still owe, until done or
//! stuck.
//!
//! A run claims the due follow-ups in one short transaction (`SKIP LOCKED`, and each moved a
//! lease ahead), so any number of server instances share the work and no two make the same
//! attempt at once. Each attempt then calls the provider outside any transaction, with the same
//! provider idempotency key as every earlier attempt, and records the outcome in a transaction of
//! its own. An instance that dies mid-attempt leaves its follow-ups to be taken again when their
//! lease ends.

use domain::follow_up::FollowUpTask;
use domain::ids::RefundId;
use time::OffsetDateTime;
use tracing::Instrument;

use crate::context::App;
use crate::follow_ups::{Attempt, FOLLOW_UP_LEASE, Failure};
use crate::ports::store::{FollowUpRepository, StoreError, UnitOfWork};
use crate::refunds::RefundError;
use crate::transact::{transact, work};

/// Claims the follow-ups due now (at most `batch`), counting an attempt of each.
async fn claim_due<Tx: FollowUpRepository + Send>(tx: &mut Tx, batch: usize, now: OffsetDateTime) -> Result<Vec<FollowUpTask>, StoreError> {
    let due = tx.lock_due_follow_ups(now, batch).await?;
    let mut claimed = Vec::with_capacity(due.len());
    for follow_up in due {
        let follow_up = follow_up.begin_attempt(now, FOLLOW_UP_LEASE);
        tx.update_follow_up(&follow_up).await?;
        claimed.push(follow_up.task);
    }
    Ok(claimed)
}

impl<U: UnitOfWork> App<U> {
    /// Makes an attempt at every follow-up due now, at most `batch`. Returns how many were tried.
    #[tracing::instrument(name = "run_follow_ups", skip_all, fields(batch))]
    pub async fn run_follow_ups(&self, batch: usize) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let claimed = transact(&self.store, |tx| work(claim_due(tx, batch, now))).await?;
        for task in &claimed {
            let span = tracing::info_span!("follow_up", task = task.kind(), subject = %task.subject());
            let attempt = self.follow_up(*task).instrument(span).await;
            if let Err(error) = attempt {
                tracing::warn!(%error, task = task.kind(), subject = %task.subject(), "a follow-up attempt failed");
                let recorded = self
                    .record_failed_attempt(*task, &error, Failure::Temporary, Attempt::Claimed)
                    .await;
                if let Err(error) = recorded {
                    tracing::warn!(%error, "could not record a follow-up's failure; its lease ends it");
                }
            }
        }
        Ok(claimed.len())
    }

    /// One attempt at one follow-up.
    async fn follow_up(&self, task: FollowUpTask) -> Result<(), String> {
        match task {
            FollowUpTask::Refund(id) => self.retry_refund(id).await.map_err(|error| error.to_string()),
            FollowUpTask::LateSuccessRefund(id) => self.retry_late_success_refund(id).await.map_err(|error| error.to_string()),
            FollowUpTask::Payout(id) => self.retry_payout(id).await.map_err(|error| error.to_string()),
            FollowUpTask::UnpaidOrder(id) => self.end_unpaid_order(id).await.map_err(|error| error.to_string()),
            FollowUpTask::RecoverShortfall(_) | FollowUpTask::OutsideTopUpRefund(_) => Ok(()),
        }
    }

    /// Asks the gateway again for a pending refund, under the refund's provider key.
    async fn retry_refund(&self, id: RefundId) -> Result<(), RefundError> {
        let refund = self.refund_by_id(id).await?;
        let payment = match refund.as_ref().and_then(|refund| refund.payment_id()) {
            Some(payment_id) => self.payment_by_id(payment_id).await?,
            None => None,
        };
        let (Some(refund), Some(payment)) = (refund, payment) else {
            tracing::error!(refund_id = %id, "a refund follow-up names a refund or payment that does not exist");
            return Ok(self.follow_up_done(FollowUpTask::Refund(id)).await?);
        };
        if !refund.is_pending() {
            return Ok(self.follow_up_done(FollowUpTask::Refund(id)).await?);
        }
        // A temporary failure is recorded on the follow-up by `refund_through_gateway` itself.
        match self.refund_through_gateway(&payment, refund, Attempt::Claimed).await {
            Ok(_) | Err(RefundError::Gateway(_)) => Ok(()),
            Err(other) => Err(other),
        }
    }
}
