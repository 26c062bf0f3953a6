//! The double-entry ledger.
//!
//! Every movement of money is one `JournalTransaction` of two or more entries whose signed amounts
//! sum to zero in each currency. A positive amount raises an account's balance, a negative one
//! lowers it. Posting a transaction turns each entry into an immutable `Posting` that records the
//! balance after it; a correction is a new, reversing transaction, never an edit.

use std::collections::{BTreeMap, BTreeSet};

use time::OffsetDateTime;

use crate::ids::{TransactionId, WalletId};
use crate::money::{Currency, Money, MoneyError};
use crate::wallet::{Wallet, WalletError};

/// Why money moved: each journal transaction and each of its postings carries one, so a wallet's
/// history can say "purchase" or "refund" without looking anything else up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransactionKind {
    /// Money entering a user's wallet from a card gateway's clearing account.
    TopUp,
    /// Money leaving a user's wallet for the payouts account.
    Withdrawal,
    /// A person-to-person transfer between two users' wallets.
    Transfer,
    /// A buyer paying the merchants of an order, by wallet or (through clearing) by card.
    Purchase,
    /// Money going back from merchants to a buyer or to a gateway's clearing account.
    Refund,
    /// A call's caller paying its receiver for the minutes used.
    CallCharge,
    /// An admin's manual correction against the adjustments account.
    Adjustment,
    /// The mirror image of an earlier transaction, made by [`JournalTransaction::reversal`].
    Reversal,
}

impl TransactionKind {
    /// Every kind, for parsing and for tests.
    pub const ALL: [TransactionKind; 8] = [
        TransactionKind::TopUp,
        TransactionKind::Withdrawal,
        TransactionKind::Transfer,
        TransactionKind::Purchase,
        TransactionKind::Refund,
        TransactionKind::CallCharge,
        TransactionKind::Adjustment,
        TransactionKind::Reversal,
    ];

    /// The stable snake_case code stored in the database and shown in wallet histories.
    pub fn as_str(self) -> &'static str {
        match self {
            TransactionKind::TopUp => "top_up",
            TransactionKind::Withdrawal => "withdrawal",
            TransactionKind::Transfer => "transfer",
            TransactionKind::Purchase => "purchase",
            TransactionKind::Refund => "refund",
            TransactionKind::CallCharge => "call_charge",
            TransactionKind::Adjustment => "adjustment",
            TransactionKind::Reversal => "reversal",
        }
    }

    /// The kind whose [`as_str`](TransactionKind::as_str) code is `text`, if any.
    pub fn parse(text: &str) -> Option<TransactionKind> {
        TransactionKind::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

/// One leg of a journal transaction: a signed amount on one account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The account the amount is posted to.
    pub wallet_id: WalletId,
    /// Signed: positive raises the account's balance, negative lowers it.
    pub amount: Money,
}

impl Entry {
    /// An entry that adds `amount` to the account's balance. Despite the name it takes a signed amount
    /// as it is; a negative one lowers the balance, which is what [`Entry::debit`] builds from a positive one.
    pub fn credit(wallet_id: WalletId, amount: Money) -> Entry {
        Entry { wallet_id, amount }
    }

    /// A debit of a positive `amount`, stored as its negation.
    pub fn debit(wallet_id: WalletId, amount: Money) -> Result<Entry, MoneyError> {
        Ok(Entry {
            wallet_id,
            amount: amount.checked_neg()?,
        })
    }
}

/// Why a journal transaction cannot be built or posted. Pure data: the application turns
/// [`insufficient_funds`](LedgerError::insufficient_funds) into its own refusal and the rest into bugs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// Fewer than two entries: money has to come from somewhere and go somewhere.
    #[error("a journal transaction needs at least two entries")]
    TooFewEntries,
    /// An entry of zero, which would add a meaningless posting to a history.
    #[error("an entry of zero moves nothing")]
    ZeroEntry,
    /// One wallet has two entries; a transaction names each account once, with the net amount.
    #[error("wallet {0} appears twice in one transaction")]
    DuplicateWallet(WalletId),
    /// The entries of `currency` do not sum to zero; `sum_minor` is what they sum to (an `i128`, so the
    /// check itself cannot overflow).
    #[error("the entries in {currency} sum to {sum_minor}, not zero")]
    Unbalanced {
        /// The currency whose entries do not balance.
        currency: Currency,
        /// What they sum to instead of zero, in minor units.
        sum_minor: i128,
    },
    /// [`post`] was given a transaction naming a wallet that is not among the loaded wallets.
    #[error("wallet {0} was not loaded for this transaction")]
    UnknownWallet(WalletId),
    /// A wallet refused its entry: most often an overdraft of a user wallet, or a currency mismatch.
    #[error("wallet {wallet_id}: {source}")]
    Wallet {
        /// The wallet that refused.
        wallet_id: WalletId,
        /// What it refused for.
        #[source]
        source: WalletError,
    },
}

