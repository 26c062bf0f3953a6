//! Withdrawals: money paid out of a wallet to an outside destination, in steps (the states are
//! `domain::withdrawal`'s).
//!
//! A request holds the amount on the wallet (a hold of the platform's own, no payee) and records
//! the withdrawal, in one transaction. At or below the approval threshold of its currency
//! (`Settings::withdrawal_approval`) it is approved in that same transaction; above it, it waits
//! for an admin, who approves or rejects it with a reason (a rejection releases the hold).
//!
//! An approved withdrawal is paid out by the first configured gateway of its currency that offers
//! payouts (`PayoutGateway`), like a card refund: the approving transaction records a follow-up
//! and, under an idempotency key, a recovery point; the provider is asked outside any transaction
//! with the key `payout-<withdrawal id>`; its answer is applied in a transaction of its own. Paid
//! captures the hold and posts the amount from the wallet to the payouts account; failed releases
//! the hold. A provider that cannot be reached, or that is still processing, leaves the
//! withdrawal approved for the follow-up job, which asks again under the same key and marks it
//! stuck after its attempts. When no configured gateway pays out in the currency, the withdrawal
//! is approved for `manual` settlement: someone pays it outside the platform and an admin marks
//! it paid or failed.
//!
//! Lock order: the withdrawal, then the wallets (by id), then the hold, then the follow-up, so an
//! admin's decision, the payout's outcome and the job never wait on each other in a cycle; and
//! whoever locks the withdrawal first decides its state (a second decision finds it decided).

use std::collections::BTreeMap;

use domain::events::DomainEvent;
use domain::follow_up::{FollowUp, FollowUpTask};
use domain::ids::{HoldId, UserId, WithdrawalId};
use domain::ledger::{Entry, JournalTransaction, LedgerError, TransactionKind};
use domain::money::{Currency, Money};
use domain::user::{AdminAction, AdminActionKind};
use domain::wallet::{Hold, HoldError, HoldTerms, SystemAccount, WalletError};
use domain::withdrawal::{PaidOut, REASON_CHARS_MAX, Settlement, Withdrawal, WithdrawalStatus, WithdrawalTerms, WithdrawalTransitionError};
use time::{Duration, OffsetDateTime};

use crate::caller::Caller;
use crate::context::App;
use crate::effects::publish;
use crate::follow_ups::{Attempt, FOLLOW_UP_LEASE, Failure, mark_follow_up_done};
use crate::idempotency::{Claim, IdempotencyError, Idempotent, Key, RecoveryPoint};
use crate::ledger::post_locked;
use crate::pagination::{Page, PageRequest};
use crate::ports::gateway::{GatewayError, PayoutRequest, PayoutStatus};
use crate::ports::store::{
    AdminAuditRepository, EventOutbox, FollowUpRepository, HoldRepository, IdempotencyRepository, LedgerRepository, StoreError,
    TransferRepository, UnitOfWork, WalletRepository, WithdrawalFilter,
};
use crate::ports::system::{IdGenerator, next_id};
use crate::transact::{transact, transact_lagging, work};
use crate::{from_posting_error, keyed, retryable};

/// How far out a withdrawal's hold expires. The hold-expiry job never takes the hold of a
/// withdrawal in flight (`find_expired_holds` excludes them), so this only has to be later than
/// any withdrawal could stay in flight; it is not what ends one.
const HOLD_EXPIRY: Duration = Duration::days(3650);

/// What a user withdraws.
#[derive(Debug, Clone)]
pub struct WithdrawalRequest {
    /// How much, in the wallet's currency.
    pub amount: Money,
    /// Where to pay it (1 to 200 characters).
    pub destination: String,
}

/// What an admin's decision or settlement says.
#[derive(Debug, Clone, Default)]
pub struct WithdrawalDecision {
    /// Required to reject and to mark failed; optional otherwise.
    pub reason: Option<String>,
    /// When marking a manual withdrawal paid: the outside payment's reference (a bank's).
    pub reference: Option<String>,
}

