//! Holds: funds of a wallet reserved until captured (paying someone) or released, and released
//! by the job when they expire.

use domain::ids::{HoldId, UserId, WalletId};
use domain::ledger::{Entry, JournalTransaction, LedgerError, TransactionKind};
use domain::money::{Currency, Money, MoneyError};
use domain::wallet::{Hold, HoldError, HoldTerms, Wallet};
use time::OffsetDateTime;

use crate::caller::Caller;
use crate::context::App;
use crate::ledger::post_locked;
use crate::ports::store::{HoldRepository, LedgerRepository, StoreError, UnitOfWork, UserRepository, WalletRepository};
use crate::ports::system::{IdGenerator, next_id};
use crate::transact::{transact, work};
use crate::{from_posting_error, retryable};

#[derive(Debug, thiserror::Error)]
pub enum HoldUseError {
    #[error("the hold does not exist")]
    NotFound,
    #[error("you have no {0} wallet")]
    NoWallet(Currency),
    #[error(transparent)]
    Hold(#[from] HoldError),
    #[error(transparent)]
    Ledger(LedgerError),
    #[error(transparent)]
    Money(#[from] MoneyError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

retryable!(HoldUseError);
from_posting_error!(HoldUseError);

/// A capture: how much of which hold goes to whom.
struct Capture {
    hold_id: HoldId,
    amount: Money,
    payee: UserId,
}

impl<U: UnitOfWork> App<U> {
    /// Reserves funds of the caller's wallet until they are captured or released.
    pub async fn place_hold(&self, caller: &Caller, amount: Money, reference: &str) -> Result<Hold, HoldUseError> {
        let now = self.clock.now();
        let terms = HoldTerms {
            reference: reference.to_owned(),
            placed_at: now,
            expires_at: now + self.settings.hold_ttl,
        };
        let (hold_id, terms) = (self.next_id(), &terms);
        transact(&self.store, |tx| work(place(tx, caller.user_id, hold_id, amount, terms))).await
    }

    /// Releases a pending hold of the caller's.
    pub async fn release_hold(&self, caller: &Caller, hold_id: HoldId) -> Result<Hold, HoldUseError> {
        let (user, now) = (caller.user_id, self.clock.now());
        transact(&self.store, |tx| {
            work(async move {
                let (mut wallets, hold) = lock_own_hold(tx, user, hold_id).await?;
                let hold = hold.release(&mut wallets[0], now)?;
                tx.update_wallets(&wallets).await?;
                tx.update_hold(&hold).await?;
                Ok(hold)
            })
        })
        .await
    }

    /// Captures all or part of a pending hold of the caller's, paying `payee`; the rest is released.
    pub async fn capture_hold(&self, caller: &Caller, hold_id: HoldId, amount: Money, payee: UserId) -> Result<Hold, HoldUseError> {
        let (ids, now) = (self.ids.as_ref(), self.clock.now());
        let capture = Capture { hold_id, amount, payee };
        let capture = &capture;
        transact(&self.store, |tx| work(capture_own(tx, ids, caller.user_id, capture, now))).await
    }

    /// The job's part for holds: releases pending holds past their expiry (those of active calls
    /// end with their call). Returns how many were released.
    pub async fn release_expired_holds(&self, batch: usize) -> Result<usize, HoldUseError> {
        let now = self.clock.now();
        let expired = transact(&self.store, |tx| work(tx.find_expired_holds(now, batch))).await?;
        let mut released = 0;
        for hold in expired {
            if self.expire_hold(hold.wallet_id, hold.id).await? {
                released += 1;
            }
        }
        Ok(released)
    }

    /// Expires one hold if it is still pending and past its expiry, under its wallet's lock.
    async fn expire_hold(&self, wallet_id: WalletId, hold_id: HoldId) -> Result<bool, HoldUseError> {
        let now = self.clock.now();
        transact(&self.store, |tx| {
            work(async move {
                let mut wallets = tx.lock_wallets(&[wallet_id]).await?;
                let hold = tx.lock_hold(hold_id).await?.ok_or(HoldUseError::NotFound)?;
                if !hold.is_expired_at(now) {
                    return Ok(false);
                }
                let hold = hold.expire(&mut wallets[0], now)?;
                tx.update_wallets(&wallets).await?;
                tx.update_hold(&hold).await?;
                tracing::info!(hold_id = %hold.id, amount = %hold.amount, "an expired hold was released");
                Ok(true)
            })
        })
        .await
    }
}

async fn place<Tx>(tx: &mut Tx, user: UserId, hold_id: HoldId, amount: Money, terms: &HoldTerms) -> Result<Hold, HoldUseError>
where
    Tx: WalletRepository + HoldRepository + Send,
{
    let wallet = tx
        .find_user_wallet(user, amount.currency())
        .await?
        .ok_or(HoldUseError::NoWallet(amount.currency()))?;
    let mut wallets = tx.lock_wallets(&[wallet.id()]).await?;
    let hold = Hold::place(hold_id, &mut wallets[0], amount, terms.clone())?;
    tx.update_wallets(&wallets).await?;
    tx.insert_hold(&hold).await?;
    Ok(hold)
}

async fn capture_own<Tx>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    user: UserId,
    capture: &Capture,
    now: OffsetDateTime,
) -> Result<Hold, HoldUseError>
where
    Tx: UserRepository + WalletRepository + LedgerRepository + HoldRepository + Send,
{
    let Capture { hold_id, amount, payee } = *capture;
    tx.find_user(payee).await?.ok_or(HoldUseError::NotFound)?;
    let payee_wallet = tx.ensure_user_wallet(payee, amount.currency(), next_id(ids), now).await?;
    let (hold_wallet, hold) = find_own_hold(tx, user, hold_id).await?;
    let mut wallets = tx.lock_wallets(&[hold_wallet, payee_wallet]).await?;
    let hold = tx.lock_hold(hold.id).await?.ok_or(HoldUseError::NotFound)?;
    let index = wallets.iter().position(|w| w.id() == hold_wallet).ok_or(HoldUseError::NotFound)?;
    let hold = hold.capture(&mut wallets[index], amount, now)?;
    let entries = vec![Entry::debit(hold_wallet, amount)?, Entry::credit(payee_wallet, amount)];
    let journal = JournalTransaction::new(next_id(ids), TransactionKind::Transfer, format!("hold:{}", hold.id), entries, now)
        .map_err(HoldUseError::Ledger)?;
    post_locked(tx, &journal, &mut wallets).await?;
    tx.update_hold(&hold).await?;
    Ok(hold)
}

/// The caller's hold (unlocked) and the wallet it is on.
async fn find_own_hold<Tx>(tx: &mut Tx, user: UserId, hold_id: HoldId) -> Result<(WalletId, Hold), HoldUseError>
where
    Tx: HoldRepository + WalletRepository + Send,
{
    let hold = tx.find_hold(hold_id).await?.ok_or(HoldUseError::NotFound)?;
    let wallet = tx.find_user_wallet(user, hold.amount.currency()).await?;
    match wallet {
        Some(wallet) if wallet.id() == hold.wallet_id => Ok((wallet.id(), hold)),
        _ => Err(HoldUseError::NotFound),
    }
}

/// The caller's wallet and hold, both locked (wallet first, as the lock order says).
async fn lock_own_hold<Tx>(tx: &mut Tx, user: UserId, hold_id: HoldId) -> Result<(Vec<Wallet>, Hold), HoldUseError>
where
    Tx: HoldRepository + WalletRepository + Send,
{
    let (wallet_id, _) = find_own_hold(tx, user, hold_id).await?;
    let wallets = tx.lock_wallets(&[wallet_id]).await?;
    let hold = tx.lock_hold(hold_id).await?.ok_or(HoldUseError::NotFound)?;
    Ok((wallets, hold))
}