impl LedgerError {
    /// The wallet that could not cover its debit, if that is what went wrong.
    pub fn insufficient_funds(&self) -> Option<(WalletId, Money, Money)> {
        match self {
            LedgerError::Wallet {
                wallet_id,
                source: WalletError::InsufficientFunds { available, requested },
            } => Some((*wallet_id, *available, *requested)),
            _ => None,
        }
    }
}

/// A balanced set of entries, ready to post.
///
/// Building one checks the double-entry rule; posting it applies it to loaded wallets:
///
/// ```
/// use domain::ids::{TransactionId, UserId, WalletId};
/// use domain::ledger::{post, Entry, JournalTransaction, LedgerError, TransactionKind};
/// use domain::money::{Currency, Money};
/// use domain::wallet::{SystemAccount, Wallet, WalletOwner};
/// use domain::OffsetDateTime;
/// use uuid::Uuid;
///
/// let now = OffsetDateTime::UNIX_EPOCH;
/// let usd = |minor| Money::from_minor(minor, Currency::Usd);
/// let alice = WalletId::from_uuid(Uuid::from_u128(1));
/// let payouts = WalletId::from_uuid(Uuid::from_u128(2));
/// let owner = WalletOwner::User(UserId::from_uuid(Uuid::from_u128(10)));
/// let mut wallets = vec![
///     Wallet::restore(alice, owner, Currency::Usd, 5_000, 0, now),
///     Wallet::open(payouts, WalletOwner::System(SystemAccount::Payouts), Currency::Usd, now),
/// ];
///
/// // A withdrawal of $30.00: Alice's wallet down, the payouts account up, summing to zero.
/// let entries = vec![Entry::debit(alice, usd(3_000)).unwrap(), Entry::credit(payouts, usd(3_000))];
/// let id = TransactionId::from_uuid(Uuid::from_u128(100));
/// let withdrawal = JournalTransaction::new(id, TransactionKind::Withdrawal, "w-1", entries, now).unwrap();
/// let postings = post(&withdrawal, &mut wallets).unwrap();
/// assert_eq!(postings[0].balance_after_minor, 2_000);
/// assert_eq!(wallets[1].balance(), usd(3_000));
///
/// // Entries that do not sum to zero never become a transaction.
/// let lopsided = vec![Entry::debit(alice, usd(100)).unwrap(), Entry::credit(payouts, usd(99))];
/// assert_eq!(
///     JournalTransaction::new(id, TransactionKind::Withdrawal, "w-2", lopsided, now),
///     Err(LedgerError::Unbalanced { currency: Currency::Usd, sum_minor: -1 })
/// );
///
/// // Alice cannot spend more than she has: nothing is posted and no balance changes.
/// let overdraft = vec![Entry::debit(alice, usd(2_001)).unwrap(), Entry::credit(payouts, usd(2_001))];
/// let overdraft = JournalTransaction::new(id, TransactionKind::Withdrawal, "w-3", overdraft, now).unwrap();
/// assert!(post(&overdraft, &mut wallets).unwrap_err().insufficient_funds().is_some());
/// assert_eq!(wallets[0].balance(), usd(2_000));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalTransaction {
    id: TransactionId,
    kind: TransactionKind,
    reference: String,
    entries: Vec<Entry>,
    created_at: OffsetDateTime,
}

