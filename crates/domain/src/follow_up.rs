//! Follow-ups: the provider calls a multi-step flow still owes, kept until they are done.
//!
//! A flow that has committed money towards a provider call (a card refund whose amount left the
//! merchant's wallet, a late payment to send back) records a follow-up in the same transaction.
//! The call is tried at once; if it fails for a reason that may pass (the provider rate limits
//! us, is down, or answers something unreadable), a job tries again later with the same
//! provider idempotency key, backing off exponentially. After `RetryPolicy::attempts_max`
//! attempts the follow-up is *stuck*: it stays listed for admins with its last error until
//! someone acts. Some follow-ups are stuck from the start: they record something only a person
//! can settle (a merchant who could not cover a refund made outside the API).

use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::ids::{OrderId, PaymentId, RefundId, WithdrawalId};

/// What must still be done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FollowUpTask {
    /// Ask the provider to refund one of our refunds (the money has left the merchant's wallet).
    Refund(RefundId),
    /// Send back a payment that succeeded after its order was given up.
    LateSuccessRefund(PaymentId),
    /// A refund made outside the API took more than the merchant's wallet held; the rest was
    /// posted to the receivables account and must be recovered from the merchant.
    RecoverShortfall(RefundId),
    /// A top-up was refunded outside the API while its money stays in the wallet.
    OutsideTopUpRefund(PaymentId),
    /// Ask the provider to pay out an approved withdrawal (its amount is held meanwhile).
    Payout(WithdrawalId),
    /// A card order whose payment was declined keeps its stock until its payment deadline, for
    /// the buyer to pay again; then, if still unpaid, it is cancelled and its stock released.
    UnpaidOrder(OrderId),
}

impl FollowUpTask {
    /// The stable code stored in the database with [`subject`](FollowUpTask::subject) as its key.
    pub fn kind(&self) -> &'static str {
        match self {
            FollowUpTask::Refund(_) => "refund",
            FollowUpTask::LateSuccessRefund(_) => "late_success_refund",
            FollowUpTask::RecoverShortfall(_) => "recover_shortfall",
            FollowUpTask::OutsideTopUpRefund(_) => "outside_top_up_refund",
            FollowUpTask::Payout(_) => "payout",
            FollowUpTask::UnpaidOrder(_) => "unpaid_order",
        }
    }

    /// The id of the refund or payment the task is about.
    pub fn subject(&self) -> Uuid {
        match self {
            FollowUpTask::Refund(id) | FollowUpTask::RecoverShortfall(id) => id.as_uuid(),
            FollowUpTask::LateSuccessRefund(id) | FollowUpTask::OutsideTopUpRefund(id) => id.as_uuid(),
            FollowUpTask::Payout(id) => id.as_uuid(),
            FollowUpTask::UnpaidOrder(id) => id.as_uuid(),
        }
    }

    /// The task stored as `kind` and `subject`, if `kind` is known.
    pub fn from_parts(kind: &str, subject: Uuid) -> Option<FollowUpTask> {
        match kind {
            "refund" => Some(FollowUpTask::Refund(RefundId::from_uuid(subject))),
            "late_success_refund" => Some(FollowUpTask::LateSuccessRefund(PaymentId::from_uuid(subject))),
            "recover_shortfall" => Some(FollowUpTask::RecoverShortfall(RefundId::from_uuid(subject))),
            "outside_top_up_refund" => Some(FollowUpTask::OutsideTopUpRefund(PaymentId::from_uuid(subject))),
            "payout" => Some(FollowUpTask::Payout(WithdrawalId::from_uuid(subject))),
            "unpaid_order" => Some(FollowUpTask::UnpaidOrder(OrderId::from_uuid(subject))),
            _ => None,
        }
    }
}

/// Where a follow-up is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FollowUpState {
    /// To be tried at `next_attempt_at`.
    Pending,
    /// The call was made and its outcome recorded.
    Done,
    /// Given up on by the job; an admin must look at it.
    Stuck,
}

impl FollowUpState {
    /// The stable code stored in the database and shown to admins.
    pub fn as_str(self) -> &'static str {
        match self {
            FollowUpState::Pending => "pending",
            FollowUpState::Done => "done",
            FollowUpState::Stuck => "stuck",
        }
    }

    /// The state whose [`as_str`](FollowUpState::as_str) code is `text`, if any.
    pub fn parse(text: &str) -> Option<FollowUpState> {
        match text {
            "pending" => Some(FollowUpState::Pending),
            "done" => Some(FollowUpState::Done),
            "stuck" => Some(FollowUpState::Stuck),
            _ => None,
        }
    }
}

