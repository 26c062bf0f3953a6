//! Holds: a customer authorises a merchant to take up to an amount of their wallet (a ride's
//! pre-authorisation, a hotel night, a metered service). The funds stay in the balance but are
//! no longer available; the merchant captures them, in part and as often as it likes up to the
//! amount, and voids the rest; the job releases what is left when the hold expires.
//!
//! Consent is the customer's own request: a hold is placed on the caller's wallet only, naming
//! the merchant who may capture it. A merchant cannot place a hold on someone else's wallet.
//!
//! A capture and a void or expiry of one hold lock the hold's wallet and then the hold (the lock
//! order), so whichever commits first decides: a capture after a void finds the hold settled,
//! and two captures racing for the last of a hold see each other's `captured`.

use domain::events::DomainEvent;
use domain::ids::{HoldId, UserId, WalletId};
use domain::ledger::{Entry, JournalTransaction, LedgerError, TransactionKind};
use domain::money::{Currency, Money, MoneyError};
use domain::user::Role;
use domain::wallet::{Hold, HoldError, HoldStatus, HoldTerms, WalletError};
use time::{Duration, OffsetDateTime};

use crate::caller::Caller;
use crate::captures::CaptureError;
use crate::context::App;
use crate::effects::publish;
use crate::idempotency::{IdempotencyError, Idempotent, Key};
use crate::ledger::post_locked;
use crate::ports::store::{
    EventOutbox, HoldRepository, IdempotencyRepository, LedgerRepository, StoreError, UnitOfWork, UserRepository, WalletRepository,
};
use crate::ports::system::{IdGenerator, next_id};
use crate::transact::{transact, work};
use crate::{from_posting_error, keyed, retryable};

/// The longest a hold may last (card networks keep authorisations for up to about a month).
pub const HOLD_TTL_MAX: Duration = Duration::days(30);
/// The shortest: less would expire before a merchant could act on it.
pub const HOLD_TTL_MIN: Duration = Duration::minutes(1);
/// The longest description of a hold, in characters.
pub const DESCRIPTION_CHARS_MAX: usize = 200;
/// Why the holds API leaves an order's holds alone: the order's stock follows them.
const ORDER_HOLD: &str = "this hold pays for part of an order: capture or void the order instead";

