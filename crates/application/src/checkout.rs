//! Checkout: an order paid from the buyer's wallet at once, or by card on a provider's hosted
//! page.
//!
//! A card checkout takes three steps: reserve the stock and record the order with a pending
//! payment (one transaction), open the provider's checkout (outside any transaction, under the
//! provider idempotency key `checkout-<payment id>`), record the session. A retry under the same
//! idempotency key resumes after the first step. A checkout the provider will not open cancels the
//! order at once; one it cannot open yet stays pending for a retry, or for the expiry job.
//!
//! A wallet order with manual capture is only authorised here: its stock reserved and each
//! merchant's part held on the buyer's wallet until the merchant captures it (`captures`).
//!
//! Lock order, everywhere: payment, order, refund, call, stock (by product id), wallets (by wallet
//! id), then hold. Each use case locks only what it writes, in that order, so no two can deadlock.

use domain::catalog::{Product, Quantity, Stock, StockError};
use domain::events::DomainEvent;
use domain::ids::{OrderId, PaymentId, ProductId, UserId, WalletId};
use domain::ledger::{Entry, JournalTransaction, LedgerError, TransactionKind};
use domain::money::{Currency, Money, MoneyError};
use domain::order::{Actor, CaptureMethod, Order, OrderError, OrderStatus, PaymentMethod, StatusChange, TransitionError};
use domain::payment::{Payment, PaymentPurpose, PaymentStatus, ProviderName};
use domain::user::Email;
use domain::wallet::{Hold, HoldError, HoldTerms, SystemAccount, Wallet, WalletError};
use time::OffsetDateTime;

use crate::caller::Caller;
use crate::cancellation::PaymentEnd;
use crate::context::App;
use crate::effects::{event, record_status_changes, status_events, system_account_has_room};
use crate::idempotency::{Claim, IdempotencyError, Idempotent, Key, RecoveryPoint};
use crate::ledger::{PostingError, post_locked};
use crate::orders::OrderCommandError;
use crate::payments::resumed_payment;
use crate::ports::gateway::{CheckoutLine, CheckoutRequest, CheckoutSession, GatewayError, Gateways, RouteError};
use crate::ports::store::{
    Contention, EventOutbox, HoldRepository, IdempotencyRepository, LedgerRepository, LockedCart, OrderRepository, PaymentLookup,
    PaymentRepository, ProductRepository, StoreError, UnitOfWork, UserRepository, WalletRepository,
};
use crate::ports::system::{IdGenerator, next_id};
use crate::transact::{transact, transact_grouped, work};
use crate::{keyed, retryable};

/// What a buyer checks out.
#[derive(Debug, Clone)]
pub struct CheckoutCommand {
    /// The products and how many of each; one line per product.
    pub items: Vec<(ProductId, Quantity)>,
    /// Wallet or card.
    pub payment_method: PaymentMethod,
    /// For card payments: which gateway; the default one when `None`.
    pub provider: Option<ProviderName>,
    /// For wallet payments: taken at once, or held until each merchant captures its part.
    pub capture: CaptureMethod,
}

/// A placed order and, for a card payment, the payment with its checkout URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkout {
    /// The order: paid (wallet), authorised (manual capture) or awaiting payment (card).
    pub order: Order,
    /// The card payment, with the page to send the buyer to; `None` for a wallet payment.
    pub payment: Option<Payment>,
}

