//! Withdrawals: money leaving the platform for an outside destination, in steps.
//!
//! ```text
//! requested ──approve──▶ approved ──pay──▶ paid
//!     │                     └─────fail──▶ failed
//!     └──reject──▶ rejected
//! ```
//!
//! - `requested`: the amount is held on the wallet (a hold of the platform's own, without a
//!   payee) and waits for an admin, because it is above the approval threshold. Nothing has left
//!   the books.
//! - `approved`: by an admin (`decided_by`), or at once when at or below the threshold (no
//!   decider). The amount is still only held. Its `settlement` says how it is paid out: through a
//!   provider's payout API (`payout`, with the provider named), or by a person outside the
//!   platform who then marks it paid or failed (`manual`, when no configured provider pays out).
//! - `paid`: the hold was captured and one journal transaction moved the amount from the wallet to
//!   the payouts account. Final.
//! - `failed`: the payout did not happen (the provider refused it, or an admin marked a manual
//!   one failed); the hold was released, the ledger untouched. Final.
//! - `rejected`: an admin refused it, with a reason; the hold was released. Final.
//!
//! The transitions consume the withdrawal and refuse any other move; nothing else writes a status.

use std::fmt;

use time::OffsetDateTime;

use crate::ids::{HoldId, TransactionId, UserId, WithdrawalId};
use crate::money::Money;
use crate::payment::ProviderName;

/// The longest reason kept on a withdrawal (an admin's, or a provider's failure).
pub const REASON_CHARS_MAX: usize = 500;

/// Where a withdrawal is; see the module's diagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WithdrawalStatus {
    /// Held, waiting for an admin because it is above the approval threshold.
    Requested,
    /// Approved, still held, being paid out (by a provider or by hand).
    Approved,
    /// Final: the money left the wallet for the payouts account.
    Paid,
    /// Final: the payout did not happen; the hold was released.
    Failed,
    /// Final: an admin refused it; the hold was released.
    Rejected,
}

impl WithdrawalStatus {
    /// Every status, for parsing and for tests.
    pub const ALL: [WithdrawalStatus; 5] = [
        WithdrawalStatus::Requested,
        WithdrawalStatus::Approved,
        WithdrawalStatus::Paid,
        WithdrawalStatus::Failed,
        WithdrawalStatus::Rejected,
    ];

    /// The stable code stored in the database and used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            WithdrawalStatus::Requested => "requested",
            WithdrawalStatus::Approved => "approved",
            WithdrawalStatus::Paid => "paid",
            WithdrawalStatus::Failed => "failed",
            WithdrawalStatus::Rejected => "rejected",
        }
    }

    /// The status whose [`as_str`](WithdrawalStatus::as_str) code is `text`, if any.
    pub fn parse(text: &str) -> Option<WithdrawalStatus> {
        WithdrawalStatus::ALL.into_iter().find(|status| status.as_str() == text)
    }

    /// Whether the amount is still held: the withdrawal has not ended.
    pub fn is_in_flight(self) -> bool {
        match self {
            WithdrawalStatus::Requested | WithdrawalStatus::Approved => true,
            WithdrawalStatus::Paid | WithdrawalStatus::Failed | WithdrawalStatus::Rejected => false,
        }
    }

    /// The states reachable in one step.
    pub fn successors(self) -> &'static [WithdrawalStatus] {
        match self {
            WithdrawalStatus::Requested => &[WithdrawalStatus::Approved, WithdrawalStatus::Rejected],
            WithdrawalStatus::Approved => &[WithdrawalStatus::Paid, WithdrawalStatus::Failed],
            WithdrawalStatus::Paid | WithdrawalStatus::Failed | WithdrawalStatus::Rejected => &[],
        }
    }
}

impl fmt::Display for WithdrawalStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an approved withdrawal reaches its destination.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Settlement {
    /// Through this provider's payout API.
    Payout(ProviderName),
    /// By a person outside the platform, who then marks it paid or failed.
    Manual,
}

impl Settlement {
    /// The stable code stored in the database: `payout` or `manual`.
    pub fn kind(&self) -> &'static str {
        match self {
            Settlement::Payout(_) => "payout",
            Settlement::Manual => "manual",
        }
    }

    /// The provider that pays out, for a payout.
    pub fn provider(&self) -> Option<&ProviderName> {
        match self {
            Settlement::Payout(provider) => Some(provider),
            Settlement::Manual => None,
        }
    }
}

/// A move the withdrawal's state machine does not allow, such as paying a rejected withdrawal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a withdrawal that is {from} cannot become {to}")]
pub struct WithdrawalTransitionError {
    /// The withdrawal's status.
    pub from: WithdrawalStatus,
    /// The status asked for.
    pub to: WithdrawalStatus,
}

