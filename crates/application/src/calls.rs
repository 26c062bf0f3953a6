//! Metered call sessions: authorised up front with a hold, charged per started minute at the end.

use domain::call::{CallError, CallSession, CallStatus, affordable_minutes};
use domain::events::DomainEvent;
use domain::ids::{CallId, HoldId, UserId, WalletId};
use domain::ledger::{Entry, JournalTransaction, LedgerError, TransactionKind};
use domain::money::{Money, MoneyError};
use domain::user::Email;
use domain::wallet::{Hold, HoldError, HoldTerms, Wallet};
use time::{Duration, OffsetDateTime};

use crate::caller::Caller;
use crate::context::App;
use crate::effects::publish;
use crate::idempotency::{IdempotencyError, Idempotent, Key};
use crate::ledger::post_locked;
use crate::pagination::{Page, PageRequest};
use crate::ports::store::{
    CallRepository, EventOutbox, HoldRepository, IdempotencyRepository, LedgerRepository, StoreError, UnitOfWork, UserRepository,
    WalletRepository,
};
use crate::ports::system::{IdGenerator, next_id};
use crate::transact::{transact, transact_lagging, work};
use crate::{from_posting_error, keyed, retryable};

/// What a caller starts.
#[derive(Debug, Clone)]
pub struct StartCall {
    /// The user called, who is paid.
    pub receiver_id: UserId,
    /// The price of each started minute, in the caller's wallet currency.
    pub rate_per_minute: Money,
}

/// Why starting, extending or ending a call fails.
#[derive(Debug, thiserror::Error)]
pub enum CallUseError {
    /// The receiver does not exist.
    #[error("the receiver does not exist")]
    ReceiverNotFound,
    /// The call does not exist, or the caller is not a party to it.
    #[error("the call does not exist")]
    NotFound,
    /// The caller may not do this to this resource.
    #[error("only the caller, the receiver or an admin may end a call")]
    Forbidden,
    /// The call refused (a self-call, a bad rate, already ended, not a minute affordable).
    #[error(transparent)]
    Call(#[from] CallError),
    /// The hold refused the operation (not pending, too large, another wallet).
    #[error(transparent)]
    Hold(#[from] HoldError),
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

retryable!(CallUseError);
keyed!(CallUseError);

from_posting_error!(CallUseError);

// What settling a call touches.
crate::repositories!(CallTx: CallRepository, WalletRepository, LedgerRepository, HoldRepository, EventOutbox);

/// How long before its authorisation runs out the job extends a call (or, at the end, ends it).
pub const CALL_EXTENSION_LEAD: Duration = Duration::seconds(60);
/// How long a call's hold outlives the call's authorisation, should the job be late.
const CALL_HOLD_GRACE: Duration = Duration::minutes(10);

/// A call's wallets (the caller's and the receiver's, locked in id order) and its hold (locked).
struct CallParties {
    wallets: Vec<Wallet>,
    receiver_wallet: WalletId,
    hold: Hold,
}

impl CallParties {
    fn caller_wallet(&mut self) -> Result<&mut Wallet, StoreError> {
        let hold_wallet = self.hold.wallet_id;
        self.wallets
            .iter_mut()
            .find(|w| w.id() == hold_wallet)
            .ok_or_else(|| StoreError::Corrupt("the call's hold wallet was not locked".into()))
    }
}

/// Locks what settling a call changes, in the global lock order: wallets, then the hold.
async fn lock_call_parties<Tx: CallTx>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    call: &CallSession,
    now: OffsetDateTime,
) -> Result<CallParties, StoreError> {
    let currency = call.rate_per_minute.currency();
    let receiver_wallet: WalletId = tx.ensure_user_wallet(call.receiver_id, currency, next_id(ids), now).await?;
    let missing_hold = || StoreError::Corrupt(format!("call {} has no hold", call.id));
    let hold = tx.find_hold(call.hold_id).await?.ok_or_else(missing_hold)?;
    let wallets = tx.lock_wallets(&[hold.wallet_id, receiver_wallet]).await?;
    let hold = tx.lock_hold(hold.id).await?.ok_or_else(missing_hold)?;
    Ok(CallParties {
        wallets,
        receiver_wallet,
        hold,
    })
}

/// Ends a locked, active call at `ended_at`: the started minutes (at most the authorised ones)
/// are captured from the hold and paid to the receiver; the rest of the hold is released.
async fn finish_call<Tx: CallTx>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    call: CallSession,
    ended_at: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<CallSession, CallUseError> {
    let mut parties = lock_call_parties(tx, ids, &call, now).await?;
    let call = call.end(ended_at)?;
    let hold = parties.hold.clone().capture(parties.caller_wallet()?, call.charged, now)?;
    let journal = JournalTransaction::new(
        next_id(ids),
        TransactionKind::CallCharge,
        format!("call:{}", call.id),
        vec![
            Entry::debit(hold.wallet_id, call.charged)?,
            Entry::credit(parties.receiver_wallet, call.charged),
        ],
        now,
    )
    .map_err(CallUseError::Ledger)?;
    post_locked(tx, &journal, &mut parties.wallets).await?;
    tx.update_hold(&hold).await?;
    tx.update_call(&call).await?;
    let ended = DomainEvent::CallEnded {
        call_id: call.id,
        minutes: call.billed_minutes,
        charged: call.charged,
    };
    publish(tx, ids, ended, now).await?;
    Ok(call)
}

/// What the job did with a call near the end of its authorisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallSettlement {
    Extended,
    Ended,
    /// Nothing yet: ended meanwhile, extended by another instance, or not affordable but not at
    /// its limit either.
    Untouched,
}

/// Extends a locked call by the minutes the caller can afford now, or ends it at its limit when
/// the caller cannot afford another minute and the limit has passed.
async fn extend_or_end<Tx: CallTx>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    call: CallSession,
    minutes_max: u32,
    now: OffsetDateTime,
) -> Result<CallSettlement, CallUseError> {
    if call.status == CallStatus::Ended || call.authorized_until() > now + CALL_EXTENSION_LEAD {
        return Ok(CallSettlement::Untouched);
    }
    let mut parties = lock_call_parties(tx, ids, &call, now).await?;
    let rate = call.rate_per_minute;
    let minutes = match affordable_minutes(parties.caller_wallet()?.available(), rate, minutes_max) {
        Ok(minutes) => minutes,
        Err(CallError::CannotAffordFirstMinute { .. }) => 0,
        Err(other) => return Err(other.into()),
    };
    if minutes == 0 {
        if now < call.authorized_until() {
            return Ok(CallSettlement::Untouched);
        }
        let limit = call.authorized_until();
        finish_call(tx, ids, call, limit, now).await?;
        return Ok(CallSettlement::Ended);
    }
    let call = call.extend(minutes)?;
    let more = rate.checked_mul(i64::from(minutes))?;
    let hold = parties
        .hold
        .clone()
        .extend(parties.caller_wallet()?, more, call.authorized_until() + CALL_HOLD_GRACE)?;
    tx.update_wallets(&parties.wallets).await?;
    tx.update_hold(&hold).await?;
    tx.update_call(&call).await?;
    Ok(CallSettlement::Extended)
}