/// Why a checkout (or paying again) fails. Refusals are replayed under the idempotency key.
#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    /// The order cannot be placed (empty, too many lines, mixed currencies, own product...).
    #[error(transparent)]
    Order(#[from] OrderError),
    /// A product of the cart does not exist.
    #[error("product {0} does not exist")]
    ProductNotFound(ProductId),
    /// A product has fewer units on sale than the cart asks.
    #[error("product {product_id} is out of stock: {available} available, {requested} requested")]
    OutOfStock {
        /// The product.
        product_id: ProductId,
        /// Its units on sale.
        available: i64,
        /// The units the cart asks.
        requested: u32,
    },
    /// The buyer's wallet cannot pay the order.
    #[error("insufficient funds: {available} available, {required} required")]
    InsufficientFunds {
        /// What the buyer's wallet could spend.
        available: Money,
        /// What the order costs.
        required: Money,
    },
    /// No configured card gateway takes the order's currency.
    #[error("no card gateway takes {0}")]
    NoGateway(Currency),
    /// Manual capture asked for a card payment.
    #[error("manual capture is for wallet payments: a card payment is captured when it is made")]
    ManualCaptureByCard,
    /// No provider for the order's currency, or the one the buyer named cannot take it.
    #[error(transparent)]
    Route(RouteError),
    /// The gateway's clearing account would pass the system bound ([`domain::ledger::SYSTEM_BALANCE_MAX_MINOR`]).
    #[error("the platform takes no more {0} through this gateway: its limit is reached")]
    PlatformLimit(Currency),
    /// The provider closed (or would not open) the checkout, so the order was cancelled.
    #[error("the checkout of this order was closed before it opened ({0})")]
    CheckoutClosed(&'static str),
    /// Paying again: the order does not exist, or is not the caller's.
    #[error("the order does not exist")]
    OrderNotFound,
    /// Paying again: the order does not wait for a card payment.
    #[error("the order is {0}: only a card order awaiting payment is paid again")]
    NotAwaitingPayment(OrderStatus),
    /// Paying again: the current checkout was paid meanwhile; its webhook settles the order.
    #[error("the order's checkout has been paid: the order is about to be marked paid")]
    BeingPaid,
    /// The payment provider failed or refused; whether asking again may help is `GatewayError::may_pass`.
    #[error(transparent)]
    Gateway(#[from] GatewayError),
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

retryable!(CheckoutError);
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

impl<U: UnitOfWork> App<U> {
    /// Places an order. A wallet payment completes at once, atomically; a card payment reserves the
    /// stock and returns a checkout URL, and the order is paid when the gateway's webhook says so.
    #[tracing::instrument(name = "checkout", skip_all, fields(user_id = %caller.user_id, payment_method = ?command.payment_method, capture = ?command.capture, order_id = tracing::field::Empty))]
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
        let key = self.key(idempotent.as_ref());
        let checkout = match (command.payment_method, command.capture) {
            (PaymentMethod::Wallet, CaptureMethod::Automatic) => self.checkout_with_wallet(caller.user_id, &command, key).await,
            (PaymentMethod::Wallet, CaptureMethod::Manual) => self.authorise_with_wallet(caller.user_id, &command, key).await,
            (PaymentMethod::Card, CaptureMethod::Automatic) => self.checkout_with_card(caller.user_id, &command, key).await,
            (PaymentMethod::Card, CaptureMethod::Manual) => Err(CheckoutError::ManualCaptureByCard),
        };
        if let Ok(checkout) = &checkout {
            tracing::Span::current().record("order_id", tracing::field::display(checkout.order.id()));
        }
        checkout
    }

    async fn authorise_with_wallet(
        &self,
        buyer: UserId,
        command: &CheckoutCommand,
        key: Key<'_, Checkout>,
    ) -> Result<Checkout, CheckoutError> {
        let (ids, now) = (self.ids.as_ref(), self.clock.now());
        let authorisation = Authorisation {
            buyer,
            items: &command.items,
            expires_at: now + self.settings.hold_ttl,
        };
        let authorisation = &authorisation;
        let cart = cart_contention(&command.items);
        let checkout = transact_grouped(&self.store, &cart, |tx| work(authorise_by_wallet(tx, ids, authorisation, key, now))).await?;
        self.invalidate_catalog(&checkout.order.product_ids()).await;
        Ok(checkout)
    }

    async fn checkout_with_wallet(
        &self,
        buyer: UserId,
        command: &CheckoutCommand,
        key: Key<'_, Checkout>,
    ) -> Result<Checkout, CheckoutError> {
        let (ids, now) = (self.ids.as_ref(), self.clock.now());
        // Purchases of the same cart queue for the same stock rows: they may share a commit.
        let cart = cart_contention(&command.items);
        let checkout = transact_grouped(&self.store, &cart, |tx| {
            work(pay_by_wallet(tx, ids, buyer, &command.items, key, now))
        })
        .await?;
        self.invalidate_catalog(&checkout.order.product_ids()).await;
        Ok(checkout)
    }

    async fn checkout_with_card(
        &self,
        buyer: UserId,
        command: &CheckoutCommand,
        key: Key<'_, Checkout>,
    ) -> Result<Checkout, CheckoutError> {
        let (opened, fresh) = self.open_card_checkout(buyer, command, key).await?;
        if fresh {
            self.invalidate_catalog(&opened.order.product_ids()).await;
        }
        self.open_provider_checkout(opened, key, AfterRefusal::CancelOrder).await
    }

    /// The buyer pays again for a card order still awaiting payment, whose checkout could not be
    /// opened, was abandoned, or is to be paid through another provider: the old checkout is
    /// closed at its provider and its payment cancelled, and a new payment and checkout open for
    /// the same order and reserved stock, with a new deadline. A provider that will not open the
    /// new checkout leaves the order awaiting payment, for another try or for the expiry job.
    #[tracing::instrument(name = "pay_again", skip_all, fields(user_id = %caller.user_id, %order_id))]
    pub async fn pay_again(
        &self,
        caller: &Caller,
        order_id: OrderId,
        provider: Option<ProviderName>,
        idempotent: Option<Idempotent<Checkout>>,
    ) -> Result<Checkout, CheckoutError> {
        let key = self.key(idempotent.as_ref());
        let buyer = caller.user_id;
        // A retry under a key already claimed resumes with the payment it recorded: that one is
        // not to be closed.
        let scope = idempotent.as_ref().map(|idempotent| &idempotent.scope);
        let (latest, resuming) = transact(&self.store, |tx| {
            work(async move {
                let resuming = match scope {
                    Some(scope) => tx.find_idempotency_record(scope).await?.is_some(),
                    None => false,
                };
                Ok::<_, StoreError>((tx.find_order_payment(order_id).await?, resuming))
            })
        })
        .await?;
        let stale = latest.filter(|payment| !resuming && payment.is_pending() && payment.payer_id() == buyer);
        if let Some(old) = stale {
            self.close_checkout(&old).await.map_err(|error| match error {
                OrderCommandError::CheckoutCompleted => CheckoutError::BeingPaid,
                OrderCommandError::CheckoutNotClosed(gateway) => CheckoutError::Gateway(gateway),
                OrderCommandError::Store(store) => CheckoutError::Store(store),
                _ => CheckoutError::CheckoutClosed("the old checkout could not be closed"),
            })?;
        }
        let now = self.clock.now();
        let retry = Retry {
            ids: self.ids.as_ref(),
            gateways: &self.gateways,
            buyer,
            order_id,
            provider: provider.as_ref(),
            expires_at: now + self.settings.checkout_ttl,
        };
        let retry = &retry;
        let opened = transact(&self.store, |tx| work(reopen_card_checkout(tx, retry, key, now))).await?;
        self.open_provider_checkout(opened, key, AfterRefusal::KeepOrder).await
    }

    /// Opens the provider's checkout for a payment its first transaction recorded, and records
    /// the session; a provider that refuses for good cancels the order or leaves it as it is.
    async fn open_provider_checkout(
        &self,
        opened: OpenedCheckout,
        key: Key<'_, Checkout>,
        after_refusal: AfterRefusal,
    ) -> Result<Checkout, CheckoutError> {
        let OpenedCheckout { order, payment, email } = opened;
        match payment.status() {
            PaymentStatus::Pending if payment.awaits_checkout() => {}
            PaymentStatus::Pending | PaymentStatus::Succeeded => return self.record_checkout_session(payment.id(), None, key).await,
            other => return Err(CheckoutError::CheckoutClosed(other.as_str())),
        }
        let gateway = self
            .gateways
            .get(payment.provider())
            .ok_or(CheckoutError::NoGateway(order.currency()))?
            .clone();
        match gateway.create_checkout(checkout_request(&order, &payment, &email)).await {
            Ok(session) => self.record_checkout_session(payment.id(), Some(session), key).await,
            Err(error) => {
                // A retry under the key resumes a temporary failure; otherwise nothing will.
                if !(error.may_pass() && key.resumable()) && after_refusal == AfterRefusal::CancelOrder {
                    self.cancel_after_failed_checkout(order.id()).await;
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
        buyer: UserId,
        command: &CheckoutCommand,
        key: Key<'_, Checkout>,
    ) -> Result<(OpenedCheckout, bool), CheckoutError> {
        let now = self.clock.now();
        let placement = CardPlacement {
            ids: self.ids.as_ref(),
            gateways: &self.gateways,
            buyer,
            command,
            expires_at: now + self.settings.checkout_ttl,
        };
        let placement = &placement;
        transact(&self.store, |tx| work(open_or_resume_card_order(tx, placement, key, now))).await
    }

    /// Attaches the provider's session to the payment (unless it has one) and stores the key's
    /// response. The payment is locked and read again: a webhook may have settled it meanwhile.
    async fn record_checkout_session(
        &self,
        payment_id: PaymentId,
        session: Option<CheckoutSession>,
        key: Key<'_, Checkout>,
    ) -> Result<Checkout, CheckoutError> {
        let now = self.clock.now();
        let session = session.as_ref();
        transact(&self.store, |tx| work(complete_card_checkout(tx, payment_id, session, key, now))).await
    }

    /// The gateway would not open a checkout: give the stock back and fail the payment.
    async fn cancel_after_failed_checkout(&self, order_id: OrderId) {
        let reason = "the checkout could not be opened";
        let outcome = self
            .cancel_if_awaiting_payment(order_id, PaymentEnd::Failed, Actor::System, reason)
            .await;
        if let Err(error) = outcome {
            tracing::error!(%error, %order_id, "could not cancel the order after a failed checkout; the expiry job will");
        }
    }
}

/// What wallet checkouts of this cart queue for: its products' stock rows.
fn cart_contention(items: &[(ProductId, Quantity)]) -> Contention {
    let products: Vec<ProductId> = items.iter().map(|(product, _)| *product).collect();
    Contention::stock(&products)
}

/// The wallet checkout, in one transaction: sells the stock, pays the merchants from the buyer's
/// wallet and records the order paid.
async fn pay_by_wallet<Tx>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    buyer: UserId,
    items: &[(ProductId, Quantity)],
    key: Key<'_, Checkout>,
    now: OffsetDateTime,
) -> Result<Checkout, CheckoutError>
where
    Tx: IdempotencyRepository + ProductRepository + OrderRepository + WalletRepository + LedgerRepository + EventOutbox + Send,
{
    key.claim(tx, now).await?;
    let LockedCart { entries, wallets } = tx.lock_cart_and_wallets(&cart_ids(items), buyer).await?;
    let (mut stock, products) = checked_cart(items, entries)?;
    let (order, created) = place_order(next_id(ids), buyer, items, &products, PaymentMethod::Wallet, now)?;
    each_item_stock(&order, &mut stock, Stock::sell)?;
    let actor = Actor::User(buyer);
    let (order, pending) = order.await_payment(actor.clone(), now)?;
    let (order, paid) = order.mark_paid(actor, now)?;
    pay_from_wallet(tx, ids, &order, wallets, now).await?;
    tx.update_stock(&stock).await?;
    tx.insert_order(&order).await?;
    // The audit trail keeps all three steps; the outbox announces the outcome, an order that is
    // paid (its stock change follows from its items).
    let changes = [created, pending, paid];
    tx.append_status_changes(&changes).await?;
    tx.enqueue_events(&status_events(ids, &changes[2..])).await?;
    let checkout = Checkout { order, payment: None };
    key.complete(tx, &checkout, now).await?;
    Ok(checkout)
}

/// A manual-capture order to authorise.
struct Authorisation<'a> {
    buyer: UserId,
    items: &'a [(ProductId, Quantity)],
    expires_at: OffsetDateTime,
}

/// The manual-capture wallet checkout, in one transaction: reserves the stock, holds each
/// merchant's part of the buyer's wallet (all the holds or none) and records the order
/// `authorised`.
async fn authorise_by_wallet<Tx>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    authorisation: &Authorisation<'_>,
    key: Key<'_, Checkout>,
    now: OffsetDateTime,
) -> Result<Checkout, CheckoutError>
where
    Tx: IdempotencyRepository + ProductRepository + OrderRepository + WalletRepository + HoldRepository + EventOutbox + Send,
{
    let Authorisation { buyer, items, expires_at } = *authorisation;
    key.claim(tx, now).await?;
    let (mut stock, products) = lock_cart(tx, items).await?;
    let (order, created) = place_order(next_id(ids), buyer, items, &products, PaymentMethod::Wallet, now)?;
    each_item_stock(&order, &mut stock, Stock::reserve)?;
    let (order, authorised) = order.authorise(Actor::User(buyer), now)?;
    let mut wallets = tx.lock_user_wallets(&[(buyer, next_id(ids))], order.currency(), now).await?;
    let wallet = wallets
        .first_mut()
        .ok_or_else(|| StoreError::Corrupt("the buyer's wallet was not locked".into()))?;
    let available = wallet.available();
    let mut holds = Vec::new();
    let mut events = Vec::new();
    for (merchant_id, share) in order.merchant_authorised()? {
        let terms = HoldTerms {
            reference: format!("order:{}", order.id()),
            order_id: Some(order.id()),
            payee: Some(merchant_id),
            placed_at: now,
            expires_at,
        };
        let hold = Hold::place(next_id(ids), wallet, share, terms).map_err(|error| match error {
            HoldError::Wallet(WalletError::InsufficientFunds { .. }) => CheckoutError::InsufficientFunds {
                available,
                required: order.total(),
            },
            other => CheckoutError::Store(StoreError::Corrupt(format!("a hold of order {} was refused: {other}", order.id()))),
        })?;
        let held = DomainEvent::HoldAuthorised {
            hold_id: hold.id,
            user_id: buyer,
            merchant_id,
            amount: share,
        };
        events.push(event(ids, held, now));
        holds.push(hold);
    }
    tx.update_stock(&stock).await?;
    tx.insert_order(&order).await?;
    tx.update_wallets(&wallets).await?;
    for hold in &holds {
        tx.insert_hold(hold).await?;
    }
    events.extend(stock.iter().map(|s| {
        let changed = DomainEvent::StockChanged {
            product_id: s.product_id,
            available: s.available(),
        };
        event(ids, changed, now)
    }));
    record_status_changes(tx, ids, &[created, authorised], events).await?;
    let checkout = Checkout { order, payment: None };
    key.complete(tx, &checkout, now).await?;
    Ok(checkout)
}

/// Locks the stock of the cart's products (in product id order) and loads the products.
async fn lock_cart<Tx: ProductRepository + Send>(
    tx: &mut Tx,
    items: &[(ProductId, Quantity)],
) -> Result<(Vec<Stock>, Vec<Product>), CheckoutError> {
    let cart = tx.lock_cart(&cart_ids(items)).await?;
    checked_cart(items, cart)
}

/// The cart's product ids, in ascending order, each once.
fn cart_ids(items: &[(ProductId, Quantity)]) -> Vec<ProductId> {
    let mut ids: Vec<ProductId> = items.iter().map(|(id, _)| *id).collect();
    ids.sort();
    ids.dedup();
    ids
}

/// The locked cart's stock and products, if every item's product exists.
fn checked_cart(items: &[(ProductId, Quantity)], cart: Vec<(Stock, Product)>) -> Result<(Vec<Stock>, Vec<Product>), CheckoutError> {
    if let Some(missing) = cart_ids(items)
        .into_iter()
        .find(|id| !cart.iter().any(|(stock, _)| stock.product_id == *id))
    {
        return Err(CheckoutError::ProductNotFound(missing));
    }
    Ok(cart.into_iter().unzip())
}

/// Debits the buyer's wallet the order's total and credits each merchant their share, as one
/// journal transaction. The buyer's and merchants' wallets are locked together, in id order:
/// `locked` already, when it holds them all in the order's currency (see
/// `ProductRepository::lock_cart_and_wallets`), or else now, creating any that is missing.
async fn pay_from_wallet<Tx>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    order: &Order,
    locked: Vec<Wallet>,
    now: OffsetDateTime,
) -> Result<(), CheckoutError>
where
    Tx: WalletRepository + LedgerRepository + Send,
{
    let shares = order.merchant_totals()?;
    let mut owners: Vec<(UserId, WalletId)> = vec![(order.buyer_id(), next_id(ids))];
    owners.extend(shares.keys().map(|merchant| (*merchant, next_id(ids))));
    let held = |user: &UserId| {
        locked
            .iter()
            .any(|wallet| wallet.user_id() == Some(*user) && wallet.currency() == order.currency())
    };
    let mut wallets = if owners.iter().all(|(user, _)| held(user)) {
        locked
    } else {
        tx.lock_user_wallets(&owners, order.currency(), now).await?
    };
    let wallet_of = |user: UserId| wallets.iter().find(|wallet| wallet.user_id() == Some(user));
    let buyer = wallet_of(order.buyer_id()).ok_or_else(|| StoreError::Corrupt("the buyer's wallet was not locked".into()))?;
    let (buyer_wallet, available) = (buyer.id(), buyer.available());
    let mut entries = vec![Entry::debit(buyer_wallet, order.total())?];
    for (merchant, share) in &shares {
        let wallet = wallet_of(*merchant).ok_or_else(|| StoreError::Corrupt("a merchant's wallet was not locked".into()))?;
        entries.push(Entry::credit(wallet.id(), *share));
    }
    let reference = format!("order:{}", order.id());
    let journal =
        JournalTransaction::new(next_id(ids), TransactionKind::Purchase, reference, entries, now).map_err(CheckoutError::Ledger)?;
    post_locked(tx, &journal, &mut wallets).await.map_err(|error| match error {
        PostingError::Ledger(ref ledger) if ledger.insufficient_funds().is_some() => CheckoutError::InsufficientFunds {
            available,
            required: order.total(),
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
    for item in order.items() {
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
            other => CheckoutError::Store(StoreError::Corrupt(format!("stock out of step with order {}: {other}", order.id()))),
        })?;
    }
    Ok(())
}

/// What becomes of an order whose provider will not open its checkout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AfterRefusal {
    /// A new order: cancelled, its stock back on sale.
    CancelOrder,
    /// An order paid again: left awaiting payment, for another try or the expiry job.
    KeepOrder,
}

/// What paying again for an order needs besides the transaction.
struct Retry<'a> {
    ids: &'a dyn IdGenerator,
    gateways: &'a Gateways,
    buyer: UserId,
    order_id: OrderId,
    provider: Option<&'a ProviderName>,
    expires_at: OffsetDateTime,
}

