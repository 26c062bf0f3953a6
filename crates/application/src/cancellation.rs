//! Cancellation of orders awaiting payment, and giving up payments that will not be paid: by the
//! buyer, after a checkout that could not open, when a checkout expires (the expiry job), or when
//! the provider says the payment failed (settlement).
//!
//! A card order whose payment the provider declined stays awaiting payment, its stock reserved,
//! until that payment's deadline, so that the buyer can pay again; the `UnpaidOrder` follow-up
//! cancels it then if it is still unpaid.
//!
//! An order awaiting payment that is cancelled gives its reserved stock back; its pending payment
//! ends as the cancellation says (cancelled, expired or failed). A payment given up whose order is
//! no longer awaiting it (or a top-up's) just ends.

use domain::events::DomainEvent;
use domain::follow_up::FollowUpTask;
use domain::ids::{OrderId, ProductId};
use domain::order::{Actor, Order, OrderStatus, TransitionError};
use domain::payment::{Payment, PaymentPurpose};
use domain::user::{AdminAction, AdminActionKind};
use time::OffsetDateTime;

use crate::administration::REASON_CHARS_MAX;
use crate::caller::Caller;
use crate::context::App;
use crate::effects::{event, record_order_change};
use crate::follow_ups::mark_follow_up_done;
use crate::orders::OrderCommandError;
use crate::ports::gateway::CheckoutClosure;
use crate::ports::store::{
    AdminAuditRepository, EventOutbox, FollowUpRepository, OrderRepository, PaymentLookup, PaymentRepository, ProductRepository,
    StoreError, UnitOfWork,
};
use crate::ports::system::{IdGenerator, next_id};
use crate::transact::{transact, work};

/// How a payment that will not be paid ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PaymentEnd {
    Cancelled,
    Expired,
    Failed,
}

impl PaymentEnd {
    /// The payment ended this way, and the event that says so; `None` if it was already settled.
    pub(crate) fn apply(self, payment: Payment, now: OffsetDateTime) -> Option<(Payment, DomainEvent)> {
        let payment_id = payment.id();
        let ended = match self {
            PaymentEnd::Cancelled => payment.cancel(now),
            PaymentEnd::Expired => payment.expire(now),
            PaymentEnd::Failed => payment.fail(now),
        };
        let announced = match self {
            PaymentEnd::Expired => DomainEvent::PaymentExpired { payment_id },
            PaymentEnd::Cancelled | PaymentEnd::Failed => DomainEvent::PaymentFailed { payment_id },
        };
        ended.ok().map(|payment| (payment, announced))
    }
}

/// Why and by whom a payment is given up.
#[derive(Debug, Clone)]
pub(crate) struct Cancellation<'a> {
    pub end: PaymentEnd,
    pub actor: Actor,
    pub reason: &'a str,
}

/// Cancels an order that is awaiting payment: the order is cancelled, its reserved stock is
/// released and its payment (already locked by the caller, if any) ends as `cancellation` says.
/// Returns the product ids whose stock changed.
pub(crate) async fn cancel_awaiting_order<Tx>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    order: Order,
    payment: Option<Payment>,
    cancellation: Cancellation<'_>,
    now: OffsetDateTime,
) -> Result<Vec<ProductId>, OrderCommandError>
where
    Tx: OrderRepository + PaymentRepository + ProductRepository + EventOutbox + Send,
{
    let Cancellation { end, actor, reason } = cancellation;
    let (order, change) = order.cancel(actor, reason, now)?;
    let product_ids = order.product_ids();
    let mut stock = tx.lock_stock(&product_ids).await?;
    for item in order.items() {
        if let Some(row) = stock.iter_mut().find(|s| s.product_id == item.product_id) {
            row.release(item.quantity)?;
        }
    }
    tx.update_stock(&stock).await?;
    let mut events = Vec::new();
    if let Some((payment, announced)) = payment.filter(Payment::is_pending).and_then(|payment| end.apply(payment, now)) {
        tx.update_payment(&payment).await?;
        events.push(event(ids, announced, now));
    }
    record_order_change(tx, ids, &order, change, events).await?;
    Ok(product_ids)
}