/// Why requesting, deciding or settling a withdrawal fails.
#[derive(Debug, thiserror::Error)]
pub enum WithdrawalError {
    /// The destination is empty or longer than 200 characters.
    #[error("the destination must have 1 to 200 characters")]
    Destination,
    /// The wallet's available balance is less than the amount.
    #[error("insufficient funds: {available} available")]
    InsufficientFunds {
        /// What the wallet could spend.
        available: Money,
    },
    /// The withdrawal does not exist (or is not the caller's).
    #[error("the withdrawal does not exist")]
    NotFound,
    /// The caller may not do this to this resource.
    #[error("only admins may do this")]
    Forbidden,
    /// A rejection (or a manual failure) without a reason.
    #[error("a reason is required")]
    ReasonRequired,
    /// The reason (or reference) is too long.
    #[error("the reason (and reference) must have at most {REASON_CHARS_MAX} characters")]
    Reason,
    /// The withdrawal's status does not allow the step (approving a rejected one...).
    #[error(transparent)]
    Transition(#[from] WithdrawalTransitionError),
    /// Marking by hand a withdrawal that a provider pays out.
    #[error("the withdrawal is paid out through {provider}, whose answer settles it: it cannot be marked by hand")]
    NotManual {
        /// The provider that pays it out.
        provider: String,
    },
    /// The hold refused the operation (not pending, too large, another wallet).
    #[error(transparent)]
    Hold(HoldError),
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

keyed!(WithdrawalError);
retryable!(WithdrawalError);
from_posting_error!(WithdrawalError, InsufficientFunds);

impl From<HoldError> for WithdrawalError {
    fn from(error: HoldError) -> Self {
        match error {
            HoldError::Wallet(WalletError::InsufficientFunds { available, .. }) => WithdrawalError::InsufficientFunds { available },
            other => WithdrawalError::Hold(other),
        }
    }
}

/// Per currency, the amount above which a withdrawal waits for an admin's approval. A currency
/// without one always waits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApprovalThresholds(BTreeMap<Currency, Money>);

impl ApprovalThresholds {
    /// The same number of major units in every currency (`1000`: 1,000.00 USD, 1,000 JPY).
    pub fn every_currency(major_units: u32) -> ApprovalThresholds {
        let text = major_units.to_string();
        ApprovalThresholds(
            Currency::ALL
                .into_iter()
                .filter_map(|currency| Money::parse(&text, currency).ok().map(|limit| (currency, limit)))
                .collect(),
        )
    }

    /// Sets (replaces) the threshold of the limit's currency.
    pub fn with(mut self, limit: Money) -> ApprovalThresholds {
        self.0.insert(limit.currency(), limit);
        self
    }

    /// The approval threshold of `currency`, if it has one (without one, every withdrawal waits).
    pub fn threshold(&self, currency: Currency) -> Option<Money> {
        self.0.get(&currency).copied()
    }

    /// Whether a withdrawal of `amount` waits for an admin.
    pub fn needs_approval(&self, amount: Money) -> bool {
        self.threshold(amount.currency())
            .is_none_or(|limit| amount.amount_minor() > limit.amount_minor())
    }
}

/// What a request's first transaction left to do.
struct Opened {
    withdrawal: Withdrawal,
    /// Whether this request should ask the provider (it approved the withdrawal, or resumes).
    pay_out: bool,
}

/// How a withdrawal ends, to apply.
enum Outcome {
    Paid { reference: Option<String>, by: Option<UserId> },
    Failed { reason: String, by: Option<UserId> },
    Rejected { reason: String, by: UserId },
}

/// An admin's action on one withdrawal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Approve,
    Reject,
    MarkPaid,
    MarkFailed,
}

impl Action {
    /// Whether a withdrawal in `status` already shows this action's effect: repeating it changes
    /// nothing.
    fn took_effect_in(self, status: WithdrawalStatus) -> bool {
        matches!(
            (self, status),
            (
                Action::Approve,
                WithdrawalStatus::Approved | WithdrawalStatus::Paid | WithdrawalStatus::Failed
            ) | (Action::Reject, WithdrawalStatus::Rejected)
                | (Action::MarkPaid, WithdrawalStatus::Paid)
                | (Action::MarkFailed, WithdrawalStatus::Failed)
        )
    }
}

/// The first transaction's inputs.
struct NewWithdrawal<'a> {
    id: WithdrawalId,
    hold_id: HoldId,
    user: UserId,
    request: &'a WithdrawalRequest,
    /// `None` when it waits for an admin; how it is paid out when approved at once.
    auto_approval: Option<Settlement>,
}

