//! The follow-up job: provider calls that multi-step flows still owe, retried until done or
//! stuck (see `domain::follow_up`).
//!
//! A run claims the due follow-ups in one short transaction (`SKIP LOCKED`, and each moved a
//! lease ahead), so any number of server instances share the work and no two make the same
//! attempt at once. Each attempt then calls the provider outside any transaction, with the same
//! provider idempotency key as every earlier attempt, and records the outcome in a transaction of
//! its own. An instance that dies mid-attempt leaves its follow-ups to be taken again when their
//! lease ends.

use domain::follow_up::{FollowUp, FollowUpState, FollowUpTask};
use domain::ids::{PaymentId, RefundId};
use domain::payment::{Payment, RefundStatus};
use time::{Duration, OffsetDateTime};

use crate::auth::Caller;
use crate::context::App;
use crate::pagination::{Cursor, Page, PageRequest};
use crate::ports::gateway::{GatewayError, RefundRequest};
use crate::ports::store::{FollowUpRepository, PaymentRepository, StoreError, UnitOfWork};
use crate::ports::system::next_id;
use crate::refunds::{Attempt, RefundError};
use crate::transact::transact;

/// How long an attempt may take before another worker may try again: longer than a provider call
/// with its own retries.
pub const FOLLOW_UP_LEASE: Duration = Duration::minutes(2);

#[derive(Debug, thiserror::Error)]
pub enum FollowUpError {
    #[error("only admins may list follow-ups")]
    Forbidden,
    #[error(transparent)]
    Store(#[from] StoreError),
}

crate::retryable!(FollowUpError);

/// A spread for the retry delay, the same for the same follow-up and attempt (the domain takes no
/// randomness).
fn jitter(follow_up: &FollowUp) -> u16 {
    let mixed = follow_up.task.subject().as_u128() ^ u128::from(follow_up.attempts).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (mixed % 1001) as u16
}

/// Marks a follow-up done in the caller's transaction, if it is still pending.
pub(crate) async fn finish_follow_up<Tx: FollowUpRepository + Send>(
    tx: &mut Tx,
    task: FollowUpTask,
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    if let Some(follow_up) = tx.lock_follow_up(&task).await?
        && follow_up.state == FollowUpState::Pending
    {
        tx.update_follow_up(&follow_up.done(at)).await?;
    }
    Ok(())
}

impl<U: UnitOfWork> App<U> {
    /// Records a failed attempt at a follow-up: it is tried again after the policy's delay, or is
    /// stuck when its attempts are used up.
    pub(crate) async fn follow_up_failed(&self, task: FollowUpTask, error: &str) -> Result<(), StoreError> {
        self.record_failed_attempt(task, error, true).await
    }

    /// Records an attempt the provider refused for good: the follow-up is stuck at once.
    pub(crate) async fn follow_up_refused(&self, task: FollowUpTask, error: &str) -> Result<(), StoreError> {
        self.record_failed_attempt(task, error, false).await
    }

    async fn record_failed_attempt(&self, task: FollowUpTask, error: &str, may_pass: bool) -> Result<(), StoreError> {
        let now = self.clock.now();
        transact(&self.store, move |mut tx| async move {
            let result = async {
                let Some(follow_up) = tx.lock_follow_up(&task).await? else {
                    return Ok(());
                };
                if follow_up.state != FollowUpState::Pending {
                    return Ok(());
                }
                let follow_up = follow_up.begin_attempt(now, FOLLOW_UP_LEASE);
                let jitter = jitter(&follow_up);
                let follow_up = if may_pass {
                    follow_up.failed(error, now, &self.settings.follow_up_retry, jitter)
                } else {
                    follow_up.give_up(error, now)
                };
                if follow_up.state == FollowUpState::Stuck {
                    tracing::error!(task = task.kind(), subject = %task.subject(), error, "a follow-up is stuck: an admin must look at it");
                }
                tx.update_follow_up(&follow_up).await
            }
            .await;
            (tx, result)
        })
        .await
    }

