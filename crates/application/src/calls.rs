//! Metered call sessions: authorised up front with a hold, charged per started minute at the end.

use domain::call::{CallError, CallSession, CallStatus, affordable_minutes};
use domain::events::DomainEvent;
use domain::ids::{CallId, HoldId, UserId, WalletId};
use domain::ledger::{Entry, JournalTransaction, LedgerError, TransactionKind};
use domain::money::{Money, MoneyError};
use domain::wallet::{Hold, HoldError};

use crate::auth::Caller;
use crate::context::App;
use crate::idempotency::{Idempotent, complete_if_claimed};
use crate::ledger::{PostingError, post_locked};
use crate::orders::event;
use crate::pagination::{Page, PageRequest};
use crate::ports::store::{CallRepository, EventOutbox, HoldRepository, StoreError, UnitOfWork, UserRepository, WalletRepository};
use crate::ports::system::next_id;
use crate::retryable;
use crate::transact::transact;

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
    Store(#[from] StoreError),
}

retryable!(CallUseError);

impl From<PostingError> for CallUseError {
    fn from(error: PostingError) -> Self {
        match error {
            PostingError::Store(error) => CallUseError::Store(error),
            PostingError::Ledger(error) => CallUseError::Ledger(error),
        }
    }
}

impl<U: UnitOfWork> App<U> {
    /// Starts a call. The caller must afford at least the first minute; a hold reserves as many
    /// whole minutes as the wallet covers, up to the configured maximum.
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
        transact(&self.store, move |mut tx| async move {
            let result: Result<_, CallUseError> = async {
                tx.find_user(request.receiver_id).await?.ok_or(CallUseError::ReceiverNotFound)?;
                let rate = request.rate_per_minute;
                let wallet = tx
                    .find_user_wallet(caller_id, rate.currency())
                    .await?
                    .ok_or(CallError::CannotAffordFirstMinute { rate })?;
                let mut wallets = tx.lock_wallets(&[wallet.id()]).await?;
                let minutes = affordable_minutes(wallets[0].available(), rate, minutes_max)?;
                let hold_id: HoldId = next_id(ids);
                let call_id: CallId = next_id(ids);
                let authorized = rate.checked_mul(i64::from(minutes))?;
                let hold = Hold::place(hold_id, &mut wallets[0], authorized, format!("call:{call_id}"), now)?;
                let call = CallSession::start(call_id, caller_id, request.receiver_id, rate, hold_id, minutes, now)?;
                tx.update_wallets(&wallets).await?;
                tx.insert_hold(&hold).await?;
                tx.insert_call(&call).await?;
                let started = DomainEvent::CallStarted {
                    call_id,
                    caller_id,
                    receiver_id: request.receiver_id,
                };
                tx.enqueue_events(&[event(ids, started, now)]).await?;
                complete_if_claimed(idempotent, &mut tx, &call, now).await?;
                Ok(call)
            }
            .await;
            (tx, result)
        })
        .await
    }

    /// Ends a call: the started minutes (at most the authorised ones) are captured from the hold
    /// and paid to the receiver; the rest of the hold is released.
    pub async fn end_call(
        &self,
        caller: &Caller,
        call_id: CallId,
        idempotent: Option<Idempotent<CallSession>>,
    ) -> Result<CallSession, CallUseError> {
        let now = self.clock.now();
        let ids = self.ids.as_ref();
        let (caller, idempotent) = (*caller, idempotent.as_ref());
        transact(&self.store, move |mut tx| async move {
            let result: Result<_, CallUseError> = async {
                let peeked = tx.lock_call(call_id).await?.ok_or(CallUseError::NotFound)?;
                let involved = peeked.caller_id == caller.user_id || peeked.receiver_id == caller.user_id;
                if !(involved || caller.is_admin()) {
                    return Err(CallUseError::NotFound);
                }
                if peeked.status == CallStatus::Ended {
                    return Err(CallError::AlreadyEnded.into());
                }
                let currency = peeked.rate_per_minute.currency();
                let receiver_wallet: WalletId = tx.ensure_user_wallet(peeked.receiver_id, currency, next_id(ids), now).await?;
                let hold = tx
                    .find_hold(peeked.hold_id)
                    .await?
                    .ok_or_else(|| StoreError::Corrupt(format!("call {call_id} has no hold")))?;
                let mut wallets = tx.lock_wallets(&[hold.wallet_id, receiver_wallet]).await?;
                let hold = tx
                    .lock_hold(hold.id)
                    .await?
                    .ok_or_else(|| StoreError::Corrupt(format!("call {call_id} has no hold")))?;
                let call = peeked.end(now)?;
                let caller_index = wallets
                    .iter()
                    .position(|w| w.id() == hold.wallet_id)
                    .ok_or_else(|| StoreError::Corrupt("hold wallet not locked".into()))?;
                let hold = hold.capture(&mut wallets[caller_index], call.charged, now)?;
                let journal = JournalTransaction::new(
                    next_id(ids),
                    TransactionKind::CallCharge,
                    format!("call:{call_id}"),
                    vec![
                        Entry::debit(hold.wallet_id, call.charged)?,
                        Entry::credit(receiver_wallet, call.charged),
                    ],
                    now,
                )
                .map_err(CallUseError::Ledger)?;
                post_locked(&mut tx, &journal, &mut wallets).await?;
                tx.update_hold(&hold).await?;
                tx.update_call(&call).await?;
                let ended = DomainEvent::CallEnded {
                    call_id,
                    minutes: call.billed_minutes,
                    charged: call.charged,
                };
                tx.enqueue_events(&[event(ids, ended, now)]).await?;
                complete_if_claimed(idempotent, &mut tx, &call, now).await?;
                Ok(call)
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