fn checked_reason(reason: Option<&str>, required: bool) -> Result<Option<&str>, WithdrawalError> {
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    if reason.is_some_and(|r| r.chars().count() > REASON_CHARS_MAX) {
        return Err(WithdrawalError::Reason);
    }
    if required && reason.is_none() {
        return Err(WithdrawalError::ReasonRequired);
    }
    Ok(reason)
}

fn changed(withdrawal: &Withdrawal) -> DomainEvent {
    let reason = match withdrawal.status() {
        WithdrawalStatus::Failed => withdrawal.failure_reason(),
        WithdrawalStatus::Rejected | WithdrawalStatus::Approved => withdrawal.reason(),
        WithdrawalStatus::Requested | WithdrawalStatus::Paid => None,
    };
    DomainEvent::WithdrawalChanged {
        withdrawal_id: withdrawal.id(),
        user_id: withdrawal.user_id(),
        amount: withdrawal.amount(),
        status: withdrawal.status(),
        reason: reason.map(str::to_owned),
    }
}

impl<U: UnitOfWork> App<U> {
    /// How an approved withdrawal in `currency` is paid out now.
    fn settlement_for(&self, currency: Currency) -> Settlement {
        match self.gateways.payout_provider(currency) {
            Some(provider) => Settlement::Payout(provider),
            None => Settlement::Manual,
        }
    }

