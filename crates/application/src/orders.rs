//! Orders: checkout by wallet or card, cancellation, fulfilment, refunds, and the listings of
//! buyers, merchants and admins.
//!
//! Lock order, everywhere: payment, order, refund, call, stock (by product id), wallets (by wallet id),
//! then hold. Each use case locks only what it writes, in that order, so no two can deadlock.

use std::collections::BTreeMap;

use domain::catalog::{Product, Quantity, Stock, StockError};
use domain::events::{DomainEvent, OutboxEvent};
use domain::ids::{OrderId, ProductId, RefundId, UserId, WalletId};
use domain::ledger::{Entry, JournalTransaction, LedgerError, TransactionKind};
use domain::money::{Currency, Money, MoneyError};
use domain::order::{Actor, Order, OrderError, OrderStatus, PaymentMethod, StatusChange, TransitionError};
use domain::payment::{Payment, PaymentPurpose, PaymentStatus, ProviderName, Refund, RefundStatus};
use domain::user::Role;
use domain::wallet::{SystemAccount, Wallet};
use time::OffsetDateTime;

use crate::auth::Caller;
use crate::context::App;
use crate::idempotency::{Idempotent, complete_if_claimed};
use crate::ledger::{PostingError, post, post_locked};
use crate::pagination::{Cursor, Page, PageRequest};
use crate::ports::gateway::{CheckoutLine, CheckoutRequest, GatewayError, GatewayRefundStatus, RefundRequest};
use crate::ports::store::{
    EventOutbox, LedgerRepository, OrderFilter, OrderRepository, PaymentLookup, PaymentRepository, ProductRepository, RefundRepository,
    StoreError, Transaction, UnitOfWork, UserRepository, WalletRepository,
};
use crate::ports::system::{IdGenerator, next_id};
use crate::retryable;
use crate::transact::transact;
use crate::wallets::system_wallet;

#[derive(Debug, Clone)]
pub struct CheckoutCommand {
    pub items: Vec<(ProductId, Quantity)>,
    pub payment_method: PaymentMethod,
    /// For card payments: which gateway; the default one when `None`.
    pub provider: Option<ProviderName>,
}