/// Money paid out of a wallet to the outside world. Its fields are private: it changes only
/// through its transitions.
///
/// ```
/// use domain::ids::{HoldId, TransactionId, UserId, WithdrawalId};
/// use domain::money::{Currency, Money};
/// use domain::payment::ProviderName;
/// use domain::withdrawal::{PaidOut, Settlement, Withdrawal, WithdrawalStatus, WithdrawalTerms};
/// use domain::OffsetDateTime;
/// use uuid::Uuid;
///
/// let now = OffsetDateTime::UNIX_EPOCH;
/// let id = Uuid::from_u128;
/// let terms = WithdrawalTerms {
///     user_id: UserId::from_uuid(id(1)),
///     amount: Money::from_minor(250_000, Currency::Ngn),
///     destination: "0123456789 at 058".into(),
///     hold_id: HoldId::from_uuid(id(2)),
/// };
/// let requested = Withdrawal::request(WithdrawalId::from_uuid(id(3)), terms, now);
///
/// // Below the threshold: approved at once (no decider), paid out by a provider.
/// let provider = ProviderName::parse("paystack").unwrap();
/// let approved = requested.approve(None, None, Settlement::Payout(provider), now).unwrap();
/// assert!(approved.awaits_payout());
/// let paid = PaidOut { transaction_id: TransactionId::from_uuid(id(4)), provider_reference: Some("po_1".into()), settled_by: None };
/// let paid = approved.pay(paid, now).unwrap();
/// assert_eq!(paid.status(), WithdrawalStatus::Paid);
///
/// // A paid withdrawal is final.
/// assert!(paid.fail("too late", None, now).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Withdrawal {
    record: WithdrawalRecord,
}

/// A withdrawal as storage keeps it: what `Withdrawal::restore` rebuilds one from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WithdrawalRecord {
    /// The withdrawal's id; also the provider's idempotency key (`payout-<id>`).
    pub id: WithdrawalId,
    /// The user withdrawing.
    pub user_id: UserId,
    /// What is withdrawn, in the wallet's currency.
    pub amount: Money,
    /// Where the money goes, as the user gave it (an account reference the payout provider understands).
    pub destination: String,
    /// Where the withdrawal is.
    pub status: WithdrawalStatus,
    /// The hold that keeps the amount while the withdrawal is in flight; `None` only for
    /// withdrawals made before they had a lifecycle (paid at once).
    pub hold_id: Option<HoldId>,
    /// The admin who approved or rejected it; `None` while requested, and when approved at once.
    pub decided_by: Option<UserId>,
    /// When the admin decided.
    pub decided_at: Option<OffsetDateTime>,
    /// The admin's reason for the decision.
    pub reason: Option<String>,
    /// Set when approved.
    pub settlement: Option<Settlement>,
    /// The provider's id of the payout, once it answered.
    pub provider_reference: Option<String>,
    /// Why the payout failed (the provider's words, or the admin's).
    pub failure_reason: Option<String>,
    /// The admin who marked a manual withdrawal paid or failed.
    pub settled_by: Option<UserId>,
    /// The journal transaction that moved the money, once paid.
    pub transaction_id: Option<TransactionId>,
    /// When it was requested.
    pub created_at: OffsetDateTime,
    /// When it last changed.
    pub updated_at: OffsetDateTime,
}

/// What a new withdrawal is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WithdrawalTerms {
    /// The user withdrawing.
    pub user_id: UserId,
    /// What is withdrawn.
    pub amount: Money,
    /// Where the money goes.
    pub destination: String,
    /// The hold already placed on the user's wallet for the amount.
    pub hold_id: HoldId,
}

/// How a withdrawal was paid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaidOut {
    /// The journal transaction that moved the amount from the wallet to the payouts account.
    pub transaction_id: TransactionId,
    /// The provider's id of the payout, if it gave one.
    pub provider_reference: Option<String>,
    /// The admin who marked a manual withdrawal paid.
    pub settled_by: Option<UserId>,
}

fn clip(reason: &str) -> String {
    reason.trim().chars().take(REASON_CHARS_MAX).collect()
}

impl Withdrawal {
    /// A new withdrawal, its amount held by `terms.hold_id`, waiting for approval.
    pub fn request(id: WithdrawalId, terms: WithdrawalTerms, at: OffsetDateTime) -> Withdrawal {
        Withdrawal {
            record: WithdrawalRecord {
                id,
                user_id: terms.user_id,
                amount: terms.amount,
                destination: terms.destination,
                status: WithdrawalStatus::Requested,
                hold_id: Some(terms.hold_id),
                decided_by: None,
                decided_at: None,
                reason: None,
                settlement: None,
                provider_reference: None,
                failure_reason: None,
                settled_by: None,
                transaction_id: None,
                created_at: at,
                updated_at: at,
            },
        }
    }

