//! Refunds of paid orders, by merchants and admins.
//!
//! A wallet payment is refunded in one transaction: the merchant's wallet to the buyer's. A card
//! payment takes three steps. The first transaction moves the merchant's share to the gateway's
//! clearing account, records the refund `pending` with a follow-up, and (under an idempotency
//! key) a recovery point. Then the gateway is asked, with the provider idempotency key
//! `refund-<refund id>`, outside any transaction. Its answer is recorded in a third transaction
//! (`payments::settle_refund`), which settles the follow-up too. If the gateway cannot be reached,
//! the refund stays pending and the follow-up job asks again later with the same provider key; a
//! retried request under the same idempotency key resumes at the gateway call. A refund therefore
//! ends succeeded, failed (the money back in the merchant's wallet), or stuck where admins see
//! it, and is never sent twice.

use std::collections::BTreeMap;

use domain::events::DomainEvent;
use domain::follow_up::{FollowUp, FollowUpTask};
use domain::ids::{OrderId, RefundId, UserId};
use domain::ledger::{Entry, JournalTransaction, LedgerError, TransactionKind};
use domain::money::{Money, MoneyError};
use domain::order::{Actor, Order, OrderError, OrderStatus, PaymentMethod, TransitionError};
use domain::payment::{Payment, PaymentPurpose, PaymentStatus, ProviderName, Refund, RefundStatus};
use domain::user::Role;
use domain::wallet::{SystemAccount, Wallet};
use time::OffsetDateTime;

use crate::auth::Caller;
use crate::context::App;
use crate::follow_ups::FOLLOW_UP_LEASE;
use crate::idempotency::{self, Claim, IdempotencyError, Idempotent, RecoveryPoint};
use crate::ledger::{PostingError, post, post_locked};
use crate::orders::{event, status_events};
use crate::payments::{EventOutcome, GatewayEventError, lock_referenced};
use crate::ports::gateway::{GatewayError, GatewayRefundStatus, PaymentReference, RefundRequest, RefundUpdate};
use crate::ports::store::{RefundRepository, StoreError, Transaction, UnitOfWork};
use crate::ports::system::{IdGenerator, next_id};
use crate::transact::transact;
use crate::wallets::system_wallet;
use crate::{keyed, retryable};

