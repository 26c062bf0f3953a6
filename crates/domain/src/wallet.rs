//! Wallets (ledger accounts) and holds.
//!
//! A user's wallet caches `balance` (the sum of its postings) and `held` (the sum of its pending
//! holds); `available = balance - held` is what may be spent. User wallets never go below zero
//! and never hold more than they have. System accounts stand for the outside world (gateway
//! clearing, payouts, adjustments) and may go negative: money that entered the platform by card
//! shows as a negative clearing balance.

use std::fmt;

use time::OffsetDateTime;

use crate::ids::{HoldId, OrderId, UserId, WalletId};
use crate::money::{Currency, Money, MoneyError};
use crate::payment::ProviderName;

/// An account of the platform itself rather than of a user.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SystemAccount {
    /// Money received from (or refunded through) one card gateway.
    GatewayClearing(ProviderName),
    /// Money paid out of the platform by withdrawals.
    Payouts,
    /// The counterpart of manual corrections made by an admin.
    Adjustments,
    /// What merchants owe the platform: the part of a refund made outside the API that their
    /// wallet could not cover.
    Receivables,
}

impl SystemAccount {
    /// A stable text code, used as the account's key in storage.
    pub fn code(&self) -> String {
        match self {
            SystemAccount::GatewayClearing(provider) => format!("gateway_clearing:{provider}"),
            SystemAccount::Payouts => "payouts".to_owned(),
            SystemAccount::Adjustments => "adjustments".to_owned(),
            SystemAccount::Receivables => "receivables".to_owned(),
        }
    }

    /// The account whose [`code`](SystemAccount::code) is `code`, if any.
    pub fn parse(code: &str) -> Option<SystemAccount> {
        match code {
            "payouts" => Some(SystemAccount::Payouts),
            "adjustments" => Some(SystemAccount::Adjustments),
            "receivables" => Some(SystemAccount::Receivables),
            other => other
                .strip_prefix("gateway_clearing:")
                .and_then(|provider| ProviderName::parse(provider).ok())
                .map(SystemAccount::GatewayClearing),
        }
    }
}

impl fmt::Display for SystemAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.code())
    }
}

/// Who a wallet belongs to, which decides whether it may go negative.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum WalletOwner {
    /// A customer's or merchant's wallet: never below zero, never holding more than its balance.
    User(UserId),
    /// One of the platform's own accounts, which stands for the outside world and may go negative.
    System(SystemAccount),
}

/// Why a wallet refuses an entry or a hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WalletError {
    /// Spending `requested` would take the wallet below what it holds; `available` is what it could
    /// spend (balance less holds).
    #[error("insufficient funds: {available} available, {requested} requested")]
    InsufficientFunds {
        /// What the wallet could spend: its balance less its holds.
        available: Money,
        /// What the entry or hold asked for, as a positive amount.
        requested: Money,
    },
    /// The amount's currency is not the wallet's: a wallet has exactly one currency.
    #[error("the wallet holds {wallet} but the amount is in {amount}")]
    CurrencyMismatch {
        /// The wallet's currency.
        wallet: Currency,
        /// The amount's currency.
        amount: Currency,
    },
    /// A hold, extension or capture of zero or less.
    #[error("the amount must be positive")]
    NotPositive,
    /// A hold was asked of a system account, which has no available balance to protect.
    #[error("holds are only placed on user wallets")]
    NotAUserWallet,
    /// Checked arithmetic on the wallet's amounts overflowed.
    #[error(transparent)]
    Money(#[from] MoneyError),
}