/// Gives up a locked, pending payment that will not be paid, with its order if that is still
/// awaiting it. Returns the product ids whose stock changed.
pub(crate) async fn give_up_payment<Tx>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    payment: Payment,
    cancellation: Cancellation<'_>,
    now: OffsetDateTime,
) -> Result<Vec<ProductId>, OrderCommandError>
where
    Tx: OrderRepository + PaymentRepository + ProductRepository + EventOutbox + Send,
{
    if let PaymentPurpose::Order(order_id) = payment.purpose() {
        let order = tx
            .lock_order(order_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("payment {} has no order", payment.id())))?;
        if order.is_awaiting_payment() {
            return cancel_awaiting_order(tx, ids, order, Some(payment), cancellation, now).await;
        }
    }
    if let Some((payment, announced)) = cancellation.end.apply(payment, now) {
        tx.update_payment(&payment).await?;
        tx.enqueue_events(&[event(ids, announced, now)]).await?;
    }
    Ok(Vec::new())
}

impl<U: UnitOfWork> App<U> {
    /// The buyer gives up an order that is still awaiting payment; its stock goes back on sale.
    /// A card order's checkout is closed at the provider first, so it can no longer be paid; if
    /// the provider will not close it (it is being paid, or the provider is down), the order
    /// stays as it is and the error says why. A provider without a way to close checkouts
    /// (Monnify) may still take a payment, which then comes back as a refunded late success.
    #[tracing::instrument(name = "cancel_order", skip_all, fields(user_id = %caller.user_id, %order_id))]
    pub async fn cancel_order(&self, caller: &Caller, order_id: OrderId) -> Result<Order, OrderCommandError> {
        let (order, payment) = transact(&self.store, |tx| work(peek_order(tx, order_id)))
            .await?
            .ok_or(OrderCommandError::NotFound)?;
        if order.buyer_id() != caller.user_id {
            return Err(if caller.is_admin() || order.has_merchant(caller.user_id) {
                OrderCommandError::Forbidden
            } else {
                OrderCommandError::NotFound
            });
        }
        if order.is_awaiting_payment()
            && let Some(payment) = payment.as_ref().filter(|payment| payment.is_pending())
        {
            self.close_checkout(payment).await?;
        }
        let (ids, now) = (self.ids.as_ref(), self.clock.now());
        let cancellation = Cancellation {
            end: PaymentEnd::Cancelled,
            actor: Actor::User(caller.user_id),
            reason: "cancelled by the buyer",
        };
        let cancellation = &cancellation;
        let (order, product_ids) = transact(&self.store, |tx| work(cancel_for_buyer(tx, ids, order_id, cancellation, now))).await?;
        self.invalidate_catalog(&product_ids).await;
        Ok(order)
    }

    /// An admin cancels an order still awaiting payment, with a reason kept in the admins' audit
    /// trail; its checkout is closed at the provider first, as for the buyer.
    pub async fn admin_cancel_order(&self, caller: &Caller, order_id: OrderId, reason: &str) -> Result<Order, OrderCommandError> {
        if !caller.is_admin() {
            return Err(OrderCommandError::Forbidden);
        }
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > REASON_CHARS_MAX {
            return Err(OrderCommandError::Reason);
        }
        let (order, payment) = transact(&self.store, |tx| work(peek_order(tx, order_id)))
            .await?
            .ok_or(OrderCommandError::NotFound)?;
        if !order.is_awaiting_payment() {
            return Err(OrderCommandError::Transition(TransitionError {
                from: order.status(),
                to: OrderStatus::Cancelled,
            }));
        }
        if let Some(payment) = payment.as_ref().filter(|payment| payment.is_pending()) {
            self.close_checkout(payment).await?;
        }
        let (ids, now, admin) = (self.ids.as_ref(), self.clock.now(), caller.user_id);
        let cancellation = Cancellation {
            end: PaymentEnd::Cancelled,
            actor: Actor::User(admin),
            reason: "cancelled by an admin",
        };
        let cancellation = &cancellation;
        let (order, product_ids) = transact(&self.store, |tx| {
            work(async move {
                let cancelled = cancel_for_buyer(tx, ids, order_id, cancellation, now).await?;
                let entry = AdminAction {
                    id: next_id(ids),
                    admin_id: admin,
                    kind: AdminActionKind::OrderCancelled,
                    subject: format!("order:{order_id}"),
                    reason: reason.to_owned(),
                    details: String::new(),
                    at: now,
                };
                tx.record_admin_action(&entry).await?;
                Ok::<_, OrderCommandError>(cancelled)
            })
        })
        .await?;
        self.invalidate_catalog(&product_ids).await;
        Ok(order)
    }

