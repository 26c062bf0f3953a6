//! Metered call sessions: authorised up front with a hold, charged per started minute at the end.

use domain::call::{CallError, CallSession, CallStatus, affordable_minutes};
use domain::events::DomainEvent;
use domain::ids::{CallId, HoldId, UserId, WalletId};
use domain::ledger::{Entry, JournalTransaction, LedgerError, TransactionKind};
use domain::money::{Money, MoneyError};
use domain::wallet::{Hold, HoldError, HoldTerms, Wallet};
use time::{Duration, OffsetDateTime};

use crate::auth::Caller;
use crate::context::App;
use crate::idempotency::{self, IdempotencyError, Idempotent};
use crate::ledger::{PostingError, post_locked};
use crate::orders::event;
use crate::pagination::{Page, PageRequest};
use crate::ports::store::{
    CallRepository, EventOutbox, HoldRepository, StoreError, Transaction, UnitOfWork, UserRepository, WalletRepository,
};
use crate::ports::system::{IdGenerator, next_id};
use crate::transact::transact;
use crate::{keyed, retryable};

#[derive(Debug, Clone)]
pub struct StartCall {
    pub receiver_id: UserId,
    pub rate_per_minute: Money,
}

#[derive(Debug, thiserror::Error)]
pub enum CallUseError {
    #[error("the receiver does not exist")]
    ReceiverNotFound,
    #[error("the call does not exist")]
    NotFound,
    #[error("only the caller, the receiver or an admin may end a call")]
    Forbidden,
    #[error(transparent)]
    Call(#[from] CallError),
    #[error(transparent)]
    Hold(#[from] HoldError),
    #[error(transparent)]
    Ledger(LedgerError),
    #[error(transparent)]
    Money(#[from] MoneyError),
    #[error(transparent)]
    Idempotency(IdempotencyError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

retryable!(CallUseError);
keyed!(CallUseError);

impl From<PostingError> for CallUseError {
    fn from(error: PostingError) -> Self {
        match error {
            PostingError::Store(error) => CallUseError::Store(error),
            PostingError::Ledger(error) => CallUseError::Ledger(error),
        }
    }
}

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
async fn lock_call_parties<Tx: Transaction>(
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
async fn finish_call<Tx: Transaction>(
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
    tx.enqueue_events(&[event(ids, ended, now)]).await?;
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
async fn extend_or_end<Tx: Transaction>(
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
        let now = self.clock.now();
        let ids = self.ids.as_ref();
        let minutes_max = self.settings.call_minutes_max;
        let (caller_id, request, idempotent) = (caller.user_id, &request, idempotent.as_ref());
        let lease = self.settings.idempotency_lease;
        transact(&self.store, move |mut tx| async move {
            let result: Result<_, CallUseError> = async {
                idempotency::claim(&mut tx, idempotent, now, lease).await?;
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
                tx.enqueue_events(&[event(ids, started, now)]).await?;
                idempotency::complete(&mut tx, idempotent, &call, now).await?;
                Ok(call)
            }
            .await;
            (tx, result)
        })
        .await
    }

    /// Ends a call (by either party or an admin) and bills it.
    pub async fn end_call(
        &self,
        caller: &Caller,
        call_id: CallId,
        idempotent: Option<Idempotent<CallSession>>,
    ) -> Result<CallSession, CallUseError> {
        let now = self.clock.now();
        let ids = self.ids.as_ref();
        let (caller, idempotent) = (*caller, idempotent.as_ref());
        let lease = self.settings.idempotency_lease;
        transact(&self.store, move |mut tx| async move {
            let result: Result<_, CallUseError> = async {
                idempotency::claim(&mut tx, idempotent, now, lease).await?;
                let call = tx.lock_call(call_id).await?.ok_or(CallUseError::NotFound)?;
                let involved = call.caller_id == caller.user_id || call.receiver_id == caller.user_id;
                if !(involved || caller.is_admin()) {
                    return Err(CallUseError::NotFound);
                }
                if call.status == CallStatus::Ended {
                    return Err(CallError::AlreadyEnded.into());
                }
                let call = finish_call(&mut tx, ids, call, now, now).await?;
                idempotency::complete(&mut tx, idempotent, &call, now).await?;
                Ok(call)
            }
            .await;
            (tx, result)
        })
        .await
    }

    /// The job's part for calls: each active call within `CALL_EXTENSION_LEAD` of the end of its
    /// authorisation is extended by what the caller can afford now, or, once past that end with
    /// nothing more affordable, ended and billed at its limit (the receiver paid). Two calls of
    /// one caller never overspend: each extension reserves funds on the caller's locked wallet.
    /// Returns how many calls were extended or ended.
    pub async fn settle_due_calls(&self, batch: usize) -> Result<usize, CallUseError> {
        let now = self.clock.now();
        let bound = now + CALL_EXTENSION_LEAD;
        let due = transact(&self.store, move |mut tx| async move {
            let result = tx.find_calls_authorized_until(bound, batch).await.map_err(CallUseError::from);
            (tx, result)
        })
        .await?;
        let mut handled = 0;
        for call_id in due {
            if self.settle_due_call(call_id).await? != CallSettlement::Untouched {
                handled += 1;
            }
        }
        Ok(handled)
    }

    async fn settle_due_call(&self, call_id: CallId) -> Result<CallSettlement, CallUseError> {
        let now = self.clock.now();
        let ids = self.ids.as_ref();
        let minutes_max = self.settings.call_minutes_max;
        transact(&self.store, move |mut tx| async move {
            let result = async {
                let Some(call) = tx.lock_call(call_id).await? else {
                    return Ok(CallSettlement::Untouched);
                };
                extend_or_end(&mut tx, ids, call, minutes_max, now).await
            }
            .await;
            (tx, result)
        })
        .await
    }

    /// Calls the user made or received, newest first.
    pub async fn list_calls(&self, caller: &Caller, page: &PageRequest) -> Result<Page<CallSession>, CallUseError> {
        let user = caller.user_id;
        transact(&self.store, move |mut tx| async move {
            let result = tx.list_calls(user, page).await.map_err(CallUseError::from);
            (tx, result)
        })
        .await
    }
}