    /// Marks a follow-up done in a transaction of its own.
    pub(crate) async fn follow_up_done(&self, task: FollowUpTask) -> Result<(), StoreError> {
        let now = self.clock.now();
        transact(&self.store, move |mut tx| async move {
            let result = finish_follow_up(&mut tx, task, now).await;
            (tx, result)
        })
        .await
    }

    /// Makes an attempt at every follow-up due now, at most `batch`. Returns how many were tried.
    pub async fn run_follow_ups(&self, batch: usize) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let claimed = transact(&self.store, move |mut tx| async move {
            let result = async {
                let due = tx.lock_due_follow_ups(now, batch).await?;
                let mut claimed = Vec::with_capacity(due.len());
                for follow_up in due {
                    let follow_up = follow_up.begin_attempt(now, FOLLOW_UP_LEASE);
                    tx.update_follow_up(&follow_up).await?;
                    claimed.push(follow_up.task);
                }
                Ok::<_, StoreError>(claimed)
            }
            .await;
            (tx, result)
        })
        .await?;
        for task in &claimed {
            let attempt = match *task {
                FollowUpTask::Refund(id) => self.retry_refund(id).await.map_err(|error| error.to_string()),
                FollowUpTask::LateSuccessRefund(id) => self.retry_late_success_refund(id).await.map_err(|error| error.to_string()),
                FollowUpTask::RecoverShortfall(_) | FollowUpTask::OutsideTopUpRefund(_) => Ok(()),
            };
            if let Err(error) = attempt {
                tracing::warn!(%error, task = task.kind(), subject = %task.subject(), "a follow-up attempt failed");
                self.record_attempt_failure(*task, &error.to_string()).await;
            }
        }
        Ok(claimed.len())
    }

    /// Records a failed attempt, counting it first unless the job counted it when it claimed it.
    pub(crate) async fn attempt_failed(&self, task: FollowUpTask, error: &str, attempt: Attempt) -> Result<(), StoreError> {
        match attempt {
            Attempt::Inline => self.follow_up_failed(task, error).await,
            Attempt::Claimed => {
                self.record_attempt_failure(task, error).await;
                Ok(())
            }
        }
    }

    /// The attempt was counted when it was claimed; only the failure is recorded here.
    async fn record_attempt_failure(&self, task: FollowUpTask, error: &str) {
        let now = self.clock.now();
        let outcome = transact(&self.store, move |mut tx| async move {
            let result = async {
                if let Some(follow_up) = tx.lock_follow_up(&task).await?
                    && follow_up.state == FollowUpState::Pending
                {
                    let jitter = jitter(&follow_up);
                    tx.update_follow_up(&follow_up.failed(error, now, &self.settings.follow_up_retry, jitter))
                        .await?;
                }
                Ok::<_, StoreError>(())
            }
            .await;
            (tx, result)
        })
        .await;
        if let Err(error) = outcome {
            tracing::warn!(%error, "could not record a follow-up's failure; its lease ends it");
        }
    }

    /// Asks the gateway again for a pending refund, under the refund's provider key.
    async fn retry_refund(&self, id: RefundId) -> Result<(), RefundError> {
        let refund = self.refund_by_id(id).await?;
        let payment = match &refund {
            Some(refund) => match refund.payment_id {
                Some(payment_id) => self.payment_by_id(payment_id).await?,
                None => None,
            },
            None => None,
        };
        let (Some(refund), Some(payment)) = (refund, payment) else {
            tracing::error!(refund_id = %id, "a refund follow-up names a refund or payment that does not exist");
            return Ok(self.follow_up_done(FollowUpTask::Refund(id)).await?);
        };
        if refund.status != RefundStatus::Pending {
            return Ok(self.follow_up_done(FollowUpTask::Refund(id)).await?);
        }
        // A temporary failure is recorded on the follow-up by `refund_through_gateway` itself.
        match self.refund_through_gateway(&payment, refund, Attempt::Claimed).await {
            Ok(_) | Err(RefundError::Gateway(_)) => Ok(()),
            Err(other) => Err(other),
        }
    }

    pub(crate) async fn payment_by_id(&self, id: PaymentId) -> Result<Option<Payment>, StoreError> {
        transact(&self.store, move |mut tx| async move {
            let result = tx.find_payment(id).await;
            (tx, result)
        })
        .await
    }