    /// Closes a pending payment's checkout at its provider.
    pub(crate) async fn close_checkout(&self, payment: &Payment) -> Result<(), OrderCommandError> {
        let (Some(gateway), Some(session)) = (self.gateways.get(payment.provider()), payment.provider_session_id()) else {
            return Ok(());
        };
        let closure = gateway.expire_checkout(session).await.map_err(|error| {
            tracing::warn!(%error, payment_id = %payment.id(), "the provider would not close the checkout; the order stays pending");
            OrderCommandError::CheckoutNotClosed(error)
        })?;
        match closure {
            CheckoutClosure::Closed | CheckoutClosure::AlreadyClosed => Ok(()),
            CheckoutClosure::Completed => Err(OrderCommandError::CheckoutCompleted),
            CheckoutClosure::NotSupported => {
                tracing::info!(payment_id = %payment.id(), provider = %payment.provider(), "the provider cannot close checkouts; a late payment will be refunded");
                Ok(())
            }
        }
    }

    /// Cancels an order if it is still awaiting payment. Returns whether it was cancelled.
    pub(crate) async fn cancel_if_awaiting_payment(
        &self,
        order_id: OrderId,
        end: PaymentEnd,
        actor: Actor,
        reason: &str,
    ) -> Result<bool, OrderCommandError> {
        let (ids, now) = (self.ids.as_ref(), self.clock.now());
        let cancellation = Cancellation { end, actor, reason };
        let cancellation = &cancellation;
        let changed = transact(&self.store, |tx| work(cancel_awaiting(tx, ids, order_id, cancellation, now))).await?;
        if let Some(product_ids) = &changed {
            self.invalidate_catalog(product_ids).await;
        }
        Ok(changed.is_some())
    }

    /// The follow-up of an order whose payment was declined, at its deadline: the order is
    /// cancelled and its stock released unless it was paid, cancelled or is being paid again.
    pub(crate) async fn end_unpaid_order(&self, order_id: OrderId) -> Result<(), OrderCommandError> {
        let (ids, now) = (self.ids.as_ref(), self.clock.now());
        let deadline = transact(&self.store, |tx| work(end_if_unpaid(tx, ids, order_id, now))).await?;
        if let Deadline::Cancelled(products) = deadline {
            tracing::info!(%order_id, "an order left unpaid after a declined payment was cancelled at its deadline");
            self.invalidate_catalog(&products).await;
        }
        Ok(())
    }

    /// The expiry job: cancels card orders and top-ups whose checkout expired unpaid, releasing
    /// reserved stock, then closes their checkouts at the provider. Safe to run on several
    /// servers at once: each payment is locked, and locked ones skipped.
    #[tracing::instrument(name = "expire_abandoned_checkouts", skip_all, fields(batch = batch_size))]
    pub async fn expire_abandoned_checkouts(&self, batch_size: usize) -> Result<usize, OrderCommandError> {
        let (ids, now) = (self.ids.as_ref(), self.clock.now());
        let (expired, products) = transact(&self.store, |tx| work(expire_payments(tx, ids, batch_size, now))).await?;
        if !products.is_empty() {
            self.invalidate_catalog(&products).await;
        }
        for payment in &expired {
            let (Some(gateway), Some(session)) = (self.gateways.get(payment.provider()), payment.provider_session_id()) else {
                continue;
            };
            if let Err(error) = gateway.expire_checkout(session).await {
                tracing::warn!(%error, provider = %payment.provider(), session, "could not close the expired checkout at the gateway; a late payment will be refunded");
            }
        }
        Ok(expired.len())
    }
}

/// What the deadline of a declined order found.
enum Deadline {
    /// Paid, cancelled, or paying again under a pending payment that has its own deadline.
    Settled,
    /// Not yet: taken again then.
    Later(OffsetDateTime),
    /// Cancelled now; these products' stock was released.
    Cancelled(Vec<ProductId>),
}

/// At the deadline of an order whose payment was declined: cancels it if it is still unpaid, and
/// ends its follow-up.
async fn end_if_unpaid<Tx>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    order_id: OrderId,
    now: OffsetDateTime,
) -> Result<Deadline, OrderCommandError>
where
    Tx: OrderRepository + PaymentRepository + ProductRepository + FollowUpRepository + EventOutbox + Send,
{
    let task = FollowUpTask::UnpaidOrder(order_id);
    let deadline = match lock_order_and_payment(tx, order_id).await? {
        Some((order, payment)) if order.is_awaiting_payment() && !payment.as_ref().is_some_and(Payment::is_pending) => {
            match payment.map(|payment| payment.expires_at()).filter(|deadline| *deadline > now) {
                Some(later) => Deadline::Later(later),
                None => {
                    let cancellation = Cancellation {
                        end: PaymentEnd::Expired,
                        actor: Actor::System,
                        reason: "no payment came after the declined one before the deadline",
                    };
                    Deadline::Cancelled(cancel_awaiting_order(tx, ids, order, None, cancellation, now).await?)
                }
            }
        }
        Some(_) | None => Deadline::Settled,
    };
    match &deadline {
        Deadline::Later(at) => {
            if let Some(follow_up) = tx.lock_follow_up(&task).await? {
                tx.update_follow_up(&follow_up.reschedule(*at, now)).await?;
            }
        }
        Deadline::Settled | Deadline::Cancelled(_) => mark_follow_up_done(tx, task, now).await?,
    }
    Ok(deadline)
}

