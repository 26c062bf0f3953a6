//! Refunds of paid orders, by merchants and admins.
//!
//! A wallet payment is refunded in one transaction: the merchant's wallet to the buyer's. A card
//! payment takes three steps. The first transaction moves the merchant's share to the gateway's
//! clearing account, records the refund `pending` with a follow-up, and (under an idempotency
//! key) a recovery point. Then the gateway is asked, with the provider idempotency key
//! `refund-<refund id>`, outside any transaction. Its answer is settled in a third transaction
//! (`settlement`), which settles the follow-up too. If the gateway cannot be reached, the refund
//! stays pending and the follow-up job asks again later with the same provider key; a retried
//! request under the same idempotency key resumes at the gateway call. A refund therefore ends
//! succeeded, failed (the money back in the merchant's wallet), or stuck where admins see it,
//! and is never sent twice.

use std::collections::BTreeMap;

use domain::follow_up::{FollowUp, FollowUpTask};
use domain::ids::{OrderId, RefundId, RefundRequestId, UserId};
use domain::ledger::{Entry, JournalTransaction, LedgerError, TransactionKind};
use domain::money::{Money, MoneyError};
use domain::order::{Actor, Order, OrderError, OrderStatus, PaymentMethod, TransitionError};
use domain::payment::{Payment, PaymentStatus, Refund, RefundTerms};
use domain::refund_request::RefundRequestError;
use domain::user::{AdminAction, AdminActionKind, Role};
use time::OffsetDateTime;

use crate::caller::Caller;
use crate::context::App;
use crate::effects::{OrderRefundError, clearing_wallet, publish, record_refunds_on_order, refundable_shares};
use crate::follow_ups::{Attempt, FOLLOW_UP_LEASE, Failure};
use crate::idempotency::{Claim, IdempotencyError, Idempotent, Key, RecoveryPoint};
use crate::ledger::post;
use crate::ports::gateway::{GatewayError, GatewayRefundStatus, RefundRequest, RefundUpdate};
use crate::ports::store::{
    AdminAuditRepository, EventOutbox, FollowUpRepository, IdempotencyRepository, LedgerRepository, OrderRepository, PaymentRepository,
    RefundRepository, StoreError, UnitOfWork, WalletRepository,
};
use crate::ports::system::{IdGenerator, next_id};
use crate::settlement::GatewayEventError;
use crate::transact::{transact, work};
use crate::{from_posting_error, keyed, retryable};