/// One ledger account in one currency, with its cached `balance` and `held`.
///
/// The cache is what makes an overdraft check a single row lock: storage keeps it equal to the sum
/// of the wallet's postings (and of its pending holds), and the ledger verification checks that it
/// does.
///
/// ```
/// use domain::ids::{HoldId, UserId, WalletId};
/// use domain::money::{Currency, Money};
/// use domain::wallet::{Hold, HoldStatus, HoldTerms, Wallet, WalletOwner};
/// use domain::OffsetDateTime;
/// use uuid::Uuid;
///
/// let now = OffsetDateTime::UNIX_EPOCH;
/// let usd = |minor| Money::from_minor(minor, Currency::Usd);
/// let owner = WalletOwner::User(UserId::from_uuid(Uuid::from_u128(1)));
/// let mut wallet = Wallet::restore(WalletId::from_uuid(Uuid::from_u128(2)), owner, Currency::Usd, 1_000, 0, now);
///
/// // Reserve $3.00 for an hour: still in the balance, no longer available.
/// let terms = HoldTerms {
///     reference: "call".into(),
///     payee: None,
///     order_id: None,
///     placed_at: now,
///     expires_at: now + time::Duration::hours(1),
/// };
/// let hold = Hold::place(HoldId::from_uuid(Uuid::from_u128(3)), &mut wallet, usd(300), terms).unwrap();
/// assert_eq!((wallet.balance(), wallet.held(), wallet.available()), (usd(1_000), usd(300), usd(700)));
///
/// // Capture $1.20 and release the rest; the caller then posts the $1.20 as a ledger debit.
/// let hold = hold.capture(&mut wallet, usd(120), now).unwrap();
/// assert_eq!(hold.status, HoldStatus::Captured);
/// assert_eq!(wallet.held(), usd(0));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wallet {
    id: WalletId,
    owner: WalletOwner,
    currency: Currency,
    balance_minor: i64,
    held_minor: i64,
    created_at: OffsetDateTime,
}

impl Wallet {
    /// A new, empty wallet.
    pub fn open(id: WalletId, owner: WalletOwner, currency: Currency, at: OffsetDateTime) -> Wallet {
        Wallet {
            id,
            owner,
            currency,
            balance_minor: 0,
            held_minor: 0,
            created_at: at,
        }
    }

    /// Rebuilds a wallet from storage. Storage enforces the same invariants as `Wallet` does.
    pub fn restore(
        id: WalletId,
        owner: WalletOwner,
        currency: Currency,
        balance_minor: i64,
        held_minor: i64,
        created_at: OffsetDateTime,
    ) -> Wallet {
        Wallet {
            id,
            owner,
            currency,
            balance_minor,
            held_minor,
            created_at,
        }
    }

    /// The wallet's id, which is also its place in the global lock order.
    pub fn id(&self) -> WalletId {
        self.id
    }

    /// Whose wallet this is.
    pub fn owner(&self) -> &WalletOwner {
        &self.owner
    }

    /// The user who owns the wallet, or `None` for a system account.
    pub fn user_id(&self) -> Option<UserId> {
        match &self.owner {
            WalletOwner::User(user) => Some(*user),
            WalletOwner::System(_) => None,
        }
    }

    /// The one currency the wallet holds.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// When the wallet was opened.
    pub fn created_at(&self) -> OffsetDateTime {
        self.created_at
    }

    /// The sum of the wallet's postings, holds included.
    pub fn balance(&self) -> Money {
        Money::from_minor(self.balance_minor, self.currency)
    }

    /// The sum of the wallet's pending holds' remaining amounts.
    pub fn held(&self) -> Money {
        Money::from_minor(self.held_minor, self.currency)
    }

    /// What may be spent: the balance minus what is reserved by pending holds.
    pub fn available(&self) -> Money {
        Money::from_minor(self.balance_minor - self.held_minor, self.currency)
    }

    /// System accounts may go negative; user wallets may not.
    pub fn may_go_negative(&self) -> bool {
        matches!(self.owner, WalletOwner::System(_))
    }

    fn check_amount(&self, amount: Money) -> Result<(), WalletError> {
        if amount.currency() != self.currency {
            return Err(WalletError::CurrencyMismatch {
                wallet: self.currency,
                amount: amount.currency(),
            });
        }
        if !amount.is_positive() {
            return Err(WalletError::NotPositive);
        }
        Ok(())
    }

    /// The balance after adding a signed amount, refusing to spend what is not available.
    pub(crate) fn balance_after(&self, amount: Money) -> Result<i64, WalletError> {
        if amount.currency() != self.currency {
            return Err(WalletError::CurrencyMismatch {
                wallet: self.currency,
                amount: amount.currency(),
            });
        }
        let after = self.balance_minor.checked_add(amount.amount_minor()).ok_or(MoneyError::Overflow)?;
        if !self.may_go_negative() && after < self.held_minor {
            return Err(WalletError::InsufficientFunds {
                available: self.available(),
                requested: amount.checked_neg()?,
            });
        }
        Ok(after)
    }

    pub(crate) fn set_balance(&mut self, balance_minor: i64) {
        debug_assert!(self.may_go_negative() || balance_minor >= self.held_minor);
        self.balance_minor = balance_minor;
    }