    /// Holds the amount on the caller's wallet and records the withdrawal: approved and paid out
    /// at once at or below the threshold, waiting for an admin above it.
    #[tracing::instrument(name = "withdraw", skip_all, fields(user_id = %caller.user_id))]
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
        let request = WithdrawalRequest { destination, ..request };
        let auto_approval =
            (!self.settings.withdrawal_approval.needs_approval(request.amount)).then(|| self.settlement_for(request.amount.currency()));
        let new = NewWithdrawal {
            id: self.next_id(),
            hold_id: self.next_id(),
            user: caller.user_id,
            request: &request,
            auto_approval,
        };
        let (new, key, ids, now) = (&new, self.key(idempotent.as_ref()), self.ids.as_ref(), self.clock.now());
        let opened = transact(&self.store, |tx| work(open(tx, ids, new, key, now))).await?;
        self.finish(opened, key).await
    }

    /// Pays out what a step opened, if it should, and stores the request's response.
    async fn finish(&self, opened: Opened, key: Key<'_, Withdrawal>) -> Result<Withdrawal, WithdrawalError> {
        if !opened.pay_out {
            return Ok(opened.withdrawal);
        }
        let withdrawal = self.pay_out(opened.withdrawal, Attempt::Inline).await?;
        let (withdrawal_ref, now) = (&withdrawal, self.clock.now());
        transact(&self.store, |tx| work(key.complete(tx, withdrawal_ref, now))).await?;
        Ok(withdrawal)
    }

    /// Asks the provider to pay out an approved withdrawal and applies its answer. An answer that
    /// does not settle it (no answer, or still processing) is recorded on its follow-up, and the
    /// withdrawal stays approved for the job.
    pub(crate) async fn pay_out(&self, withdrawal: Withdrawal, attempt: Attempt) -> Result<Withdrawal, WithdrawalError> {
        let Some(Settlement::Payout(provider)) = withdrawal.settlement().cloned() else {
            return Ok(withdrawal);
        };
        if !withdrawal.awaits_payout() {
            return Ok(withdrawal);
        }
        let task = FollowUpTask::Payout(withdrawal.id());
        let Some(gateway) = self.gateways.get(&provider).cloned() else {
            let error = format!("the payout provider {provider} is not configured on this server");
            self.record_failed_attempt(task, &error, Failure::Temporary, attempt).await?;
            return Ok(withdrawal);
        };
        let Some(payouts) = gateway.payouts() else {
            let error = format!("the provider {provider} no longer offers payouts");
            self.record_failed_attempt(task, &error, Failure::Temporary, attempt).await?;
            return Ok(withdrawal);
        };
        let request = PayoutRequest {
            withdrawal_id: withdrawal.id(),
            amount: withdrawal.amount(),
            destination: withdrawal.destination().to_owned(),
            idempotency_key: format!("payout-{}", withdrawal.id()),
        };
        let id = withdrawal.id();
        // Payouts are reached past the gateway's monitoring, so their call is traced here.
        match crate::ports::gateway::traced(&provider, "create_payout", payouts.create_payout(request)).await {
            Ok(payout) => match payout.status {
                PayoutStatus::Paid => {
                    let paid = Outcome::Paid {
                        reference: Some(payout.provider_reference),
                        by: None,
                    };
                    self.settle(id, paid).await
                }
                PayoutStatus::Failed(reason) => self.settle(id, Outcome::Failed { reason, by: None }).await,
                PayoutStatus::Pending => {
                    let noted = self.note_reference(id, &payout.provider_reference).await?;
                    let still = "the provider is still processing the payout";
                    self.record_failed_attempt(task, still, Failure::Temporary, attempt).await?;
                    Ok(noted)
                }
            },
            Err(error) if error.may_pass() => {
                tracing::warn!(%error, withdrawal_id = %id, "the provider could not pay out yet; the withdrawal stays approved for the follow-up job");
                self.record_failed_attempt(task, &error.to_string(), Failure::Temporary, attempt)
                    .await?;
                Ok(withdrawal)
            }
            Err(error) => {
                let reason = refusal(&error);
                self.settle(id, Outcome::Failed { reason, by: None }).await
            }
        }
    }

    /// Applies a payout's outcome, if the withdrawal still waits for one.
    async fn settle(&self, id: WithdrawalId, outcome: Outcome) -> Result<Withdrawal, WithdrawalError> {
        let (ids, now, outcome) = (self.ids.as_ref(), self.clock.now(), &outcome);
        transact(&self.store, |tx| {
            work(async move {
                let withdrawal = tx.lock_withdrawal(id).await?.ok_or(WithdrawalError::NotFound)?;
                if !withdrawal.awaits_payout() {
                    return Ok(withdrawal);
                }
                end(tx, ids, withdrawal, outcome, now).await
            })
        })
        .await
    }

    async fn note_reference(&self, id: WithdrawalId, reference: &str) -> Result<Withdrawal, WithdrawalError> {
        let now = self.clock.now();
        transact(&self.store, |tx| {
            work(async move {
                let withdrawal = tx.lock_withdrawal(id).await?.ok_or(WithdrawalError::NotFound)?;
                if !withdrawal.awaits_payout() {
                    return Ok(withdrawal);
                }
                let noted = withdrawal.record_provider_reference(reference, now)?;
                tx.update_withdrawal(&noted).await?;
                Ok(noted)
            })
        })
        .await
    }

    /// The follow-up job's attempt at a payout.
    pub(crate) async fn retry_payout(&self, id: WithdrawalId) -> Result<(), WithdrawalError> {
        let found = transact(&self.store, |tx| work(tx.find_withdrawal(id))).await?;
        match found {
            Some(withdrawal) if withdrawal.awaits_payout() => {
                self.pay_out(withdrawal, Attempt::Claimed).await?;
                Ok(())
            }
            _ => Ok(self.follow_up_done(FollowUpTask::Payout(id)).await?),
        }
    }

    /// The caller's own withdrawals, newest first.
    pub async fn my_withdrawals(&self, caller: &Caller, page: &PageRequest) -> Result<Page<Withdrawal>, WithdrawalError> {
        let user = caller.user_id;
        Ok(transact_lagging(&self.store, |tx| work(tx.list_user_withdrawals(user, page))).await?)
    }

    /// Every withdrawal that `filter` keeps, newest first, for admins.
    pub async fn admin_withdrawals(
        &self,
        caller: &Caller,
        filter: WithdrawalFilter,
        page: &PageRequest,
    ) -> Result<Page<Withdrawal>, WithdrawalError> {
        if !caller.is_admin() {
            return Err(WithdrawalError::Forbidden);
        }
        Ok(transact_lagging(&self.store, |tx| work(tx.list_withdrawals(filter, page))).await?)
    }

    /// One withdrawal, for its owner or an admin.
    ///
    /// # Errors
    /// [`WithdrawalError::NotFound`] if it does not exist or is someone else's.
    pub async fn withdrawal(&self, caller: &Caller, id: WithdrawalId) -> Result<Withdrawal, WithdrawalError> {
        transact(&self.store, |tx| work(tx.find_withdrawal(id)))
            .await?
            .filter(|w| w.user_id() == caller.user_id || caller.is_admin())
            .ok_or(WithdrawalError::NotFound)
    }

    /// An admin approves a requested withdrawal, which is then paid out (or left for manual
    /// settlement). Approving an approved, paid or failed one changes nothing.
    #[tracing::instrument(name = "approve_withdrawal", skip_all, fields(user_id = %caller.user_id, withdrawal_id = %id))]
    pub async fn approve_withdrawal(
        &self,
        caller: &Caller,
        id: WithdrawalId,
        decision: WithdrawalDecision,
        idempotent: Option<Idempotent<Withdrawal>>,
    ) -> Result<Withdrawal, WithdrawalError> {
        self.act(caller, id, Action::Approve, decision, idempotent).await
    }

    /// An admin rejects a requested withdrawal with a reason; its hold is released. Rejecting a
    /// rejected one changes nothing.
    pub async fn reject_withdrawal(
        &self,
        caller: &Caller,
        id: WithdrawalId,
        decision: WithdrawalDecision,
        idempotent: Option<Idempotent<Withdrawal>>,
    ) -> Result<Withdrawal, WithdrawalError> {
        self.act(caller, id, Action::Reject, decision, idempotent).await
    }

    /// An admin records that a withdrawal left for manual settlement was paid outside the
    /// platform: the hold is captured and the money leaves the books.
    pub async fn mark_withdrawal_paid(
        &self,
        caller: &Caller,
        id: WithdrawalId,
        decision: WithdrawalDecision,
        idempotent: Option<Idempotent<Withdrawal>>,
    ) -> Result<Withdrawal, WithdrawalError> {
        self.act(caller, id, Action::MarkPaid, decision, idempotent).await
    }

    /// An admin records that a withdrawal left for manual settlement could not be paid, with a
    /// reason: the hold is released.
    pub async fn mark_withdrawal_failed(
        &self,
        caller: &Caller,
        id: WithdrawalId,
        decision: WithdrawalDecision,
        idempotent: Option<Idempotent<Withdrawal>>,
    ) -> Result<Withdrawal, WithdrawalError> {
        self.act(caller, id, Action::MarkFailed, decision, idempotent).await
    }

    async fn act(
        &self,
        caller: &Caller,
        id: WithdrawalId,
        action: Action,
        decision: WithdrawalDecision,
        idempotent: Option<Idempotent<Withdrawal>>,
    ) -> Result<Withdrawal, WithdrawalError> {
        if !caller.is_admin() {
            return Err(WithdrawalError::Forbidden);
        }
        let required = matches!(action, Action::Reject | Action::MarkFailed);
        checked_reason(decision.reason.as_deref(), required)?;
        checked_reason(decision.reference.as_deref(), false)?;
        let (ids, key, now, admin) = (self.ids.as_ref(), self.key(idempotent.as_ref()), self.clock.now(), caller.user_id);
        // Decided before the transaction: which provider pays out if this approves it.
        let settlement = &self.settlement_of(id).await?;
        let context = AdminStep {
            id,
            admin,
            action,
            decision: &decision,
            settlement,
        };
        let context = &context;
        let opened = transact(&self.store, |tx| work(admin_step(tx, ids, context, key, now))).await?;
        self.finish(opened, key).await
    }

    /// How the withdrawal would be paid out if approved now (`Manual` when it does not exist:
    /// the transaction then finds it missing).
    async fn settlement_of(&self, id: WithdrawalId) -> Result<Settlement, WithdrawalError> {
        let found = transact(&self.store, |tx| work(tx.find_withdrawal(id))).await?;
        Ok(found.map_or(Settlement::Manual, |w| self.settlement_for(w.amount().currency())))
    }
}