impl JournalTransaction {
    /// Builds a transaction, refusing one that does not balance in every currency.
    pub fn new(
        id: TransactionId,
        kind: TransactionKind,
        reference: impl Into<String>,
        entries: Vec<Entry>,
        created_at: OffsetDateTime,
    ) -> Result<JournalTransaction, LedgerError> {
        if entries.len() < 2 {
            return Err(LedgerError::TooFewEntries);
        }
        let mut seen = BTreeSet::new();
        let mut sums: BTreeMap<Currency, i128> = BTreeMap::new();
        for entry in &entries {
            if entry.amount.is_zero() {
                return Err(LedgerError::ZeroEntry);
            }
            if !seen.insert(entry.wallet_id) {
                return Err(LedgerError::DuplicateWallet(entry.wallet_id));
            }
            *sums.entry(entry.amount.currency()).or_default() += i128::from(entry.amount.amount_minor());
        }
        if let Some((currency, sum_minor)) = sums.into_iter().find(|(_, sum)| *sum != 0) {
            return Err(LedgerError::Unbalanced { currency, sum_minor });
        }
        Ok(JournalTransaction {
            id,
            kind,
            reference: reference.into(),
            entries,
            created_at,
        })
    }

    /// The transaction that undoes this one.
    pub fn reversal(&self, id: TransactionId, at: OffsetDateTime) -> Result<JournalTransaction, LedgerError> {
        let entries = self
            .entries
            .iter()
            .map(|entry| {
                let amount = entry.amount.checked_neg().map_err(|e| LedgerError::Wallet {
                    wallet_id: entry.wallet_id,
                    source: e.into(),
                })?;
                Ok(Entry {
                    wallet_id: entry.wallet_id,
                    amount,
                })
            })
            .collect::<Result<Vec<_>, LedgerError>>()?;
        JournalTransaction::new(id, TransactionKind::Reversal, format!("reversal:{}", self.id), entries, at)
    }

    /// The transaction's id, shared by all its postings.
    pub fn id(&self) -> TransactionId {
        self.id
    }

    /// Why the money moved.
    pub fn kind(&self) -> TransactionKind {
        self.kind
    }

    /// What the transaction is for, as the use case names it (an order, a transfer, a call...); a
    /// reversal's is `reversal:<id of the original>`.
    pub fn reference(&self) -> &str {
        &self.reference
    }

    /// The signed entries, in the order they were given; they sum to zero per currency.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// When the transaction was made: the time every posting of it carries.
    pub fn created_at(&self) -> OffsetDateTime {
        self.created_at
    }

    /// The wallets this transaction touches, in the global lock order (ascending id).
    pub fn wallet_ids(&self) -> Vec<WalletId> {
        let mut ids: Vec<WalletId> = self.entries.iter().map(|entry| entry.wallet_id).collect();
        ids.sort();
        ids
    }
}

/// An immutable record of one entry applied to one wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posting {
    /// The journal transaction this posting belongs to.
    pub transaction_id: TransactionId,
    /// The account it moved.
    pub wallet_id: WalletId,
    /// The transaction's kind, repeated so a wallet's history reads without a join.
    pub kind: TransactionKind,
    /// The transaction's reference, repeated for the same reason.
    pub reference: String,
    /// Signed, as in the [`Entry`].
    pub amount: Money,
    /// The wallet's balance just after this posting: consecutive postings of one wallet form a chain
    /// (`previous balance_after + amount = balance_after`) that the ledger verification walks.
    pub balance_after_minor: i64,
    /// The transaction's time.
    pub created_at: OffsetDateTime,
}

/// The most a system account may hold, either way, once money enters through it: a card
/// checkout or top-up is refused once its gateway's clearing account would pass it, an
/// adjustment once the adjustments account would. Every other account only moves money that
/// entered so, and every amount is at most `Money::AMOUNT_MINOR_MAX` (10^15), so no balance can
/// come near `i64::MAX` (9.2 × 10^18): payments already opened when a clearing account reaches
/// the bound still settle, with room for thousands of them.
pub const SYSTEM_BALANCE_MAX_MINOR: i64 = 1_000_000_000_000_000_000;

/// Whether system account `wallet` stays within `SYSTEM_BALANCE_MAX_MINOR` once its balance
/// changes by `change` (negative for a debit).
pub fn stays_within_bound(wallet: &Wallet, change: Money) -> bool {
    let after = i128::from(wallet.balance().amount_minor()) + i128::from(change.amount_minor());
    after.unsigned_abs() <= u128::from(SYSTEM_BALANCE_MAX_MINOR.unsigned_abs())
}

