//! Orders after checkout: fulfilment, and what buyers, merchants and admins may see of them.

use domain::catalog::StockError;
use domain::ids::OrderId;
use domain::order::{Actor, CaptureMethod, Order, StatusChange, TransitionError};
use domain::payment::{Payment, Refund};
use domain::user::Role;
use domain::wallet::Hold;
use time::OffsetDateTime;

use crate::caller::Caller;
use crate::context::App;
use crate::effects::record_order_change;
use crate::pagination::{Cursor, Page, PageRequest};
use crate::ports::gateway::GatewayError;
use crate::ports::store::{
    AdminOrderFilter, EventOutbox, HoldRepository, OrderFilter, OrderRepository, PaymentRepository, RefundRepository, StoreError,
    UnitOfWork,
};
use crate::ports::system::IdGenerator;
use crate::retryable;
use crate::transact::{transact, transact_lagging, work};

/// Errors of commands on an existing order (cancel, fulfil) and of order queries.
#[derive(Debug, thiserror::Error)]
pub enum OrderCommandError {
    /// The order does not exist, or the caller may not see it.
    #[error("the order does not exist")]
    NotFound,
    /// The caller may not do this to this resource.
    #[error("you may not do this to the order")]
    Forbidden,
    /// The reason is empty or longer than 500 characters.
    #[error("the reason must have 1 to 500 characters")]
    Reason,
    /// The provider would not close the checkout, so cancelling could race a payment.
    #[error("the provider would not close the order's checkout: {0}")]
    CheckoutNotClosed(GatewayError),
    /// The checkout was paid meanwhile: the order is about to be paid.
    #[error("the order's checkout has been paid: the order is about to be marked paid and cannot be cancelled")]
    CheckoutCompleted,
    /// The order's status does not allow the change.
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// The order's stock could not be released.
    #[error(transparent)]
    Stock(#[from] StockError),
    /// Storage failed: an outage, a timeout, a conflict that outlasted the retries, or a commit whose
    /// outcome is unknown (`StoreError::OutcomeUnknown`).
    #[error(transparent)]
    Store(#[from] StoreError),
}

retryable!(OrderCommandError);

/// An order with its payment, refunds and status history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderDetails {
    /// The order.
    pub order: Order,
    /// Its latest card payment, if it was paid by card.
    pub payment: Option<Payment>,
    /// Its refunds, oldest first.
    pub refunds: Vec<Refund>,
    /// For manual capture: the hold of each merchant's part.
    pub holds: Vec<Hold>,
    /// Every status change and note of the audit trail, oldest first.
    pub history: Vec<StatusChange>,
}

/// The most entries of an order's history a details view shows (an order makes a handful).
const HISTORY_SHOWN_MAX: usize = 100;

impl<U: UnitOfWork> App<U> {
    /// A merchant of the order (or an admin) marks a paid order as fulfilled.
    pub async fn fulfil_order(&self, caller: &Caller, order_id: OrderId) -> Result<Order, OrderCommandError> {
        let (ids, now, caller) = (self.ids.as_ref(), self.clock.now(), *caller);
        transact(&self.store, |tx| work(fulfil(tx, ids, &caller, order_id, now))).await
    }

    /// An order with its payment, refunds and status history, for its buyer, a merchant with an
    /// item in it, or an admin. Anyone else is told it does not exist.
    pub async fn order_details(&self, caller: &Caller, order_id: OrderId) -> Result<OrderDetails, OrderCommandError> {
        let caller = *caller;
        transact(&self.store, |tx| work(details(tx, &caller, order_id))).await
    }

    /// The caller's own orders, newest first.
    pub async fn my_orders(&self, caller: &Caller, page: &PageRequest) -> Result<Page<Order>, OrderCommandError> {
        self.orders_page(OrderFilter::Buyer(caller.user_id), page).await
    }

    /// Orders with at least one of the merchant's products, newest first.
    pub async fn merchant_sales(&self, caller: &Caller, page: &PageRequest) -> Result<Page<Order>, OrderCommandError> {
        if caller.role != Role::Merchant {
            return Err(OrderCommandError::Forbidden);
        }
        self.orders_page(OrderFilter::Merchant(caller.user_id), page).await
    }

    /// Every order that `filter` keeps, newest first (admins only).
    pub async fn all_orders(
        &self,
        caller: &Caller,
        filter: AdminOrderFilter,
        page: &PageRequest,
    ) -> Result<Page<Order>, OrderCommandError> {
        if !caller.is_admin() {
            return Err(OrderCommandError::Forbidden);
        }
        self.orders_page(OrderFilter::All(filter), page).await
    }

    async fn orders_page(&self, filter: OrderFilter, page: &PageRequest) -> Result<Page<Order>, OrderCommandError> {
        Ok(transact_lagging(&self.store, |tx| work(tx.list_orders(filter, page))).await?)
    }

    /// The audit trail of order statuses, newest first (admins only).
    pub async fn order_audit(
        &self,
        caller: &Caller,
        order: Option<OrderId>,
        page: &PageRequest,
    ) -> Result<Page<StatusChange>, OrderCommandError> {
        if !caller.is_admin() {
            return Err(OrderCommandError::Forbidden);
        }
        Ok(transact_lagging(&self.store, |tx| work(tx.list_status_changes(order, page))).await?)
    }
}

async fn fulfil<Tx>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    caller: &Caller,
    order_id: OrderId,
    now: OffsetDateTime,
) -> Result<Order, OrderCommandError>
where
    Tx: OrderRepository + EventOutbox + Send,
{
    let order = tx.lock_order(order_id).await?.ok_or(OrderCommandError::NotFound)?;
    if !(caller.is_admin() || order.has_merchant(caller.user_id)) {
        return Err(if order.buyer_id() == caller.user_id {
            OrderCommandError::Forbidden
        } else {
            OrderCommandError::NotFound
        });
    }
    let (order, change) = order.fulfil(Actor::User(caller.user_id), now)?;
    record_order_change(tx, ids, &order, change, Vec::new()).await?;
    Ok(order)
}

async fn details<Tx>(tx: &mut Tx, caller: &Caller, order_id: OrderId) -> Result<OrderDetails, OrderCommandError>
where
    Tx: OrderRepository + PaymentRepository + RefundRepository + HoldRepository + Send,
{
    let order = tx.find_order(order_id).await?.ok_or(OrderCommandError::NotFound)?;
    let visible = caller.is_admin() || order.buyer_id() == caller.user_id || order.has_merchant(caller.user_id);
    if !visible {
        return Err(OrderCommandError::NotFound);
    }
    let payment = tx.find_order_payment(order_id).await?;
    let refunds = tx.list_order_refunds(order_id).await?;
    let holds = match order.capture_method() {
        CaptureMethod::Manual => tx.find_order_holds(order_id).await?,
        CaptureMethod::Automatic => Vec::new(),
    };
    let mut history = tx
        .list_status_changes(Some(order_id), &PageRequest::first(HISTORY_SHOWN_MAX))
        .await?
        .items;
    history.reverse();
    Ok(OrderDetails {
        order,
        payment,
        refunds,
        holds,
        history,
    })
}

/// The cursor of an order listing.
pub fn order_cursor(order: &Order) -> Cursor {
    Cursor::Position {
        at: order.created_at(),
        id: order.id().as_uuid(),
    }
}