    /// Money arrived for an order we had already cancelled: send it back through the gateway. The
    /// follow-up recorded with the late success keeps asking until the gateway answers.
    pub(crate) async fn refund_late_success(&self, payment: &Payment) {
        let task = FollowUpTask::LateSuccessRefund(payment.id);
        let outcome = match self.send_late_success_refund(payment).await {
            Ok(()) => self.follow_up_done(task).await,
            Err(error) if error.may_pass() => {
                tracing::warn!(%error, payment_id = %payment.id, "a late success could not be refunded yet; the follow-up job will retry");
                self.follow_up_failed(task, &error.to_string()).await
            }
            Err(error) => {
                tracing::error!(%error, payment_id = %payment.id, "the gateway refused to refund a late success: flagged for admins");
                self.follow_up_refused(task, &error.to_string()).await
            }
        };
        if let Err(error) = outcome {
            tracing::warn!(%error, payment_id = %payment.id, "could not record the late-success refund's attempt");
        }
    }

    async fn retry_late_success_refund(&self, id: PaymentId) -> Result<(), StoreError> {
        let task = FollowUpTask::LateSuccessRefund(id);
        let Some(payment) = self.payment_by_id(id).await? else {
            return self.follow_up_done(task).await;
        };
        match self.send_late_success_refund(&payment).await {
            Ok(()) => self.follow_up_done(task).await,
            // The attempt was counted when the job claimed it.
            Err(error) if error.may_pass() => {
                self.record_attempt_failure(task, &error.to_string()).await;
                Ok(())
            }
            Err(error) => self.follow_up_refused_now(task, &error.to_string()).await,
        }
    }

    /// Gives up on a follow-up the job has already counted an attempt of.
    async fn follow_up_refused_now(&self, task: FollowUpTask, error: &str) -> Result<(), StoreError> {
        let now = self.clock.now();
        transact(&self.store, move |mut tx| async move {
            let result = async {
                if let Some(follow_up) = tx.lock_follow_up(&task).await?
                    && follow_up.state == FollowUpState::Pending
                {
                    tx.update_follow_up(&follow_up.give_up(error, now)).await?;
                }
                Ok(())
            }
            .await;
            (tx, result)
        })
        .await
    }

    /// One attempt at refunding a late success in full, under the payment's provider key.
    async fn send_late_success_refund(&self, payment: &Payment) -> Result<(), GatewayError> {
        let gateway = self
            .gateways
            .get(&payment.provider)
            .ok_or_else(|| GatewayError::InvalidRequest(format!("no gateway called {} is configured", payment.provider)))?;
        let provider_payment_id = payment
            .provider_payment_id
            .clone()
            .ok_or_else(|| GatewayError::InvalidRequest("the provider gave no payment id to refund".to_owned()))?;
        let request = RefundRequest {
            refund_id: next_id(self.ids.as_ref()),
            payment_id: payment.id,
            provider_payment_id,
            amount: payment.amount,
            reason: "payment arrived after the order was cancelled".to_owned(),
            idempotency_key: format!("late-success-{}", payment.id),
        };
        let refund = gateway.refund(request).await?;
        tracing::warn!(payment_id = %payment.id, provider_refund_id = %refund.provider_refund_id, "late success refunded");
        Ok(())
    }

    /// Follow-ups in one state (`stuck` is what admins must look at), most recently changed first.
    pub async fn follow_ups(&self, caller: &Caller, state: FollowUpState, page: &PageRequest) -> Result<Page<FollowUp>, FollowUpError> {
        if !caller.is_admin() {
            return Err(FollowUpError::Forbidden);
        }
        transact(&self.store, move |mut tx| async move {
            let result = tx.list_follow_ups(state, page).await.map_err(FollowUpError::from);
            (tx, result)
        })
        .await
    }
}

/// The cursor of a follow-up listing.
pub fn follow_up_cursor(follow_up: &FollowUp) -> Cursor {
    Cursor::Position {
        at: follow_up.updated_at,
        id: follow_up.task.subject(),
    }
}