    /// Rebuilds a withdrawal from storage, which enforces the same invariants as `Withdrawal` does.
    pub fn restore(record: WithdrawalRecord) -> Withdrawal {
        Withdrawal { record }
    }

    /// Everything stored about the withdrawal, for the adapters that write it.
    pub fn record(&self) -> &WithdrawalRecord {
        &self.record
    }

    /// The withdrawal's id.
    pub fn id(&self) -> WithdrawalId {
        self.record.id
    }

    /// The user withdrawing.
    pub fn user_id(&self) -> UserId {
        self.record.user_id
    }

    /// What is withdrawn.
    pub fn amount(&self) -> Money {
        self.record.amount
    }

    /// Where the money goes.
    pub fn destination(&self) -> &str {
        &self.record.destination
    }

    /// Where the withdrawal is.
    pub fn status(&self) -> WithdrawalStatus {
        self.record.status
    }

    /// The hold that keeps the amount while the withdrawal is in flight.
    pub fn hold_id(&self) -> Option<HoldId> {
        self.record.hold_id
    }

    /// The admin who approved or rejected it; `None` while requested, and when approved at once.
    pub fn decided_by(&self) -> Option<UserId> {
        self.record.decided_by
    }

    /// When the admin decided.
    pub fn decided_at(&self) -> Option<OffsetDateTime> {
        self.record.decided_at
    }

    /// The admin's reason for the decision, if any.
    pub fn reason(&self) -> Option<&str> {
        self.record.reason.as_deref()
    }

    /// How it is paid out, once approved.
    pub fn settlement(&self) -> Option<&Settlement> {
        self.record.settlement.as_ref()
    }

    /// The provider's id of the payout, once it answered.
    pub fn provider_reference(&self) -> Option<&str> {
        self.record.provider_reference.as_deref()
    }

    /// Why the payout failed.
    pub fn failure_reason(&self) -> Option<&str> {
        self.record.failure_reason.as_deref()
    }

    /// The admin who marked a manual withdrawal paid or failed.
    pub fn settled_by(&self) -> Option<UserId> {
        self.record.settled_by
    }

    /// The journal transaction that moved the money, once paid.
    pub fn transaction_id(&self) -> Option<TransactionId> {
        self.record.transaction_id
    }

    /// When it was requested.
    pub fn created_at(&self) -> OffsetDateTime {
        self.record.created_at
    }

    /// When it last changed.
    pub fn updated_at(&self) -> OffsetDateTime {
        self.record.updated_at
    }

    /// Whether a provider must still be asked to pay it out.
    pub fn awaits_payout(&self) -> bool {
        self.record.status == WithdrawalStatus::Approved && matches!(self.record.settlement, Some(Settlement::Payout(_)))
    }

    /// Whether it waits for a person to mark it paid or failed.
    pub fn awaits_manual_settlement(&self) -> bool {
        self.record.status == WithdrawalStatus::Approved && self.record.settlement == Some(Settlement::Manual)
    }

    fn step(mut self, to: WithdrawalStatus, at: OffsetDateTime) -> Result<Withdrawal, WithdrawalTransitionError> {
        let from = self.record.status;
        if !from.successors().contains(&to) {
            return Err(WithdrawalTransitionError { from, to });
        }
        self.record.status = to;
        self.record.updated_at = at;
        Ok(self)
    }

    /// Approves a requested withdrawal: by an admin (`by`), or by the threshold rule (`None`).
    pub fn approve(
        self,
        by: Option<UserId>,
        reason: Option<&str>,
        settlement: Settlement,
        at: OffsetDateTime,
    ) -> Result<Withdrawal, WithdrawalTransitionError> {
        let mut approved = self.step(WithdrawalStatus::Approved, at)?;
        if by.is_some() {
            approved.record.decided_by = by;
            approved.record.decided_at = Some(at);
        }
        approved.record.reason = reason.map(clip).filter(|r| !r.is_empty());
        approved.record.settlement = Some(settlement);
        Ok(approved)
    }

    /// An admin refuses a requested withdrawal; the caller releases its hold.
    pub fn reject(self, by: UserId, reason: &str, at: OffsetDateTime) -> Result<Withdrawal, WithdrawalTransitionError> {
        let mut rejected = self.step(WithdrawalStatus::Rejected, at)?;
        rejected.record.decided_by = Some(by);
        rejected.record.decided_at = Some(at);
        rejected.record.reason = Some(clip(reason));
        Ok(rejected)
    }