/// Why a refund fails. Refusals are replayed under the idempotency key.
#[derive(Debug, thiserror::Error)]
pub enum RefundError {
    /// The order does not exist (or the caller may not see it).
    #[error("the order does not exist")]
    NotFound,
    /// The caller may not do this to this resource.
    #[error("only the order's merchants and admins may refund it")]
    Forbidden,
    /// The order's status allows no refund (not paid, or already refunded).
    #[error("an order that is {0} cannot be refunded")]
    NotRefundable(OrderStatus),
    /// The order has several merchants and the command named none.
    #[error("the order has several merchants: say whose share to refund")]
    MerchantRequired,
    /// The share asked for is already refunded in full.
    #[error("nothing is left to refund")]
    NothingToRefund,
    /// More than what is left of the share.
    #[error("at most {refundable} can be refunded")]
    ExceedsRefundable {
        /// What is left to refund.
        refundable: Money,
    },
    /// A zero or negative amount, or another currency than the order's.
    #[error("the refund amount must be positive and in the order's currency")]
    InvalidAmount,
    /// The reason is longer than 500 characters.
    #[error("the reason must have at most 500 characters")]
    Reason,
    /// The merchant's wallet holds less than the refund.
    #[error("the merchant's wallet cannot cover the refund: {available} available")]
    MerchantInsufficientFunds {
        /// What the merchant's wallet could give.
        available: Money,
    },
    /// The card payment has no provider id to refund, or its provider is no longer configured.
    #[error("the card payment cannot be refunded through its gateway")]
    PaymentNotRefundable,
    /// Approving a refund request: the request does not exist.
    #[error("the refund request does not exist")]
    RequestNotFound,
    /// Approving a refund request: the request is not open.
    #[error(transparent)]
    Request(#[from] RefundRequestError),
    /// The payment provider failed or refused; whether asking again may help is `GatewayError::may_pass`.
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    /// The order refused the change (its state machine, or its amounts).
    #[error(transparent)]
    Order(#[from] OrderError),
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

retryable!(RefundError);
keyed!(RefundError);
from_posting_error!(RefundError, MerchantInsufficientFunds);

impl From<TransitionError> for RefundError {
    fn from(error: TransitionError) -> Self {
        RefundError::Order(OrderError::Transition(error))
    }
}

impl From<OrderRefundError> for RefundError {
    fn from(error: OrderRefundError) -> Self {
        match error {
            OrderRefundError::Order(error) => RefundError::Order(error),
            OrderRefundError::Money(error) => RefundError::Money(error),
            OrderRefundError::Store(error) => RefundError::Store(error),
        }
    }
}

impl From<GatewayEventError> for RefundError {
    fn from(error: GatewayEventError) -> Self {
        use GatewayEventError as E;
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

/// What a merchant or admin refunds of an order.
#[derive(Debug, Clone)]
pub struct RefundCommand {
    /// `None` refunds everything that is left (of the merchant's share, or of every share).
    pub amount: Option<Money>,
    /// Whose share to refund; merchants may only name themselves.
    pub merchant_id: Option<UserId>,
    /// Why, shown to the buyer; at most 500 characters.
    pub reason: String,
}

// What opening refunds touches.
crate::repositories!(RefundTx:
    OrderRepository,
    PaymentRepository,
    RefundRepository,
    WalletRepository,
    LedgerRepository,
    FollowUpRepository,
    EventOutbox,
);

/// The refunds a request opened (or found, when it resumes) and, for a card payment, the payment
/// the gateway must still be asked to refund.
struct OpenedRefunds {
    refunds: Vec<Refund>,
    card_payment: Option<Payment>,
}

/// What opening refunds needs besides the transaction.
struct RefundRequestContext<'a> {
    ids: &'a dyn IdGenerator,
    caller: Caller,
    order_id: OrderId,
    command: &'a RefundCommand,
    /// The buyer's request this refund approves, if any.
    approving: Option<RefundRequestId>,
}

impl<U: UnitOfWork> App<U> {
    /// Refunds all or part of a paid order. A wallet payment is refunded at once from the merchant's
    /// wallet to the buyer's. A card payment moves the merchant's share to the gateway's clearing
    /// account, asks the gateway to refund, and settles when the gateway answers (see the module
    /// docs for what happens when it does not).
    #[tracing::instrument(name = "refund_order", skip_all, fields(user_id = %caller.user_id, %order_id))]
    pub async fn refund_order(
        &self,
        caller: &Caller,
        order_id: OrderId,
        command: RefundCommand,
        idempotent: Option<Idempotent<Vec<Refund>>>,
    ) -> Result<Vec<Refund>, RefundError> {
        if caller.role == Role::Customer {
            return Err(RefundError::Forbidden);
        }
        self.refund(caller, order_id, command, None, idempotent).await
    }

    /// The merchant whose share it concerns, or an admin, approves a buyer's open refund request:
    /// its amount (or all that is left of the share) is refunded as `refund_order` refunds, and
    /// the request is approved in the refund's first transaction.
    #[tracing::instrument(name = "approve_refund_request", skip_all, fields(user_id = %caller.user_id, refund_request_id = %id))]
    pub async fn approve_refund_request(
        &self,
        caller: &Caller,
        id: RefundRequestId,
        idempotent: Option<Idempotent<Vec<Refund>>>,
    ) -> Result<Vec<Refund>, RefundError> {
        let request = transact(&self.store, |tx| work(tx.find_refund_request(id)))
            .await?
            .filter(|request| crate::refund_requests::can_see(caller, request))
            .ok_or(RefundError::RequestNotFound)?;
        if !crate::refund_requests::can_decide(caller, &request) {
            return Err(RefundError::Forbidden);
        }
        let command = RefundCommand {
            amount: request.amount(),
            merchant_id: Some(request.merchant_id()),
            reason: request.reason().to_owned(),
        };
        self.refund(caller, request.order_id(), command, Some(id), idempotent).await
    }

    async fn refund(
        &self,
        caller: &Caller,
        order_id: OrderId,
        command: RefundCommand,
        approving: Option<RefundRequestId>,
        idempotent: Option<Idempotent<Vec<Refund>>>,
    ) -> Result<Vec<Refund>, RefundError> {
        if command.reason.chars().count() > 500 {
            return Err(RefundError::Reason);
        }
        let key = self.key(idempotent.as_ref());
        let request = RefundRequestContext {
            ids: self.ids.as_ref(),
            caller: *caller,
            order_id,
            command: &command,
            approving,
        };
        let (request, now) = (&request, self.clock.now());
        let opened = transact(&self.store, |tx| work(open_or_resume_refunds(tx, request, key, now))).await?;
        let Some(payment) = opened.card_payment else {
            return Ok(opened.refunds);
        };
        let settled = self.refund_all_through_gateway(&payment, opened.refunds).await?;
        let (settled_ref, now) = (&settled, self.clock.now());
        transact(&self.store, |tx| work(key.complete(tx, settled_ref, now))).await?;
        Ok(settled)
    }

    /// Asks the gateway for each refund; all are asked even if one fails, and the first failure
    /// is returned.
    async fn refund_all_through_gateway(&self, payment: &Payment, refunds: Vec<Refund>) -> Result<Vec<Refund>, RefundError> {
        let mut settled = Vec::with_capacity(refunds.len());
        let mut first_error = None;
        for refund in refunds {
            match self.refund_through_gateway(payment, refund, Attempt::Inline).await {
                Ok(refund) => settled.push(refund),
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(settled),
        }
    }

    /// Asks the gateway to refund a pending refund and records its answer. A temporary failure
    /// leaves the refund pending for the follow-up job; a refusal fails it (the merchant gets the
    /// money back) and is returned.
    pub(crate) async fn refund_through_gateway(&self, payment: &Payment, refund: Refund, attempt: Attempt) -> Result<Refund, RefundError> {
        if !refund.is_pending() {
            return Ok(refund);
        }
        let gateway = self
            .gateways
            .get(payment.provider())
            .ok_or(RefundError::PaymentNotRefundable)?
            .clone();
        let provider_payment_id = payment.provider_payment_id().ok_or(RefundError::PaymentNotRefundable)?;
        let request = RefundRequest {
            refund_id: refund.id(),
            payment_id: payment.id(),
            provider_payment_id: provider_payment_id.to_owned(),
            amount: refund.amount(),
            reason: refund.reason().to_owned(),
            idempotency_key: format!("refund-{}", refund.id()),
        };
        let task = FollowUpTask::Refund(refund.id());
        let update = |provider_refund_id: String, status: GatewayRefundStatus| RefundUpdate {
            provider_refund_id,
            refund_id: Some(refund.id()),
            amount: Some(refund.amount()),
            status,
        };
        match gateway.refund(request).await {
            Ok(answer) => {
                self.apply_refund_update(payment.provider(), &update(answer.provider_refund_id, answer.status))
                    .await?;
                if answer.status == GatewayRefundStatus::Pending {
                    let still = "the provider is still processing the refund";
                    self.record_failed_attempt(task, still, Failure::Temporary, attempt).await?;
                }
                Ok(self.refund_by_id(refund.id()).await?.unwrap_or(refund))
            }
            Err(error) if error.may_pass() => {
                tracing::warn!(%error, refund_id = %refund.id(), "the gateway could not refund yet; the refund stays pending for the follow-up job");
                self.record_failed_attempt(task, &error.to_string(), Failure::Temporary, attempt)
                    .await?;
                Ok(refund)
            }
            Err(error) => {
                self.apply_refund_update(payment.provider(), &update(String::new(), GatewayRefundStatus::Failed))
                    .await?;
                Err(error.into())
            }
        }
    }

    pub(crate) async fn refund_by_id(&self, id: RefundId) -> Result<Option<Refund>, StoreError> {
        transact(&self.store, |tx| work(tx.find_refund(id))).await
    }
}

/// The refund's first transaction: claims the key and opens the refunds, or finds the ones an
/// earlier attempt under the key opened.
async fn open_or_resume_refunds<Tx>(
    tx: &mut Tx,
    request: &RefundRequestContext<'_>,
    key: Key<'_, Vec<Refund>>,
    now: OffsetDateTime,
) -> Result<OpenedRefunds, RefundError>
where
    Tx: IdempotencyRepository + AdminAuditRepository + RefundTx,
{
    if let Claim::Resume(point) = key.claim(tx, now).await? {
        return resume_refunds(tx, request.order_id, &point).await;
    }
    let opened = open_refunds(tx, request, now).await?;
    if request.caller.is_admin() {
        record_admin_refund(tx, request, &opened.refunds, now).await?;
    }
    match &opened.card_payment {
        // A wallet refund is final now; a card refund's response is stored once the gateway has
        // answered.
        None => key.complete(tx, &opened.refunds, now).await?,
        Some(_) => {
            let point = RecoveryPoint::Refunds(opened.refunds.iter().map(Refund::id).collect());
            key.mark(tx, &point).await?;
        }
    }
    Ok(opened)
}

/// An admin's refund, in the admins' audit trail: the refunds opened and their amounts.
async fn record_admin_refund<Tx: AdminAuditRepository + Send>(
    tx: &mut Tx,
    request: &RefundRequestContext<'_>,
    refunds: &[Refund],
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let details: Vec<String> = refunds
        .iter()
        .map(|refund| {
            format!(
                "refund {}: {} {}",
                refund.id(),
                refund.amount().to_major_string(),
                refund.amount().currency().code()
            )
        })
        .collect();
    let reason = request.command.reason.trim();
    let entry = AdminAction {
        id: next_id(request.ids),
        admin_id: request.caller.user_id,
        kind: AdminActionKind::OrderRefunded,
        subject: format!("order:{}", request.order_id),
        reason: if reason.is_empty() {
            "no reason given".to_owned()
        } else {
            reason.to_owned()
        },
        details: details.join("; "),
        at: now,
    };
    tx.record_admin_action(&entry).await
}

/// The refunds and card payment an earlier attempt under the key opened.
async fn resume_refunds<Tx>(tx: &mut Tx, order_id: OrderId, point: &RecoveryPoint) -> Result<OpenedRefunds, RefundError>
where
    Tx: PaymentRepository + RefundRepository + Send,
{
    let RecoveryPoint::Refunds(refund_ids) = point else {
        return Err(StoreError::Corrupt(format!("a refund request's key points at {}", point.code())).into());
    };
    let mut refunds = Vec::with_capacity(refund_ids.len());
    for id in refund_ids {
        let refund = tx
            .find_refund(*id)
            .await?
            .filter(|refund| refund.order_id() == order_id)
            .ok_or_else(|| StoreError::Corrupt(format!("the key's refund {id} is missing")))?;
        refunds.push(refund);
    }
    let payment_id = refunds
        .iter()
        .find_map(Refund::payment_id)
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
async fn card_payment_of<Tx: PaymentRepository + Send>(tx: &mut Tx, order: &Order) -> Result<Option<Payment>, RefundError> {
    match order.payment_method() {
        PaymentMethod::Wallet => Ok(None),
        PaymentMethod::Card => {
            let payment = tx
                .find_order_payment(order.id())
                .await?
                .filter(|payment| payment.status() == PaymentStatus::Succeeded && payment.provider_payment_id().is_some());
            Ok(Some(payment.ok_or(RefundError::PaymentNotRefundable)?))
        }
    }
}

/// Checks the request against the order (locked) and its refunds so far: the order and the
/// merchants' shares to refund.
async fn check_refund<Tx>(tx: &mut Tx, request: &RefundRequestContext<'_>) -> Result<(Order, Vec<(UserId, Money)>), RefundError>
where
    Tx: OrderRepository + RefundRepository + Send,
{
    let caller = &request.caller;
    let order = tx.lock_order(request.order_id).await?.ok_or(RefundError::NotFound)?;
    if !(caller.is_admin() || order.has_merchant(caller.user_id)) {
        return Err(RefundError::NotFound);
    }
    if !order.is_paid() {
        return Err(RefundError::NotRefundable(order.status()));
    }
    // A request being approved is locked next (after the order, before any money moves): a
    // second approval waits here and finds it decided.
    if let Some(request_id) = request.approving {
        let asked = tx
            .lock_refund_request(request_id)
            .await?
            .filter(|asked| asked.order_id() == order.id())
            .ok_or(RefundError::RequestNotFound)?;
        if !asked.is_open() {
            return Err(RefundRequestError::Transition {
                from: asked.status(),
                to: domain::refund_request::RefundRequestStatus::Approved,
            }
            .into());
        }
    }
    let existing = tx.list_order_refunds(request.order_id).await?;
    let shares = refundable_shares(&order, &existing)?;
    let targets = refund_targets(caller, &order, &shares, request.command)?;
    Ok((order, targets))
}

/// First transaction of a refund: checks, moves the money out of the merchants' wallets, and
/// records the refunds (with a follow-up for each card refund). Returns the card payment when
/// the gateway must still be asked.
async fn open_refunds<Tx: RefundTx>(
    tx: &mut Tx,
    request: &RefundRequestContext<'_>,
    now: OffsetDateTime,
) -> Result<OpenedRefunds, RefundError> {
    let ids = request.ids;
    let (order, targets) = check_refund(tx, request).await?;
    let card_payment = card_payment_of(tx, &order).await?;
    post_refund_journal(tx, ids, &order, &targets, card_payment.as_ref(), now).await?;
    let reason = match request.command.reason.trim() {
        "" => "requested".to_owned(),
        reason => reason.to_owned(),
    };
    let terms = |(merchant, amount): &(UserId, Money)| RefundTerms {
        order_id: order.id(),
        payment_id: card_payment.as_ref().map(Payment::id),
        merchant_id: *merchant,
        amount: *amount,
        reason: reason.clone(),
        requested_by: Some(request.caller.user_id),
    };
    let refunds: Vec<Refund> = match card_payment {
        Some(_) => targets
            .iter()
            .map(|target| Refund::open(next_id(ids), terms(target), now))
            .collect(),
        None => targets
            .iter()
            .map(|target| Refund::completed(next_id(ids), terms(target), now))
            .collect(),
    };
    for refund in &refunds {
        tx.insert_refund(refund).await?;
    }
    if let Some(request_id) = request.approving {
        approve_request(tx, request, request_id, &order, &refunds, now).await?;
    }
    match card_payment {
        None => record_refunds_on_order(tx, ids, order, &refunds, Actor::User(request.caller.user_id), now).await?,
        Some(_) => {
            for refund in &refunds {
                // The request asks the gateway itself first; the job only if that fails.
                let follow_up = FollowUp::schedule(FollowUpTask::Refund(refund.id()), now + FOLLOW_UP_LEASE, now);
                tx.insert_follow_up(&follow_up).await?;
            }
        }
    }
    Ok(OpenedRefunds { refunds, card_payment })
}

/// Marks the buyer's request approved by the refund just made, locked after the order.
async fn approve_request<Tx: RefundRepository + EventOutbox + Send>(
    tx: &mut Tx,
    request: &RefundRequestContext<'_>,
    request_id: RefundRequestId,
    order: &Order,
    refunds: &[Refund],
    now: OffsetDateTime,
) -> Result<(), RefundError> {
    let asked = tx
        .lock_refund_request(request_id)
        .await?
        .filter(|asked| asked.order_id() == order.id())
        .ok_or(RefundError::RequestNotFound)?;
    let [refund] = refunds else {
        return Err(StoreError::Corrupt(format!("refund request {request_id} made {} refunds", refunds.len())).into());
    };
    let approved = asked.approve(request.caller.user_id, refund.id(), now)?;
    tx.update_refund_request(&approved).await?;
    publish(tx, request.ids, crate::refund_requests::changed(&approved), now).await?;
    Ok(())
}

/// Debits each target merchant's wallet and credits the buyer's wallet (a wallet order) or the
/// gateway's clearing account (a card order).
async fn post_refund_journal<Tx>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    order: &Order,
    targets: &[(UserId, Money)],
    card_payment: Option<&Payment>,
    now: OffsetDateTime,
) -> Result<(), RefundError>
where
    Tx: WalletRepository + LedgerRepository + Send,
{
    let currency = order.currency();
    let destination = match card_payment {
        None => tx.ensure_user_wallet(order.buyer_id(), currency, next_id(ids), now).await?,
        Some(payment) => clearing_wallet(tx, ids, payment.provider(), currency, now).await?,
    };
    let mut entries = Vec::with_capacity(targets.len() + 1);
    let mut total = Money::zero(currency);
    for (merchant, amount) in targets {
        let wallet = tx.ensure_user_wallet(*merchant, currency, next_id(ids), now).await?;
        entries.push(Entry::debit(wallet, *amount)?);
        total = total.checked_add(*amount)?;
    }
    entries.push(Entry::credit(destination, total));
    let reference = format!("order:{}", order.id());
    let journal = JournalTransaction::new(next_id(ids), TransactionKind::Refund, reference, entries, now).map_err(RefundError::Ledger)?;
    post(tx, &journal).await?;
    Ok(())
}