/// Paying again, in one transaction: claims the key (or finds what an earlier attempt under it
/// recorded), cancels the order's pending payment and records a new one, on the provider asked
/// for or the old payment's. Locks the old payment, then the order.
async fn reopen_card_checkout<Tx>(
    tx: &mut Tx,
    retry: &Retry<'_>,
    key: Key<'_, Checkout>,
    now: OffsetDateTime,
) -> Result<OpenedCheckout, CheckoutError>
where
    Tx: IdempotencyRepository + OrderRepository + PaymentRepository + WalletRepository + UserRepository + EventOutbox + Send,
{
    if let Claim::Resume(point) = key.claim(tx, now).await? {
        return resume_card_checkout(tx, &point, retry.buyer).await;
    }
    let old = match tx.find_order_payment(retry.order_id).await? {
        Some(payment) => tx.lock_payment(payment.provider(), &PaymentLookup::Ours(payment.id())).await?,
        None => None,
    };
    let order = tx.lock_order(retry.order_id).await?.ok_or(CheckoutError::OrderNotFound)?;
    if order.buyer_id() != retry.buyer {
        return Err(CheckoutError::OrderNotFound);
    }
    if !order.is_awaiting_payment() || order.payment_method() != PaymentMethod::Card {
        return Err(CheckoutError::NotAwaitingPayment(order.status()));
    }
    let wanted = retry.provider.or(old.as_ref().map(Payment::provider));
    let gateway = retry.gateways.route(wanted, order.currency()).map_err(CheckoutError::Route)?;
    let clearing = SystemAccount::GatewayClearing(gateway.provider().clone());
    if !system_account_has_room(tx, &clearing, order.total().checked_neg()?).await? {
        return Err(CheckoutError::PlatformLimit(order.currency()));
    }
    let mut events = Vec::new();
    if let Some((cancelled, announced)) = old
        .filter(Payment::is_pending)
        .and_then(|old| PaymentEnd::Cancelled.apply(old, now))
    {
        tx.update_payment(&cancelled).await?;
        events.push(event(retry.ids, announced, now));
    }
    let purpose = PaymentPurpose::Order(order.id());
    let payment = Payment::open(
        next_id(retry.ids),
        purpose,
        retry.buyer,
        gateway.provider().clone(),
        order.total(),
        now,
        retry.expires_at,
    );
    tx.insert_payment(&payment).await?;
    // The audit trail notes the new attempt without a change of status.
    let note = StatusChange {
        order_id: order.id(),
        from: Some(order.status()),
        to: order.status(),
        actor: Actor::User(retry.buyer),
        reason: format!("paying again through {}", gateway.provider()),
        at: now,
    };
    tx.append_status_changes(std::slice::from_ref(&note)).await?;
    tx.enqueue_events(&events).await?;
    key.mark(tx, &RecoveryPoint::Payment(payment.id())).await?;
    let email = buyer_email(tx, retry.buyer).await?;
    Ok(OpenedCheckout { order, payment, email })
}