/// How often and how far apart attempts are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts after which the job gives up and the follow-up is stuck.
    pub attempts_max: u32,
    /// The wait after the first failure.
    pub first_delay: Duration,
    /// The longest wait between two attempts, before jitter.
    pub delay_max: Duration,
}

impl RetryPolicy {
    /// About a day of attempts: 30 s, 1 min, 2 min, ... capped at 2 h, 20 attempts in all.
    pub const DEFAULT: RetryPolicy = RetryPolicy {
        attempts_max: 20,
        first_delay: Duration::seconds(30),
        delay_max: Duration::hours(2),
    };

    /// The wait after the `attempt`-th failure: doubling from `first_delay`, capped at
    /// `delay_max`, then spread by up to a fifth (`jitter` in 0..=1000, per mille) so that
    /// follow-ups that failed together are not retried together.
    pub fn delay(&self, attempt: u32, jitter: u16) -> Duration {
        let doublings = attempt.saturating_sub(1).min(30);
        let base = self.first_delay.whole_milliseconds().max(0) as i64;
        let cap = self.delay_max.whole_milliseconds().max(0) as i64;
        let delay = base.saturating_mul(1_i64 << doublings).min(cap);
        let spread = delay / 5 * i64::from(jitter.min(1000)) / 1000;
        Duration::milliseconds(delay + spread)
    }
}

/// A provider call a flow still owes; see the module's introduction.
///
/// ```
/// use domain::follow_up::{FollowUp, FollowUpState, FollowUpTask, RetryPolicy};
/// use domain::ids::RefundId;
/// use domain::OffsetDateTime;
/// use time::Duration;
/// use uuid::Uuid;
///
/// let now = OffsetDateTime::UNIX_EPOCH;
/// let task = FollowUpTask::Refund(RefundId::from_uuid(Uuid::from_u128(1)));
/// let policy = RetryPolicy { attempts_max: 2, ..RetryPolicy::DEFAULT };
///
/// let follow_up = FollowUp::schedule(task, now, now).begin_attempt(now, Duration::minutes(1));
/// let follow_up = follow_up.failed("provider timed out", now, &policy, 0);
/// assert_eq!(follow_up.next_attempt_at, now + Duration::seconds(30));
/// assert!(follow_up.is_due(now + Duration::seconds(30)));
///
/// let follow_up = follow_up.begin_attempt(now, Duration::minutes(1)).failed("timed out again", now, &policy, 0);
/// assert_eq!(follow_up.state, FollowUpState::Stuck);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowUp {
    /// What must be done.
    pub task: FollowUpTask,
    /// Where it is.
    pub state: FollowUpState,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the job next takes it; while an attempt runs, when its lease runs out.
    pub next_attempt_at: OffsetDateTime,
    /// The latest error, or the reason a person must act (at most [`ERROR_CHARS_MAX`] characters).
    pub last_error: Option<String>,
    /// When it was recorded.
    pub created_at: OffsetDateTime,
    /// When it last changed.
    pub updated_at: OffsetDateTime,
}

/// The longest error kept on a follow-up.
pub const ERROR_CHARS_MAX: usize = 500;

impl FollowUp {
    /// A task to try at `first_attempt_at`. Scheduling it a lease ahead of now lets the request
    /// that recorded it make the first attempt without the job racing it.
    pub fn schedule(task: FollowUpTask, first_attempt_at: OffsetDateTime, at: OffsetDateTime) -> FollowUp {
        FollowUp {
            task,
            state: FollowUpState::Pending,
            attempts: 0,
            next_attempt_at: first_attempt_at,
            last_error: None,
            created_at: at,
            updated_at: at,
        }
    }

    /// A task only a person can settle: stuck from the start, with the reason.
    pub fn needs_attention(task: FollowUpTask, reason: String, at: OffsetDateTime) -> FollowUp {
        FollowUp {
            state: FollowUpState::Stuck,
            last_error: Some(truncate(reason)),
            ..FollowUp::schedule(task, at, at)
        }
    }

    /// Counts an attempt about to be made and moves the next one `lease` ahead, so that no other
    /// worker takes the task while this attempt runs.
    pub fn begin_attempt(mut self, at: OffsetDateTime, lease: Duration) -> FollowUp {
        self.attempts = self.attempts.saturating_add(1);
        self.next_attempt_at = at + lease;
        self.updated_at = at;
        self
    }

    /// The attempt failed: try again after the policy's delay, or give up when none are left.
    pub fn failed(mut self, error: &str, at: OffsetDateTime, policy: &RetryPolicy, jitter: u16) -> FollowUp {
        self.last_error = Some(truncate(error.to_owned()));
        self.updated_at = at;
        if self.attempts >= policy.attempts_max {
            self.state = FollowUpState::Stuck;
        } else {
            self.next_attempt_at = at + policy.delay(self.attempts.max(1), jitter);
        }
        self
    }