    fn reserve(&mut self, amount: Money) -> Result<(), WalletError> {
        self.check_amount(amount)?;
        if self.may_go_negative() {
            return Err(WalletError::NotAUserWallet);
        }
        if self.available().amount_minor() < amount.amount_minor() {
            return Err(WalletError::InsufficientFunds {
                available: self.available(),
                requested: amount,
            });
        }
        self.held_minor += amount.amount_minor();
        Ok(())
    }

    fn unreserve(&mut self, amount: Money) {
        debug_assert!(amount.amount_minor() <= self.held_minor);
        self.held_minor -= amount.amount_minor();
    }
}

/// The two-phase vocabulary of a hold: pending, then captured, released or expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HoldStatus {
    /// Funds are reserved; captures may still take them.
    Pending,
    /// Ended by a capture (the last one, or a final one), the rest released.
    Captured,
    /// Ended by a party before expiry, nothing more captured.
    Released,
    /// Ended by the expiry job because it outlived `expires_at`.
    Expired,
}

impl HoldStatus {
    /// The stable snake_case code stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            HoldStatus::Pending => "pending",
            HoldStatus::Captured => "captured",
            HoldStatus::Released => "released",
            HoldStatus::Expired => "expired",
        }
    }

    /// The status whose [`as_str`](HoldStatus::as_str) code is `text`, if any.
    pub fn parse(text: &str) -> Option<HoldStatus> {
        match text {
            "pending" => Some(HoldStatus::Pending),
            "captured" => Some(HoldStatus::Captured),
            "released" => Some(HoldStatus::Released),
            "expired" => Some(HoldStatus::Expired),
            _ => None,
        }
    }
}

/// Why a hold cannot be placed, extended, captured or ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HoldError {
    /// The hold already ended (its status is given); every settlement happens once.
    #[error("the hold is {0:?}, not pending")]
    NotPending(HoldStatus),
    /// A capture of more than is still reserved.
    #[error("cannot capture {requested}: {remaining} of the hold remains")]
    CaptureExceedsHold {
        /// What the hold still reserves.
        remaining: Money,
        /// What the capture asked for.
        requested: Money,
    },
    /// The wallet passed in is not the one the hold is on.
    #[error("the hold belongs to another wallet")]
    WrongWallet,
    /// `expires_at` is not after `placed_at`.
    #[error("a hold must expire after it is placed")]
    ExpiryInThePast,
    /// The wallet refused the reservation (not enough available, wrong currency, not a user wallet...).
    #[error(transparent)]
    Wallet(#[from] WalletError),
}

/// Funds reserved on a wallet: they stay in the balance but are no longer available.
///
/// Captures may come in parts; what is captured leaves the wallet's `held` and is then posted as a
/// debit:
///
/// ```
/// use domain::ids::{HoldId, UserId, WalletId};
/// use domain::money::{Currency, Money};
/// use domain::wallet::{Hold, HoldError, HoldStatus, HoldTerms, Wallet, WalletOwner};
/// use domain::OffsetDateTime;
/// use uuid::Uuid;
///
/// let now = OffsetDateTime::UNIX_EPOCH;
/// let usd = |minor| Money::from_minor(minor, Currency::Usd);
/// let id = Uuid::from_u128;
/// let (customer, merchant) = (UserId::from_uuid(id(1)), UserId::from_uuid(id(2)));
/// let mut wallet = Wallet::restore(WalletId::from_uuid(id(3)), WalletOwner::User(customer), Currency::Usd, 10_000, 0, now);
/// let terms = HoldTerms {
///     reference: "hotel deposit".into(),
///     payee: Some(merchant),
///     order_id: None,
///     placed_at: now,
///     expires_at: now + time::Duration::days(7),
/// };
/// let hold = Hold::place(HoldId::from_uuid(id(4)), &mut wallet, usd(5_000), terms).unwrap();
///
/// let hold = hold.capture_part(&mut wallet, usd(2_000), false, now).unwrap();
/// assert_eq!((hold.status, hold.remaining(), wallet.held()), (HoldStatus::Pending, usd(3_000), usd(3_000)));
/// assert!(matches!(
///     hold.clone().capture_part(&mut wallet, usd(3_001), false, now),
///     Err(HoldError::CaptureExceedsHold { .. })
/// ));
/// let hold = hold.release(&mut wallet, now).unwrap();
/// assert_eq!((hold.status, hold.captured, wallet.held()), (HoldStatus::Released, usd(2_000), usd(0)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    /// The hold's id.
    pub id: HoldId,
    /// The user wallet the funds are reserved on.
    pub wallet_id: WalletId,
    /// The total reserved so far, extensions included.
    pub amount: Money,
    /// What captures took so far; the rest (`remaining`) stays reserved while the hold is pending.
    pub captured: Money,
    /// The merchant the wallet's owner authorised to capture; none for the platform's own holds
    /// (a call's, captured by the call).
    pub payee: Option<UserId>,
    /// The manual-capture order this hold pays one merchant's part of, if any.
    pub order_id: Option<OrderId>,
    /// Where the hold is in its two-phase life.
    pub status: HoldStatus,
    /// What the hold is for, as its use case names it (a call, an order, a withdrawal...).
    pub reference: String,
    /// When the hold was placed.
    pub created_at: OffsetDateTime,
    /// When the job releases the hold if it is still pending.
    pub expires_at: OffsetDateTime,
    /// When the hold was captured, released or expired; `None` while pending.
    pub settled_at: Option<OffsetDateTime>,
}