#[derive(Debug, thiserror::Error)]
pub enum RefundError {
    #[error("the order does not exist")]
    NotFound,
    #[error("only the order's merchants and admins may refund it")]
    Forbidden,
    #[error("an order that is {0} cannot be refunded")]
    NotRefundable(OrderStatus),
    #[error("the order has several merchants: say whose share to refund")]
    MerchantRequired,
    #[error("nothing is left to refund")]
    NothingToRefund,
    #[error("at most {refundable} can be refunded")]
    ExceedsRefundable { refundable: Money },
    #[error("the refund amount must be positive and in the order's currency")]
    InvalidAmount,
    #[error("the reason must have at most 500 characters")]
    Reason,
    #[error("the merchant's wallet cannot cover the refund: {available} available")]
    MerchantInsufficientFunds { available: Money },
    #[error("the card payment cannot be refunded through its gateway")]
    PaymentNotRefundable,
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    #[error(transparent)]
    Order(#[from] OrderError),
    #[error(transparent)]
    Ledger(LedgerError),
    #[error(transparent)]
    Money(#[from] MoneyError),
    #[error(transparent)]
    Idempotency(IdempotencyError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

retryable!(RefundError);
keyed!(RefundError);

impl From<TransitionError> for RefundError {
    fn from(error: TransitionError) -> Self {
        RefundError::Order(OrderError::Transition(error))
    }
}

impl From<crate::payments::GatewayEventError> for RefundError {
    fn from(error: crate::payments::GatewayEventError) -> Self {
        use crate::payments::GatewayEventError as E;
        match error {
            E::Store(error) => RefundError::Store(error),
            E::Ledger(error) => RefundError::Ledger(error),
            E::Money(error) => RefundError::Money(error),
            E::Order(error) => RefundError::Order(error),
            E::Gateway(error) => RefundError::Gateway(error),
            other => RefundError::Store(StoreError::Corrupt(format!("refund settlement failed: {other}"))),
        }
    }
}

impl From<PostingError> for RefundError {
    fn from(error: PostingError) -> Self {
        match error {
            PostingError::Store(error) => RefundError::Store(error),
            PostingError::Ledger(error) => match error.insufficient_funds() {
                Some((_, available, _)) => RefundError::MerchantInsufficientFunds { available },
                None => RefundError::Ledger(error),
            },
        }
    }
}

#[derive(Debug, Clone)]
pub struct RefundCommand {
    /// `None` refunds everything that is left (of the merchant's share, or of every share).
    pub amount: Option<Money>,
    /// Whose share to refund; merchants may only name themselves.
    pub merchant_id: Option<UserId>,
    pub reason: String,
}

/// Who makes an attempt at a follow-up's provider call: the request itself, or the job, which
/// has counted the attempt when it claimed the follow-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attempt {
    Inline,
    Claimed,
}

/// The refunds a request opened (or found, when it resumes) and, for a card payment, the payment
/// the gateway must still be asked to refund.
struct OpenedRefunds {
    refunds: Vec<Refund>,
    card_payment: Option<Payment>,
}

impl<U: UnitOfWork> App<U> {
    /// Refunds all or part of a paid order. A wallet payment is refunded at once from the merchant's
    /// wallet to the buyer's. A card payment moves the merchant's share to the gateway's clearing
    /// account, asks the gateway to refund, and settles when the gateway answers (see the module
    /// docs for what happens when it does not).
    pub async fn refund_order(
        &self,
        caller: &Caller,
        order_id: OrderId,
        command: RefundCommand,
        idempotent: Option<Idempotent<Vec<Refund>>>,
    ) -> Result<Vec<Refund>, RefundError> {
        if command.reason.chars().count() > 500 {
            return Err(RefundError::Reason);
        }
        if caller.role == Role::Customer {
            return Err(RefundError::Forbidden);
        }
        let idempotent = idempotent.as_ref();
        let opened = self.open_or_resume_refunds(caller, order_id, &command, idempotent).await?;
        let Some(payment) = opened.card_payment else {
            return Ok(opened.refunds);
        };
        let mut settled = Vec::with_capacity(opened.refunds.len());
        let mut first_error = None;
        for refund in opened.refunds {
            match self.refund_through_gateway(&payment, refund, Attempt::Inline).await {
                Ok(refund) => settled.push(refund),
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        if let Some(error) = first_error {
            return Err(error);
        }
        let (settled_ref, now) = (&settled, self.clock.now());
        transact(&self.store, move |mut tx| async move {
            let result = idempotency::complete(&mut tx, idempotent, settled_ref, now).await;
            (tx, result)
        })
        .await?;
        Ok(settled)
    }

    /// The refund's first transaction: claims the key and opens the refunds, or finds the ones an
    /// earlier attempt under the key opened.
    async fn open_or_resume_refunds(
        &self,
        caller: &Caller,
        order_id: OrderId,
        command: &RefundCommand,
        idempotent: Option<&Idempotent<Vec<Refund>>>,
    ) -> Result<OpenedRefunds, RefundError> {
        let now = self.clock.now();
        let ids = self.ids.as_ref();
        let (caller, lease) = (*caller, self.settings.idempotency_lease);
        transact(&self.store, move |mut tx| async move {
            let result = async {
                if let Some(Claim::Resume(point)) = idempotency::claim(&mut tx, idempotent, now, lease).await? {
                    return resume_refunds(&mut tx, order_id, &point).await;
                }
                let opened = open_refunds(&mut tx, ids, &caller, order_id, command, now).await?;
                match &opened.card_payment {
                    // A wallet refund is final now; a card refund's response is stored once the
                    // gateway has answered.
                    None => idempotency::complete(&mut tx, idempotent, &opened.refunds, now).await?,
                    Some(_) => {
                        let point = RecoveryPoint::Refunds(opened.refunds.iter().map(|r| r.id).collect());
                        idempotency::mark_recovery_point(&mut tx, idempotent, &point).await?;
                    }
                }
                Ok(opened)
            }
            .await;
            (tx, result)
        })
        .await
    }

    /// Asks the gateway to refund a pending refund and records its answer. A temporary failure
    /// leaves the refund pending for the follow-up job; a refusal fails it (the merchant gets the
    /// money back) and is returned.
    pub(crate) async fn refund_through_gateway(&self, payment: &Payment, refund: Refund, attempt: Attempt) -> Result<Refund, RefundError> {
        if refund.status != RefundStatus::Pending {
            return Ok(refund);
        }
        let gateway = self
            .gateways
            .get(&payment.provider)
            .ok_or(RefundError::PaymentNotRefundable)?
            .clone();
        let provider_payment_id = payment.provider_payment_id.clone().ok_or(RefundError::PaymentNotRefundable)?;
        let request = RefundRequest {
            refund_id: refund.id,
            payment_id: payment.id,
            provider_payment_id,
            amount: refund.amount,
            reason: refund.reason.clone(),
            idempotency_key: format!("refund-{}", refund.id),
        };
        let task = FollowUpTask::Refund(refund.id);
        match gateway.refund(request).await {
            Ok(answer) => {
                let update = RefundUpdate {
                    provider_refund_id: answer.provider_refund_id,
                    refund_id: Some(refund.id),
                    amount: Some(refund.amount),
                    status: answer.status,
                };
                self.apply_refund_update(&payment.provider, &update).await?;
                if answer.status == GatewayRefundStatus::Pending {
                    self.attempt_failed(task, "the provider is still processing the refund", attempt)
                        .await?;
                }
                Ok(self.refund_by_id(refund.id).await?.unwrap_or(refund))
            }
            Err(error) if error.may_pass() => {
                tracing::warn!(%error, refund_id = %refund.id, "the gateway could not refund yet; the refund stays pending for the follow-up job");
                self.attempt_failed(task, &error.to_string(), attempt).await?;
                Ok(refund)
            }
            Err(error) => {
                let update = RefundUpdate {
                    provider_refund_id: String::new(),
                    refund_id: Some(refund.id),
                    amount: Some(refund.amount),
                    status: GatewayRefundStatus::Failed,
                };
                self.apply_refund_update(&payment.provider, &update).await?;
                Err(error.into())
            }
        }
    }

    pub(crate) async fn refund_by_id(&self, id: RefundId) -> Result<Option<Refund>, StoreError> {
        transact(&self.store, move |mut tx| async move {
            let result = tx.find_refund(id).await;
            (tx, result)
        })
        .await
    }
}

/// The refunds and card payment an earlier attempt under the key opened.
async fn resume_refunds<Tx: Transaction>(tx: &mut Tx, order_id: OrderId, point: &RecoveryPoint) -> Result<OpenedRefunds, RefundError> {
    let RecoveryPoint::Refunds(refund_ids) = point else {
        return Err(StoreError::Corrupt(format!("a refund request's key points at {}", point.code())).into());
    };
    let mut refunds = Vec::with_capacity(refund_ids.len());
    for id in refund_ids {
        let refund = tx
            .find_refund(*id)
            .await?
            .filter(|refund| refund.order_id == order_id)
            .ok_or_else(|| StoreError::Corrupt(format!("the key's refund {id} is missing")))?;
        refunds.push(refund);
    }
    let payment_id = refunds
        .iter()
        .find_map(|refund| refund.payment_id)
        .ok_or_else(|| StoreError::Corrupt("resumed refunds have no card payment".into()))?;
    let payment = tx
        .find_payment(payment_id)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("payment {payment_id} is missing")))?;
    Ok(OpenedRefunds {
        refunds,
        card_payment: Some(payment),
    })
}

/// The refundable part of each merchant's share: the share minus refunds pending or done.
pub(crate) fn refundable_shares(order: &Order, refunds: &[Refund]) -> Result<BTreeMap<UserId, Money>, MoneyError> {
    let mut shares = order.merchant_totals()?;
    for refund in refunds.iter().filter(|r| r.status != RefundStatus::Failed) {
        if let Some(share) = shares.get_mut(&refund.merchant_id) {
            *share = share.checked_sub(refund.amount)?;
        }
    }
    Ok(shares)
}

/// Which merchants' shares to refund, and how much of each.
fn refund_targets(
    caller: &Caller,
    order: &Order,
    shares: &BTreeMap<UserId, Money>,
    command: &RefundCommand,
) -> Result<Vec<(UserId, Money)>, RefundError> {
    let merchant = if caller.is_admin() {
        match (command.merchant_id, command.amount) {
            (Some(merchant), _) => Some(merchant),
            (None, None) => None,
            (None, Some(_)) if shares.len() == 1 => shares.keys().next().copied(),
            (None, Some(_)) => return Err(RefundError::MerchantRequired),
        }
    } else {
        if command.merchant_id.is_some_and(|m| m != caller.user_id) {
            return Err(RefundError::Forbidden);
        }
        Some(caller.user_id)
    };
    let Some(merchant) = merchant else {
        let all: Vec<(UserId, Money)> = shares
            .iter()
            .filter(|(_, left)| left.is_positive())
            .map(|(m, left)| (*m, *left))
            .collect();
        return if all.is_empty() {
            Err(RefundError::NothingToRefund)
        } else {
            Ok(all)
        };
    };
    let refundable = *shares.get(&merchant).ok_or(RefundError::NotFound)?;
    if !refundable.is_positive() {
        return Err(RefundError::NothingToRefund);
    }
    let amount = command.amount.unwrap_or(refundable);
    if amount.currency() != order.currency() || !amount.is_positive() {
        return Err(RefundError::InvalidAmount);
    }
    if amount.amount_minor() > refundable.amount_minor() {
        return Err(RefundError::ExceedsRefundable { refundable });
    }
    Ok(vec![(merchant, amount)])
}

/// The succeeded card payment of an order, or `None` for a wallet order.
async fn card_payment_of<Tx: Transaction>(tx: &mut Tx, order: &Order) -> Result<Option<Payment>, RefundError> {
    match order.payment_method {
        PaymentMethod::Wallet => Ok(None),
        PaymentMethod::Card => {
            let payment = tx
                .find_order_payment(order.id)
                .await?
                .filter(|p| p.status == PaymentStatus::Succeeded && p.provider_payment_id.is_some());
            Ok(Some(payment.ok_or(RefundError::PaymentNotRefundable)?))
        }
    }
}

/// First transaction of a refund: checks, moves the money out of the merchants' wallets, and
/// records the refunds (with a follow-up for each card refund). Returns the card payment when
/// the gateway must still be asked.
async fn open_refunds<Tx: Transaction>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    caller: &Caller,
    order_id: OrderId,
    command: &RefundCommand,
    now: OffsetDateTime,
) -> Result<OpenedRefunds, RefundError> {
    let order = tx.lock_order(order_id).await?.ok_or(RefundError::NotFound)?;
    if !(caller.is_admin() || order.has_merchant(caller.user_id)) {
        return Err(RefundError::NotFound);
    }
    if !order.is_paid() {
        return Err(RefundError::NotRefundable(order.status));
    }
    let existing = tx.list_order_refunds(order_id).await?;
    let shares = refundable_shares(&order, &existing)?;
    let targets = refund_targets(caller, &order, &shares, command)?;
    let card_payment = card_payment_of(tx, &order).await?;
    let total = post_refund_journal(tx, ids, &order, &targets, card_payment.as_ref(), now).await?;
    let reason = match command.reason.trim() {
        "" => "requested".to_owned(),
        reason => reason.to_owned(),
    };
    let status = if card_payment.is_some() {
        RefundStatus::Pending
    } else {
        RefundStatus::Succeeded
    };
    let refunds: Vec<Refund> = targets
        .iter()
        .map(|(merchant, amount)| Refund {
            id: next_id(ids),
            order_id,
            payment_id: card_payment.as_ref().map(|p| p.id),
            merchant_id: *merchant,
            amount: *amount,
            status,
            provider_refund_id: None,
            reason: reason.clone(),
            requested_by: Some(caller.user_id),
            created_at: now,
            updated_at: now,
        })
        .collect();
    for refund in &refunds {
        tx.insert_refund(refund).await?;
    }
    match card_payment {
        None => record_wallet_refunds(tx, ids, order, &refunds, total, Actor::User(caller.user_id), &reason, now).await?,
        Some(_) => {
            for refund in &refunds {
                // The request asks the gateway itself first; the job only if that fails.
                let follow_up = FollowUp::schedule(FollowUpTask::Refund(refund.id), now + FOLLOW_UP_LEASE, now);
                tx.insert_follow_up(&follow_up).await?;
            }
        }
    }
    Ok(OpenedRefunds { refunds, card_payment })
}

/// Debits each target merchant's wallet and credits the buyer's wallet (a wallet order) or the
/// gateway's clearing account (a card order). Returns the total.
async fn post_refund_journal<Tx: Transaction>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    order: &Order,
    targets: &[(UserId, Money)],
    card_payment: Option<&Payment>,
    now: OffsetDateTime,
) -> Result<Money, RefundError> {
    let currency = order.currency();
    let destination = match card_payment {
        None => tx.ensure_user_wallet(order.buyer_id, currency, next_id(ids), now).await?,
        Some(payment) => {
            let clearing = SystemAccount::GatewayClearing(payment.provider.clone());
            system_wallet(tx, &clearing, currency, next_id(ids), now).await?
        }
    };
    let mut entries = Vec::with_capacity(targets.len() + 1);
    let mut total = Money::zero(currency);
    for (merchant, amount) in targets {
        let wallet = tx.ensure_user_wallet(*merchant, currency, next_id(ids), now).await?;
        entries.push(Entry::debit(wallet, *amount)?);
        total = total.checked_add(*amount)?;
    }
    entries.push(Entry::credit(destination, total));
    let journal = JournalTransaction::new(next_id(ids), TransactionKind::Refund, format!("order:{}", order.id), entries, now)
        .map_err(RefundError::Ledger)?;
    post(tx, &journal).await?;
    Ok(total)
}

/// A refund that is final at once: the order records it, with its events.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn record_wallet_refunds<Tx: Transaction>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    order: Order,
    refunds: &[Refund],
    total: Money,
    actor: Actor,
    reason: &str,
    now: OffsetDateTime,
) -> Result<(), RefundError> {
    let (order, change) = order.record_refund(total, actor, reason, now)?;
    tx.update_order(&order).await?;
    tx.append_status_changes(std::slice::from_ref(&change)).await?;
    let mut events = status_events(ids, std::slice::from_ref(&change));
    events.extend(refunds.iter().map(|r| {
        let succeeded = DomainEvent::RefundSucceeded {
            refund_id: r.id,
            order_id: order.id,
            amount: r.amount,
        };
        event(ids, succeeded, now)
    }));
    tx.enqueue_events(&events).await?;
    Ok(())
}

