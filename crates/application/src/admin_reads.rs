//! What admins read: every payment, refund, product's stock, wallet, journal transaction,
//! transfer, call and provider webhook received, each listing filtered and paginated newest
//! first, and each item by id. Only admins read them; anyone else is `Forbidden`, even about
//! their own.

use std::collections::HashMap;

use domain::call::CallSession;
use domain::catalog::{Product, Stock};
use domain::ids::{CallId, PaymentId, ReceivedWebhookId, RefundId, TransactionId, TransferId, UserId, WalletId};
use domain::payment::{Payment, Refund};
use domain::user::User;
use domain::wallet::{Transfer, Wallet};

use crate::caller::Caller;
use crate::context::App;
use crate::pagination::{Page, PageRequest};
use crate::ports::store::{
    AdminPaymentFilter, AdminRefundFilter, CallFilter, CallRepository, InventoryFilter, JournalFilter, JournalRecord, LedgerRepository,
    PaymentRepository, ProductRepository, ReceivedWebhook, ReceivedWebhookFilter, RefundRepository, StoreError, TransferFilter,
    TransferRepository, UnitOfWork, UserFilter, UserRepository, WalletFilter, WalletRepository, WebhookInbox,
};
use crate::retryable;
use crate::transact::{transact, transact_lagging, work};

