//! Wallets: balances, history, card top-ups, withdrawals, person-to-person transfers, admin
//! adjustments and holds.

use domain::events::{DomainEvent, OutboxEvent};
use domain::ids::{HoldId, TransferId, UserId, WalletId, WithdrawalId};
use domain::ledger::{Entry, JournalTransaction, LedgerError, TransactionKind};
use domain::money::{Currency, Money, MoneyError};
use domain::payment::{Payment, PaymentPurpose, PaymentStatus, ProviderName};
use domain::user::Email;
use domain::wallet::{Hold, HoldError, HoldTerms, SystemAccount, Transfer, Wallet, Withdrawal};
use time::OffsetDateTime;

use crate::auth::Caller;
use crate::context::App;
use crate::idempotency::{self, Claim, IdempotencyError, Idempotent, RecoveryPoint};
use crate::ledger::{PostingError, post, post_locked};
use crate::pagination::{Cursor, Page, PageRequest};
use crate::ports::gateway::{CheckoutLine, CheckoutRequest, GatewayError};
use crate::ports::store::{
    EventOutbox, HoldRepository, LedgerRepository, PaymentLookup, PaymentRepository, PostingRecord, StoreError, TransferRepository,
    UnitOfWork, UserRepository, WalletRepository,
};
use crate::transact::transact;
use crate::{keyed, retryable};

