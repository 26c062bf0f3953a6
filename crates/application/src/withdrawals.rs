//! Withdrawals: money paid out of a wallet to an outside destination, through the payouts account.

use domain::events::DomainEvent;
use domain::ids::WithdrawalId;
use domain::ledger::{Entry, JournalTransaction, LedgerError, TransactionKind};
use domain::money::Money;
use domain::wallet::{SystemAccount, Withdrawal};
use time::OffsetDateTime;

use crate::caller::Caller;
use crate::context::App;
use crate::effects::publish;
use crate::idempotency::{IdempotencyError, Idempotent, Key};
use crate::ledger::post;
use crate::pagination::{Page, PageRequest};
use crate::ports::store::{
    EventOutbox, IdempotencyRepository, LedgerRepository, StoreError, TransferRepository, UnitOfWork, WalletRepository,
};
use crate::ports::system::{IdGenerator, next_id};
use crate::transact::{transact, work};
use crate::{from_posting_error, keyed, retryable};

#[derive(Debug, Clone)]
pub struct WithdrawalRequest {
    pub amount: Money,
    pub destination: String,
}

#[derive(Debug, thiserror::Error)]
pub enum WithdrawalError {
    #[error("the destination must have 1 to 200 characters")]
    Destination,
    #[error("insufficient funds: {available} available")]
    InsufficientFunds { available: Money },
    #[error("the withdrawal does not exist")]
    NotFound,
    #[error(transparent)]
    Ledger(LedgerError),
    #[error(transparent)]
    Idempotency(IdempotencyError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

keyed!(WithdrawalError);
retryable!(WithdrawalError);
from_posting_error!(WithdrawalError, InsufficientFunds);

impl<U: UnitOfWork> App<U> {
    /// Pays money out of the wallet to an outside destination.
    pub async fn withdraw(
        &self,
        caller: &Caller,
        request: WithdrawalRequest,
        idempotent: Option<Idempotent<Withdrawal>>,
    ) -> Result<Withdrawal, WithdrawalError> {
        let destination = request.destination.trim().to_owned();
        if destination.is_empty() || destination.chars().count() > 200 {
            return Err(WithdrawalError::Destination);
        }
        let now = self.clock.now();
        let withdrawal = Withdrawal {
            id: self.next_id(),
            user_id: caller.user_id,
            amount: request.amount,
            destination,
            transaction_id: self.next_id(),
            created_at: now,
        };
        let (withdrawal_ref, key, ids) = (&withdrawal, self.key(idempotent.as_ref()), self.ids.as_ref());
        transact(&self.store, |tx| work(pay_out(tx, ids, withdrawal_ref, key, now))).await?;
        Ok(withdrawal)
    }

    /// The caller's own withdrawals, newest first.
    pub async fn my_withdrawals(&self, caller: &Caller, page: &PageRequest) -> Result<Page<Withdrawal>, WithdrawalError> {
        let user = caller.user_id;
        Ok(transact(&self.store, |tx| work(tx.list_user_withdrawals(user, page))).await?)
    }

    pub async fn withdrawal(&self, caller: &Caller, id: WithdrawalId) -> Result<Withdrawal, WithdrawalError> {
        transact(&self.store, |tx| work(tx.find_withdrawal(id)))
            .await?
            .filter(|w| w.user_id == caller.user_id || caller.is_admin())
            .ok_or(WithdrawalError::NotFound)
    }
}

async fn pay_out<Tx>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    withdrawal: &Withdrawal,
    key: Key<'_, Withdrawal>,
    now: OffsetDateTime,
) -> Result<(), WithdrawalError>
where
    Tx: IdempotencyRepository + WalletRepository + LedgerRepository + TransferRepository + EventOutbox + Send,
{
    key.claim(tx, now).await?;
    let (amount, currency) = (withdrawal.amount, withdrawal.amount.currency());
    let wallet = tx
        .find_user_wallet(withdrawal.user_id, currency)
        .await?
        .ok_or(WithdrawalError::InsufficientFunds {
            available: Money::zero(currency),
        })?;
    let payouts = tx
        .ensure_system_wallet(&SystemAccount::Payouts, currency, next_id(ids), now)
        .await?;
    let debit = Entry::debit(wallet.id(), amount).map_err(|e| {
        WithdrawalError::Ledger(LedgerError::Wallet {
            wallet_id: wallet.id(),
            source: e.into(),
        })
    })?;
    let reference = format!("withdrawal:{}", withdrawal.id);
    let entries = vec![debit, Entry::credit(payouts, amount)];
    let journal = JournalTransaction::new(withdrawal.transaction_id, TransactionKind::Withdrawal, reference, entries, now)
        .map_err(WithdrawalError::Ledger)?;
    post(tx, &journal).await?;
    tx.insert_withdrawal(withdrawal).await?;
    let completed = DomainEvent::WithdrawalCompleted {
        withdrawal_id: withdrawal.id,
        user_id: withdrawal.user_id,
        amount,
    };
    publish(tx, ids, completed, now).await?;
    key.complete(tx, withdrawal, now).await?;
    Ok(())
}