/// Where and for how long funds are reserved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldTerms {
    /// What the hold is for, stored as [`Hold::reference`].
    pub reference: String,
    /// The merchant allowed to capture, stored as [`Hold::payee`].
    pub payee: Option<UserId>,
    /// The manual-capture order the hold pays for, stored as [`Hold::order_id`].
    pub order_id: Option<OrderId>,
    /// When the hold is placed; `expires_at` must be after it.
    pub placed_at: OffsetDateTime,
    /// When the job releases the hold if it is still pending.
    pub expires_at: OffsetDateTime,
}

impl Hold {
    /// Reserves `amount` of the wallet's available funds until `terms.expires_at`.
    pub fn place(id: HoldId, wallet: &mut Wallet, amount: Money, terms: HoldTerms) -> Result<Hold, HoldError> {
        if terms.expires_at <= terms.placed_at {
            return Err(HoldError::ExpiryInThePast);
        }
        wallet.reserve(amount)?;
        Ok(Hold {
            id,
            wallet_id: wallet.id(),
            amount,
            captured: Money::zero(amount.currency()),
            payee: terms.payee,
            order_id: terms.order_id,
            status: HoldStatus::Pending,
            reference: terms.reference,
            created_at: terms.placed_at,
            expires_at: terms.expires_at,
            settled_at: None,
        })
    }

    /// Reserves `more` of the wallet's available funds on top of the hold, and moves its expiry.
    pub fn extend(mut self, wallet: &mut Wallet, more: Money, expires_at: OffsetDateTime) -> Result<Hold, HoldError> {
        if self.status != HoldStatus::Pending {
            return Err(HoldError::NotPending(self.status));
        }
        if wallet.id() != self.wallet_id {
            return Err(HoldError::WrongWallet);
        }
        let amount = self.amount.checked_add(more).map_err(WalletError::from)?;
        wallet.reserve(more)?;
        self.amount = amount;
        self.expires_at = self.expires_at.max(expires_at);
        Ok(self)
    }

    /// Whether the hold is pending and its expiry has come, so the expiry job should end it.
    pub fn is_expired_at(&self, now: OffsetDateTime) -> bool {
        self.status == HoldStatus::Pending && self.expires_at <= now
    }

    /// What is still reserved: the amount less what was captured (nothing once settled).
    pub fn remaining(&self) -> Money {
        match self.status {
            HoldStatus::Pending => Money::from_minor(self.amount.amount_minor() - self.captured.amount_minor(), self.amount.currency()),
            _ => Money::zero(self.amount.currency()),
        }
    }

    fn check_pending_on(&self, wallet: &Wallet) -> Result<(), HoldError> {
        if self.status != HoldStatus::Pending {
            return Err(HoldError::NotPending(self.status));
        }
        if wallet.id() != self.wallet_id {
            return Err(HoldError::WrongWallet);
        }
        Ok(())
    }

    /// Ends the hold, giving back to the wallet what remains reserved.
    fn settle(mut self, wallet: &mut Wallet, status: HoldStatus, at: OffsetDateTime) -> Result<Hold, HoldError> {
        self.check_pending_on(wallet)?;
        wallet.unreserve(self.remaining());
        self.status = status;
        self.settled_at = Some(at);
        Ok(self)
    }

