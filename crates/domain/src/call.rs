//! Metered call sessions, billed per started minute from the caller's wallet.
//!
//! Starting a call places a hold on the caller's wallet for the minutes it can afford (up to a
//! cap), so the charge at the end can never fail for lack of funds. Ending the call captures the
//! price of the minutes used, capped at what was authorised, and releases the rest.

use time::OffsetDateTime;

use crate::ids::{CallId, HoldId, UserId};
use crate::money::{Money, MoneyError};

/// Whether a call is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallStatus {
    /// Running: its hold reserves the authorised minutes.
    Active,
    /// Over and charged.
    Ended,
}

impl CallStatus {
    /// The stable code stored in the database and used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Active => "active",
            CallStatus::Ended => "ended",
        }
    }

    /// The status whose [`as_str`](CallStatus::as_str) code is `text`, if any.
    pub fn parse(text: &str) -> Option<CallStatus> {
        match text {
            "active" => Some(CallStatus::Active),
            "ended" => Some(CallStatus::Ended),
            _ => None,
        }
    }
}

/// Why a call cannot start, be extended or end.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The caller and receiver are the same user.
    #[error("a caller cannot call themselves")]
    SelfCall,
    /// A rate of zero or less.
    #[error("the rate per minute must be positive")]
    Rate,
    /// The caller's available balance is less than one minute at the rate.
    #[error("the caller cannot cover the first minute at {rate} per minute")]
    CannotAffordFirstMinute {
        /// The rate asked for.
        rate: Money,
    },
    /// The call was already ended (by the other party, or by the job at its limit).
    #[error("the call has already ended")]
    AlreadyEnded,
    /// Checked arithmetic on the call's amounts failed (an overflow, or a rate in another currency
    /// than the wallet's).
    #[error(transparent)]
    Money(#[from] MoneyError),
}

/// Minutes billed for a call: every started minute counts, and a call is at least one minute.
pub fn billable_minutes(started_at: OffsetDateTime, ended_at: OffsetDateTime) -> u32 {
    let seconds = (ended_at - started_at).whole_seconds().max(0);
    let minutes = (seconds + 59) / 60;
    u32::try_from(minutes.max(1)).unwrap_or(u32::MAX)
}

/// How many whole minutes `available` pays for at `rate`, capped at `minutes_max`.
pub fn affordable_minutes(available: Money, rate: Money, minutes_max: u32) -> Result<u32, CallError> {
    if !rate.is_positive() {
        return Err(CallError::Rate);
    }
    if available.currency() != rate.currency() {
        return Err(CallError::Money(MoneyError::CurrencyMismatch {
            left: available.currency(),
            right: rate.currency(),
        }));
    }
    let minutes = available.amount_minor().max(0) / rate.amount_minor();
    if minutes == 0 {
        return Err(CallError::CannotAffordFirstMinute { rate });
    }
    Ok(u32::try_from(minutes).unwrap_or(u32::MAX).min(minutes_max))
}

/// A metered call between two users, billed per started minute.
///
/// ```
/// use domain::call::{affordable_minutes, CallSession, CallStatus};
/// use domain::ids::{CallId, HoldId, UserId};
/// use domain::money::{Currency, Money};
/// use domain::OffsetDateTime;
/// use uuid::Uuid;
///
/// let rate = Money::from_minor(50, Currency::Usd);
/// // $3.20 available pays for 6 whole minutes at $0.50; the cap is 60.
/// let minutes = affordable_minutes(Money::from_minor(320, Currency::Usd), rate, 60).unwrap();
/// assert_eq!(minutes, 6);
///
/// let start = OffsetDateTime::UNIX_EPOCH;
/// let id = |n| Uuid::from_u128(n);
/// let call = CallSession::start(
///     CallId::from_uuid(id(1)), UserId::from_uuid(id(2)), UserId::from_uuid(id(3)),
///     rate, HoldId::from_uuid(id(4)), minutes, start,
/// ).unwrap();
/// // 2 min 1 s started three minutes.
/// let call = call.end(start + time::Duration::seconds(121)).unwrap();
/// assert_eq!((call.status, call.billed_minutes), (CallStatus::Ended, 3));
/// assert_eq!(call.charged, Money::from_minor(150, Currency::Usd));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallSession {
    /// The call's id.
    pub id: CallId,
    /// The user who pays.
    pub caller_id: UserId,
    /// The user who is paid.
    pub receiver_id: UserId,
    /// The price of one started minute, in the caller's wallet currency.
    pub rate_per_minute: Money,
    /// The hold on the caller's wallet that reserves the authorised minutes.
    pub hold_id: HoldId,
    /// The minutes the hold covers so far; the call is charged no more than these. The job
    /// extends them while the caller can pay for more, and ends the call when they run out.
    pub authorized_minutes: u32,
    /// Whether it is running.
    pub status: CallStatus,
    /// When it started.
    pub started_at: OffsetDateTime,
    /// When it ended.
    pub ended_at: Option<OffsetDateTime>,
    /// The minutes charged, once ended (every started minute counts, at least one).
    pub billed_minutes: u32,
    /// What the caller paid the receiver, once ended.
    pub charged: Money,
}

