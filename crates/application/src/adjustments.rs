//! Admin adjustments: a credit or debit of a user's wallet against the adjustments account.

use domain::events::DomainEvent;
use domain::ids::{TransactionId, UserId};
use domain::ledger::{Entry, JournalTransaction, LedgerError, TransactionKind};
use domain::money::{Currency, Money};
use domain::user::{AdminAction, AdminActionKind};
use domain::wallet::SystemAccount;
use time::OffsetDateTime;

use crate::caller::Caller;
use crate::context::App;
use crate::effects::{balance_after, publish, system_account_has_room};
use crate::idempotency::{IdempotencyError, Idempotent, Key};
use crate::ledger::post;
use crate::ports::store::{
    AdminAuditRepository, EventOutbox, IdempotencyRepository, LedgerRepository, StoreError, UnitOfWork, UserRepository, WalletRepository,
};
use crate::ports::system::{IdGenerator, next_id};
use crate::transact::{transact, work};
use crate::{from_posting_error, keyed, retryable};

/// An admin's correction of a user's wallet, against the adjustments account.
#[derive(Debug, Clone)]
pub struct AdjustmentRequest {
    /// The user whose wallet (in the amount's currency) is corrected.
    pub user_id: UserId,
    /// Positive credits the wallet, negative debits it.
    pub amount: Money,
    /// Why, recorded in the audit trail: 1 to 500 characters.
    pub reason: String,
}

/// A posted adjustment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adjustment {
    /// The journal transaction of the correction.
    pub transaction_id: TransactionId,
    /// The user whose wallet was corrected.
    pub user_id: UserId,
    /// Signed: positive credited the wallet, negative debited it.
    pub amount: Money,
    /// The wallet's balance after it.
    pub balance_after: Money,
    /// The admin's reason.
    pub reason: String,
    /// When it was posted.
    pub created_at: OffsetDateTime,
}

/// Why an adjustment fails.
#[derive(Debug, thiserror::Error)]
pub enum AdjustmentError {
    /// The caller may not do this to this resource.
    #[error("only admins may adjust wallets")]
    Forbidden,
    /// The user does not exist.
    #[error("the user does not exist")]
    UserNotFound,
    /// The reason is empty or longer than 500 characters.
    #[error("the reason must have 1 to 500 characters")]
    Reason,
    /// An adjustment of zero.
    #[error("an adjustment must not be zero")]
    Zero,
    /// The adjustments account would pass the system bound ([`domain::ledger::SYSTEM_BALANCE_MAX_MINOR`]).
    #[error("the adjustments account has reached the platform's limit in {0}")]
    PlatformLimit(Currency),
    /// A debit would take the wallet below what it holds.
    #[error("the wallet cannot go below zero: {available} available")]
    InsufficientFunds {
        /// What the wallet could give: its balance less its holds.
        available: Money,
    },
    /// The ledger refused the journal transaction (it would overdraw a wallet, or it does not balance).
    #[error(transparent)]
    Ledger(LedgerError),
    /// The idempotency key is held by a request still running, was used for a different request, or
    /// was completed by another request meanwhile (replay its response).
    #[error(transparent)]
    Idempotency(IdempotencyError),
    /// Storage failed: an outage, a timeout, a conflict that outlasted the retries, or a commit whose
    /// outcome is unknown (`StoreError::OutcomeUnknown`).
    #[error(transparent)]
    Store(#[from] StoreError),
}

keyed!(AdjustmentError);
retryable!(AdjustmentError);
from_posting_error!(AdjustmentError, InsufficientFunds);

impl<U: UnitOfWork> App<U> {
    /// An admin's correction: a credit or debit of a user's wallet against the adjustments account.
    #[tracing::instrument(name = "adjust_wallet", skip_all, fields(user_id = %caller.user_id))]
    pub async fn adjust_wallet(
        &self,
        caller: &Caller,
        request: AdjustmentRequest,
        idempotent: Option<Idempotent<Adjustment>>,
    ) -> Result<Adjustment, AdjustmentError> {
        if !caller.is_admin() {
            return Err(AdjustmentError::Forbidden);
        }
        let reason = request.reason.trim().to_owned();
        if reason.is_empty() || reason.chars().count() > 500 {
            return Err(AdjustmentError::Reason);
        }
        if request.amount.is_zero() {
            return Err(AdjustmentError::Zero);
        }
        let request = AdjustmentRequest { reason, ..request };
        let (request, key, admin) = (&request, self.key(idempotent.as_ref()), caller.user_id);
        let (ids, now) = (self.ids.as_ref(), self.clock.now());
        transact(&self.store, |tx| work(post_adjustment(tx, ids, admin, request, key, now))).await
    }
}

async fn post_adjustment<Tx>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    admin: UserId,
    request: &AdjustmentRequest,
    key: Key<'_, Adjustment>,
    now: OffsetDateTime,
) -> Result<Adjustment, AdjustmentError>
where
    Tx: IdempotencyRepository + UserRepository + AdminAuditRepository + WalletRepository + LedgerRepository + EventOutbox + Send,
{
    key.claim(tx, now).await?;
    let (user_id, amount, currency) = (request.user_id, request.amount, request.amount.currency());
    tx.find_user(user_id).await?.ok_or(AdjustmentError::UserNotFound)?;
    let wallet = tx.ensure_user_wallet(user_id, currency, next_id(ids), now).await?;
    let counter = amount.checked_neg().map_err(|_| AdjustmentError::Zero)?;
    if !system_account_has_room(tx, &SystemAccount::Adjustments, counter).await? {
        return Err(AdjustmentError::PlatformLimit(currency));
    }
    let system = tx
        .ensure_system_wallet(&SystemAccount::Adjustments, currency, next_id(ids), now)
        .await?;
    let transaction_id: TransactionId = next_id(ids);
    let entries = vec![Entry::credit(wallet, amount), Entry::credit(system, counter)];
    let reference = format!("adjustment: {}", request.reason);
    let journal =
        JournalTransaction::new(transaction_id, TransactionKind::Adjustment, reference, entries, now).map_err(AdjustmentError::Ledger)?;
    let postings = post(tx, &journal).await?;
    let posted = DomainEvent::AdjustmentPosted {
        transaction_id,
        user_id,
        amount,
    };
    publish(tx, ids, posted, now).await?;
    // Who made it is the audit trail's to keep, not the journal's, which the user sees.
    let audited = AdminAction {
        id: next_id(ids),
        admin_id: admin,
        kind: AdminActionKind::WalletAdjusted,
        subject: format!("user:{user_id}"),
        reason: request.reason.clone(),
        details: format!("{} {} in transaction {transaction_id}", amount.to_major_string(), currency.code()),
        at: now,
    };
    tx.record_admin_action(&audited).await?;
    let adjustment = Adjustment {
        transaction_id,
        user_id,
        amount,
        balance_after: balance_after(&postings, wallet, currency),
        reason: request.reason.clone(),
        created_at: now,
    };
    key.complete(tx, &adjustment, now).await?;
    Ok(adjustment)
}