/// A placed order and, for a card payment, the payment with its checkout URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkout {
    pub order: Order,
    pub payment: Option<Payment>,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    #[error(transparent)]
    Order(#[from] OrderError),
    #[error("product {0} does not exist")]
    ProductNotFound(ProductId),
    #[error("product {product_id} is out of stock: {available} available, {requested} requested")]
    OutOfStock {
        product_id: ProductId,
        available: i64,
        requested: u32,
    },
    #[error("insufficient funds: {available} available, {required} required")]
    InsufficientFunds { available: Money, required: Money },
    #[error("no card gateway takes {0}")]
    NoGateway(Currency),
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    #[error(transparent)]
    Ledger(LedgerError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Errors of commands on an existing order (cancel, fulfil) and of order queries.
#[derive(Debug, thiserror::Error)]
pub enum OrderCommandError {
    #[error("the order does not exist")]
    NotFound,
    #[error("you may not do this to the order")]
    Forbidden,
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error(transparent)]
    Stock(#[from] StockError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

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
    Store(#[from] StoreError),
}

retryable!(CheckoutError, OrderCommandError, RefundError);

impl From<TransitionError> for CheckoutError {
    fn from(error: TransitionError) -> Self {
        CheckoutError::Order(OrderError::Transition(error))
    }
}

impl From<MoneyError> for CheckoutError {
    fn from(error: MoneyError) -> Self {
        CheckoutError::Order(OrderError::Money(error))
    }
}

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

/// An order with its payment and refunds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderDetails {
    pub order: Order,
    pub payment: Option<Payment>,
    pub refunds: Vec<Refund>,
}

#[derive(Debug, Clone)]
pub struct RefundCommand {
    /// `None` refunds everything that is left (of the merchant's share, or of every share).
    pub amount: Option<Money>,
    /// Whose share to refund; merchants may only name themselves.
    pub merchant_id: Option<UserId>,
    pub reason: String,
}

pub(crate) fn event(ids: &dyn IdGenerator, event: DomainEvent, at: OffsetDateTime) -> OutboxEvent {
    OutboxEvent {
        id: next_id(ids),
        event,
        occurred_at: at,
    }
}

pub(crate) fn status_events(ids: &dyn IdGenerator, changes: &[StatusChange]) -> Vec<OutboxEvent> {
    changes
        .iter()
        .map(|change| {
            let changed = DomainEvent::OrderStatusChanged {
                order_id: change.order_id,
                from: change.from,
                to: change.to,
            };
            event(ids, changed, change.at)
        })
        .collect()
}

/// Locks the stock of the cart's products (in product id order) and loads the products.
async fn lock_cart<Tx: ProductRepository + Send>(
    tx: &mut Tx,
    items: &[(ProductId, Quantity)],
) -> Result<(Vec<Stock>, Vec<Product>), CheckoutError> {
    let mut ids: Vec<ProductId> = items.iter().map(|(id, _)| *id).collect();
    ids.sort();
    ids.dedup();
    let cart = tx.lock_cart(&ids).await?;
    if let Some(missing) = ids.iter().find(|id| !cart.iter().any(|(s, _)| s.product_id == **id)) {
        return Err(CheckoutError::ProductNotFound(*missing));
    }
    Ok(cart.into_iter().unzip())
}

/// Debits the buyer's wallet the order's total and credits each merchant their share, as one
/// journal transaction; the buyer's and merchants' wallets are locked together, in id order.
async fn pay_from_wallet<Tx>(tx: &mut Tx, ids: &dyn IdGenerator, order: &Order, now: OffsetDateTime) -> Result<(), CheckoutError>
where
    Tx: WalletRepository + LedgerRepository + Send,
{
    let currency = order.currency();
    let shares = order.merchant_totals()?;
    let mut owners: Vec<(UserId, WalletId)> = vec![(order.buyer_id, next_id(ids))];
    owners.extend(shares.keys().map(|merchant| (*merchant, next_id(ids))));
    let mut wallets = tx.lock_user_wallets(&owners, currency, now).await?;
    let wallet_of = |user: UserId| wallets.iter().find(|w| w.user_id() == Some(user)).map(Wallet::id);
    let buyer_wallet = wallet_of(order.buyer_id).ok_or_else(|| StoreError::Corrupt("the buyer's wallet was not locked".into()))?;
    let available = wallets
        .iter()
        .find(|w| w.id() == buyer_wallet)
        .map(Wallet::available)
        .unwrap_or(Money::zero(currency));
    let mut entries = vec![Entry::debit(buyer_wallet, order.total)?];
    for (merchant, share) in &shares {
        let wallet = wallet_of(*merchant).ok_or_else(|| StoreError::Corrupt("a merchant's wallet was not locked".into()))?;
        entries.push(Entry::credit(wallet, *share));
    }
    let journal = JournalTransaction::new(next_id(ids), TransactionKind::Purchase, format!("order:{}", order.id), entries, now)
        .map_err(CheckoutError::Ledger)?;
    post_locked(tx, &journal, &mut wallets).await.map_err(|error| match error {
        PostingError::Ledger(ref ledger) if ledger.insufficient_funds().is_some() => CheckoutError::InsufficientFunds {
            available,
            required: order.total,
        },
        PostingError::Ledger(ledger) => CheckoutError::Ledger(ledger),
        PostingError::Store(store) => CheckoutError::Store(store),
    })?;
    Ok(())
}

/// Prices the cart into a new order (status `created`).
fn place_order(
    order_id: OrderId,
    buyer: UserId,
    items: &[(ProductId, Quantity)],
    products: &[Product],
    method: PaymentMethod,
    now: OffsetDateTime,
) -> Result<(Order, StatusChange), CheckoutError> {
    let mut lines = Vec::with_capacity(items.len());
    for (id, quantity) in items {
        let product = products.iter().find(|p| p.id == *id).ok_or(CheckoutError::ProductNotFound(*id))?;
        lines.push((product, *quantity));
    }
    Ok(Order::place(order_id, buyer, &lines, method, now)?)
}

/// Applies `apply` to the stock of every item of the order.
fn each_item_stock(
    order: &Order,
    stock: &mut [Stock],
    apply: impl Fn(&mut Stock, Quantity) -> Result<(), StockError>,
) -> Result<(), CheckoutError> {
    for item in &order.items {
        let row = stock
            .iter_mut()
            .find(|s| s.product_id == item.product_id)
            .ok_or(CheckoutError::ProductNotFound(item.product_id))?;
        apply(row, item.quantity).map_err(|error| match error {
            StockError::Insufficient { available, requested } => CheckoutError::OutOfStock {
                product_id: item.product_id,
                available,
                requested,
            },
            other => CheckoutError::Store(StoreError::Corrupt(format!("stock out of step with order {}: {other}", order.id))),
        })?;
    }
    Ok(())
}

/// Credits each merchant's share of a paid order from `source` (the buyer's wallet or a gateway's
/// clearing account), as one journal transaction.
pub(crate) async fn pay_merchants<Tx>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    order: &Order,
    source: WalletId,
    now: OffsetDateTime,
) -> Result<(), PostingError>
where
    Tx: WalletRepository + LedgerRepository + Send,
{
    let currency = order.currency();
    let mut entries = vec![Entry::debit(source, order.total).map_err(|e| LedgerError::Wallet {
        wallet_id: source,
        source: e.into(),
    })?];
    for (merchant, share) in order.merchant_totals().map_err(|e| LedgerError::Wallet {
        wallet_id: source,
        source: e.into(),
    })? {
        let wallet = tx.ensure_user_wallet(merchant, currency, next_id(ids), now).await?;
        entries.push(Entry::credit(wallet, share));
    }
    let journal = JournalTransaction::new(next_id(ids), TransactionKind::Purchase, format!("order:{}", order.id), entries, now)?;
    post(tx, &journal).await?;
    Ok(())
}

/// How an unpaid order ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PaymentEnd {
    Cancelled,
    Expired,
    Failed,
}