    /// Captures `amount` of what remains. The captured reservation leaves the wallet; the caller
    /// then posts it as a ledger debit, which the wallet can always cover because the funds were
    /// reserved. A final capture (or one that takes all that remains) ends the hold and releases
    /// the rest; otherwise the hold stays pending for later captures.
    pub fn capture_part(mut self, wallet: &mut Wallet, amount: Money, final_capture: bool, at: OffsetDateTime) -> Result<Hold, HoldError> {
        self.check_pending_on(wallet)?;
        if amount.currency() != self.amount.currency() || !amount.is_positive() {
            return Err(HoldError::Wallet(WalletError::NotPositive));
        }
        let remaining = self.remaining();
        if amount.amount_minor() > remaining.amount_minor() {
            return Err(HoldError::CaptureExceedsHold {
                remaining,
                requested: amount,
            });
        }
        wallet.unreserve(amount);
        self.captured = Money::from_minor(self.captured.amount_minor() + amount.amount_minor(), amount.currency());
        if final_capture || self.remaining().is_zero() {
            return self.settle(wallet, HoldStatus::Captured, at);
        }
        Ok(self)
    }

    /// Captures `amount` (all or part of the hold) and releases the rest.
    pub fn capture(self, wallet: &mut Wallet, amount: Money, at: OffsetDateTime) -> Result<Hold, HoldError> {
        self.capture_part(wallet, amount, true, at)
    }

    /// Gives what remains reserved back to the wallet's available balance.
    pub fn release(self, wallet: &mut Wallet, at: OffsetDateTime) -> Result<Hold, HoldError> {
        self.settle(wallet, HoldStatus::Released, at)
    }