/// Applies a transaction to the wallets it touches (all of which must be in `wallets`) and returns
/// the postings. Either every entry applies or none does: on error no wallet has changed.
///
/// # Errors
///
/// [`LedgerError::UnknownWallet`] if an entry's wallet is not in `wallets`, and
/// [`LedgerError::Wallet`] if a wallet refuses its entry (a user wallet would go below what it
/// holds, or the currencies differ).
pub fn post(transaction: &JournalTransaction, wallets: &mut [Wallet]) -> Result<Vec<Posting>, LedgerError> {
    let mut planned = Vec::with_capacity(transaction.entries.len());
    for entry in &transaction.entries {
        let index = wallets
            .iter()
            .position(|wallet| wallet.id() == entry.wallet_id)
            .ok_or(LedgerError::UnknownWallet(entry.wallet_id))?;
        let balance_after = wallets[index].balance_after(entry.amount).map_err(|source| LedgerError::Wallet {
            wallet_id: entry.wallet_id,
            source,
        })?;
        planned.push((index, entry, balance_after));
    }
    let postings = planned
        .into_iter()
        .map(|(index, entry, balance_after)| {
            wallets[index].set_balance(balance_after);
            Posting {
                transaction_id: transaction.id,
                wallet_id: entry.wallet_id,
                kind: transaction.kind,
                reference: transaction.reference.clone(),
                amount: entry.amount,
                balance_after_minor: balance_after,
                created_at: transaction.created_at,
            }
        })
        .collect();
    Ok(postings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::UserId;
    use crate::wallet::{SystemAccount, WalletOwner};
    use proptest::prelude::*;
    use uuid::Uuid;

    fn at() -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH
    }

    fn usd(minor: i64) -> Money {
        Money::from_minor(minor, Currency::Usd)
    }

    fn wallet_id(n: u128) -> WalletId {
        WalletId::from_uuid(Uuid::from_u128(n))
    }

    fn user_wallet(n: u128, balance_minor: i64) -> Wallet {
        let owner = WalletOwner::User(UserId::from_uuid(Uuid::from_u128(n)));
        Wallet::restore(wallet_id(n), owner, Currency::Usd, balance_minor, 0, at())
    }

    fn clearing_wallet(n: u128) -> Wallet {
        Wallet::open(wallet_id(n), WalletOwner::System(SystemAccount::Payouts), Currency::Usd, at())
    }

    fn transfer(from: u128, to: u128, minor: i64) -> Result<JournalTransaction, LedgerError> {
        JournalTransaction::new(
            TransactionId::from_uuid(Uuid::from_u128(99)),
            TransactionKind::Transfer,
            "t",
            vec![
                Entry::credit(wallet_id(from), usd(-minor)),
                Entry::credit(wallet_id(to), usd(minor)),
            ],
            at(),
        )
    }

    #[test]
    fn an_unbalanced_transaction_is_refused() {
        let refused = JournalTransaction::new(
            TransactionId::from_uuid(Uuid::from_u128(1)),
            TransactionKind::Adjustment,
            "x",
            vec![Entry::credit(wallet_id(1), usd(-100)), Entry::credit(wallet_id(2), usd(99))],
            at(),
        );
        assert_eq!(
            refused,
            Err(LedgerError::Unbalanced {
                currency: Currency::Usd,
                sum_minor: -1
            })
        );
    }

    #[test]
    fn single_zero_and_duplicate_entries_are_refused() {
        let id = TransactionId::from_uuid(Uuid::from_u128(1));
        let one = JournalTransaction::new(
            id,
            TransactionKind::Adjustment,
            "x",
            vec![Entry::credit(wallet_id(1), usd(5))],
            at(),
        );
        assert_eq!(one, Err(LedgerError::TooFewEntries));
        let zero = JournalTransaction::new(
            id,
            TransactionKind::Adjustment,
            "x",
            vec![Entry::credit(wallet_id(1), usd(0)), Entry::credit(wallet_id(2), usd(0))],
            at(),
        );
        assert_eq!(zero, Err(LedgerError::ZeroEntry));
        let twice = JournalTransaction::new(
            id,
            TransactionKind::Adjustment,
            "x",
            vec![Entry::credit(wallet_id(1), usd(5)), Entry::credit(wallet_id(1), usd(-5))],
            at(),
        );
        assert_eq!(twice, Err(LedgerError::DuplicateWallet(wallet_id(1))));
    }

    #[test]
    fn posting_moves_money_and_records_the_balance_after() -> Result<(), LedgerError> {
        let mut wallets = vec![user_wallet(1, 1000), user_wallet(2, 50)];
        let postings = post(&transfer(1, 2, 300)?, &mut wallets)?;
        assert_eq!(wallets[0].balance(), usd(700));
        assert_eq!(wallets[1].balance(), usd(350));
        assert_eq!(postings[0].balance_after_minor, 700);
        assert_eq!(postings[1].balance_after_minor, 350);
        Ok(())
    }

    #[test]
    fn an_overdraft_changes_no_wallet() -> Result<(), LedgerError> {
        let mut wallets = vec![user_wallet(1, 100), user_wallet(2, 0)];
        let refused = post(&transfer(1, 2, 101)?, &mut wallets);
        assert!(refused.as_ref().err().and_then(LedgerError::insufficient_funds).is_some());
        assert_eq!(wallets[0].balance(), usd(100));
        assert_eq!(wallets[1].balance(), usd(0));
        Ok(())
    }

    #[test]
    fn a_system_account_may_go_negative() -> Result<(), LedgerError> {
        let mut wallets = vec![clearing_wallet(1), user_wallet(2, 0)];
        post(&transfer(1, 2, 500)?, &mut wallets)?;
        assert_eq!(wallets[0].balance(), usd(-500));
        assert_eq!(wallets[1].balance(), usd(500));
        Ok(())
    }

    #[test]
    fn a_reversal_restores_every_balance() -> Result<(), LedgerError> {
        let mut wallets = vec![user_wallet(1, 1000), user_wallet(2, 0)];
        let original = transfer(1, 2, 250)?;
        post(&original, &mut wallets)?;
        let reversal = original.reversal(TransactionId::from_uuid(Uuid::from_u128(100)), at())?;
        post(&reversal, &mut wallets)?;
        assert_eq!(wallets[0].balance(), usd(1000));
        assert_eq!(wallets[1].balance(), usd(0));
        Ok(())
    }

    proptest! {
        /// Any accepted transaction balances, and posting it conserves the total across wallets.
        #[test]
        fn accepted_transactions_always_balance_and_conserve_money(
            amounts in prop::collection::vec(-1_000_000i64..1_000_000, 1..8),
            balances in prop::collection::vec(0i64..2_000_000, 9),
        ) {
            let mut entries: Vec<Entry> = amounts
                .iter()
                .enumerate()
                .map(|(i, minor)| Entry::credit(wallet_id(i as u128 + 1), usd(*minor)))
                .collect();
            let sum: i64 = amounts.iter().sum();
            entries.push(Entry::credit(wallet_id(100), usd(-sum)));
            let transaction = JournalTransaction::new(
                TransactionId::from_uuid(Uuid::from_u128(7)),
                TransactionKind::Adjustment,
                "p",
                entries,
                at(),
            );
            let Ok(transaction) = transaction else {
                // Only zero or missing legs may be refused; a refused transaction posts nothing.
                prop_assert!(amounts.contains(&0) || sum == 0);
                return Ok(());
            };
            let total: i128 = transaction.entries().iter().map(|e| i128::from(e.amount.amount_minor())).sum();
            prop_assert_eq!(total, 0);

            let mut wallets: Vec<Wallet> = (0..amounts.len())
                .map(|i| user_wallet(i as u128 + 1, balances[i]))
                .collect();
            wallets.push(clearing_wallet(100));
            let before: i64 = wallets.iter().map(|w| w.balance().amount_minor()).sum();
            let result = post(&transaction, &mut wallets);
            let after: i64 = wallets.iter().map(|w| w.balance().amount_minor()).sum();
            prop_assert_eq!(before, after);
            if result.is_ok() {
                prop_assert!(wallets.iter().filter(|w| !w.may_go_negative()).all(|w| w.balance().amount_minor() >= 0));
            }
        }

        #[test]
        fn unbalanced_entries_are_always_refused(
            amounts in prop::collection::vec(1i64..1_000_000, 2..8),
            skew in 1i64..1000,
        ) {
            let mut entries: Vec<Entry> = amounts
                .iter()
                .enumerate()
                .map(|(i, minor)| Entry::credit(wallet_id(i as u128 + 1), usd(*minor)))
                .collect();
            let sum: i64 = amounts.iter().sum();
            entries.push(Entry::credit(wallet_id(100), usd(-sum + skew)));
            let refused = JournalTransaction::new(
                TransactionId::from_uuid(Uuid::from_u128(7)),
                TransactionKind::Adjustment,
                "p",
                entries,
                at(),
            );
            let is_unbalanced = matches!(refused, Err(LedgerError::Unbalanced { .. }));
            prop_assert!(is_unbalanced);
        }
    }
}