/// Records refunds made outside the API (in the provider's dashboard), which the gateway reports
/// only as the payment's refunded total: whatever it has refunded beyond the refunds we know of
/// (pending or done) is recorded now, so a total reported twice, or late, changes nothing. The
/// amount is taken from the merchants' shares in merchant id order; each merchant's wallet pays
/// what it can and the rest is posted to the receivables account, with a follow-up stuck for an
/// admin to recover it. The order's refunded amount follows.
pub(crate) async fn record_outside_refunds<Tx: Transaction>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    provider: &ProviderName,
    reference: &PaymentReference,
    refunded_total: Money,
    now: OffsetDateTime,
) -> Result<EventOutcome, GatewayEventError> {
    let Some(payment) = lock_referenced(tx, provider, reference).await? else {
        return Ok(EventOutcome::Ignored("unknown payment"));
    };
    let order_id = match payment.purpose {
        _ if payment.late_success => return Ok(EventOutcome::Ignored("the refund of a late payment")),
        _ if payment.status != PaymentStatus::Succeeded => return Ok(EventOutcome::Ignored("the payment did not succeed")),
        PaymentPurpose::TopUp(_) => return flag_outside_top_up_refund(tx, &payment, refunded_total, now).await,
        PaymentPurpose::Order(order_id) => order_id,
    };
    let order = tx
        .lock_order(order_id)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("payment {} has no order", payment.id)))?;
    let known = tx.list_order_refunds(order_id).await?;
    let unrecorded = outside_amount(&known, refunded_total)?;
    if !unrecorded.is_positive() {
        return Ok(EventOutcome::Ignored("every refund is recorded"));
    }
    let targets = outside_targets(&order, &known, unrecorded)?;
    let clearing = SystemAccount::GatewayClearing(provider.clone());
    let shortfalls = post_outside_refund(tx, ids, &order, &targets, &clearing, now).await?;
    let reason = format!("refunded outside the API ({provider})");
    let mut refunds = Vec::with_capacity(targets.len());
    for (merchant, amount) in &targets {
        let refund = Refund {
            id: next_id(ids),
            order_id,
            payment_id: Some(payment.id),
            merchant_id: *merchant,
            amount: *amount,
            status: RefundStatus::Succeeded,
            provider_refund_id: None,
            reason: reason.clone(),
            requested_by: None,
            created_at: now,
            updated_at: now,
        };
        tx.insert_refund(&refund).await?;
        if let Some(shortfall) = shortfalls.get(merchant) {
            let note = format!(
                "a refund made outside the API took {amount} from merchant {merchant}, whose wallet covered all but {shortfall}; that is owed to the platform (receivables)"
            );
            tracing::error!(refund_id = %refund.id, %merchant, %shortfall, "a merchant could not cover a refund made outside the API: flagged for admins");
            tx.insert_follow_up(&FollowUp::needs_attention(FollowUpTask::RecoverShortfall(refund.id), note, now))
                .await?;
        }
        refunds.push(refund);
    }
    let actor = Actor::Gateway(provider.clone());
    record_wallet_refunds(tx, ids, order, &refunds, unrecorded, actor, &reason, now)
        .await
        .map_err(|error| match error {
            RefundError::Store(error) => GatewayEventError::Store(error),
            RefundError::Order(error) => GatewayEventError::Order(error),
            other => GatewayEventError::Store(StoreError::Corrupt(other.to_string())),
        })?;
    tracing::warn!(payment_id = %payment.id, amount = %unrecorded, "a refund made outside the API was recorded");
    Ok(EventOutcome::Applied)
}