    /// Gives up at once: the provider refused for good, so asking again cannot help.
    pub fn give_up(mut self, error: &str, at: OffsetDateTime) -> FollowUp {
        self.last_error = Some(truncate(error.to_owned()));
        self.state = FollowUpState::Stuck;
        self.updated_at = at;
        self
    }

    /// To be taken again at `next_attempt_at`, pending whatever it was.
    pub fn reschedule(mut self, next_attempt_at: OffsetDateTime, at: OffsetDateTime) -> FollowUp {
        self.state = FollowUpState::Pending;
        self.next_attempt_at = next_attempt_at;
        self.updated_at = at;
        self
    }

    /// The provider call was made and its outcome recorded.
    pub fn done(mut self, at: OffsetDateTime) -> FollowUp {
        self.state = FollowUpState::Done;
        self.updated_at = at;
        self
    }

    /// Whether the job should take it now: pending and due.
    pub fn is_due(&self, now: OffsetDateTime) -> bool {
        self.state == FollowUpState::Pending && self.next_attempt_at <= now
    }
}

fn truncate(text: String) -> String {
    if text.chars().count() <= ERROR_CHARS_MAX {
        return text;
    }
    text.chars().take(ERROR_CHARS_MAX).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH
    }

    fn task() -> FollowUpTask {
        FollowUpTask::Refund(RefundId::from_uuid(Uuid::from_u128(9)))
    }

    #[test]
    fn delays_double_up_to_the_cap_and_jitter_adds_at_most_a_fifth() {
        let policy = RetryPolicy::DEFAULT;
        assert_eq!(policy.delay(1, 0), Duration::seconds(30));
        assert_eq!(policy.delay(2, 0), Duration::seconds(60));
        assert_eq!(policy.delay(3, 0), Duration::seconds(120));
        assert_eq!(policy.delay(30, 0), Duration::hours(2));
        assert_eq!(policy.delay(u32::MAX, 0), Duration::hours(2));
        assert_eq!(policy.delay(1, 1000), Duration::seconds(36));
        assert_eq!(policy.delay(1, u16::MAX), Duration::seconds(36));
    }

    #[test]
    fn a_follow_up_is_retried_until_its_attempts_run_out_then_stuck() {
        let policy = RetryPolicy {
            attempts_max: 2,
            first_delay: Duration::seconds(10),
            delay_max: Duration::minutes(1),
        };
        let follow_up = FollowUp::schedule(task(), at(), at());
        assert!(follow_up.is_due(at()));
        let follow_up = follow_up.begin_attempt(at(), Duration::minutes(1));
        assert!(!follow_up.is_due(at() + Duration::seconds(59)), "leased while the attempt runs");
        let follow_up = follow_up.failed("503", at(), &policy, 0);
        assert_eq!(
            (follow_up.state, follow_up.next_attempt_at),
            (FollowUpState::Pending, at() + Duration::seconds(10))
        );
        let follow_up = follow_up
            .begin_attempt(at(), Duration::minutes(1))
            .failed("503 again", at(), &policy, 0);
        assert_eq!(follow_up.state, FollowUpState::Stuck);
        assert_eq!(follow_up.last_error.as_deref(), Some("503 again"));
        assert!(!follow_up.is_due(at() + Duration::days(1)));
    }

    #[test]
    fn tasks_round_trip_through_kind_and_subject() {
        let payment = FollowUpTask::LateSuccessRefund(PaymentId::from_uuid(Uuid::from_u128(3)));
        let shortfall = FollowUpTask::RecoverShortfall(RefundId::from_uuid(Uuid::from_u128(4)));
        let top_up = FollowUpTask::OutsideTopUpRefund(PaymentId::from_uuid(Uuid::from_u128(5)));
        let payout = FollowUpTask::Payout(WithdrawalId::from_uuid(Uuid::from_u128(6)));
        let unpaid = FollowUpTask::UnpaidOrder(OrderId::from_uuid(Uuid::from_u128(7)));
        for task in [task(), payment, shortfall, top_up, payout, unpaid] {
            assert_eq!(FollowUpTask::from_parts(task.kind(), task.subject()), Some(task));
        }
        assert_eq!(FollowUpTask::from_parts("other", Uuid::nil()), None);
    }

    #[test]
    fn long_errors_are_cut() {
        let follow_up = FollowUp::needs_attention(task(), "x".repeat(2_000), at());
        assert_eq!(follow_up.state, FollowUpState::Stuck);
        assert_eq!(follow_up.last_error.map(|e| e.chars().count()), Some(ERROR_CHARS_MAX));
    }
}
