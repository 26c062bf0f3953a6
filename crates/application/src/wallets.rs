//! Wallets as their owners see them: balances and history. What moves money in and out of them
//! lives beside: `top_ups`, `withdrawals`, `transfers`, `adjustments`, `holds`.

use domain::money::Currency;
use domain::wallet::Wallet;

use crate::caller::Caller;
use crate::context::App;
use crate::pagination::{Cursor, Page, PageRequest};
use crate::ports::store::{LedgerRepository, PostingRecord, StoreError, UnitOfWork, WalletRepository};
use crate::retryable;
use crate::transact::{transact, transact_lagging, work};

/// Why reading one's wallets fails.
#[derive(Debug, thiserror::Error)]
pub enum WalletQueryError {
    /// The caller has no wallet in this currency.
    #[error("you have no {0} wallet")]
    NotFound(Currency),
    /// Storage failed: an outage, a timeout, a conflict that outlasted the retries, or a commit whose
    /// outcome is unknown (`StoreError::OutcomeUnknown`).
    #[error(transparent)]
    Store(#[from] StoreError),
}

retryable!(WalletQueryError);

impl<U: UnitOfWork> App<U> {
    /// The caller's wallets, one per currency.
    pub async fn list_wallets(&self, caller: &Caller) -> Result<Vec<Wallet>, WalletQueryError> {
        Ok(transact(&self.store, |tx| work(tx.list_user_wallets(caller.user_id))).await?)
    }

    /// The caller's wallet in `currency`.
    ///
    /// # Errors
    /// [`WalletQueryError::NotFound`] if they have none in it.
    pub async fn wallet(&self, caller: &Caller, currency: Currency) -> Result<Wallet, WalletQueryError> {
        transact(&self.store, |tx| work(tx.find_user_wallet(caller.user_id, currency)))
            .await?
            .ok_or(WalletQueryError::NotFound(currency))
    }

    /// The wallet's postings, newest first.
    pub async fn wallet_history(
        &self,
        caller: &Caller,
        currency: Currency,
        page: &PageRequest,
    ) -> Result<Page<PostingRecord>, WalletQueryError> {
        let (user, limit) = (caller.user_id, page.limit);
        let before = page.after.and_then(|cursor| cursor.sequence());
        let rows = transact_lagging(&self.store, |tx| {
            work(async move {
                let wallet = tx
                    .find_user_wallet(user, currency)
                    .await?
                    .ok_or(WalletQueryError::NotFound(currency))?;
                Ok::<_, WalletQueryError>(tx.wallet_history(wallet.id(), before, limit + 1).await?)
            })
        })
        .await?;
        Ok(Page::from_rows(rows, limit, |record| Cursor::Sequence(record.sequence)))
    }
}