impl<U: UnitOfWork> App<U> {
    /// Starts a call. The caller must afford at least the first minute; a hold reserves as many
    /// whole minutes as the wallet covers, up to the configured maximum. The job extends the
    /// authorisation while the caller can afford more, and ends the call when they cannot.
    pub async fn start_call(
        &self,
        caller: &Caller,
        request: StartCall,
        idempotent: Option<Idempotent<CallSession>>,
    ) -> Result<CallSession, CallUseError> {
        if request.receiver_id == caller.user_id {
            return Err(CallError::SelfCall.into());
        }
        if !request.rate_per_minute.is_positive() {
            return Err(CallError::Rate.into());
        }
        let opening = Opening {
            ids: self.ids.as_ref(),
            caller_id: caller.user_id,
            request: &request,
            minutes_max: self.settings.call_minutes_max,
        };
        let (opening, key, now) = (&opening, self.key(idempotent.as_ref()), self.clock.now());
        transact(&self.store, |tx| work(open_call(tx, opening, key, now))).await
    }

    /// Ends a call (by either party or an admin) and bills it.
    pub async fn end_call(
        &self,
        caller: &Caller,
        call_id: CallId,
        idempotent: Option<Idempotent<CallSession>>,
    ) -> Result<CallSession, CallUseError> {
        let (ids, now, caller) = (self.ids.as_ref(), self.clock.now(), *caller);
        let key = self.key(idempotent.as_ref());
        transact(&self.store, |tx| {
            work(async move {
                key.claim(tx, now).await?;
                let call = tx.lock_call(call_id).await?.ok_or(CallUseError::NotFound)?;
                let involved = call.caller_id == caller.user_id || call.receiver_id == caller.user_id;
                if !(involved || caller.is_admin()) {
                    return Err(CallUseError::NotFound);
                }
                if call.status == CallStatus::Ended {
                    return Err(CallError::AlreadyEnded.into());
                }
                let call = finish_call(tx, ids, call, now, now).await?;
                key.complete(tx, &call, now).await?;
                Ok(call)
            })
        })
        .await
    }