/// The reason a refused payout failed with.
fn refusal(error: &GatewayError) -> String {
    format!("the provider refused the payout: {error}")
}

/// First transaction of a request: claims the key, holds the amount and records the withdrawal
/// (approved when below the threshold), or finds what an earlier attempt under the key recorded.
async fn open<Tx>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    new: &NewWithdrawal<'_>,
    key: Key<'_, Withdrawal>,
    now: OffsetDateTime,
) -> Result<Opened, WithdrawalError>
where
    Tx: IdempotencyRepository + WalletRepository + HoldRepository + TransferRepository + FollowUpRepository + EventOutbox + Send,
{
    if let Claim::Resume(point) = key.claim(tx, now).await? {
        return resume(tx, &point).await;
    }
    let amount = new.request.amount;
    let currency = amount.currency();
    let wallet = tx
        .find_user_wallet(new.user, currency)
        .await?
        .ok_or(WithdrawalError::InsufficientFunds {
            available: Money::zero(currency),
        })?;
    let mut wallets = tx.lock_wallets(&[wallet.id()]).await?;
    let terms = HoldTerms {
        reference: format!("withdrawal:{}", new.id),
        payee: None,
        order_id: None,
        placed_at: now,
        expires_at: now + HOLD_EXPIRY,
    };
    let hold = Hold::place(new.hold_id, &mut wallets[0], amount, terms)?;
    tx.update_wallets(&wallets).await?;
    tx.insert_hold(&hold).await?;
    let terms = WithdrawalTerms {
        user_id: new.user,
        amount,
        destination: new.request.destination.clone(),
        hold_id: hold.id,
    };
    let mut withdrawal = Withdrawal::request(new.id, terms, now);
    publish(tx, ids, changed(&withdrawal), now).await?;
    if let Some(settlement) = &new.auto_approval {
        withdrawal = withdrawal.approve(None, None, settlement.clone(), now)?;
        publish(tx, ids, changed(&withdrawal), now).await?;
    }
    tx.insert_withdrawal(&withdrawal).await?;
    checkpoint(tx, &withdrawal, key, now).await
}

