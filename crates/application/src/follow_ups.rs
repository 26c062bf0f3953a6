//! Follow-ups: provider calls that multi-step flows still owe, and their bookkeeping (see
//! `domain::follow_up`). The flows record an attempt's outcome here; the job that retries them
//! is `follow_up_job`.

use domain::follow_up::{FollowUp, FollowUpState, FollowUpTask};
use time::{Duration, OffsetDateTime};

use crate::caller::Caller;
use crate::context::App;
use crate::pagination::{Cursor, Page, PageRequest};
use crate::ports::store::{FollowUpRepository, StoreError, UnitOfWork};
use crate::transact::{transact, transact_lagging, work};

/// How long an attempt may take before another worker may try again: longer than a provider call
/// with its own retries.
pub const FOLLOW_UP_LEASE: Duration = Duration::minutes(2);

/// Why listing follow-ups fails.
#[derive(Debug, thiserror::Error)]
pub enum FollowUpError {
    /// The caller may not do this to this resource.
    #[error("only admins may list follow-ups")]
    Forbidden,
    /// Storage failed: an outage, a timeout, a conflict that outlasted the retries, or a commit whose
    /// outcome is unknown (`StoreError::OutcomeUnknown`).
    #[error(transparent)]
    Store(#[from] StoreError),
}

crate::retryable!(FollowUpError);

/// Who makes an attempt at a follow-up's provider call: the request itself, or the job, which
/// has counted the attempt when it claimed the follow-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attempt {
    Inline,
    Claimed,
}

/// How an attempt failed: for now (tried again after the policy's delay, or stuck once the
/// attempts are used up), or for good (stuck at once, for an admin).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    Temporary,
    Final,
}

/// A spread for the retry delay, the same for the same follow-up and attempt (the domain takes no
/// randomness).
fn jitter(follow_up: &FollowUp) -> u16 {
    let mixed = follow_up.task.subject().as_u128() ^ u128::from(follow_up.attempts).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (mixed % 1001) as u16
}

/// Marks a follow-up done in the caller's transaction, if it is still pending.
pub(crate) async fn mark_follow_up_done<Tx: FollowUpRepository + Send>(
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

/// A failed attempt at a follow-up, as recorded.
struct FailedAttempt<'a> {
    task: FollowUpTask,
    error: &'a str,
    failure: Failure,
    attempt: Attempt,
}

async fn record_failure<Tx: FollowUpRepository + Send>(
    tx: &mut Tx,
    failed: &FailedAttempt<'_>,
    policy: &domain::follow_up::RetryPolicy,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let Some(follow_up) = tx.lock_follow_up(&failed.task).await? else {
        return Ok(());
    };
    if follow_up.state != FollowUpState::Pending {
        return Ok(());
    }
    let follow_up = match failed.attempt {
        Attempt::Inline => follow_up.begin_attempt(now, FOLLOW_UP_LEASE),
        Attempt::Claimed => follow_up,
    };
    let follow_up = match failed.failure {
        Failure::Temporary => {
            let jitter = jitter(&follow_up);
            follow_up.failed(failed.error, now, policy, jitter)
        }
        Failure::Final => follow_up.give_up(failed.error, now),
    };
    if follow_up.state == FollowUpState::Stuck {
        let task = &failed.task;
        tracing::error!(task = task.kind(), subject = %task.subject(), error = failed.error, "a follow-up is stuck: an admin must look at it");
    }
    tx.update_follow_up(&follow_up).await
}

impl<U: UnitOfWork> App<U> {
    /// Records a failed attempt at a follow-up, counting it first unless the job counted it when
    /// it claimed the follow-up.
    pub(crate) async fn record_failed_attempt(
        &self,
        task: FollowUpTask,
        error: &str,
        failure: Failure,
        attempt: Attempt,
    ) -> Result<(), StoreError> {
        let now = self.clock.now();
        let policy = &self.settings.follow_up_retry;
        let failed = FailedAttempt {
            task,
            error,
            failure,
            attempt,
        };
        let failed = &failed;
        transact(&self.store, |tx| work(record_failure(tx, failed, policy, now))).await
    }

    /// Marks a follow-up done in a transaction of its own.
    pub(crate) async fn follow_up_done(&self, task: FollowUpTask) -> Result<(), StoreError> {
        let now = self.clock.now();
        transact(&self.store, |tx| work(mark_follow_up_done(tx, task, now))).await
    }

    /// Follow-ups in one state (`stuck` is what admins must look at), most recently changed first.
    pub async fn follow_ups(&self, caller: &Caller, state: FollowUpState, page: &PageRequest) -> Result<Page<FollowUp>, FollowUpError> {
        if !caller.is_admin() {
            return Err(FollowUpError::Forbidden);
        }
        Ok(transact_lagging(&self.store, |tx| work(tx.list_follow_ups(state, page))).await?)
    }

    /// How many follow-ups are stuck, counted up to `limit` (a reading of `limit` means "at least
    /// that many"): what the server's metrics report, so that an alert fires before an admin looks.
    pub async fn stuck_follow_up_count(&self, limit: usize) -> Result<usize, StoreError> {
        let page = PageRequest::first(limit);
        let stuck = transact(&self.store, |tx| work(tx.list_follow_ups(FollowUpState::Stuck, &page))).await?;
        Ok(stuck.items.len())
    }
}

/// The cursor of a follow-up listing.
pub fn follow_up_cursor(follow_up: &FollowUp) -> Cursor {
    Cursor::Position {
        at: follow_up.updated_at,
        id: follow_up.task.subject(),
    }
}