/// Why placing, capturing or voiding a hold fails.
#[derive(Debug, thiserror::Error)]
pub enum HoldUseError {
    /// The hold does not exist, or the caller is not a party to it.
    #[error("the hold does not exist")]
    NotFound,
    /// The customer has no wallet in the amount's currency.
    #[error("you have no {0} wallet")]
    NoWallet(Currency),
    /// The named merchant does not exist (or is not a merchant).
    #[error("the merchant does not exist")]
    MerchantNotFound,
    /// A customer named themselves as the merchant.
    #[error("you cannot authorise yourself")]
    SelfHold,
    /// A merchant tried to place a hold on a customer's wallet: only the customer may.
    #[error("a hold is authorised by the customer whose wallet it is on: ask the customer to place it, naming you")]
    ConsentRequired,
    /// The expiry is outside [`HOLD_TTL_MIN`] to [`HOLD_TTL_MAX`] from now.
    #[error("a hold must expire between {min} and {max} seconds from now", min = HOLD_TTL_MIN.whole_seconds(), max = HOLD_TTL_MAX.whole_seconds())]
    Expiry,
    /// The description is longer than [`DESCRIPTION_CHARS_MAX`].
    #[error("the description must have at most {DESCRIPTION_CHARS_MAX} characters")]
    Description,
    /// The caller may not do this (the text says why).
    #[error("{0}")]
    Forbidden(&'static str),
    /// The customer's available balance is less than the hold.
    #[error("insufficient funds: {available} available")]
    InsufficientFunds {
        /// What the customer's wallet could reserve.
        available: Money,
    },
    /// The hold refused the operation (not pending, too large, another wallet).
    #[error(transparent)]
    Hold(HoldError),
    /// The ledger refused the journal transaction (it would overdraw a wallet, or it does not balance).
    #[error(transparent)]
    Ledger(LedgerError),
    /// Amount arithmetic overflowed or mixed currencies.
    #[error(transparent)]
    Money(#[from] MoneyError),
    /// The idempotency key is held by a request still running, was used for a different request, or
    /// was completed by another request meanwhile (replay its response).
    #[error(transparent)]
    Idempotency(IdempotencyError),
    /// Storage failed: an outage, a timeout, a conflict that outlasted the retries, or a commit whose
    /// outcome is unknown (`StoreError::OutcomeUnknown`).
    #[error(transparent)]
    Store(#[from] StoreError),
}

keyed!(HoldUseError);
retryable!(HoldUseError);
from_posting_error!(HoldUseError, InsufficientFunds);

impl From<HoldError> for HoldUseError {
    fn from(error: HoldError) -> Self {
        match error {
            HoldError::Wallet(WalletError::InsufficientFunds { available, .. }) => HoldUseError::InsufficientFunds { available },
            other => HoldUseError::Hold(other),
        }
    }
}

/// What a customer authorises.
#[derive(Debug, Clone)]
pub struct HoldRequest {
    /// The merchant who may capture.
    pub merchant_id: UserId,
    /// What to reserve, in the wallet's currency.
    pub amount: Money,
    /// What it is for, shown to both parties.
    pub description: String,
    /// From now; the configured default when not given.
    pub expires_in: Option<Duration>,
    /// Whose wallet: the caller's own (`None` says the same). Anyone else's is refused.
    pub customer_id: Option<UserId>,
}

/// A merchant's capture: `amount` of what remains (all of it when `None`); a final capture
/// releases the rest.
#[derive(Debug, Clone, Copy)]
pub struct CaptureRequest {
    /// How much to take; all that remains when `None`.
    pub amount: Option<Money>,
    /// Whether this capture is the last: what remains is then released.
    pub final_capture: bool,
}

/// A capture checked and ready: how much of which hold goes to whom.
struct Capture {
    hold_id: HoldId,
    request: CaptureRequest,
    merchant: UserId,
}

/// Who is ending a hold early, and may they.
#[derive(Debug, Clone, Copy)]
struct Voider {
    user: UserId,
    admin: bool,
}

impl<U: UnitOfWork> App<U> {
    /// Reserves funds of the caller's wallet that the named merchant may capture until the hold
    /// expires.
    pub async fn authorise_hold(
        &self,
        caller: &Caller,
        request: HoldRequest,
        idempotent: Option<Idempotent<Hold>>,
    ) -> Result<Hold, HoldUseError> {
        if request.customer_id.is_some_and(|customer| customer != caller.user_id) {
            return Err(HoldUseError::ConsentRequired);
        }
        if request.description.chars().count() > DESCRIPTION_CHARS_MAX {
            return Err(HoldUseError::Description);
        }
        let lasts = request.expires_in.unwrap_or(self.settings.hold_ttl);
        if !(HOLD_TTL_MIN..=HOLD_TTL_MAX).contains(&lasts) {
            return Err(HoldUseError::Expiry);
        }
        if request.merchant_id == caller.user_id {
            return Err(HoldUseError::SelfHold);
        }
        let now = self.clock.now();
        let terms = HoldTerms {
            reference: request.description.trim().to_owned(),
            order_id: None,
            payee: Some(request.merchant_id),
            placed_at: now,
            expires_at: now + lasts,
        };
        let (ids, key, user) = (self.ids.as_ref(), self.key(idempotent.as_ref()), caller.user_id);
        let (terms, amount) = (&terms, request.amount);
        transact(&self.store, |tx| work(place(tx, ids, key, user, amount, terms))).await
    }

    /// A hold, for its customer, its merchant or an admin.
    pub async fn hold(&self, caller: &Caller, hold_id: HoldId) -> Result<Hold, HoldUseError> {
        let user = caller.user_id;
        let (hold, own) = transact(&self.store, |tx| {
            work(async move {
                let hold = tx.find_hold(hold_id).await?.ok_or(HoldUseError::NotFound)?;
                let mine = tx.find_user_wallet(user, hold.amount.currency()).await?;
                let own = mine.is_some_and(|wallet| wallet.id() == hold.wallet_id);
                Ok::<_, HoldUseError>((hold, own))
            })
        })
        .await?;
        let party = own || hold.payee == Some(user) || caller.is_admin();
        if hold.payee.is_none() || !party {
            return Err(HoldUseError::NotFound);
        }
        Ok(hold)
    }

    /// The hold's merchant captures part or all of what remains, paid into its wallet.
    pub async fn capture_hold(
        &self,
        caller: &Caller,
        hold_id: HoldId,
        request: CaptureRequest,
        idempotent: Option<Idempotent<Hold>>,
    ) -> Result<Hold, HoldUseError> {
        let (ids, now, key) = (self.ids.as_ref(), self.clock.now(), self.key(idempotent.as_ref()));
        let capture = Capture {
            hold_id,
            request,
            merchant: caller.user_id,
        };
        let capture = &capture;
        transact(&self.store, |tx| work(capture_part(tx, ids, key, capture, now))).await
    }

    /// Ends a hold, giving what remains back to its customer: by its merchant or an admin at any
    /// time, by its customer while nothing has been captured.
    pub async fn void_hold(&self, caller: &Caller, hold_id: HoldId, idempotent: Option<Idempotent<Hold>>) -> Result<Hold, HoldUseError> {
        let (ids, now, key) = (self.ids.as_ref(), self.clock.now(), self.key(idempotent.as_ref()));
        let voider = Voider {
            user: caller.user_id,
            admin: caller.is_admin(),
        };
        transact(&self.store, |tx| work(void(tx, ids, key, voider, hold_id, now))).await
    }

    /// The job's part for holds: releases pending holds past their expiry (those of active calls
    /// end with their call). Returns how many were released.
    #[tracing::instrument(name = "release_expired_holds", skip_all, fields(batch))]
    pub async fn release_expired_holds(&self, batch: usize) -> Result<usize, HoldUseError> {
        let now = self.clock.now();
        let expired = transact(&self.store, |tx| work(tx.find_expired_holds(now, batch))).await?;
        let mut released = 0;
        for hold in expired {
            let ended = match hold.order_id {
                // An order's part ends with its stock and order, under the order's lock.
                Some(order_id) => self.expire_order_part(order_id, hold.id).await.map_err(|error| match error {
                    CaptureError::Store(error) => HoldUseError::Store(error),
                    other => HoldUseError::Store(StoreError::Unexpected(Box::new(other))),
                })?,
                None => self.expire_hold(hold.wallet_id, hold.id).await?,
            };
            if ended {
                released += 1;
            }
        }
        Ok(released)
    }

    /// Expires one hold if it is still pending and past its expiry, under its wallet's lock.
    async fn expire_hold(&self, wallet_id: WalletId, hold_id: HoldId) -> Result<bool, HoldUseError> {
        let (ids, now) = (self.ids.as_ref(), self.clock.now());
        transact(&self.store, |tx| {
            work(async move {
                let mut wallets = tx.lock_wallets(&[wallet_id]).await?;
                let hold = tx.lock_hold(hold_id).await?.ok_or(HoldUseError::NotFound)?;
                if !hold.is_expired_at(now) {
                    return Ok(false);
                }
                let released = hold.remaining();
                let hold = hold.expire(&mut wallets[0], now)?;
                tx.update_wallets(&wallets).await?;
                tx.update_hold(&hold).await?;
                if let (Some(merchant_id), Some(user_id)) = (hold.payee, wallets[0].user_id()) {
                    let expired = DomainEvent::HoldExpired {
                        hold_id,
                        user_id,
                        merchant_id,
                        released,
                    };
                    publish(tx, ids, expired, now).await?;
                }
                tracing::info!(hold_id = %hold.id, released = %released, "an expired hold was released");
                Ok(true)
            })
        })
        .await
    }
}

async fn place<Tx>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    key: Key<'_, Hold>,
    user: UserId,
    amount: Money,
    terms: &HoldTerms,
) -> Result<Hold, HoldUseError>
where
    Tx: IdempotencyRepository + UserRepository + WalletRepository + HoldRepository + EventOutbox + Send,
{
    key.claim(tx, terms.placed_at).await?;
    let merchant_id = terms.payee.ok_or(HoldUseError::MerchantNotFound)?;
    let merchant = tx.find_user(merchant_id).await?;
    if merchant.is_none_or(|m| m.role != Role::Merchant) {
        return Err(HoldUseError::MerchantNotFound);
    }
    let wallet = tx
        .find_user_wallet(user, amount.currency())
        .await?
        .ok_or(HoldUseError::NoWallet(amount.currency()))?;
    let mut wallets = tx.lock_wallets(&[wallet.id()]).await?;
    let hold = Hold::place(next_id(ids), &mut wallets[0], amount, terms.clone())?;
    tx.update_wallets(&wallets).await?;
    tx.insert_hold(&hold).await?;
    let authorised = DomainEvent::HoldAuthorised {
        hold_id: hold.id,
        user_id: user,
        merchant_id,
        amount,
    };
    publish(tx, ids, authorised, terms.placed_at).await?;
    key.complete(tx, &hold, terms.placed_at).await?;
    Ok(hold)
}

async fn capture_part<Tx>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    key: Key<'_, Hold>,
    capture: &Capture,
    now: OffsetDateTime,
) -> Result<Hold, HoldUseError>
where
    Tx: IdempotencyRepository + WalletRepository + LedgerRepository + HoldRepository + EventOutbox + Send,
{
    key.claim(tx, now).await?;
    let hold = tx.find_hold(capture.hold_id).await?.ok_or(HoldUseError::NotFound)?;
    if hold.payee != Some(capture.merchant) {
        return Err(HoldUseError::NotFound);
    }
    if hold.order_id.is_some() {
        return Err(HoldUseError::Forbidden(ORDER_HOLD));
    }
    let currency = hold.amount.currency();
    let merchant_wallet = tx.ensure_user_wallet(capture.merchant, currency, next_id(ids), now).await?;
    let mut wallets = tx.lock_wallets(&[hold.wallet_id, merchant_wallet]).await?;
    let hold = tx.lock_hold(hold.id).await?.ok_or(HoldUseError::NotFound)?;
    let customer = wallets
        .iter()
        .position(|w| w.id() == hold.wallet_id)
        .ok_or(HoldUseError::NotFound)?;
    let customer_id = wallets[customer].user_id().ok_or(HoldUseError::NotFound)?;
    let amount = capture.request.amount.unwrap_or_else(|| hold.remaining());
    if amount.currency() != currency {
        return Err(HoldUseError::Money(MoneyError::CurrencyMismatch {
            left: currency,
            right: amount.currency(),
        }));
    }
    let (wallet_id, hold_id) = (hold.wallet_id, hold.id);
    let hold = hold.capture_part(&mut wallets[customer], amount, capture.request.final_capture, now)?;
    let entries = vec![Entry::debit(wallet_id, amount)?, Entry::credit(merchant_wallet, amount)];
    let journal = JournalTransaction::new(next_id(ids), TransactionKind::Transfer, format!("hold:{hold_id}"), entries, now)
        .map_err(HoldUseError::Ledger)?;
    post_locked(tx, &journal, &mut wallets).await?;
    tx.update_hold(&hold).await?;
    let captured = DomainEvent::HoldCaptured {
        hold_id,
        user_id: customer_id,
        merchant_id: capture.merchant,
        amount,
        captured: hold.captured,
    };
    publish(tx, ids, captured, now).await?;
    key.complete(tx, &hold, now).await?;
    Ok(hold)
}

async fn void<Tx>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    key: Key<'_, Hold>,
    voider: Voider,
    hold_id: HoldId,
    now: OffsetDateTime,
) -> Result<Hold, HoldUseError>
where
    Tx: IdempotencyRepository + WalletRepository + HoldRepository + EventOutbox + Send,
{
    key.claim(tx, now).await?;
    let hold = tx.find_hold(hold_id).await?.ok_or(HoldUseError::NotFound)?;
    let Some(merchant_id) = hold.payee else {
        return Err(HoldUseError::NotFound);
    };
    let mut wallets = tx.lock_wallets(&[hold.wallet_id]).await?;
    let hold = tx.lock_hold(hold_id).await?.ok_or(HoldUseError::NotFound)?;
    let user_id = wallets[0].user_id().ok_or(HoldUseError::NotFound)?;
    let by_customer = voider.user == user_id;
    if !(by_customer || voider.user == merchant_id || voider.admin) {
        return Err(HoldUseError::NotFound);
    }
    if hold.order_id.is_some() {
        return Err(HoldUseError::Forbidden(ORDER_HOLD));
    }
    if hold.status != HoldStatus::Pending {
        return Err(HoldUseError::Hold(HoldError::NotPending(hold.status)));
    }
    if by_customer && !voider.admin && voider.user != merchant_id && hold.captured.is_positive() {
        return Err(HoldUseError::Forbidden(
            "the merchant has captured part of the hold: only the merchant can void the rest",
        ));
    }
    let released = hold.remaining();
    let hold = hold.release(&mut wallets[0], now)?;
    tx.update_wallets(&wallets).await?;
    tx.update_hold(&hold).await?;
    let voided = DomainEvent::HoldVoided {
        hold_id,
        user_id,
        merchant_id,
        released,
    };
    publish(tx, ids, voided, now).await?;
    key.complete(tx, &hold, now).await?;
    Ok(hold)
}