/// After a step that may have approved the withdrawal: a payout to make gets a follow-up and a
/// recovery point (the response is stored once the provider has answered); anything else is
/// answered now.
async fn checkpoint<Tx>(
    tx: &mut Tx,
    withdrawal: &Withdrawal,
    key: Key<'_, Withdrawal>,
    now: OffsetDateTime,
) -> Result<Opened, WithdrawalError>
where
    Tx: IdempotencyRepository + FollowUpRepository + Send,
{
    if withdrawal.awaits_payout() {
        // The request asks the provider itself first; the job only if that fails.
        let follow_up = FollowUp::schedule(FollowUpTask::Payout(withdrawal.id()), now + FOLLOW_UP_LEASE, now);
        tx.insert_follow_up(&follow_up).await?;
        key.mark(tx, &RecoveryPoint::Withdrawal(withdrawal.id())).await?;
        return Ok(Opened {
            withdrawal: withdrawal.clone(),
            pay_out: true,
        });
    }
    key.complete(tx, withdrawal, now).await?;
    Ok(Opened {
        withdrawal: withdrawal.clone(),
        pay_out: false,
    })
}

/// The withdrawal an earlier attempt under the key approved: ask the provider again if it still
/// waits for its payout.
async fn resume<Tx: TransferRepository + Send>(tx: &mut Tx, point: &RecoveryPoint) -> Result<Opened, WithdrawalError> {
    let RecoveryPoint::Withdrawal(id) = point else {
        return Err(StoreError::Corrupt(format!("a withdrawal request's key points at {}", point.code())).into());
    };
    let withdrawal = tx
        .find_withdrawal(*id)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("the key's withdrawal {id} is missing")))?;
    Ok(Opened { withdrawal, pay_out: true })
}