/// Why and by whom an unpaid order is cancelled.
#[derive(Debug, Clone)]
pub(crate) struct Cancellation<'a> {
    pub end: PaymentEnd,
    pub actor: Actor,
    pub reason: &'a str,
}

/// Cancels an order that is still awaiting payment: the order is cancelled, its reserved stock is
/// released and its payment (already locked by the caller, if any) is settled as `end` says.
/// Returns the product ids whose stock changed.
pub(crate) async fn cancel_unpaid<Tx: Transaction>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    order: Order,
    payment: Option<Payment>,
    cancellation: Cancellation<'_>,
    now: OffsetDateTime,
) -> Result<Vec<ProductId>, OrderCommandError> {
    let Cancellation { end, actor, reason } = cancellation;
    let (order, change) = order.cancel(actor, reason, now)?;
    let mut product_ids: Vec<ProductId> = order.items.iter().map(|item| item.product_id).collect();
    product_ids.sort();
    let mut stock = tx.lock_stock(&product_ids).await?;
    for item in &order.items {
        if let Some(row) = stock.iter_mut().find(|s| s.product_id == item.product_id) {
            row.release(item.quantity)?;
        }
    }
    tx.update_stock(&stock).await?;
    tx.update_order(&order).await?;
    tx.append_status_changes(std::slice::from_ref(&change)).await?;
    let mut events = status_events(ids, std::slice::from_ref(&change));
    if let Some(payment) = payment.filter(|p| p.status == PaymentStatus::Pending) {
        let settled = match end {
            PaymentEnd::Cancelled => payment.cancel(now),
            PaymentEnd::Expired => payment.expire(now),
            PaymentEnd::Failed => payment.fail(now),
        };
        if let Ok(settled) = settled {
            tx.update_payment(&settled).await?;
            let payment_event = match end {
                PaymentEnd::Expired => DomainEvent::PaymentExpired { payment_id: settled.id },
                PaymentEnd::Cancelled | PaymentEnd::Failed => DomainEvent::PaymentFailed { payment_id: settled.id },
            };
            events.push(event(ids, payment_event, now));
        }
    }
    tx.enqueue_events(&events).await?;
    Ok(product_ids)
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

impl<U: UnitOfWork> App<U> {
    /// Places an order. A wallet payment completes at once, atomically; a card payment reserves the
    /// stock and returns a checkout URL, and the order is paid when the gateway's webhook says so.
    pub async fn checkout(
        &self,
        caller: &Caller,
        command: CheckoutCommand,
        idempotent: Option<Idempotent<Checkout>>,
    ) -> Result<Checkout, CheckoutError> {
        if command.items.is_empty() {
            return Err(CheckoutError::Order(OrderError::Empty));
        }
        if command.items.len() > Order::ITEMS_MAX {
            return Err(CheckoutError::Order(OrderError::TooManyItems { max: Order::ITEMS_MAX }));
        }
        match command.payment_method {
            PaymentMethod::Wallet => self.checkout_with_wallet(caller, &command, idempotent).await,
            PaymentMethod::Card => self.checkout_with_card(caller, &command, idempotent).await,
        }
    }

    async fn checkout_with_wallet(
        &self,
        caller: &Caller,
        command: &CheckoutCommand,
        idempotent: Option<Idempotent<Checkout>>,
    ) -> Result<Checkout, CheckoutError> {
        let buyer = caller.user_id;
        let ids = self.ids.as_ref();
        let now = self.clock.now();
        let idempotent = idempotent.as_ref();
        let checkout = transact(&self.store, move |mut tx| async move {
            let result: Result<_, CheckoutError> = async {
                let (mut stock, products) = lock_cart(&mut tx, &command.items).await?;
                let (order, created) = place_order(next_id(ids), buyer, &command.items, &products, PaymentMethod::Wallet, now)?;
                each_item_stock(&order, &mut stock, Stock::sell)?;
                let actor = Actor::User(buyer);
                let (order, pending) = order.await_payment(actor.clone(), now)?;
                let (order, paid) = order.mark_paid(actor, now)?;
                pay_from_wallet(&mut tx, ids, &order, now).await?;
                tx.update_stock(&stock).await?;
                tx.insert_order(&order).await?;
                let changes = [created, pending, paid];
                tx.append_status_changes(&changes).await?;
                // The audit trail keeps all three steps; the outbox announces the outcome, an order
                // that is paid (its stock change follows from its items).
                tx.enqueue_events(&status_events(ids, &changes[2..])).await?;
                let checkout = Checkout { order, payment: None };
                complete_if_claimed(idempotent, &mut tx, &checkout, now).await?;
                Ok(checkout)
            }
            .await;
            (tx, result)
        })
        .await?;
        let product_ids: Vec<ProductId> = checkout.order.items.iter().map(|item| item.product_id).collect();
        self.invalidate_catalog(&product_ids).await;
        Ok(checkout)
    }

    async fn checkout_with_card(
        &self,
        caller: &Caller,
        command: &CheckoutCommand,
        idempotent: Option<Idempotent<Checkout>>,
    ) -> Result<Checkout, CheckoutError> {
        let buyer = caller.user_id;
        let ids = self.ids.as_ref();
        let now = self.clock.now();
        let expires_at = now + self.settings.checkout_ttl;
        let gateways = &self.gateways;
        let (order, payment, email) = transact(&self.store, move |mut tx| async move {
            let result: Result<_, CheckoutError> = async {
                let (mut stock, products) = lock_cart(&mut tx, &command.items).await?;
                let (order, created) = place_order(next_id(ids), buyer, &command.items, &products, PaymentMethod::Card, now)?;
                let gateway = gateways
                    .for_currency(command.provider.as_ref(), order.currency())
                    .ok_or(CheckoutError::NoGateway(order.currency()))?;
                each_item_stock(&order, &mut stock, Stock::reserve)?;
                let (order, pending) = order.await_payment(Actor::User(buyer), now)?;
                let payment = Payment::open(
                    next_id(ids),
                    PaymentPurpose::Order(order.id),
                    buyer,
                    gateway.provider().clone(),
                    order.total,
                    now,
                    expires_at,
                );
                let user = tx
                    .find_user(buyer)
                    .await?
                    .ok_or_else(|| StoreError::Corrupt("caller has no user row".into()))?;
                tx.update_stock(&stock).await?;
                tx.insert_order(&order).await?;
                tx.insert_payment(&payment).await?;
                let changes = [created, pending];
                tx.append_status_changes(&changes).await?;
                let mut events = status_events(ids, &changes);
                events.extend(stock.iter().map(|s| {
                    event(
                        ids,
                        DomainEvent::StockChanged {
                            product_id: s.product_id,
                            available: s.available(),
                        },
                        now,
                    )
                }));
                tx.enqueue_events(&events).await?;
                Ok((order, payment, user.email))
            }
            .await;
            (tx, result)
        })
        .await?;
        let product_ids: Vec<ProductId> = order.items.iter().map(|item| item.product_id).collect();
        self.invalidate_catalog(&product_ids).await;

        let gateway = self
            .gateways
            .get(&payment.provider)
            .ok_or(CheckoutError::NoGateway(order.currency()))?
            .clone();
        let request = CheckoutRequest {
            payment_id: payment.id,
            amount: payment.amount,
            description: format!("Order {}", order.id),
            lines: order
                .items
                .iter()
                .map(|item| CheckoutLine {
                    name: item.product_name.clone(),
                    unit_amount: item.unit_price,
                    quantity: item.quantity.get(),
                })
                .collect(),
            customer_email: email.to_string(),
            expires_at: payment.expires_at,
            idempotency_key: format!("checkout-{}", payment.id),
        };
        let session = match gateway.create_checkout(request).await {
            Ok(session) => session,
            Err(error) => {
                self.cancel_after_failed_checkout(order.id).await;
                return Err(error.into());
            }
        };
        let payment = payment.attach_session(session.session_id, session.checkout_url, self.clock.now());
        let checkout = Checkout {
            order,
            payment: Some(payment),
        };
        let (checkout_ref, idempotent) = (&checkout, idempotent.as_ref());
        transact(&self.store, move |mut tx| async move {
            let result: Result<_, StoreError> = async {
                if let Some(payment) = &checkout_ref.payment {
                    tx.update_payment(payment).await?;
                }
                complete_if_claimed(idempotent, &mut tx, checkout_ref, now).await?;
                Ok(())
            }
            .await;
            (tx, result)
        })
        .await
        .map_err(CheckoutError::Store)?;
        Ok(checkout)
    }

    /// The gateway would not open a checkout: give the stock back and fail the payment.
    async fn cancel_after_failed_checkout(&self, order_id: OrderId) {
        let outcome = self
            .cancel_pending_order(order_id, PaymentEnd::Failed, Actor::System, "the checkout could not be opened")
            .await;
        if let Err(error) = outcome {
            tracing::error!(%error, %order_id, "could not cancel the order after a failed checkout; the expiry job will");
        }
    }

    /// Cancels an order awaiting payment, if it still is. Returns whether it was cancelled.
    pub(crate) async fn cancel_pending_order(
        &self,
        order_id: OrderId,
        end: PaymentEnd,
        actor: Actor,
        reason: &str,
    ) -> Result<bool, OrderCommandError> {
        let now = self.clock.now();
        let ids = self.ids.as_ref();
        let actor = &actor;
        let changed = transact(&self.store, move |mut tx| async move {
            let result: Result<_, OrderCommandError> = async {
                let Some((_, payment)) = peek_order(&mut tx, order_id).await? else {
                    return Ok(None);
                };
                let payment = match payment {
                    Some(p) => tx.lock_payment(&p.provider, &PaymentLookup::Ours(p.id)).await?,
                    None => None,
                };
                let order = tx.lock_order(order_id).await?.ok_or(OrderCommandError::NotFound)?;
                if order.status != OrderStatus::PaymentPending {
                    return Ok(None);
                }
                let cancellation = Cancellation {
                    end,
                    actor: actor.clone(),
                    reason,
                };
                Ok(Some(cancel_unpaid(&mut tx, ids, order, payment, cancellation, now).await?))
            }
            .await;
            (tx, result)
        })
        .await?;
        if let Some(product_ids) = &changed {
            self.invalidate_catalog(product_ids).await;
        }
        Ok(changed.is_some())
    }

    /// The buyer gives up an order that is still awaiting payment; its stock goes back on sale.
    pub async fn cancel_order(&self, caller: &Caller, order_id: OrderId) -> Result<Order, OrderCommandError> {
        let now = self.clock.now();
        let ids = self.ids.as_ref();
        let caller = *caller;
        let (order, product_ids) = transact(&self.store, move |mut tx| async move {
            let result: Result<_, OrderCommandError> = async {
                let (order, payment) = peek_order(&mut tx, order_id).await?.ok_or(OrderCommandError::NotFound)?;
                if order.buyer_id != caller.user_id {
                    return Err(if caller.is_admin() || order.has_merchant(caller.user_id) {
                        OrderCommandError::Forbidden
                    } else {
                        OrderCommandError::NotFound
                    });
                }
                let payment = match payment {
                    Some(p) => tx.lock_payment(&p.provider, &PaymentLookup::Ours(p.id)).await?,
                    None => None,
                };
                let order = tx.lock_order(order_id).await?.ok_or(OrderCommandError::NotFound)?;
                let cancellation = Cancellation {
                    end: PaymentEnd::Cancelled,
                    actor: Actor::User(caller.user_id),
                    reason: "cancelled by the buyer",
                };
                let product_ids = cancel_unpaid(&mut tx, ids, order, payment, cancellation, now).await?;
                let order = tx.find_order(order_id).await?.ok_or(OrderCommandError::NotFound)?;
                Ok((order, product_ids))
            }
            .await;
            (tx, result)
        })
        .await?;
        self.invalidate_catalog(&product_ids).await;
        Ok(order)
    }

    /// A merchant of the order (or an admin) marks a paid order as fulfilled.
    pub async fn fulfil_order(&self, caller: &Caller, order_id: OrderId) -> Result<Order, OrderCommandError> {
        let now = self.clock.now();
        let ids = self.ids.as_ref();
        let caller = *caller;
        transact(&self.store, move |mut tx| async move {
            let result: Result<_, OrderCommandError> = async {
                let order = tx.lock_order(order_id).await?.ok_or(OrderCommandError::NotFound)?;
                if !(caller.is_admin() || order.has_merchant(caller.user_id)) {
                    return Err(if order.buyer_id == caller.user_id {
                        OrderCommandError::Forbidden
                    } else {
                        OrderCommandError::NotFound
                    });
                }
                let (order, change) = order.fulfil(Actor::User(caller.user_id), now)?;
                tx.update_order(&order).await?;
                tx.append_status_changes(std::slice::from_ref(&change)).await?;
                tx.enqueue_events(&status_events(ids, std::slice::from_ref(&change))).await?;
                Ok(order)
            }
            .await;
            (tx, result)
        })
        .await
    }

    /// An order with its payment and refunds, for its buyer, a merchant with an item in it, or an
    /// admin. Anyone else is told it does not exist.
    pub async fn order_details(&self, caller: &Caller, order_id: OrderId) -> Result<OrderDetails, OrderCommandError> {
        let caller = *caller;
        transact(&self.store, move |mut tx| async move {
            let result: Result<_, OrderCommandError> = async {
                let order = tx.find_order(order_id).await?.ok_or(OrderCommandError::NotFound)?;
                let visible = caller.is_admin() || order.buyer_id == caller.user_id || order.has_merchant(caller.user_id);
                if !visible {
                    return Err(OrderCommandError::NotFound);
                }
                let payment = tx.find_order_payment(order_id).await?;
                let refunds = tx.list_order_refunds(order_id).await?;
                Ok(OrderDetails { order, payment, refunds })
            }
            .await;
            (tx, result)
        })
        .await
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

    /// Every order, optionally of one status (admins only).
    pub async fn all_orders(
        &self,
        caller: &Caller,
        status: Option<OrderStatus>,
        page: &PageRequest,
    ) -> Result<Page<Order>, OrderCommandError> {
        if !caller.is_admin() {
            return Err(OrderCommandError::Forbidden);
        }
        self.orders_page(OrderFilter::All { status }, page).await
    }

    async fn orders_page(&self, filter: OrderFilter, page: &PageRequest) -> Result<Page<Order>, OrderCommandError> {
        transact(&self.store, move |mut tx| async move {
            let result = tx.list_orders(filter, page).await.map_err(OrderCommandError::from);
            (tx, result)
        })
        .await
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
        transact(&self.store, move |mut tx| async move {
            let result = tx.list_status_changes(order, page).await.map_err(OrderCommandError::from);
            (tx, result)
        })
        .await
    }

    /// Refunds all or part of a paid order. A wallet payment is refunded at once from the merchant's
    /// wallet to the buyer's. A card payment moves the merchant's share to the gateway's clearing
    /// account, asks the gateway to refund, and settles when the gateway answers.
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
        let now = self.clock.now();
        let ids = self.ids.as_ref();
        let (caller, command_ref) = (*caller, &command);
        let idempotent_ref = idempotent.as_ref();
        let (refunds, payment) = transact(&self.store, move |mut tx| async move {
            let result = open_refunds(&mut tx, ids, &caller, order_id, command_ref, now).await;
            let result = match result {
                Ok((refunds, payment)) => {
                    // A wallet refund is final now; a card refund's response is stored once the
                    // gateway has answered.
                    if payment.is_none()
                        && let Err(error) = complete_if_claimed(idempotent_ref, &mut tx, &refunds, now).await
                    {
                        return (tx, Err(error.into()));
                    }
                    Ok((refunds, payment))
                }
                Err(error) => Err(error),
            };
            (tx, result)
        })
        .await?;
        let Some(payment) = payment else {
            return Ok(refunds);
        };
        let mut settled = Vec::with_capacity(refunds.len());
        for refund in refunds {
            settled.push(self.refund_through_gateway(&payment, refund).await?);
        }
        let settled_ref = &settled;
        transact(&self.store, move |mut tx| async move {
            let result = complete_if_claimed(idempotent_ref, &mut tx, settled_ref, now).await;
            (tx, result)
        })
        .await?;
        Ok(settled)
    }

    /// Asks the gateway to refund and records its answer.
    async fn refund_through_gateway(&self, payment: &Payment, refund: Refund) -> Result<Refund, RefundError> {
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
        match gateway.refund(request).await {
            Ok(answer) => {
                let update = crate::ports::gateway::RefundUpdate {
                    provider_refund_id: answer.provider_refund_id,
                    refund_id: Some(refund.id),
                    amount: Some(refund.amount),
                    status: answer.status,
                };
                self.apply_refund_update(&payment.provider, &update).await?;
                Ok(self.refund_by_id(refund.id).await?.unwrap_or(refund))
            }
            Err(error @ (GatewayError::RateLimited | GatewayError::Unavailable(_))) => {
                tracing::warn!(%error, refund_id = %refund.id, "gateway refund failed temporarily; the refund stays pending");
                Ok(refund)
            }
            Err(error) => {
                let update = crate::ports::gateway::RefundUpdate {
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

    async fn refund_by_id(&self, id: RefundId) -> Result<Option<Refund>, StoreError> {
        transact(&self.store, move |mut tx| async move {
            let result = tx.find_refund(id).await;
            (tx, result)
        })
        .await
    }
}

/// The refundable part of each merchant's share: the share minus refunds pending or done.
fn refundable_shares(order: &Order, refunds: &[Refund]) -> Result<BTreeMap<UserId, Money>, MoneyError> {
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

/// First transaction of a refund: checks, moves the money out of the merchants' wallets, and
/// records the refunds. Returns the card payment when the gateway must still be asked.
async fn open_refunds<Tx: Transaction>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    caller: &Caller,
    order_id: OrderId,
    command: &RefundCommand,
    now: OffsetDateTime,
) -> Result<(Vec<Refund>, Option<Payment>), RefundError> {
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
    let currency = order.currency();
    let card_payment = match order.payment_method {
        PaymentMethod::Wallet => None,
        PaymentMethod::Card => {
            let payment = tx
                .find_order_payment(order_id)
                .await?
                .filter(|p| p.status == PaymentStatus::Succeeded && p.provider_payment_id.is_some());
            Some(payment.ok_or(RefundError::PaymentNotRefundable)?)
        }
    };
    let destination = match &card_payment {
        None => tx.ensure_user_wallet(order.buyer_id, currency, next_id(ids), now).await?,
        Some(payment) => {
            system_wallet(
                tx,
                &SystemAccount::GatewayClearing(payment.provider.clone()),
                currency,
                next_id(ids),
                now,
            )
            .await?
        }
    };
    let mut entries = Vec::with_capacity(targets.len() + 1);
    let mut total = Money::zero(currency);
    for (merchant, amount) in &targets {
        let wallet = tx.ensure_user_wallet(*merchant, currency, next_id(ids), now).await?;
        entries.push(Entry::debit(wallet, *amount)?);
        total = total.checked_add(*amount)?;
    }
    entries.push(Entry::credit(destination, total));
    let journal = JournalTransaction::new(next_id(ids), TransactionKind::Refund, format!("order:{order_id}"), entries, now)
        .map_err(RefundError::Ledger)?;
    post(tx, &journal).await?;

    let status = if card_payment.is_some() {
        RefundStatus::Pending
    } else {
        RefundStatus::Succeeded
    };
    let reason = if command.reason.trim().is_empty() {
        "requested".to_owned()
    } else {
        command.reason.trim().to_owned()
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
            requested_by: caller.user_id,
            created_at: now,
            updated_at: now,
        })
        .collect();
    for refund in &refunds {
        tx.insert_refund(refund).await?;
    }
    if card_payment.is_none() {
        let (order, change) = order.record_refund(total, Actor::User(caller.user_id), &reason, now)?;
        tx.update_order(&order).await?;
        tx.append_status_changes(std::slice::from_ref(&change)).await?;
        let mut events = status_events(ids, std::slice::from_ref(&change));
        events.extend(refunds.iter().map(|r| {
            event(
                ids,
                DomainEvent::RefundSucceeded {
                    refund_id: r.id,
                    order_id,
                    amount: r.amount,
                },
                now,
            )
        }));
        tx.enqueue_events(&events).await?;
    }
    Ok((refunds, card_payment))
}

/// The cursor of an order listing.
pub fn order_cursor(order: &Order) -> Cursor {
    Cursor::Position {
        at: order.created_at,
        id: order.id.as_uuid(),
    }
}