#[derive(Debug, thiserror::Error)]
pub enum WalletQueryError {
    #[error("you have no {0} wallet")]
    NotFound(Currency),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum TopUpError {
    #[error("no card gateway takes {0}")]
    NoGateway(Currency),
    #[error("the platform takes no more {0} through this gateway: its limit is reached")]
    PlatformLimit(Currency),
    #[error("the checkout of this top-up was closed before it opened ({0})")]
    CheckoutClosed(&'static str),
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    #[error(transparent)]
    Idempotency(IdempotencyError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum PaymentQueryError {
    #[error("the payment does not exist")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
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

#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("the recipient does not exist")]
    RecipientNotFound,
    #[error("you cannot transfer money to yourself")]
    SelfTransfer,
    #[error("the note must have at most 280 characters")]
    Note,
    #[error("insufficient funds: {available} available")]
    InsufficientFunds { available: Money },
    #[error("the transfer does not exist")]
    NotFound,
    #[error(transparent)]
    Ledger(LedgerError),
    #[error(transparent)]
    Idempotency(IdempotencyError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum AdjustmentError {
    #[error("only admins may adjust wallets")]
    Forbidden,
    #[error("the user does not exist")]
    UserNotFound,
    #[error("the reason must have 1 to 500 characters")]
    Reason,
    #[error("an adjustment must not be zero")]
    Zero,
    #[error("the adjustments account has reached the platform's limit in {0}")]
    PlatformLimit(Currency),
    #[error("the wallet cannot go below zero: {available} available")]
    InsufficientFunds { available: Money },
    #[error(transparent)]
    Ledger(LedgerError),
    #[error(transparent)]
    Idempotency(IdempotencyError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

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

keyed!(TopUpError, WithdrawalError, TransferError, AdjustmentError);

retryable!(
    WalletQueryError,
    TopUpError,
    PaymentQueryError,
    WithdrawalError,
    TransferError,
    AdjustmentError,
    HoldUseError
);

impl From<PostingError> for WithdrawalError {
    fn from(error: PostingError) -> Self {
        match error {
            PostingError::Store(error) => WithdrawalError::Store(error),
            PostingError::Ledger(error) => match error.insufficient_funds() {
                Some((_, available, _)) => WithdrawalError::InsufficientFunds { available },
                None => WithdrawalError::Ledger(error),
            },
        }
    }
}

impl From<PostingError> for TransferError {
    fn from(error: PostingError) -> Self {
        match error {
            PostingError::Store(error) => TransferError::Store(error),
            PostingError::Ledger(error) => match error.insufficient_funds() {
                Some((_, available, _)) => TransferError::InsufficientFunds { available },
                None => TransferError::Ledger(error),
            },
        }
    }
}

impl From<PostingError> for AdjustmentError {
    fn from(error: PostingError) -> Self {
        match error {
            PostingError::Store(error) => AdjustmentError::Store(error),
            PostingError::Ledger(error) => match error.insufficient_funds() {
                Some((_, available, _)) => AdjustmentError::InsufficientFunds { available },
                None => AdjustmentError::Ledger(error),
            },
        }
    }
}

impl From<PostingError> for HoldUseError {
    fn from(error: PostingError) -> Self {
        match error {
            PostingError::Store(error) => HoldUseError::Store(error),
            PostingError::Ledger(error) => HoldUseError::Ledger(error),
        }
    }
}

#[derive(Debug, Clone)]
pub struct TopUpRequest {
    pub amount: Money,
    pub provider: Option<ProviderName>,
}

#[derive(Debug, Clone)]
pub struct WithdrawalRequest {
    pub amount: Money,
    pub destination: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    Id(UserId),
    Email(String),
}

#[derive(Debug, Clone)]
pub struct TransferRequest {
    pub to: Recipient,
    pub amount: Money,
    pub note: String,
}

#[derive(Debug, Clone)]
pub struct AdjustmentRequest {
    pub user_id: UserId,
    /// Positive credits the wallet, negative debits it.
    pub amount: Money,
    pub reason: String,
}

/// A posted adjustment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adjustment {
    pub transaction_id: domain::ids::TransactionId,
    pub user_id: UserId,
    pub amount: Money,
    pub balance_after: Money,
    pub reason: String,
    pub created_at: OffsetDateTime,
}

/// Makes sure a system account exists in `currency` and returns its id.
pub(crate) async fn system_wallet<Tx: WalletRepository>(
    tx: &mut Tx,
    account: &SystemAccount,
    currency: Currency,
    new_id: WalletId,
    at: OffsetDateTime,
) -> Result<WalletId, StoreError> {
    tx.ensure_system_wallet(account, currency, new_id, at).await
}

/// Whether system account `account` stays within the platform's bound once its balance changes
/// by `change` (see `domain::ledger::SYSTEM_BALANCE_MAX_MINOR`). A plain read: a race past the
/// bound by a few payments is within the room the bound leaves.
pub(crate) async fn system_account_has_room<Tx: WalletRepository>(
    tx: &mut Tx,
    account: &SystemAccount,
    change: Money,
) -> Result<bool, StoreError> {
    let wallet = tx.find_system_wallet(account, change.currency()).await?;
    Ok(wallet.is_none_or(|wallet| domain::ledger::stays_within_bound(&wallet, change)))
}

impl<U: UnitOfWork> App<U> {
    pub async fn list_wallets(&self, caller: &Caller) -> Result<Vec<Wallet>, WalletQueryError> {
        let user = caller.user_id;
        transact(&self.store, move |mut tx| async move {
            let result = tx.list_user_wallets(user).await.map_err(WalletQueryError::from);
            (tx, result)
        })
        .await
    }

    pub async fn wallet(&self, caller: &Caller, currency: Currency) -> Result<Wallet, WalletQueryError> {
        let user = caller.user_id;
        transact(&self.store, move |mut tx| async move {
            let result = tx.find_user_wallet(user, currency).await.map_err(WalletQueryError::from);
            (tx, result)
        })
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
        let user = caller.user_id;
        let limit = page.limit;
        let before = page.after.and_then(|cursor| cursor.sequence());
        let rows = transact(&self.store, move |mut tx| async move {
            let result: Result<_, WalletQueryError> = async {
                let wallet = tx
                    .find_user_wallet(user, currency)
                    .await?
                    .ok_or(WalletQueryError::NotFound(currency))?;
                Ok(tx.wallet_history(wallet.id(), before, limit + 1).await?)
            }
            .await;
            (tx, result)
        })
        .await?;
        Ok(Page::from_rows(rows, limit, |record| Cursor::Sequence(record.sequence)))
    }

    /// Opens a card checkout that credits the wallet once the gateway confirms payment. The gateway
    /// is called between two transactions, never inside one; a retry under the same key resumes
    /// from the committed payment and asks the gateway again with the same provider key.
    pub async fn start_top_up(
        &self,
        caller: &Caller,
        request: TopUpRequest,
        idempotent: Option<Idempotent<Payment>>,
    ) -> Result<Payment, TopUpError> {
        let currency = request.amount.currency();
        let gateway = self
            .gateways
            .for_currency(request.provider.as_ref(), currency)
            .ok_or(TopUpError::NoGateway(currency))?
            .clone();
        let idempotent = idempotent.as_ref();
        let (payment, email) = self.open_top_up(caller, &request, gateway.provider(), idempotent).await?;
        if let Some(answer) = settled_top_up(&payment)? {
            return self.finish_top_up(answer, idempotent).await;
        }
        let gateway = self.gateways.get(&payment.provider).cloned().unwrap_or(gateway);
        let checkout = CheckoutRequest {
            payment_id: payment.id,
            amount: payment.amount,
            description: format!("Wallet top-up of {}", payment.amount),
            lines: vec![CheckoutLine {
                name: format!("{currency} wallet top-up"),
                unit_amount: payment.amount,
                quantity: 1,
            }],
            customer_email: email.to_string(),
            expires_at: payment.expires_at,
            idempotency_key: format!("checkout-{}", payment.id),
        };
        let session = match gateway.create_checkout(checkout).await {
            Ok(session) => session,
            Err(error) => {
                // A retry under the key resumes a temporary failure; otherwise nothing will.
                if !(error.may_pass() && idempotent.is_some()) {
                    self.abandon_payment(&payment).await;
                }
                return Err(error.into());
            }
        };
        let payment = payment.attach_session(session.session_id, session.checkout_url, self.clock.now());
        self.finish_top_up(payment, idempotent).await
    }

    /// The top-up's first transaction: claims the key and records the pending payment, or finds
    /// the payment an earlier attempt under the key recorded.
    async fn open_top_up(
        &self,
        caller: &Caller,
        request: &TopUpRequest,
        provider: &ProviderName,
        idempotent: Option<&Idempotent<Payment>>,
    ) -> Result<(Payment, Email), TopUpError> {
        let now = self.clock.now();
        let payment = Payment::open(
            self.next_id(),
            PaymentPurpose::TopUp(caller.user_id),
            caller.user_id,
            provider.clone(),
            request.amount,
            now,
            now + self.settings.checkout_ttl,
        );
        let (wallet_id, lease): (WalletId, _) = (self.next_id(), self.settings.idempotency_lease);
        let (payment, caller_id) = (&payment, caller.user_id);
        transact(&self.store, move |mut tx| async move {
            let result: Result<_, TopUpError> = async {
                let claim = idempotency::claim(&mut tx, idempotent, now, lease).await?;
                let user = tx
                    .find_user(caller_id)
                    .await?
                    .ok_or_else(|| StoreError::Corrupt("caller has no user row".into()))?;
                if let Some(Claim::Resume(point)) = claim {
                    return Ok((resumed_payment(&mut tx, &point, caller_id).await?, user.email));
                }
                let clearing = SystemAccount::GatewayClearing(payment.provider.clone());
                // The payment will be debited from the clearing account.
                let debit = Money::from_minor(-payment.amount.amount_minor(), payment.currency());
                if !system_account_has_room(&mut tx, &clearing, debit).await? {
                    return Err(TopUpError::PlatformLimit(payment.currency()));
                }
                tx.ensure_user_wallet(caller_id, payment.currency(), wallet_id, now).await?;
                tx.insert_payment(payment).await?;
                idempotency::mark_recovery_point(&mut tx, idempotent, &RecoveryPoint::Payment(payment.id)).await?;
                Ok((payment.clone(), user.email))
            }
            .await;
            (tx, result)
        })
        .await
    }

    /// Records the session (if new) and the key's response.
    async fn finish_top_up(&self, payment: Payment, idempotent: Option<&Idempotent<Payment>>) -> Result<Payment, TopUpError> {
        let now = self.clock.now();
        let payment_ref = &payment;
        transact(&self.store, move |mut tx| async move {
            let result: Result<_, StoreError> = async {
                tx.update_payment(payment_ref).await?;
                idempotency::complete(&mut tx, idempotent, payment_ref, now).await?;
                Ok(())
            }
            .await;
            (tx, result)
        })
        .await
        .map_err(TopUpError::Store)?;
        Ok(payment)
    }

    /// Marks a payment whose checkout could not be opened as failed.
    pub(crate) async fn abandon_payment(&self, payment: &Payment) {
        let now = self.clock.now();
        let provider = payment.provider.clone();
        let lookup = PaymentLookup::Ours(payment.id);
        let (provider, lookup) = (&provider, &lookup);
        let outcome = transact(&self.store, move |mut tx| async move {
            let result: Result<_, StoreError> = async {
                if let Some(locked) = tx.lock_payment(provider, lookup).await?
                    && let Ok(failed) = locked.fail(now)
                {
                    tx.update_payment(&failed).await?;
                }
                Ok::<_, StoreError>(())
            }
            .await;
            (tx, result)
        })
        .await;
        if let Err(error) = outcome {
            tracing::error!(%error, payment_id = %payment.id, "could not mark the abandoned payment failed; the expiry job will");
        }
    }

    /// A card payment (top-up or order checkout), for its payer or an admin.
    pub async fn payment_details(&self, caller: &Caller, id: domain::ids::PaymentId) -> Result<Payment, PaymentQueryError> {
        let found = transact(&self.store, move |mut tx| async move {
            let result = tx.find_payment(id).await.map_err(PaymentQueryError::from);
            (tx, result)
        })
        .await?;
        found
            .filter(|p| p.payer_id == caller.user_id || caller.is_admin())
            .ok_or(PaymentQueryError::NotFound)
    }

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
        let currency = request.amount.currency();
        let withdrawal = Withdrawal {
            id: self.next_id(),
            user_id: caller.user_id,
            amount: request.amount,
            destination,
            transaction_id: self.next_id(),
            created_at: now,
        };
        let (payouts_id, event_id): (WalletId, _) = (self.next_id(), self.next_id());
        let (withdrawal_ref, idempotent) = (&withdrawal, idempotent.as_ref());
        let lease = self.settings.idempotency_lease;
        transact(&self.store, move |mut tx| async move {
            let result: Result<_, WithdrawalError> = async {
                idempotency::claim(&mut tx, idempotent, now, lease).await?;
                let wallet = tx
                    .find_user_wallet(withdrawal_ref.user_id, currency)
                    .await?
                    .ok_or(WithdrawalError::InsufficientFunds {
                        available: Money::zero(currency),
                    })?;
                let payouts = system_wallet(&mut tx, &SystemAccount::Payouts, currency, payouts_id, now).await?;
                let journal = JournalTransaction::new(
                    withdrawal_ref.transaction_id,
                    TransactionKind::Withdrawal,
                    format!("withdrawal:{}", withdrawal_ref.id),
                    vec![
                        Entry::debit(wallet.id(), withdrawal_ref.amount).map_err(|e| {
                            WithdrawalError::Ledger(LedgerError::Wallet {
                                wallet_id: wallet.id(),
                                source: e.into(),
                            })
                        })?,
                        Entry::credit(payouts, withdrawal_ref.amount),
                    ],
                    now,
                )
                .map_err(WithdrawalError::Ledger)?;
                post(&mut tx, &journal).await?;
                tx.insert_withdrawal(withdrawal_ref).await?;
                let event = DomainEvent::WithdrawalCompleted {
                    withdrawal_id: withdrawal_ref.id,
                    user_id: withdrawal_ref.user_id,
                    amount: withdrawal_ref.amount,
                };
                tx.enqueue_events(&[OutboxEvent {
                    id: event_id,
                    event,
                    occurred_at: now,
                }])
                .await?;
                idempotency::complete(&mut tx, idempotent, withdrawal_ref, now).await?;
                Ok(())
            }
            .await;
            (tx, result)
        })
        .await?;
        Ok(withdrawal)
    }

    pub async fn withdrawal(&self, caller: &Caller, id: WithdrawalId) -> Result<Withdrawal, WithdrawalError> {
        let found = transact(&self.store, move |mut tx| async move {
            let result = tx.find_withdrawal(id).await.map_err(WithdrawalError::from);
            (tx, result)
        })
        .await?;
        found
            .filter(|w| w.user_id == caller.user_id || caller.is_admin())
            .ok_or(WithdrawalError::NotFound)
    }

    /// Moves money from the caller's wallet to another user's wallet in the same currency.
    pub async fn transfer(
        &self,
        caller: &Caller,
        request: TransferRequest,
        idempotent: Option<Idempotent<Transfer>>,
    ) -> Result<Transfer, TransferError> {
        let note = request.note.trim().to_owned();
        if note.chars().count() > 280 {
            return Err(TransferError::Note);
        }
        let recipient_email = match &request.to {
            Recipient::Email(text) => Some(Email::parse(text).map_err(|_| TransferError::RecipientNotFound)?),
            Recipient::Id(_) => None,
        };
        let now = self.clock.now();
        let currency = request.amount.currency();
        let (transfer_id, transaction_id, wallet_id, sender_wallet_id, event_id): (TransferId, _, WalletId, WalletId, _) =
            (self.next_id(), self.next_id(), self.next_id(), self.next_id(), self.next_id());
        let (request_ref, recipient_email, idempotent) = (&request, &recipient_email, idempotent.as_ref());
        let sender = caller.user_id;
        let lease = self.settings.idempotency_lease;
        transact(&self.store, move |mut tx| async move {
            let result: Result<_, TransferError> = async {
                idempotency::claim(&mut tx, idempotent, now, lease).await?;
                let recipient = match (&request_ref.to, recipient_email) {
                    (Recipient::Id(id), _) => tx.find_user(*id).await?,
                    (Recipient::Email(_), Some(email)) => tx.find_user_by_email(email).await?,
                    (Recipient::Email(_), None) => None,
                };
                let recipient = recipient.ok_or(TransferError::RecipientNotFound)?;
                if recipient.id == sender {
                    return Err(TransferError::SelfTransfer);
                }
                // Both wallets locked in one go, in id order; a sender without a wallet in this
                // currency gets an empty one, which the refused debit then rolls back.
                let owners = [(sender, sender_wallet_id), (recipient.id, wallet_id)];
                let mut wallets = tx.lock_user_wallets(&owners, currency, now).await?;
                let wallet_of = |user: UserId| wallets.iter().find(|w| w.user_id() == Some(user)).map(Wallet::id);
                let (from, to) = match (wallet_of(sender), wallet_of(recipient.id)) {
                    (Some(from), Some(to)) => (from, to),
                    _ => return Err(StoreError::Corrupt("a transfer's wallets were not locked".into()).into()),
                };
                let debit = Entry::debit(from, request_ref.amount).map_err(|e| {
                    TransferError::Ledger(LedgerError::Wallet {
                        wallet_id: from,
                        source: e.into(),
                    })
                })?;
                let journal = JournalTransaction::new(
                    transaction_id,
                    TransactionKind::Transfer,
                    format!("transfer:{transfer_id}"),
                    vec![debit, Entry::credit(to, request_ref.amount)],
                    now,
                )
                .map_err(TransferError::Ledger)?;
                post_locked(&mut tx, &journal, &mut wallets).await?;
                let transfer = Transfer {
                    id: transfer_id,
                    from_user_id: sender,
                    to_user_id: recipient.id,
                    amount: request_ref.amount,
                    transaction_id,
                    note: request_ref.note.trim().to_owned(),
                    created_at: now,
                };
                tx.insert_transfer(&transfer).await?;
                let event = DomainEvent::TransferCompleted {
                    transfer_id,
                    from: sender,
                    to: recipient.id,
                    amount: transfer.amount,
                };
                tx.enqueue_events(&[OutboxEvent {
                    id: event_id,
                    event,
                    occurred_at: now,
                }])
                .await?;
                idempotency::complete(&mut tx, idempotent, &transfer, now).await?;
                Ok(transfer)
            }
            .await;
            (tx, result)
        })
        .await
    }

    /// A transfer, for its sender, its receiver or an admin.
    pub async fn transfer_details(&self, caller: &Caller, id: TransferId) -> Result<Transfer, TransferError> {
        let found = transact(&self.store, move |mut tx| async move {
            let result = tx.find_transfer(id).await.map_err(TransferError::from);
            (tx, result)
        })
        .await?;
        found
            .filter(|t| t.from_user_id == caller.user_id || t.to_user_id == caller.user_id || caller.is_admin())
            .ok_or(TransferError::NotFound)
    }

    /// An admin's correction: a credit or debit of a user's wallet against the adjustments account.
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
        let now = self.clock.now();
        let currency = request.amount.currency();
        let (transaction_id, wallet_id, system_id, event_id): (_, WalletId, WalletId, _) =
            (self.next_id(), self.next_id(), self.next_id(), self.next_id());
        let (request_ref, reason, idempotent) = (&request, &reason, idempotent.as_ref());
        let lease = self.settings.idempotency_lease;
        transact(&self.store, move |mut tx| async move {
            let result: Result<_, AdjustmentError> = async {
                idempotency::claim(&mut tx, idempotent, now, lease).await?;
                tx.find_user(request_ref.user_id).await?.ok_or(AdjustmentError::UserNotFound)?;
                let wallet = tx.ensure_user_wallet(request_ref.user_id, currency, wallet_id, now).await?;
                let counter = request_ref.amount.checked_neg().map_err(|_| AdjustmentError::Zero)?;
                if !system_account_has_room(&mut tx, &SystemAccount::Adjustments, counter).await? {
                    return Err(AdjustmentError::PlatformLimit(currency));
                }
                let system = system_wallet(&mut tx, &SystemAccount::Adjustments, currency, system_id, now).await?;
                let counter = request_ref.amount.checked_neg().map_err(|_| AdjustmentError::Zero)?;
                let journal = JournalTransaction::new(
                    transaction_id,
                    TransactionKind::Adjustment,
                    format!("adjustment: {reason}"),
                    vec![Entry::credit(wallet, request_ref.amount), Entry::credit(system, counter)],
                    now,
                )
                .map_err(AdjustmentError::Ledger)?;
                let postings = post(&mut tx, &journal).await?;
                let balance_after = postings
                    .iter()
                    .find(|p| p.wallet_id == wallet)
                    .map(|p| Money::from_minor(p.balance_after_minor, currency))
                    .unwrap_or(Money::zero(currency));
                let event = DomainEvent::AdjustmentPosted {
                    transaction_id,
                    user_id: request_ref.user_id,
                    amount: request_ref.amount,
                };
                tx.enqueue_events(&[OutboxEvent {
                    id: event_id,
                    event,
                    occurred_at: now,
                }])
                .await?;
                let adjustment = Adjustment {
                    transaction_id,
                    user_id: request_ref.user_id,
                    amount: request_ref.amount,
                    balance_after,
                    reason: reason.clone(),
                    created_at: now,
                };
                idempotency::complete(&mut tx, idempotent, &adjustment, now).await?;
                Ok(adjustment)
            }
            .await;
            (tx, result)
        })
        .await
    }

    /// Reserves funds of the caller's wallet until they are captured or released.
    pub async fn place_hold(&self, caller: &Caller, amount: Money, reference: &str) -> Result<Hold, HoldUseError> {
        let now = self.clock.now();
        let ttl = self.settings.hold_ttl;
        let hold_id: HoldId = self.next_id();
        let user = caller.user_id;
        transact(&self.store, move |mut tx| async move {
            let result: Result<_, HoldUseError> = async {
                let wallet = tx
                    .find_user_wallet(user, amount.currency())
                    .await?
                    .ok_or(HoldUseError::NoWallet(amount.currency()))?;
                let mut wallets = tx.lock_wallets(&[wallet.id()]).await?;
                let terms = HoldTerms {
                    reference: reference.to_owned(),
                    placed_at: now,
                    expires_at: now + ttl,
                };
                let hold = Hold::place(hold_id, &mut wallets[0], amount, terms)?;
                tx.update_wallets(&wallets).await?;
                tx.insert_hold(&hold).await?;
                Ok(hold)
            }
            .await;
            (tx, result)
        })
        .await
    }

    /// Releases a pending hold of the caller's.
    pub async fn release_hold(&self, caller: &Caller, hold_id: HoldId) -> Result<Hold, HoldUseError> {
        let now = self.clock.now();
        let user = caller.user_id;
        transact(&self.store, move |mut tx| async move {
            let result: Result<_, HoldUseError> = async {
                let (mut wallets, hold) = lock_own_hold(&mut tx, user, hold_id).await?;
                let hold = hold.release(&mut wallets[0], now)?;
                tx.update_wallets(&wallets).await?;
                tx.update_hold(&hold).await?;
                Ok(hold)
            }
            .await;
            (tx, result)
        })
        .await
    }

    /// Captures all or part of a pending hold of the caller's, paying `payee`; the rest is released.
    pub async fn capture_hold(&self, caller: &Caller, hold_id: HoldId, amount: Money, payee: UserId) -> Result<Hold, HoldUseError> {
        let now = self.clock.now();
        let user = caller.user_id;
        let (wallet_id, transaction_id): (WalletId, _) = (self.next_id(), self.next_id());
        transact(&self.store, move |mut tx| async move {
            let result: Result<_, HoldUseError> = async {
                tx.find_user(payee).await?.ok_or(HoldUseError::NotFound)?;
                tx.ensure_user_wallet(payee, amount.currency(), wallet_id, now).await?;
                let payee_wallet = tx.find_user_wallet(payee, amount.currency()).await?.ok_or(HoldUseError::NotFound)?;
                let (hold_wallet, hold) = find_own_hold(&mut tx, user, hold_id).await?;
                let mut wallets = tx.lock_wallets(&[hold_wallet, payee_wallet.id()]).await?;
                let hold = tx.lock_hold(hold.id).await?.ok_or(HoldUseError::NotFound)?;
                let index = wallets.iter().position(|w| w.id() == hold_wallet).ok_or(HoldUseError::NotFound)?;
                let hold = hold.capture(&mut wallets[index], amount, now)?;
                let journal = JournalTransaction::new(
                    transaction_id,
                    TransactionKind::Transfer,
                    format!("hold:{}", hold.id),
                    vec![Entry::debit(hold_wallet, amount)?, Entry::credit(payee_wallet.id(), amount)],
                    now,
                )
                .map_err(HoldUseError::Ledger)?;
                post_locked(&mut tx, &journal, &mut wallets).await?;
                tx.update_hold(&hold).await?;
                Ok(hold)
            }
            .await;
            (tx, result)
        })
        .await
    }
}

impl<U: UnitOfWork> App<U> {
    /// The job's part for holds: releases pending holds past their expiry (those of active calls
    /// end with their call). Returns how many were released.
    pub async fn release_expired_holds(&self, batch: usize) -> Result<usize, HoldUseError> {
        let now = self.clock.now();
        let expired = transact(&self.store, move |mut tx| async move {
            let result = tx.find_expired_holds(now, batch).await.map_err(HoldUseError::from);
            (tx, result)
        })
        .await?;
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
        transact(&self.store, move |mut tx| async move {
            let result = async {
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
            }
            .await;
            (tx, result)
        })
        .await
    }
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

/// The payment an earlier attempt under the key committed, which must be the caller's.
pub(crate) async fn resumed_payment<Tx: PaymentRepository + Send>(
    tx: &mut Tx,
    point: &RecoveryPoint,
    payer: UserId,
) -> Result<Payment, StoreError> {
    let RecoveryPoint::Payment(id) = point else {
        return Err(StoreError::Corrupt(format!("a payment request's key points at {}", point.code())));
    };
    tx.find_payment(*id)
        .await?
        .filter(|payment| payment.payer_id == payer)
        .ok_or_else(|| StoreError::Corrupt(format!("the key's payment {id} is missing")))
}

/// A resumed top-up that needs no new checkout: its answer (it has a session, or it was paid),
/// or why it cannot go on.
fn settled_top_up(payment: &Payment) -> Result<Option<Payment>, TopUpError> {
    match payment.status {
        PaymentStatus::Pending if payment.checkout_url.is_none() => Ok(None),
        PaymentStatus::Pending | PaymentStatus::Succeeded => Ok(Some(payment.clone())),
        other => Err(TopUpError::CheckoutClosed(other.as_str())),
    }
}