struct AdminStep<'a> {
    id: WithdrawalId,
    admin: UserId,
    action: Action,
    decision: &'a WithdrawalDecision,
    settlement: &'a Settlement,
}

/// An admin's decision on a withdrawal, in the admins' audit trail.
async fn record_decision<Tx: AdminAuditRepository + Send>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    context: &AdminStep<'_>,
    reason: Option<&str>,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let kind = match context.action {
        Action::Approve => AdminActionKind::WithdrawalApproved,
        Action::Reject => AdminActionKind::WithdrawalRejected,
        Action::MarkPaid => AdminActionKind::WithdrawalMarkedPaid,
        Action::MarkFailed => AdminActionKind::WithdrawalMarkedFailed,
    };
    let entry = AdminAction {
        id: next_id(ids),
        admin_id: context.admin,
        kind,
        subject: format!("withdrawal:{}", context.id),
        reason: reason.unwrap_or("no reason given").to_owned(),
        details: context.decision.reference.clone().unwrap_or_default(),
        at: now,
    };
    tx.record_admin_action(&entry).await
}

/// The transaction of an admin's action: the withdrawal is locked, so of two actions racing on it
/// the first decides and the second finds it decided (the same decision again changes nothing;
/// another is refused as a wrong-state transition).
async fn admin_step<Tx>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    context: &AdminStep<'_>,
    key: Key<'_, Withdrawal>,
    now: OffsetDateTime,
) -> Result<Opened, WithdrawalError>
where
    Tx: IdempotencyRepository
        + AdminAuditRepository
        + WalletRepository
        + LedgerRepository
        + HoldRepository
        + TransferRepository
        + FollowUpRepository
        + EventOutbox
        + Send,
{
    if let Claim::Resume(point) = key.claim(tx, now).await? {
        return resume(tx, &point).await;
    }
    let withdrawal = tx.lock_withdrawal(context.id).await?.ok_or(WithdrawalError::NotFound)?;
    let reason = context.decision.reason.as_deref().map(str::trim).filter(|r| !r.is_empty());
    let status = withdrawal.status();
    let by = Some(context.admin);
    if context.action.took_effect_in(status) {
        key.complete(tx, &withdrawal, now).await?;
        return Ok(Opened {
            withdrawal,
            pay_out: false,
        });
    }
    // In the admins' trail too; the transaction rolls it back if the step is refused.
    record_decision(tx, ids, context, reason, now).await?;
    let done = match (context.action, status) {
        (Action::Approve, _) => {
            let approved = withdrawal.approve(by, reason, context.settlement.clone(), now)?;
            tx.update_withdrawal(&approved).await?;
            publish(tx, ids, changed(&approved), now).await?;
            return checkpoint(tx, &approved, key, now).await;
        }
        (Action::Reject, _) => {
            let rejected = Outcome::Rejected {
                reason: reason.unwrap_or_default().to_owned(),
                by: context.admin,
            };
            end(tx, ids, withdrawal, &rejected, now).await?
        }
        (Action::MarkPaid | Action::MarkFailed, WithdrawalStatus::Approved) if !withdrawal.awaits_manual_settlement() => {
            let provider = withdrawal.settlement().and_then(Settlement::provider);
            return Err(WithdrawalError::NotManual {
                provider: provider.map_or_else(|| "a provider".to_owned(), ToString::to_string),
            });
        }
        (Action::MarkPaid, _) => {
            let reference = context.decision.reference.as_deref().map(str::trim).filter(|r| !r.is_empty());
            let paid = Outcome::Paid {
                reference: reference.map(str::to_owned),
                by,
            };
            end(tx, ids, withdrawal, &paid, now).await?
        }
        (Action::MarkFailed, _) => {
            let failed = Outcome::Failed {
                reason: reason.unwrap_or_default().to_owned(),
                by,
            };
            end(tx, ids, withdrawal, &failed, now).await?
        }
    };
    key.complete(tx, &done, now).await?;
    Ok(Opened {
        withdrawal: done,
        pay_out: false,
    })
}