/// What the gateway has refunded beyond the refunds we know of that have not failed.
fn outside_amount(known: &[Refund], refunded_total: Money) -> Result<Money, MoneyError> {
    let mut recorded = Money::zero(refunded_total.currency());
    for refund in known.iter().filter(|r| r.status != RefundStatus::Failed) {
        recorded = recorded.checked_add(refund.amount)?;
    }
    refunded_total.checked_sub(recorded)
}

/// Which merchants' shares an outside refund of `amount` takes, in merchant id order.
fn outside_targets(order: &Order, known: &[Refund], amount: Money) -> Result<Vec<(UserId, Money)>, GatewayEventError> {
    let shares = refundable_shares(order, known)?;
    let mut left = amount;
    let mut targets = Vec::new();
    for (merchant, share) in shares {
        if !left.is_positive() {
            break;
        }
        let take = if share.amount_minor() < left.amount_minor() { share } else { left };
        if take.is_positive() {
            targets.push((merchant, take));
            left = left.checked_sub(take)?;
        }
    }
    if left.is_positive() {
        return Err(GatewayEventError::AmountMismatch {
            expected: amount.checked_sub(left)?,
            received: amount,
        });
    }
    Ok(targets)
}

/// Posts an outside refund: each merchant's wallet pays what it can of its part, the receivables
/// account the rest, and the gateway's clearing account receives the whole. Returns each
/// merchant's shortfall.
async fn post_outside_refund<Tx: Transaction>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    order: &Order,
    targets: &[(UserId, Money)],
    clearing: &SystemAccount,
    now: OffsetDateTime,
) -> Result<BTreeMap<UserId, Money>, GatewayEventError> {
    let currency = order.currency();
    let clearing = tx.ensure_system_wallet(clearing, currency, next_id(ids), now).await?;
    let receivables = tx
        .ensure_system_wallet(&SystemAccount::Receivables, currency, next_id(ids), now)
        .await?;
    let mut merchant_wallets = Vec::with_capacity(targets.len());
    for (merchant, _) in targets {
        merchant_wallets.push(tx.ensure_user_wallet(*merchant, currency, next_id(ids), now).await?);
    }
    let mut all = merchant_wallets.clone();
    all.extend([clearing, receivables]);
    // Every wallet of the journal, locked together in id order.
    let mut wallets = tx.lock_wallets(&all).await?;
    let mut entries = Vec::with_capacity(targets.len() * 2 + 1);
    let mut shortfalls = BTreeMap::new();
    let mut total = Money::zero(currency);
    for ((merchant, amount), wallet_id) in targets.iter().zip(&merchant_wallets) {
        let available = wallets
            .iter()
            .find(|w| w.id() == *wallet_id)
            .map_or(Money::zero(currency), Wallet::available);
        let covered = Money::from_minor(available.amount_minor().clamp(0, amount.amount_minor()), currency);
        let shortfall = amount.checked_sub(covered)?;
        if covered.is_positive() {
            entries.push(Entry::debit(*wallet_id, covered)?);
        }
        if shortfall.is_positive() {
            entries.push(Entry::debit(receivables, shortfall)?);
            shortfalls.insert(*merchant, shortfall);
        }
        total = total.checked_add(*amount)?;
    }
    entries.push(Entry::credit(clearing, total));
    let journal = JournalTransaction::new(next_id(ids), TransactionKind::Refund, format!("order:{}", order.id), entries, now)?;
    post_locked(tx, &journal, &mut wallets).await?;
    Ok(shortfalls)
}

/// A top-up refunded outside the API: its wallet was credited and may have been spent, so an
/// admin must decide what to recover. Flagged once per payment.
async fn flag_outside_top_up_refund<Tx: Transaction>(
    tx: &mut Tx,
    payment: &Payment,
    refunded_total: Money,
    now: OffsetDateTime,
) -> Result<EventOutcome, GatewayEventError> {
    let note = format!(
        "top-up {} of {} was refunded outside the API ({refunded_total} in all); the wallet of user {} still holds it: adjust it",
        payment.id, payment.amount, payment.payer_id
    );
    tracing::error!(payment_id = %payment.id, %refunded_total, "a top-up was refunded outside the API: flagged for admins");
    let task = FollowUpTask::OutsideTopUpRefund(payment.id);
    if tx.lock_follow_up(&task).await?.is_none() {
        tx.insert_follow_up(&FollowUp::needs_attention(task, note, now)).await?;
    }
    Ok(EventOutcome::Applied)
}