impl CallSession {
    /// A new, active call authorised for `authorized_minutes` (at least one), whose hold the caller
    /// has already placed.
    ///
    /// # Errors
    ///
    /// [`CallError::SelfCall`] or [`CallError::Rate`].
    pub fn start(
        id: CallId,
        caller_id: UserId,
        receiver_id: UserId,
        rate_per_minute: Money,
        hold_id: HoldId,
        authorized_minutes: u32,
        at: OffsetDateTime,
    ) -> Result<CallSession, CallError> {
        if caller_id == receiver_id {
            return Err(CallError::SelfCall);
        }
        if !rate_per_minute.is_positive() {
            return Err(CallError::Rate);
        }
        Ok(CallSession {
            id,
            caller_id,
            receiver_id,
            rate_per_minute,
            hold_id,
            authorized_minutes: authorized_minutes.max(1),
            status: CallStatus::Active,
            started_at: at,
            ended_at: None,
            billed_minutes: 0,
            charged: Money::zero(rate_per_minute.currency()),
        })
    }

    /// The amount reserved when the call started.
    pub fn authorized_amount(&self) -> Result<Money, MoneyError> {
        self.rate_per_minute.checked_mul(i64::from(self.authorized_minutes))
    }

    /// When the authorised minutes run out.
    pub fn authorized_until(&self) -> OffsetDateTime {
        self.started_at + time::Duration::minutes(i64::from(self.authorized_minutes))
    }

    /// Authorises `minutes` more (their price has been added to the call's hold).
    pub fn extend(mut self, minutes: u32) -> Result<CallSession, CallError> {
        if self.status == CallStatus::Ended {
            return Err(CallError::AlreadyEnded);
        }
        self.authorized_minutes = self.authorized_minutes.saturating_add(minutes);
        Ok(self)
    }

    /// Ends the call and works out the charge: the started minutes, capped at what was authorised.
    pub fn end(mut self, at: OffsetDateTime) -> Result<CallSession, CallError> {
        if self.status == CallStatus::Ended {
            return Err(CallError::AlreadyEnded);
        }
        let minutes = billable_minutes(self.started_at, at).min(self.authorized_minutes);
        self.charged = self.rate_per_minute.checked_mul(i64::from(minutes))?;
        self.billed_minutes = minutes;
        self.status = CallStatus::Ended;
        self.ended_at = Some(at);
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;
    use time::Duration;
    use uuid::Uuid;

    fn usd(minor: i64) -> Money {
        Money::from_minor(minor, Currency::Usd)
    }

    #[test]
    fn every_started_minute_is_billed() {
        let start = OffsetDateTime::UNIX_EPOCH;
        assert_eq!(billable_minutes(start, start), 1);
        assert_eq!(billable_minutes(start, start + Duration::seconds(59)), 1);
        assert_eq!(billable_minutes(start, start + Duration::seconds(60)), 1);
        assert_eq!(billable_minutes(start, start + Duration::seconds(61)), 2);
        assert_eq!(billable_minutes(start, start + Duration::minutes(10)), 10);
        assert_eq!(billable_minutes(start, start - Duration::seconds(5)), 1);
    }

    #[test]
    fn a_caller_must_afford_the_first_minute() {
        assert_eq!(
            affordable_minutes(usd(99), usd(100), 60),
            Err(CallError::CannotAffordFirstMinute { rate: usd(100) })
        );
        assert_eq!(affordable_minutes(usd(250), usd(100), 60), Ok(2));
        assert_eq!(affordable_minutes(usd(1_000_000), usd(100), 60), Ok(60));
    }

    #[test]
    fn the_charge_is_capped_at_the_authorised_minutes() -> Result<(), CallError> {
        let start = OffsetDateTime::UNIX_EPOCH;
        let id = |n| Uuid::from_u128(n);
        let call = CallSession::start(
            CallId::from_uuid(id(1)),
            UserId::from_uuid(id(2)),
            UserId::from_uuid(id(3)),
            usd(50),
            HoldId::from_uuid(id(4)),
            3,
            start,
        )?;
        let ended = call.clone().end(start + Duration::seconds(125))?;
        assert_eq!((ended.billed_minutes, ended.charged), (3, usd(150)));
        let long = call.end(start + Duration::minutes(30))?;
        assert_eq!((long.billed_minutes, long.charged), (3, usd(150)));
        assert_eq!(long.end(start).err(), Some(CallError::AlreadyEnded));
        Ok(())
    }

    #[test]
    fn an_extension_moves_the_end_of_the_authorisation() -> Result<(), CallError> {
        let start = OffsetDateTime::UNIX_EPOCH;
        let id = |n| Uuid::from_u128(n);
        let call = CallSession::start(
            CallId::from_uuid(id(1)),
            UserId::from_uuid(id(2)),
            UserId::from_uuid(id(3)),
            usd(50),
            HoldId::from_uuid(id(4)),
            1,
            start,
        )?;
        assert_eq!(call.authorized_until(), start + Duration::minutes(1));
        let call = call.extend(2)?;
        assert_eq!(call.authorized_until(), start + Duration::minutes(3));
        let ended = call.end(start + Duration::minutes(10))?;
        assert_eq!((ended.billed_minutes, ended.charged), (3, usd(150)));
        assert_eq!(ended.extend(1).err(), Some(CallError::AlreadyEnded));
        Ok(())
    }
}