/// Ends a withdrawal the caller has locked: paid (the hold captured, the amount posted from the
/// wallet to the payouts account), or failed or rejected (the hold released, the ledger
/// untouched). The domain checks the transition before anything is touched.
async fn end<Tx>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    withdrawal: Withdrawal,
    outcome: &Outcome,
    now: OffsetDateTime,
) -> Result<Withdrawal, WithdrawalError>
where
    Tx: WalletRepository + LedgerRepository + HoldRepository + TransferRepository + FollowUpRepository + EventOutbox + Send,
{
    let ended = match outcome {
        Outcome::Paid { reference, by } => {
            let paid = PaidOut {
                transaction_id: next_id(ids),
                provider_reference: reference.clone(),
                settled_by: *by,
            };
            withdrawal.clone().pay(paid, now)?
        }
        Outcome::Failed { reason, by } => withdrawal.clone().fail(reason, *by, now)?,
        Outcome::Rejected { reason, by } => withdrawal.clone().reject(*by, reason, now)?,
    };
    let hold_id = withdrawal
        .hold_id()
        .ok_or_else(|| StoreError::Corrupt(format!("withdrawal {} in flight has no hold", withdrawal.id())))?;
    let hold = tx
        .find_hold(hold_id)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("the hold of withdrawal {} is missing", withdrawal.id())))?;
    match ended.transaction_id() {
        Some(transaction_id) => capture_and_post(tx, ids, &withdrawal, hold.wallet_id, hold_id, transaction_id, now).await?,
        None => {
            let mut wallets = tx.lock_wallets(&[hold.wallet_id]).await?;
            let hold = tx.lock_hold(hold_id).await?.ok_or(WithdrawalError::NotFound)?;
            let hold = hold.release(&mut wallets[0], now)?;
            tx.update_wallets(&wallets).await?;
            tx.update_hold(&hold).await?;
        }
    }
    tx.update_withdrawal(&ended).await?;
    mark_follow_up_done(tx, FollowUpTask::Payout(ended.id()), now).await?;
    publish(tx, ids, changed(&ended), now).await?;
    Ok(ended)
}

/// Captures the withdrawal's hold and posts its amount from the wallet to the payouts account.
async fn capture_and_post<Tx>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    withdrawal: &Withdrawal,
    wallet_id: domain::ids::WalletId,
    hold_id: HoldId,
    transaction_id: domain::ids::TransactionId,
    now: OffsetDateTime,
) -> Result<(), WithdrawalError>
where
    Tx: WalletRepository + LedgerRepository + HoldRepository + Send,
{
    let amount = withdrawal.amount();
    let payouts = tx
        .ensure_system_wallet(&SystemAccount::Payouts, amount.currency(), next_id(ids), now)
        .await?;
    let mut wallets = tx.lock_wallets(&[wallet_id, payouts]).await?;
    let hold = tx.lock_hold(hold_id).await?.ok_or(WithdrawalError::NotFound)?;
    let index = wallets
        .iter()
        .position(|w| w.id() == wallet_id)
        .ok_or_else(|| StoreError::Corrupt(format!("wallet {wallet_id} is missing")))?;
    let hold = hold.capture(&mut wallets[index], amount, now)?;
    let debit = Entry::debit(wallet_id, amount).map_err(|e| {
        WithdrawalError::Ledger(LedgerError::Wallet {
            wallet_id,
            source: e.into(),
        })
    })?;
    let reference = format!("withdrawal:{}", withdrawal.id());
    let entries = vec![debit, Entry::credit(payouts, amount)];
    let journal =
        JournalTransaction::new(transaction_id, TransactionKind::Withdrawal, reference, entries, now).map_err(WithdrawalError::Ledger)?;
    post_locked(tx, &journal, &mut wallets).await?;
    tx.update_hold(&hold).await?;
    Ok(())
}