/// A card order's first step, as committed: the order, its pending payment and the buyer's
/// e-mail address for the provider's page.
struct OpenedCheckout {
    order: Order,
    payment: Payment,
    email: Email,
}

/// What placing a card order needs besides the transaction.
struct CardPlacement<'a> {
    ids: &'a dyn IdGenerator,
    gateways: &'a Gateways,
    buyer: UserId,
    command: &'a CheckoutCommand,
    expires_at: OffsetDateTime,
}

/// Claims the key; on a resumed key finds what the earlier attempt committed, otherwise places
/// the order. Says whether the order is new.
async fn open_or_resume_card_order<Tx>(
    tx: &mut Tx,
    placement: &CardPlacement<'_>,
    key: Key<'_, Checkout>,
    now: OffsetDateTime,
) -> Result<(OpenedCheckout, bool), CheckoutError>
where
    Tx: IdempotencyRepository
        + ProductRepository
        + OrderRepository
        + PaymentRepository
        + WalletRepository
        + UserRepository
        + EventOutbox
        + Send,
{
    if let Claim::Resume(point) = key.claim(tx, now).await? {
        return Ok((resume_card_checkout(tx, &point, placement.buyer).await?, false));
    }
    let opened = place_card_order(tx, placement, now).await?;
    key.mark(tx, &RecoveryPoint::Payment(opened.payment.id())).await?;
    Ok((opened, true))
}

