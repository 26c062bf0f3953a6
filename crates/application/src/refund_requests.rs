//! Refund requests (the states are `domain::refund_request`'s): a buyer asks for all or part of
//! one merchant's share of a paid order back; that merchant, or an admin, approves or declines
//! it; the buyer may withdraw it while it is open.
//!
//! Approving is a refund (`App::approve_refund_request`, in `refunds`): the request is locked
//! and approved in the refund's first transaction, so an approved request always names a refund
//! and a request is never refunded twice, whoever approves it and however often. The amount is
//! checked against what is left of the merchant's share when the buyer asks and again when it is
//! approved (a merchant may have refunded meanwhile).
//!
//! Lock order: the order, then the request (approving locks it right after the order, before any
//! money moves), then the refund.

use domain::events::DomainEvent;
use domain::ids::{OrderId, RefundRequestId, UserId};
use domain::money::{Money, MoneyError};
use domain::order::{Order, OrderStatus};
use domain::refund_request::{RefundAsk, RefundRequest, RefundRequestError};
use domain::user::Role;
use time::OffsetDateTime;

use crate::caller::Caller;
use crate::context::App;
use crate::effects::{publish, refundable_shares};
use crate::idempotency::{IdempotencyError, Idempotent, Key};
use crate::pagination::{Page, PageRequest};
use crate::ports::store::{
    EventOutbox, IdempotencyRepository, OrderRepository, REFUND_REQUESTS_OPEN, RefundRepository, RefundRequestFilter, StoreError,
    UnitOfWork,
};
use crate::ports::system::{IdGenerator, next_id};
use crate::transact::{transact, transact_lagging, work};
use crate::{keyed, retryable};

/// What a buyer asks for.
#[derive(Debug, Clone)]
pub struct AskRefund {
    /// Whose share; may be left out when the order has one merchant.
    pub merchant_id: Option<UserId>,
    /// `None` asks for everything left of the share.
    pub amount: Option<Money>,
    /// Why, in the buyer's words: shown to the merchant.
    pub reason: String,
}