/// Finds an order and its latest payment without locking, to learn what to lock.
async fn peek_order<Tx: OrderRepository + PaymentRepository + Send>(
    tx: &mut Tx,
    id: OrderId,
) -> Result<Option<(Order, Option<Payment>)>, StoreError> {
    let Some(order) = tx.find_order(id).await? else {
        return Ok(None);
    };
    let payment = tx.find_order_payment(id).await?;
    Ok(Some((order, payment)))
}

/// Locks an order and its latest payment, in the lock order (payment first).
async fn lock_order_and_payment<Tx: OrderRepository + PaymentRepository + Send>(
    tx: &mut Tx,
    order_id: OrderId,
) -> Result<Option<(Order, Option<Payment>)>, StoreError> {
    let Some((_, payment)) = peek_order(tx, order_id).await? else {
        return Ok(None);
    };
    let payment = match payment {
        Some(payment) => tx.lock_payment(payment.provider(), &PaymentLookup::Ours(payment.id())).await?,
        None => None,
    };
    Ok(tx.lock_order(order_id).await?.map(|order| (order, payment)))
}

/// The buyer's cancellation, in its transaction: the order as cancelled, and the products whose
/// stock changed.
async fn cancel_for_buyer<Tx>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    order_id: OrderId,
    cancellation: &Cancellation<'_>,
    now: OffsetDateTime,
) -> Result<(Order, Vec<ProductId>), OrderCommandError>
where
    Tx: OrderRepository + PaymentRepository + ProductRepository + EventOutbox + Send,
{
    let (order, payment) = lock_order_and_payment(tx, order_id).await?.ok_or(OrderCommandError::NotFound)?;
    // Read again under the lock: an authorised order is ended by its merchants' captures and
    // voids, which settle its holds and stock part by part, never by a cancellation.
    if !order.is_awaiting_payment() {
        return Err(OrderCommandError::Transition(TransitionError {
            from: order.status(),
            to: OrderStatus::Cancelled,
        }));
    }
    let product_ids = cancel_awaiting_order(tx, ids, order, payment, cancellation.clone(), now).await?;
    let order = tx.find_order(order_id).await?.ok_or(OrderCommandError::NotFound)?;
    Ok((order, product_ids))
}

/// Cancels the order if it is still awaiting payment; `None` if it is not (or is gone).
async fn cancel_awaiting<Tx>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    order_id: OrderId,
    cancellation: &Cancellation<'_>,
    now: OffsetDateTime,
) -> Result<Option<Vec<ProductId>>, OrderCommandError>
where
    Tx: OrderRepository + PaymentRepository + ProductRepository + EventOutbox + Send,
{
    match lock_order_and_payment(tx, order_id).await? {
        Some((order, payment)) if order.is_awaiting_payment() => Ok(Some(
            cancel_awaiting_order(tx, ids, order, payment, cancellation.clone(), now).await?,
        )),
        Some(_) | None => Ok(None),
    }
}

/// Gives up the pending payments whose checkout expired (at most `batch_size`), locked and
/// skipping those another instance holds. Returns them, and the products whose stock changed.
async fn expire_payments<Tx>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    batch_size: usize,
    now: OffsetDateTime,
) -> Result<(Vec<Payment>, Vec<ProductId>), OrderCommandError>
where
    Tx: OrderRepository + PaymentRepository + ProductRepository + EventOutbox + Send,
{
    let payments = tx.lock_expired_payments(now, batch_size).await?;
    let mut products = Vec::new();
    for payment in &payments {
        let cancellation = Cancellation {
            end: PaymentEnd::Expired,
            actor: Actor::System,
            reason: "the checkout expired",
        };
        products.extend(give_up_payment(tx, ids, payment.clone(), cancellation, now).await?);
    }
    Ok((payments, products))
}
