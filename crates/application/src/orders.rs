//! Orders: checkout by wallet or card, cancellation, fulfilment, refunds, and the listings of
//! buyers, merchants and admins.
//!
//! Lock order, everywhere: payment, order, refund, call, stock (by product id), wallets (by wallet id),
//! then hold. Each use case locks only what it writes, in that order, so no two can deadlock.

use domain::catalog::{Product, Quantity, Stock, StockError};
use domain::events::{DomainEvent, OutboxEvent};
use domain::ids::{OrderId, PaymentId, ProductId, UserId, WalletId};
use domain::ledger::{Entry, JournalTransaction, LedgerError, TransactionKind};
use domain::money::{Currency, Money, MoneyError};
use domain::order::{Actor, Order, OrderError, OrderStatus, PaymentMethod, StatusChange, TransitionError};
use domain::payment::{Payment, PaymentPurpose, PaymentStatus, ProviderName, Refund};
use domain::user::Email;
use domain::user::Role;
use domain::wallet::{SystemAccount, Wallet};
use time::OffsetDateTime;

use crate::auth::Caller;
use crate::context::App;
use crate::idempotency::{self, Claim, IdempotencyError, Idempotent, RecoveryPoint};
use crate::ledger::{PostingError, post, post_locked};
use crate::pagination::{Cursor, Page, PageRequest};
use crate::ports::gateway::{CheckoutClosure, CheckoutLine, CheckoutRequest, CheckoutSession, GatewayError, Gateways};
use crate::ports::store::{
    EventOutbox, LedgerRepository, OrderFilter, OrderRepository, PaymentLookup, PaymentRepository, ProductRepository, RefundRepository,
    StoreError, Transaction, UnitOfWork, WalletRepository,
};
use crate::ports::system::{IdGenerator, next_id};
use crate::transact::transact;
use crate::wallets::{resumed_payment, system_account_has_room};
use crate::{keyed, retryable};

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
    #[error("the platform takes no more {0} through this gateway: its limit is reached")]
    PlatformLimit(Currency),
    #[error("the checkout of this order was closed before it opened ({0})")]
    CheckoutClosed(&'static str),
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    #[error(transparent)]
    Ledger(LedgerError),
    #[error(transparent)]
    Idempotency(IdempotencyError),
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
    #[error("the provider would not close the order's checkout: {0}")]
    CheckoutNotClosed(GatewayError),
    #[error("the order's checkout has been paid: the order is about to be marked paid and cannot be cancelled")]
    CheckoutCompleted,
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error(transparent)]
    Stock(#[from] StockError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

retryable!(CheckoutError, OrderCommandError);
keyed!(CheckoutError);

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

/// An order with its payment and refunds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderDetails {
    pub order: Order,
    pub payment: Option<Payment>,
    pub refunds: Vec<Refund>,
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
        let lease = self.settings.idempotency_lease;
        let checkout = transact(&self.store, move |mut tx| async move {
            let result: Result<_, CheckoutError> = async {
                idempotency::claim(&mut tx, idempotent, now, lease).await?;
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
                idempotency::complete(&mut tx, idempotent, &checkout, now).await?;
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

    /// A card checkout in three steps: reserve the stock and record the order with a pending
    /// payment (one transaction), open the provider's checkout (outside any transaction, with the
    /// provider idempotency key `checkout-<payment id>`), record the session. A retry under the
    /// same idempotency key resumes after the first step. A checkout the provider will not open
    /// cancels the order at once; one it cannot open yet stays pending for a retry, or for the
    /// expiry job if none comes.
    async fn checkout_with_card(
        &self,
        caller: &Caller,
        command: &CheckoutCommand,
        idempotent: Option<Idempotent<Checkout>>,
    ) -> Result<Checkout, CheckoutError> {
        let idempotent = idempotent.as_ref();
        let (opened, fresh) = self.open_card_checkout(caller, command, idempotent).await?;
        if fresh {
            let product_ids: Vec<ProductId> = opened.order.items.iter().map(|item| item.product_id).collect();
            self.invalidate_catalog(&product_ids).await;
        }
        let OpenedCheckout { order, payment, email } = opened;
        match payment.status {
            PaymentStatus::Pending if payment.checkout_url.is_none() => {}
            PaymentStatus::Pending | PaymentStatus::Succeeded => return self.record_checkout_session(payment.id, None, idempotent).await,
            other => return Err(CheckoutError::CheckoutClosed(other.as_str())),
        }
        let gateway = self
            .gateways
            .get(&payment.provider)
            .ok_or(CheckoutError::NoGateway(order.currency()))?
            .clone();
        match gateway.create_checkout(checkout_request(&order, &payment, &email)).await {
            Ok(session) => self.record_checkout_session(payment.id, Some(session), idempotent).await,
            Err(error) => {
                // A retry under the key resumes a temporary failure; otherwise nothing will.
                if !(error.may_pass() && idempotent.is_some()) {
                    self.cancel_after_failed_checkout(order.id).await;
                }
                Err(error.into())
            }
        }
    }

    /// The card checkout's first transaction: claims the key, reserves the stock and records the
    /// order and its pending payment; or finds the ones an earlier attempt under the key
    /// recorded. Says whether they are new.
    async fn open_card_checkout(
        &self,
        caller: &Caller,
        command: &CheckoutCommand,
        idempotent: Option<&Idempotent<Checkout>>,
    ) -> Result<(OpenedCheckout, bool), CheckoutError> {
        let buyer = caller.user_id;
        let ids = self.ids.as_ref();
        let now = self.clock.now();
        let (expires_at, lease) = (now + self.settings.checkout_ttl, self.settings.idempotency_lease);
        let gateways = &self.gateways;
        transact(&self.store, move |mut tx| async move {
            let result = async {
                if let Some(Claim::Resume(point)) = idempotency::claim(&mut tx, idempotent, now, lease).await? {
                    return Ok((resume_card_checkout(&mut tx, &point, buyer).await?, false));
                }
                let opened = place_card_order(&mut tx, ids, gateways, buyer, command, expires_at, now).await?;
                idempotency::mark_recovery_point(&mut tx, idempotent, &RecoveryPoint::Payment(opened.payment.id)).await?;
                Ok((opened, true))
            }
            .await;
            (tx, result)
        })
        .await
    }

    /// Attaches the provider's session to the payment (unless it has one) and stores the key's
    /// response. The payment is locked and read again: a webhook may have settled it meanwhile.
    async fn record_checkout_session(
        &self,
        payment_id: PaymentId,
        session: Option<CheckoutSession>,
        idempotent: Option<&Idempotent<Checkout>>,
    ) -> Result<Checkout, CheckoutError> {
        let now = self.clock.now();
        let session = &session;
        transact(&self.store, move |mut tx| async move {
            let result = async {
                let payment = attach_session(&mut tx, payment_id, session.as_ref(), now).await?;
                let PaymentPurpose::Order(order_id) = payment.purpose else {
                    return Err(StoreError::Corrupt(format!("payment {payment_id} is not an order's")).into());
                };
                let order = tx
                    .find_order(order_id)
                    .await?
                    .ok_or_else(|| StoreError::Corrupt(format!("payment {payment_id} has no order")))?;
                let checkout = Checkout {
                    order,
                    payment: Some(payment),
                };
                idempotency::complete(&mut tx, idempotent, &checkout, now).await?;
                Ok(checkout)
            }
            .await;
            (tx, result)
        })
        .await
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
    /// A card order's checkout is closed at the provider first, so it can no longer be paid; if
    /// the provider will not close it (it is being paid, or the provider is down), the order
    /// stays as it is and the error says why. A provider without a way to close checkouts
    /// (Monnify) may still take a payment, which then comes back as a refunded late success.
    pub async fn cancel_order(&self, caller: &Caller, order_id: OrderId) -> Result<Order, OrderCommandError> {
        let caller = *caller;
        let (order, payment) = transact(&self.store, move |mut tx| async move {
            let result = peek_order(&mut tx, order_id).await.map_err(OrderCommandError::from);
            (tx, result)
        })
        .await?
        .ok_or(OrderCommandError::NotFound)?;
        if order.buyer_id != caller.user_id {
            return Err(if caller.is_admin() || order.has_merchant(caller.user_id) {
                OrderCommandError::Forbidden
            } else {
                OrderCommandError::NotFound
            });
        }
        if order.status == OrderStatus::PaymentPending
            && let Some(payment) = payment.as_ref().filter(|p| p.status == PaymentStatus::Pending)
        {
            self.close_checkout(payment).await?;
        }
        self.cancel_unpaid_order(&caller, order_id).await
    }

    /// Closes a pending payment's checkout at its provider.
    async fn close_checkout(&self, payment: &Payment) -> Result<(), OrderCommandError> {
        let (Some(gateway), Some(session)) = (self.gateways.get(&payment.provider), payment.provider_session_id.as_deref()) else {
            return Ok(());
        };
        let closure = gateway.expire_checkout(session).await.map_err(|error| {
            tracing::warn!(%error, payment_id = %payment.id, "the provider would not close the checkout; the order stays pending");
            OrderCommandError::CheckoutNotClosed(error)
        })?;
        match closure {
            CheckoutClosure::Closed | CheckoutClosure::AlreadyClosed => Ok(()),
            CheckoutClosure::Completed => Err(OrderCommandError::CheckoutCompleted),
            CheckoutClosure::NotSupported => {
                tracing::info!(payment_id = %payment.id, provider = %payment.provider, "the provider cannot close checkouts; a late payment will be refunded");
                Ok(())
            }
        }
    }

    async fn cancel_unpaid_order(&self, caller: &Caller, order_id: OrderId) -> Result<Order, OrderCommandError> {
        let now = self.clock.now();
        let ids = self.ids.as_ref();
        let caller = *caller;
        let (order, product_ids) = transact(&self.store, move |mut tx| async move {
            let result: Result<_, OrderCommandError> = async {
                let (_, payment) = peek_order(&mut tx, order_id).await?.ok_or(OrderCommandError::NotFound)?;
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
}

/// A card order's first step, as committed: the order, its pending payment and the buyer's
/// e-mail address for the provider's page.
struct OpenedCheckout {
    order: Order,
    payment: Payment,
    email: Email,
}

/// Reserves the cart's stock and records the order (`payment_pending`) with a pending payment.
async fn place_card_order<Tx: Transaction>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    gateways: &Gateways,
    buyer: UserId,
    command: &CheckoutCommand,
    expires_at: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<OpenedCheckout, CheckoutError> {
    let (mut stock, products) = lock_cart(tx, &command.items).await?;
    let (order, created) = place_order(next_id(ids), buyer, &command.items, &products, PaymentMethod::Card, now)?;
    let gateway = gateways
        .for_currency(command.provider.as_ref(), order.currency())
        .ok_or(CheckoutError::NoGateway(order.currency()))?;
    let clearing = SystemAccount::GatewayClearing(gateway.provider().clone());
    if !system_account_has_room(tx, &clearing, order.total.checked_neg()?).await? {
        return Err(CheckoutError::PlatformLimit(order.currency()));
    }
    each_item_stock(&order, &mut stock, Stock::reserve)?;
    let (order, pending) = order.await_payment(Actor::User(buyer), now)?;
    let purpose = PaymentPurpose::Order(order.id);
    let payment = Payment::open(
        next_id(ids),
        purpose,
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
        let changed = DomainEvent::StockChanged {
            product_id: s.product_id,
            available: s.available(),
        };
        event(ids, changed, now)
    }));
    tx.enqueue_events(&events).await?;
    Ok(OpenedCheckout {
        order,
        payment,
        email: user.email,
    })
}

/// The order and payment an earlier attempt under the key committed.
async fn resume_card_checkout<Tx: Transaction>(tx: &mut Tx, point: &RecoveryPoint, buyer: UserId) -> Result<OpenedCheckout, CheckoutError> {
    let payment = resumed_payment(tx, point, buyer).await?;
    let PaymentPurpose::Order(order_id) = payment.purpose else {
        return Err(StoreError::Corrupt(format!("the key's payment {} is not an order's", payment.id)).into());
    };
    let order = tx
        .find_order(order_id)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("payment {} has no order", payment.id)))?;
    let user = tx
        .find_user(buyer)
        .await?
        .ok_or_else(|| StoreError::Corrupt("caller has no user row".into()))?;
    Ok(OpenedCheckout {
        order,
        payment,
        email: user.email,
    })
}

/// Locks the payment and attaches the session if it has none yet; returns the payment as stored.
pub(crate) async fn attach_session<Tx: PaymentRepository + Send>(
    tx: &mut Tx,
    payment_id: PaymentId,
    session: Option<&CheckoutSession>,
    now: OffsetDateTime,
) -> Result<Payment, StoreError> {
    let payment = tx
        .find_payment(payment_id)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("payment {payment_id} is missing")))?;
    let payment = tx
        .lock_payment(&payment.provider, &PaymentLookup::Ours(payment_id))
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("payment {payment_id} is missing")))?;
    match session {
        Some(session) if payment.provider_session_id.is_none() => {
            let payment = payment.attach_session(session.session_id.clone(), session.checkout_url.clone(), now);
            tx.update_payment(&payment).await?;
            Ok(payment)
        }
        _ => Ok(payment),
    }
}

/// What the provider's hosted page shows for an order.
fn checkout_request(order: &Order, payment: &Payment, email: &Email) -> CheckoutRequest {
    CheckoutRequest {
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
    }
}

/// The cursor of an order listing.
pub fn order_cursor(order: &Order) -> Cursor {
    Cursor::Position {
        at: order.created_at,
        id: order.id.as_uuid(),
    }
}
