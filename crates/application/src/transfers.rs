//! Person-to-person transfers between wallets of one currency.

use domain::events::DomainEvent;
use domain::ids::{TransferId, UserId, WalletId};
use domain::ledger::{Entry, JournalTransaction, LedgerError, TransactionKind};
use domain::money::Money;
use domain::user::{Email, User};
use domain::wallet::{Transfer, Wallet};
use time::OffsetDateTime;

use crate::caller::Caller;
use crate::context::App;
use crate::effects::publish;
use crate::idempotency::{IdempotencyError, Idempotent, Key};
use crate::ledger::post_locked;
use crate::ports::store::{
    Contention, EventOutbox, IdempotencyRepository, LedgerRepository, StoreError, TransferRepository, UnitOfWork, UserRepository,
    WalletRepository,
};
use crate::ports::system::{IdGenerator, next_id};
use crate::transact::{transact, transact_grouped, work};
use crate::{from_posting_error, keyed, retryable};

/// Who receives a transfer, as the sender names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    /// By user id.
    Id(UserId),
    /// By e-mail address, as the sender knows them.
    Email(String),
}

/// A person-to-person transfer.
#[derive(Debug, Clone)]
pub struct TransferRequest {
    /// The receiver.
    pub to: Recipient,
    /// How much, in the currency of the sender's wallet to debit.
    pub amount: Money,
    /// A note for the receiver, at most 280 characters.
    pub note: String,
}

/// Why a transfer fails.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// Nobody has that id or address.
    #[error("the recipient does not exist")]
    RecipientNotFound,
    /// The sender named themselves.
    #[error("you cannot transfer money to yourself")]
    SelfTransfer,
    /// The note is longer than 280 characters.
    #[error("the note must have at most 280 characters")]
    Note,
    /// A transfer of nothing or of less than nothing: the sender would take from the receiver.
    #[error("the amount must be positive")]
    NonPositiveAmount,
    /// The sender's available balance is less than the amount.
    #[error("insufficient funds: {available} available")]
    InsufficientFunds {
        /// What the sender's wallet could spend.
        available: Money,
    },
    /// The transfer does not exist, or the caller is not a party to it.
    #[error("the transfer does not exist")]
    NotFound,
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

keyed!(TransferError);
retryable!(TransferError);
from_posting_error!(TransferError, InsufficientFunds);

/// A transfer checked and ready to post: who sends what to whom.
struct Checked<'a> {
    sender: UserId,
    to: &'a Recipient,
    email: Option<&'a Email>,
    amount: Money,
    note: &'a str,
}

impl<U: UnitOfWork> App<U> {
    /// Moves money from the caller's wallet to another user's wallet in the same currency.
    #[tracing::instrument(name = "transfer", skip_all, fields(user_id = %caller.user_id))]
    pub async fn transfer(
        &self,
        caller: &Caller,
        request: TransferRequest,
        idempotent: Option<Idempotent<Transfer>>,
    ) -> Result<Transfer, TransferError> {
        if !request.amount.is_positive() {
            return Err(TransferError::NonPositiveAmount);
        }
        let note = request.note.trim();
        if note.chars().count() > 280 {
            return Err(TransferError::Note);
        }
        // Transfers to the same recipient queue for the same wallet row: they may share a commit.
        let (email, recipient) = match &request.to {
            Recipient::Email(text) => {
                let email = Email::parse(text).map_err(|_| TransferError::RecipientNotFound)?;
                let recipient = Contention::recipient_email(&email);
                (Some(email), recipient)
            }
            Recipient::Id(id) => (None, Contention::recipient_id(*id)),
        };
        let checked = Checked {
            sender: caller.user_id,
            to: &request.to,
            email: email.as_ref(),
            amount: request.amount,
            note,
        };
        let (checked, key) = (&checked, self.key(idempotent.as_ref()));
        let (ids, now) = (self.ids.as_ref(), self.clock.now());
        transact_grouped(&self.store, &recipient, |tx| work(post_transfer(tx, ids, checked, key, now))).await
    }

    /// A transfer, for its sender, its receiver or an admin.
    pub async fn transfer_details(&self, caller: &Caller, id: TransferId) -> Result<Transfer, TransferError> {
        transact(&self.store, |tx| work(tx.find_transfer(id)))
            .await?
            .filter(|t| t.from_user_id == caller.user_id || t.to_user_id == caller.user_id || caller.is_admin())
            .ok_or(TransferError::NotFound)
    }
}

async fn find_recipient<Tx: UserRepository + Send>(tx: &mut Tx, checked: &Checked<'_>) -> Result<User, TransferError> {
    let recipient = match (checked.to, checked.email) {
        (Recipient::Id(id), _) => tx.find_user(*id).await?,
        (Recipient::Email(_), Some(email)) => tx.find_user_by_email(email).await?,
        (Recipient::Email(_), None) => None,
    };
    let recipient = recipient.ok_or(TransferError::RecipientNotFound)?;
    if recipient.id == checked.sender {
        return Err(TransferError::SelfTransfer);
    }
    Ok(recipient)
}

async fn post_transfer<Tx>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    checked: &Checked<'_>,
    key: Key<'_, Transfer>,
    now: OffsetDateTime,
) -> Result<Transfer, TransferError>
where
    Tx: IdempotencyRepository + UserRepository + WalletRepository + LedgerRepository + TransferRepository + EventOutbox + Send,
{
    key.claim(tx, now).await?;
    let (sender, amount) = (checked.sender, checked.amount);
    let recipient = find_recipient(tx, checked).await?.id;
    // Both wallets locked in one go, in id order; a sender without a wallet in this currency gets
    // an empty one, which the refused debit then rolls back.
    let owners: [(UserId, WalletId); 2] = [(sender, next_id(ids)), (recipient, next_id(ids))];
    let mut wallets = tx.lock_user_wallets(&owners, amount.currency(), now).await?;
    let wallet_of = |user: UserId| wallets.iter().find(|w| w.user_id() == Some(user)).map(Wallet::id);
    let (Some(from), Some(to)) = (wallet_of(sender), wallet_of(recipient)) else {
        return Err(StoreError::Corrupt("a transfer's wallets were not locked".into()).into());
    };
    let debit = Entry::debit(from, amount).map_err(|e| {
        TransferError::Ledger(LedgerError::Wallet {
            wallet_id: from,
            source: e.into(),
        })
    })?;
    let (transfer_id, transaction_id): (TransferId, _) = (next_id(ids), next_id(ids));
    let entries = vec![debit, Entry::credit(to, amount)];
    let journal = JournalTransaction::new(
        transaction_id,
        TransactionKind::Transfer,
        format!("transfer:{transfer_id}"),
        entries,
        now,
    )
    .map_err(TransferError::Ledger)?;
    post_locked(tx, &journal, &mut wallets).await?;
    let transfer = Transfer {
        id: transfer_id,
        from_user_id: sender,
        to_user_id: recipient,
        amount,
        transaction_id,
        note: checked.note.to_owned(),
        created_at: now,
    };
    tx.insert_transfer(&transfer).await?;
    let completed = DomainEvent::TransferCompleted {
        transfer_id,
        from: sender,
        to: recipient,
        amount,
    };
    publish(tx, ids, completed, now).await?;
    key.complete(tx, &transfer, now).await?;
    Ok(transfer)
}