/// Reserves the cart's stock and records the order (`payment_pending`) with a pending payment.
async fn place_card_order<Tx>(tx: &mut Tx, placement: &CardPlacement<'_>, now: OffsetDateTime) -> Result<OpenedCheckout, CheckoutError>
where
    Tx: ProductRepository + OrderRepository + PaymentRepository + WalletRepository + UserRepository + EventOutbox + Send,
{
    let CardPlacement {
        ids,
        gateways,
        buyer,
        command,
        expires_at,
    } = *placement;
    let (mut stock, products) = lock_cart(tx, &command.items).await?;
    let (order, created) = place_order(next_id(ids), buyer, &command.items, &products, PaymentMethod::Card, now)?;
    let gateway = gateways
        .route(command.provider.as_ref(), order.currency())
        .map_err(CheckoutError::Route)?;
    let clearing = SystemAccount::GatewayClearing(gateway.provider().clone());
    if !system_account_has_room(tx, &clearing, order.total().checked_neg()?).await? {
        return Err(CheckoutError::PlatformLimit(order.currency()));
    }
    each_item_stock(&order, &mut stock, Stock::reserve)?;
    let (order, pending) = order.await_payment(Actor::User(buyer), now)?;
    let purpose = PaymentPurpose::Order(order.id());
    let payment = Payment::open(
        next_id(ids),
        purpose,
        buyer,
        gateway.provider().clone(),
        order.total(),
        now,
        expires_at,
    );
    let email = buyer_email(tx, buyer).await?;
    tx.update_stock(&stock).await?;
    tx.insert_order(&order).await?;
    tx.insert_payment(&payment).await?;
    let stock_events = stock.iter().map(|s| {
        let changed = DomainEvent::StockChanged {
            product_id: s.product_id,
            available: s.available(),
        };
        event(ids, changed, now)
    });
    record_status_changes(tx, ids, &[created, pending], stock_events.collect()).await?;
    Ok(OpenedCheckout { order, payment, email })
}

async fn buyer_email<Tx: UserRepository + Send>(tx: &mut Tx, buyer: UserId) -> Result<Email, StoreError> {
    let user = tx
        .find_user(buyer)
        .await?
        .ok_or_else(|| StoreError::Corrupt("caller has no user row".into()))?;
    Ok(user.email)
}

/// The order and payment an earlier attempt under the key committed.
async fn resume_card_checkout<Tx>(tx: &mut Tx, point: &RecoveryPoint, buyer: UserId) -> Result<OpenedCheckout, CheckoutError>
where
    Tx: OrderRepository + PaymentRepository + UserRepository + Send,
{
    let payment = resumed_payment(tx, point, buyer).await?;
    let order = order_of(tx, &payment).await?;
    let email = buyer_email(tx, buyer).await?;
    Ok(OpenedCheckout { order, payment, email })
}

/// The order a card payment pays for.
async fn order_of<Tx: OrderRepository + Send>(tx: &mut Tx, payment: &Payment) -> Result<Order, StoreError> {
    let PaymentPurpose::Order(order_id) = payment.purpose() else {
        return Err(StoreError::Corrupt(format!("payment {} is not an order's", payment.id())));
    };
    tx.find_order(order_id)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("payment {} has no order", payment.id())))
}