    /// Like `release`, when a hold outlived its expiry.
    pub fn expire(self, wallet: &mut Wallet, at: OffsetDateTime) -> Result<Hold, HoldError> {
        self.settle(wallet, HoldStatus::Expired, at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn at() -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH
    }

    fn usd(minor: i64) -> Money {
        Money::from_minor(minor, Currency::Usd)
    }

    fn funded_wallet(balance_minor: i64) -> Wallet {
        let owner = WalletOwner::User(UserId::from_uuid(Uuid::from_u128(1)));
        Wallet::restore(
            WalletId::from_uuid(Uuid::from_u128(2)),
            owner,
            Currency::Usd,
            balance_minor,
            0,
            at(),
        )
    }

    fn hold_id() -> HoldId {
        HoldId::from_uuid(Uuid::from_u128(3))
    }

    fn terms() -> HoldTerms {
        HoldTerms {
            reference: "call".into(),
            order_id: None,
            payee: None,
            placed_at: at(),
            expires_at: at() + time::Duration::hours(1),
        }
    }

    #[test]
    fn a_hold_makes_funds_unavailable_but_keeps_the_balance() -> Result<(), HoldError> {
        let mut wallet = funded_wallet(1000);
        Hold::place(hold_id(), &mut wallet, usd(300), terms())?;
        assert_eq!(wallet.balance(), usd(1000));
        assert_eq!(wallet.held(), usd(300));
        assert_eq!(wallet.available(), usd(700));
        Ok(())
    }

    #[test]
    fn a_hold_larger_than_the_available_funds_is_refused() {
        let mut wallet = funded_wallet(100);
        let refused = Hold::place(hold_id(), &mut wallet, usd(101), terms());
        assert!(matches!(refused, Err(HoldError::Wallet(WalletError::InsufficientFunds { .. }))));
        assert_eq!(wallet.held(), usd(0));
    }

    #[test]
    fn a_partial_capture_releases_the_remainder() -> Result<(), HoldError> {
        let mut wallet = funded_wallet(1000);
        let hold = Hold::place(hold_id(), &mut wallet, usd(300), terms())?;
        let hold = hold.capture(&mut wallet, usd(120), at())?;
        assert_eq!(hold.status, HoldStatus::Captured);
        assert_eq!(hold.captured, usd(120));
        assert_eq!(wallet.held(), usd(0));
        Ok(())
    }

    #[test]
    fn captures_add_up_to_the_hold_and_never_past_it() -> Result<(), HoldError> {
        let mut wallet = funded_wallet(1000);
        let hold = Hold::place(hold_id(), &mut wallet, usd(500), terms())?;
        let hold = hold.capture_part(&mut wallet, usd(200), false, at())?;
        assert_eq!(
            (hold.status, hold.captured, hold.remaining()),
            (HoldStatus::Pending, usd(200), usd(300))
        );
        assert_eq!(wallet.held(), usd(300));
        let refused = hold.clone().capture_part(&mut wallet, usd(301), false, at());
        assert!(matches!(refused, Err(HoldError::CaptureExceedsHold { remaining, .. }) if remaining == usd(300)));
        let hold = hold.capture_part(&mut wallet, usd(300), false, at())?;
        assert_eq!(
            (hold.status, hold.captured, wallet.held()),
            (HoldStatus::Captured, usd(500), usd(0))
        );
        Ok(())
    }

    #[test]
    fn a_final_capture_or_a_void_after_captures_releases_only_what_remains() -> Result<(), HoldError> {
        let mut wallet = funded_wallet(1000);
        let first = Hold::place(hold_id(), &mut wallet, usd(500), terms())?;
        let first = first.capture_part(&mut wallet, usd(100), false, at())?;
        let first = first.capture_part(&mut wallet, usd(50), true, at())?;
        assert_eq!(
            (first.status, first.captured, first.remaining()),
            (HoldStatus::Captured, usd(150), usd(0))
        );
        assert_eq!(wallet.held(), usd(0));
        let second = Hold::place(hold_id(), &mut wallet, usd(400), terms())?;
        let second = second.capture_part(&mut wallet, usd(100), false, at())?;
        let voided = second.release(&mut wallet, at())?;
        assert_eq!(
            (voided.status, voided.captured, wallet.held()),
            (HoldStatus::Released, usd(100), usd(0))
        );
        Ok(())
    }

    #[test]
    fn a_capture_larger_than_the_hold_is_rejected() -> Result<(), HoldError> {
        let mut wallet = funded_wallet(1000);
        let hold = Hold::place(hold_id(), &mut wallet, usd(300), terms())?;
        let refused = hold.capture(&mut wallet, usd(301), at());
        assert!(matches!(refused, Err(HoldError::CaptureExceedsHold { .. })));
        assert_eq!(wallet.held(), usd(300));
        Ok(())
    }

    #[test]
    fn a_settled_hold_cannot_be_settled_again() -> Result<(), HoldError> {
        let mut wallet = funded_wallet(1000);
        let hold = Hold::place(hold_id(), &mut wallet, usd(300), terms())?;
        let released = hold.release(&mut wallet, at())?;
        let again = released.capture(&mut wallet, usd(100), at());
        assert_eq!(again, Err(HoldError::NotPending(HoldStatus::Released)));
        Ok(())
    }

    #[test]
    fn system_account_codes_round_trip() -> Result<(), crate::payment::ProviderNameError> {
        for account in [
            SystemAccount::Payouts,
            SystemAccount::Adjustments,
            SystemAccount::GatewayClearing(ProviderName::parse("stripe")?),
        ] {
            assert_eq!(SystemAccount::parse(&account.code()), Some(account));
        }
        Ok(())
    }
    #[test]
    fn an_extended_hold_reserves_more_and_expires_later() -> Result<(), HoldError> {
        let mut wallet = funded_wallet(1000);
        let hold = Hold::place(hold_id(), &mut wallet, usd(300), terms())?;
        let later = at() + time::Duration::hours(2);
        let hold = hold.extend(&mut wallet, usd(200), later)?;
        assert_eq!((hold.amount, hold.expires_at, wallet.available()), (usd(500), later, usd(500)));
        assert!(matches!(
            hold.clone().extend(&mut wallet, usd(501), later),
            Err(HoldError::Wallet(WalletError::InsufficientFunds { .. }))
        ));
        assert!(!hold.is_expired_at(at()) && hold.is_expired_at(later));
        let expired = hold.expire(&mut wallet, later)?;
        assert_eq!((expired.status, wallet.available()), (HoldStatus::Expired, usd(1000)));
        let past = HoldTerms {
            expires_at: at(),
            ..terms()
        };
        assert_eq!(Hold::place(hold_id(), &mut wallet, usd(1), past), Err(HoldError::ExpiryInThePast));
        Ok(())
    }
}

/// A person-to-person transfer, as the sender and receiver see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// The transfer's id.
    pub id: crate::ids::TransferId,
    /// The user whose wallet was debited.
    pub from_user_id: UserId,
    /// The user whose wallet was credited.
    pub to_user_id: UserId,
    /// What was moved, in the sender's and receiver's shared currency.
    pub amount: Money,
    /// The journal transaction that moved it.
    pub transaction_id: crate::ids::TransactionId,
    /// The sender's free-text note to the receiver.
    pub note: String,
    /// When the transfer was made.
    pub created_at: OffsetDateTime,
}