    /// Notes the provider's id of a payout it accepted but has not finished.
    pub fn record_provider_reference(mut self, reference: &str, at: OffsetDateTime) -> Result<Withdrawal, WithdrawalTransitionError> {
        if self.record.status != WithdrawalStatus::Approved {
            return Err(WithdrawalTransitionError {
                from: self.record.status,
                to: WithdrawalStatus::Approved,
            });
        }
        if !reference.is_empty() {
            self.record.provider_reference = Some(reference.to_owned());
        }
        self.record.updated_at = at;
        Ok(self)
    }

    /// The money left: the caller captures the hold and posts `paid.transaction_id`.
    pub fn pay(self, paid: PaidOut, at: OffsetDateTime) -> Result<Withdrawal, WithdrawalTransitionError> {
        let mut done = self.step(WithdrawalStatus::Paid, at)?;
        done.record.transaction_id = Some(paid.transaction_id);
        if paid.provider_reference.is_some() {
            done.record.provider_reference = paid.provider_reference;
        }
        done.record.settled_by = paid.settled_by;
        Ok(done)
    }

    /// The payout did not happen: the caller releases the hold.
    pub fn fail(self, reason: &str, settled_by: Option<UserId>, at: OffsetDateTime) -> Result<Withdrawal, WithdrawalTransitionError> {
        let mut failed = self.step(WithdrawalStatus::Failed, at)?;
        failed.record.failure_reason = Some(clip(reason));
        failed.record.settled_by = settled_by;
        Ok(failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Id;
    use crate::money::Currency;
    use uuid::Uuid;

    fn id<T: Id>(n: u128) -> T {
        T::from_uuid(Uuid::from_u128(n))
    }

    fn at() -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH
    }

    fn requested() -> Withdrawal {
        let terms = WithdrawalTerms {
            user_id: id(1),
            amount: Money::from_minor(5_000, Currency::Usd),
            destination: "IBAN DE00".into(),
            hold_id: id(2),
        };
        Withdrawal::request(id(3), terms, at())
    }

    fn paid_out() -> PaidOut {
        PaidOut {
            transaction_id: id(9),
            provider_reference: Some("po_1".into()),
            settled_by: None,
        }
    }

    #[test]
    fn an_approved_withdrawal_records_its_admin_and_is_paid_once() -> Result<(), WithdrawalTransitionError> {
        let admin: UserId = id(7);
        let approved = requested().approve(Some(admin), Some("known customer"), Settlement::Manual, at())?;
        assert_eq!(
            (approved.status(), approved.decided_by()),
            (WithdrawalStatus::Approved, Some(admin))
        );
        assert_eq!(approved.reason(), Some("known customer"));
        assert!(approved.awaits_manual_settlement() && !approved.awaits_payout());
        let paid = approved.pay(paid_out(), at())?;
        assert_eq!((paid.status(), paid.transaction_id()), (WithdrawalStatus::Paid, Some(id(9))));
        let again = paid.pay(paid_out(), at());
        assert_eq!(
            again,
            Err(WithdrawalTransitionError {
                from: WithdrawalStatus::Paid,
                to: WithdrawalStatus::Paid
            })
        );
        Ok(())
    }

    #[test]
    fn an_automatic_approval_has_no_decider() -> Result<(), WithdrawalTransitionError> {
        let provider = ProviderName::parse("simulated").map_err(|_| WithdrawalTransitionError {
            from: WithdrawalStatus::Requested,
            to: WithdrawalStatus::Approved,
        })?;
        let approved = requested().approve(None, None, Settlement::Payout(provider), at())?;
        assert_eq!((approved.decided_by(), approved.decided_at()), (None, None));
        assert!(approved.awaits_payout());
        Ok(())
    }

    #[test]
    fn only_a_requested_withdrawal_is_rejected_and_only_an_approved_one_fails() -> Result<(), WithdrawalTransitionError> {
        let rejected = requested().reject(id(7), "  no such account  ", at())?;
        assert_eq!(
            (rejected.status(), rejected.reason()),
            (WithdrawalStatus::Rejected, Some("no such account"))
        );
        assert!(rejected.clone().approve(Some(id(7)), None, Settlement::Manual, at()).is_err());
        assert!(requested().fail("bank said no", None, at()).is_err());
        let approved = requested().approve(None, None, Settlement::Manual, at())?;
        assert!(approved.clone().reject(id(7), "too late", at()).is_err());
        let failed = approved.fail("bank said no", Some(id(7)), at())?;
        assert_eq!(
            (failed.status(), failed.failure_reason()),
            (WithdrawalStatus::Failed, Some("bank said no"))
        );
        assert!(!failed.status().is_in_flight());
        Ok(())
    }

    #[test]
    fn every_status_round_trips_and_final_ones_go_nowhere() {
        for status in WithdrawalStatus::ALL {
            assert_eq!(WithdrawalStatus::parse(status.as_str()), Some(status));
            assert_eq!(status.is_in_flight(), !status.successors().is_empty());
        }
    }
}