/// The card checkout's last transaction: the session recorded, the key's response stored.
async fn complete_card_checkout<Tx>(
    tx: &mut Tx,
    payment_id: PaymentId,
    session: Option<&CheckoutSession>,
    key: Key<'_, Checkout>,
    now: OffsetDateTime,
) -> Result<Checkout, CheckoutError>
where
    Tx: IdempotencyRepository + OrderRepository + PaymentRepository + Send,
{
    let payment = attach_session(tx, payment_id, session, now).await?;
    let order = order_of(tx, &payment).await?;
    let checkout = Checkout {
        order,
        payment: Some(payment),
    };
    key.complete(tx, &checkout, now).await?;
    Ok(checkout)
}

/// Locks the payment and attaches the session if it has none yet; returns the payment as stored.
pub(crate) async fn attach_session<Tx: PaymentRepository + Send>(
    tx: &mut Tx,
    payment_id: PaymentId,
    session: Option<&CheckoutSession>,
    now: OffsetDateTime,
) -> Result<Payment, StoreError> {
    let missing = || StoreError::Corrupt(format!("payment {payment_id} is missing"));
    let payment = tx.find_payment(payment_id).await?.ok_or_else(missing)?;
    let payment = tx
        .lock_payment(payment.provider(), &PaymentLookup::Ours(payment_id))
        .await?
        .ok_or_else(missing)?;
    match session {
        Some(session) if payment.provider_session_id().is_none() => {
            let payment = payment.attach_session(session.session_id.clone(), session.checkout_url.clone(), now);
            tx.update_payment(&payment).await?;
            Ok(payment)
        }
        _ => Ok(payment),
    }
}

/// What the provider's hosted page shows for an order.
fn checkout_request(order: &Order, payment: &Payment, email: &Email) -> CheckoutRequest {
    let lines = order.items().iter().map(|item| CheckoutLine {
        name: item.product_name.clone(),
        unit_amount: item.unit_price,
        quantity: item.quantity.get(),
    });
    CheckoutRequest {
        payment_id: payment.id(),
        amount: payment.amount(),
        description: format!("Order {}", order.id()),
        lines: lines.collect(),
        customer_email: email.to_string(),
        expires_at: payment.expires_at(),
        idempotency_key: format!("checkout-{}", payment.id()),
    }
}