/// Why asking for, deciding or withdrawing a refund request fails.
#[derive(Debug, thiserror::Error)]
pub enum RefundRequestUseError {
    /// The request does not exist, or the caller may not see it.
    #[error("the refund request does not exist")]
    NotFound,
    /// The order does not exist, or is not the caller's.
    #[error("the order does not exist")]
    OrderNotFound,
    /// The caller is neither the share's merchant nor an admin.
    #[error("only the merchant whose share it concerns, or an admin, may decide a refund request")]
    NotDecider,
    /// Only the buyer who asked may withdraw.
    #[error("only the buyer who asked may withdraw a refund request")]
    NotBuyer,
    /// The order's status allows no refund.
    #[error("refunds of an order that is {0} cannot be requested")]
    NotRefundable(OrderStatus),
    /// The order has several merchants and the ask named none.
    #[error("the order has several merchants: say whose share to ask back")]
    MerchantRequired,
    /// The named merchant sold nothing in the order.
    #[error("the order has no items of this merchant")]
    NotAMerchant,
    /// The share is already refunded in full.
    #[error("nothing is left to refund of this share")]
    NothingToRefund,
    /// More than what is left of the share.
    #[error("at most {refundable} can be refunded")]
    ExceedsRefundable {
        /// What is left of the share.
        refundable: Money,
    },
    /// The amount is in another currency than the order's.
    #[error("the amount must be in the order's currency")]
    Currency,
    /// The buyer already has an open request for this order and merchant.
    #[error("a refund request for this order and merchant is open already")]
    AlreadyOpen,
    /// The request's state machine refused (a bad reason or note, not open, a bad amount).
    #[error(transparent)]
    Request(#[from] RefundRequestError),
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

keyed!(RefundRequestUseError);
retryable!(RefundRequestUseError);

/// Which requests a caller lists: their own as a buyer, those of their share as a merchant,
/// every one as an admin; narrowed by order and status.
#[derive(Debug, Clone, Copy, Default)]
pub struct RefundRequestQuery {
    /// Only requests about this order.
    pub order: Option<OrderId>,
    /// Only requests in this status.
    pub status: Option<domain::refund_request::RefundRequestStatus>,
}

impl<U: UnitOfWork> App<U> {
    /// The buyer of a paid order asks for all or part of one merchant's share back.
    pub async fn request_refund(
        &self,
        caller: &Caller,
        order_id: OrderId,
        ask: AskRefund,
        idempotent: Option<Idempotent<RefundRequest>>,
    ) -> Result<RefundRequest, RefundRequestUseError> {
        let (key, ids, now) = (self.key(idempotent.as_ref()), self.ids.as_ref(), self.clock.now());
        let (caller, ask) = (*caller, &ask);
        transact(&self.store, |tx| work(open_request(tx, ids, caller, order_id, ask, key, now))).await
    }

    /// One request, for its buyer, the merchant whose share it concerns, or an admin.
    pub async fn refund_request(&self, caller: &Caller, id: RefundRequestId) -> Result<RefundRequest, RefundRequestUseError> {
        transact(&self.store, |tx| work(tx.find_refund_request(id)))
            .await?
            .filter(|request| can_see(caller, request))
            .ok_or(RefundRequestUseError::NotFound)
    }

    /// The requests the caller may see, newest first.
    pub async fn refund_requests(
        &self,
        caller: &Caller,
        query: RefundRequestQuery,
        page: &PageRequest,
    ) -> Result<Page<RefundRequest>, RefundRequestUseError> {
        let filter = RefundRequestFilter {
            buyer: (caller.role == Role::Customer).then_some(caller.user_id),
            // A merchant sees the requests to answer and those made buying from other merchants.
            party: (caller.role == Role::Merchant).then_some(caller.user_id),
            order: query.order,
            status: query.status,
            ..RefundRequestFilter::default()
        };
        Ok(transact_lagging(&self.store, |tx| work(tx.list_refund_requests(&filter, page))).await?)
    }

    /// The merchant whose share it concerns, or an admin, declines an open request with a note
    /// for the buyer.
    pub async fn decline_refund_request(
        &self,
        caller: &Caller,
        id: RefundRequestId,
        note: &str,
    ) -> Result<RefundRequest, RefundRequestUseError> {
        let (ids, now, caller) = (self.ids.as_ref(), self.clock.now(), *caller);
        transact(&self.store, |tx| {
            work(async move {
                let request = lock_visible(tx, &caller, id).await?;
                if !can_decide(&caller, &request) {
                    return Err(RefundRequestUseError::NotDecider);
                }
                let declined = request.decline(caller.user_id, note, now)?;
                save(tx, ids, &declined, now).await?;
                Ok(declined)
            })
        })
        .await
    }

    /// The buyer withdraws an open request.
    pub async fn withdraw_refund_request(&self, caller: &Caller, id: RefundRequestId) -> Result<RefundRequest, RefundRequestUseError> {
        let (ids, now, caller) = (self.ids.as_ref(), self.clock.now(), *caller);
        transact(&self.store, |tx| {
            work(async move {
                let request = lock_visible(tx, &caller, id).await?;
                if request.buyer_id() != caller.user_id {
                    return Err(RefundRequestUseError::NotBuyer);
                }
                let withdrawn = request.withdraw(now)?;
                save(tx, ids, &withdrawn, now).await?;
                Ok(withdrawn)
            })
        })
        .await
    }
}

/// Whether the caller may see the request.
pub(crate) fn can_see(caller: &Caller, request: &RefundRequest) -> bool {
    caller.is_admin() || request.buyer_id() == caller.user_id || request.merchant_id() == caller.user_id
}

/// Whether the caller may approve or decline the request.
pub(crate) fn can_decide(caller: &Caller, request: &RefundRequest) -> bool {
    caller.is_admin() || request.merchant_id() == caller.user_id
}

/// The request announced as it now is.
pub(crate) fn changed(request: &RefundRequest) -> DomainEvent {
    DomainEvent::RefundRequestChanged {
        request_id: request.id(),
        order_id: request.order_id(),
        buyer_id: request.buyer_id(),
        merchant_id: request.merchant_id(),
        status: request.status(),
        refund_id: request.record().refund_id,
    }
}

async fn lock_visible<Tx: RefundRepository + Send>(
    tx: &mut Tx,
    caller: &Caller,
    id: RefundRequestId,
) -> Result<RefundRequest, RefundRequestUseError> {
    tx.lock_refund_request(id)
        .await?
        .filter(|request| can_see(caller, request))
        .ok_or(RefundRequestUseError::NotFound)
}

async fn save<Tx: RefundRepository + EventOutbox + Send>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    request: &RefundRequest,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    tx.update_refund_request(request).await?;
    publish(tx, ids, changed(request), now).await
}

/// The request's transaction: claims the key, checks the ask against the order (locked) and its
/// refunds so far, and records the request.
async fn open_request<Tx>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    caller: Caller,
    order_id: OrderId,
    ask: &AskRefund,
    key: Key<'_, RefundRequest>,
    now: OffsetDateTime,
) -> Result<RefundRequest, RefundRequestUseError>
where
    Tx: IdempotencyRepository + OrderRepository + RefundRepository + EventOutbox + Send,
{
    key.claim(tx, now).await?;
    let order = tx
        .lock_order(order_id)
        .await?
        .filter(|order| order.buyer_id() == caller.user_id)
        .ok_or(RefundRequestUseError::OrderNotFound)?;
    if !order.is_paid() {
        return Err(RefundRequestUseError::NotRefundable(order.status()));
    }
    let merchant_id = whose_share(&order, ask.merchant_id)?;
    let refunds = tx.list_order_refunds(order_id).await?;
    let left = refundable_shares(&order, &refunds)?
        .get(&merchant_id)
        .copied()
        .ok_or(RefundRequestUseError::NotAMerchant)?;
    check_amount(ask.amount, left, &order)?;
    let terms = RefundAsk {
        order_id,
        buyer_id: caller.user_id,
        merchant_id,
        amount: ask.amount,
        reason: ask.reason.clone(),
    };
    let request = RefundRequest::open(next_id(ids), terms, now)?;
    match tx.insert_refund_request(&request).await {
        Err(StoreError::Duplicate(name)) if name == REFUND_REQUESTS_OPEN => return Err(RefundRequestUseError::AlreadyOpen),
        outcome => outcome?,
    }
    publish(tx, ids, changed(&request), now).await?;
    key.complete(tx, &request, now).await?;
    Ok(request)
}

/// The merchant named, who must have items in the order; or the order's only merchant.
fn whose_share(order: &Order, named: Option<UserId>) -> Result<UserId, RefundRequestUseError> {
    if let Some(merchant) = named {
        return if order.has_merchant(merchant) {
            Ok(merchant)
        } else {
            Err(RefundRequestUseError::NotAMerchant)
        };
    }
    let mut merchants: Vec<UserId> = order.items().iter().map(|item| item.merchant_id).collect();
    merchants.sort();
    merchants.dedup();
    match merchants.as_slice() {
        [only] => Ok(*only),
        _ => Err(RefundRequestUseError::MerchantRequired),
    }
}

/// The amount asked must fit in what is left of the share.
fn check_amount(amount: Option<Money>, left: Money, order: &Order) -> Result<(), RefundRequestUseError> {
    if !left.is_positive() {
        return Err(RefundRequestUseError::NothingToRefund);
    }
    let Some(amount) = amount else {
        return Ok(());
    };
    if amount.currency() != order.currency() {
        return Err(RefundRequestUseError::Currency);
    }
    if amount.amount_minor() > left.amount_minor() {
        return Err(RefundRequestUseError::ExceedsRefundable { refundable: left });
    }
    Ok(())
}