/// Why an admin's read fails.
#[derive(Debug, thiserror::Error)]
pub enum AdminReadError {
    /// The caller may not do this to this resource.
    #[error("only admins read this")]
    Forbidden,
    /// What was looked up by id does not exist: the name says what it is (`payment`, ...).
    #[error("the {0} does not exist")]
    NotFound(&'static str),
    /// Storage failed: an outage, a timeout, a conflict that outlasted the retries, or a commit whose
    /// outcome is unknown (`StoreError::OutcomeUnknown`).
    #[error(transparent)]
    Store(#[from] StoreError),
}

retryable!(AdminReadError);

fn admin_only(caller: &Caller) -> Result<(), AdminReadError> {
    if caller.is_admin() {
        Ok(())
    } else {
        Err(AdminReadError::Forbidden)
    }
}

impl<U: UnitOfWork> App<U> {
    /// Every payer's card payments (order checkouts and top-ups) that `filter` keeps.
    pub async fn admin_payments(
        &self,
        caller: &Caller,
        filter: &AdminPaymentFilter,
        page: &PageRequest,
    ) -> Result<Page<Payment>, AdminReadError> {
        admin_only(caller)?;
        Ok(transact_lagging(&self.store, |tx| work(tx.list_payments(filter, page))).await?)
    }

    /// Any payment, for an admin.
    ///
    /// # Errors
    /// [`AdminReadError::NotFound`] if it does not exist; [`AdminReadError::Forbidden`] for anyone but an admin.
    pub async fn admin_payment(&self, caller: &Caller, id: PaymentId) -> Result<Payment, AdminReadError> {
        admin_only(caller)?;
        transact(&self.store, |tx| work(tx.find_payment(id)))
            .await?
            .ok_or(AdminReadError::NotFound("payment"))
    }

    /// Every refund (through a provider or to a wallet) that `filter` keeps.
    pub async fn admin_refunds(
        &self,
        caller: &Caller,
        filter: &AdminRefundFilter,
        page: &PageRequest,
    ) -> Result<Page<Refund>, AdminReadError> {
        admin_only(caller)?;
        Ok(transact_lagging(&self.store, |tx| work(tx.list_refunds(filter, page))).await?)
    }

    /// Any refund, for an admin.
    ///
    /// # Errors
    /// [`AdminReadError::NotFound`] if it does not exist; [`AdminReadError::Forbidden`] for anyone but an admin.
    pub async fn admin_refund(&self, caller: &Caller, id: RefundId) -> Result<Refund, AdminReadError> {
        admin_only(caller)?;
        transact(&self.store, |tx| work(tx.find_refund(id)))
            .await?
            .ok_or(AdminReadError::NotFound("refund"))
    }

    /// Every product's stock, available and reserved, archived products included.
    pub async fn admin_inventory(
        &self,
        caller: &Caller,
        filter: InventoryFilter,
        page: &PageRequest,
    ) -> Result<Page<(Product, Stock)>, AdminReadError> {
        admin_only(caller)?;
        Ok(transact_lagging(&self.store, |tx| work(tx.list_inventory(filter, page))).await?)
    }

    /// Every wallet (users' and system accounts') that `filter` keeps.
    pub async fn admin_wallets(&self, caller: &Caller, filter: WalletFilter, page: &PageRequest) -> Result<Page<Wallet>, AdminReadError> {
        admin_only(caller)?;
        Ok(transact_lagging(&self.store, |tx| work(tx.list_wallets(filter, page))).await?)
    }

    /// Any wallet, system accounts included, for an admin.
    ///
    /// # Errors
    /// [`AdminReadError::NotFound`] if it does not exist; [`AdminReadError::Forbidden`] for anyone but an admin.
    pub async fn admin_wallet(&self, caller: &Caller, id: WalletId) -> Result<Wallet, AdminReadError> {
        admin_only(caller)?;
        transact(&self.store, |tx| work(tx.find_wallet(id)))
            .await?
            .ok_or(AdminReadError::NotFound("wallet"))
    }

    /// Every user that `filter` keeps, each with their wallets: the page's wallets are read in
    /// one query, not one per user.
    pub async fn admin_users_with_wallets(
        &self,
        caller: &Caller,
        filter: &UserFilter,
        page: &PageRequest,
    ) -> Result<Page<(User, Vec<Wallet>)>, AdminReadError> {
        admin_only(caller)?;
        transact_lagging(&self.store, |tx| work(users_with_wallets(tx, filter, page))).await
    }

    /// Any user, with their wallets.
    pub async fn admin_user(&self, caller: &Caller, id: UserId) -> Result<(User, Vec<Wallet>), AdminReadError> {
        admin_only(caller)?;
        transact(&self.store, |tx| {
            work(async move {
                let Some(user) = tx.find_user(id).await? else {
                    return Err(AdminReadError::NotFound("user"));
                };
                let wallets = tx.list_wallets_of_users(&[id]).await?;
                Ok((user, wallets))
            })
        })
        .await
    }

    /// Every journal transaction that `filter` keeps, each with all its postings.
    pub async fn admin_journal(
        &self,
        caller: &Caller,
        filter: JournalFilter,
        page: &PageRequest,
    ) -> Result<Page<JournalRecord>, AdminReadError> {
        admin_only(caller)?;
        Ok(transact_lagging(&self.store, |tx| work(tx.list_journal(filter, page))).await?)
    }

    /// One journal transaction with its postings, for an admin.
    ///
    /// # Errors
    /// [`AdminReadError::NotFound`] if it does not exist; [`AdminReadError::Forbidden`] for anyone but an admin.
    pub async fn admin_journal_transaction(&self, caller: &Caller, id: TransactionId) -> Result<JournalRecord, AdminReadError> {
        admin_only(caller)?;
        transact(&self.store, |tx| work(tx.find_journal(id)))
            .await?
            .ok_or(AdminReadError::NotFound("journal transaction"))
    }

    /// Every transfer that `filter` keeps.
    pub async fn admin_transfers(
        &self,
        caller: &Caller,
        filter: TransferFilter,
        page: &PageRequest,
    ) -> Result<Page<Transfer>, AdminReadError> {
        admin_only(caller)?;
        Ok(transact_lagging(&self.store, |tx| work(tx.list_transfers(filter, page))).await?)
    }

    /// Any transfer, for an admin.
    ///
    /// # Errors
    /// [`AdminReadError::NotFound`] if it does not exist; [`AdminReadError::Forbidden`] for anyone but an admin.
    pub async fn admin_transfer(&self, caller: &Caller, id: TransferId) -> Result<Transfer, AdminReadError> {
        admin_only(caller)?;
        transact(&self.store, |tx| work(tx.find_transfer(id)))
            .await?
            .ok_or(AdminReadError::NotFound("transfer"))
    }

    /// Every call that `filter` keeps, newest first by start.
    pub async fn admin_calls(&self, caller: &Caller, filter: CallFilter, page: &PageRequest) -> Result<Page<CallSession>, AdminReadError> {
        admin_only(caller)?;
        Ok(transact_lagging(&self.store, |tx| work(tx.list_every_call(filter, page))).await?)
    }

    /// Any call, for an admin.
    ///
    /// # Errors
    /// [`AdminReadError::NotFound`] if it does not exist; [`AdminReadError::Forbidden`] for anyone but an admin.
    pub async fn admin_call(&self, caller: &Caller, id: CallId) -> Result<CallSession, AdminReadError> {
        admin_only(caller)?;
        transact(&self.store, |tx| work(tx.find_call(id)))
            .await?
            .ok_or(AdminReadError::NotFound("call"))
    }

    /// Every provider event the webhook inbox received that `filter` keeps, each with what
    /// applying it did (a redelivery is not listed again: the inbox keeps the first).
    pub async fn admin_webhook_events(
        &self,
        caller: &Caller,
        filter: &ReceivedWebhookFilter,
        page: &PageRequest,
    ) -> Result<Page<ReceivedWebhook>, AdminReadError> {
        admin_only(caller)?;
        Ok(transact_lagging(&self.store, |tx| work(tx.list_webhook_events(filter, page))).await?)
    }

    /// One received provider event, for an admin.
    ///
    /// # Errors
    /// [`AdminReadError::NotFound`] if it does not exist; [`AdminReadError::Forbidden`] for anyone but an admin.
    pub async fn admin_webhook_event(&self, caller: &Caller, id: ReceivedWebhookId) -> Result<ReceivedWebhook, AdminReadError> {
        admin_only(caller)?;
        transact(&self.store, |tx| work(tx.find_webhook_event(id)))
            .await?
            .ok_or(AdminReadError::NotFound("received webhook"))
    }
}

async fn users_with_wallets<Tx: UserRepository + WalletRepository + Send>(
    tx: &mut Tx,
    filter: &UserFilter,
    page: &PageRequest,
) -> Result<Page<(User, Vec<Wallet>)>, AdminReadError> {
    let users = tx.list_users(filter, page).await?;
    let ids: Vec<UserId> = users.items.iter().map(|user| user.id).collect();
    let mut by_owner: HashMap<UserId, Vec<Wallet>> = HashMap::new();
    for wallet in tx.list_wallets_of_users(&ids).await? {
        if let Some(owner) = wallet.user_id() {
            by_owner.entry(owner).or_default().push(wallet);
        }
    }
    Ok(users.map(|user| {
        let wallets = by_owner.remove(&user.id).unwrap_or_default();
        (user, wallets)
    }))
}