    /// The job's part for calls: each active call within `CALL_EXTENSION_LEAD` of the end of its
    /// authorisation is extended by what the caller can afford now, or, once past that end with
    /// nothing more affordable, ended and billed at its limit (the receiver paid). Two calls of
    /// one caller never overspend: each extension reserves funds on the caller's locked wallet.
    /// Returns how many calls were extended or ended.
    #[tracing::instrument(name = "settle_due_calls", skip_all, fields(batch))]
    pub async fn settle_due_calls(&self, batch: usize) -> Result<usize, CallUseError> {
        let bound = self.clock.now() + CALL_EXTENSION_LEAD;
        let due = transact(&self.store, |tx| work(tx.find_calls_authorized_until(bound, batch))).await?;
        let mut handled = 0;
        for call_id in due {
            if self.settle_due_call(call_id).await? != CallSettlement::Untouched {
                handled += 1;
            }
        }
        Ok(handled)
    }

    async fn settle_due_call(&self, call_id: CallId) -> Result<CallSettlement, CallUseError> {
        let (ids, now) = (self.ids.as_ref(), self.clock.now());
        let minutes_max = self.settings.call_minutes_max;
        transact(&self.store, |tx| {
            work(async move {
                match tx.lock_call(call_id).await? {
                    Some(call) => extend_or_end(tx, ids, call, minutes_max, now).await,
                    None => Ok(CallSettlement::Untouched),
                }
            })
        })
        .await
    }

    /// Calls the user made or received, newest first.
    pub async fn list_calls(&self, caller: &Caller, page: &PageRequest) -> Result<Page<CallSession>, CallUseError> {
        Ok(transact_lagging(&self.store, |tx| work(tx.list_calls(caller.user_id, page))).await?)
    }

    /// The user a caller names by e-mail address, to start a call with them (`StartCall` takes
    /// their id). Any signed-in user may call any other, as any may send another money, and
    /// `transfer` finds its recipient by address the same way: an address no user has (or no
    /// address at all) is `ReceiverNotFound`, the caller's own is `SelfCall`.
    pub async fn call_receiver_by_email(&self, caller: &Caller, email: &str) -> Result<UserId, CallUseError> {
        let email = Email::parse(email).map_err(|_| CallUseError::ReceiverNotFound)?;
        let email = &email;
        let receiver = transact(&self.store, |tx| work(tx.find_user_by_email(email)))
            .await?
            .ok_or(CallUseError::ReceiverNotFound)?;
        if receiver.id == caller.user_id {
            return Err(CallError::SelfCall.into());
        }
        Ok(receiver.id)
    }
}

/// What starting a call needs besides the transaction.
struct Opening<'a> {
    ids: &'a dyn IdGenerator,
    caller_id: UserId,
    request: &'a StartCall,
    minutes_max: u32,
}

/// Starts a call: a hold on the caller's wallet for the minutes it covers.
async fn open_call<Tx: CallTx + IdempotencyRepository + UserRepository>(
    tx: &mut Tx,
    opening: &Opening<'_>,
    key: Key<'_, CallSession>,
    now: OffsetDateTime,
) -> Result<CallSession, CallUseError> {
    let Opening {
        ids,
        caller_id,
        request,
        minutes_max,
    } = *opening;
    key.claim(tx, now).await?;
    tx.find_user(request.receiver_id).await?.ok_or(CallUseError::ReceiverNotFound)?;
    let rate = request.rate_per_minute;
    let wallet = tx
        .find_user_wallet(caller_id, rate.currency())
        .await?
        .ok_or(CallError::CannotAffordFirstMinute { rate })?;
    let mut wallets = tx.lock_wallets(&[wallet.id()]).await?;
    let minutes = affordable_minutes(wallets[0].available(), rate, minutes_max)?;
    let (hold_id, call_id): (HoldId, CallId) = (next_id(ids), next_id(ids));
    let call = CallSession::start(call_id, caller_id, request.receiver_id, rate, hold_id, minutes, now)?;
    let terms = HoldTerms {
        reference: format!("call:{call_id}"),
        order_id: None,
        payee: None,
        placed_at: now,
        expires_at: call.authorized_until() + CALL_HOLD_GRACE,
    };
    let hold = Hold::place(hold_id, &mut wallets[0], call.authorized_amount()?, terms)?;
    tx.update_wallets(&wallets).await?;
    tx.insert_hold(&hold).await?;
    tx.insert_call(&call).await?;
    let started = DomainEvent::CallStarted {
        call_id,
        caller_id,
        receiver_id: request.receiver_id,
    };
    publish(tx, ids, started, now).await?;
    key.complete(tx, &call, now).await?;
    Ok(call)
}
