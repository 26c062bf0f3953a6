//! Orders and their state machine.
//!
//! ```text
//! created -> payment_pending -> paid -> fulfilled
//!    |               |            ^ |         |
//!    |               v            | v         v
//!    |           cancelled        | partially_refunded -> refunded
//!    v               ^            |
//! authorised --------+------------+
//! ```
//!
//! An order paid by wallet with manual capture is `authorised`: its money is held, one hold per
//! merchant, and each merchant settles its part by capturing some or all of its items (or none:
//! a void). Once every part is settled the order is `paid` for what was captured, or `cancelled`
//! when nothing was.
//!
//! Transitions are the only way to change a status: each consumes the order, checks the move
//! against `OrderStatus::successors`, and returns the new order with a `StatusChange` for the
//! audit trail.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use time::OffsetDateTime;

use crate::catalog::{Product, Quantity};
use crate::ids::{OrderId, ProductId, UserId};
use crate::money::{Currency, Money, MoneyError};
use crate::payment::ProviderName;

/// Where an order is in its life; see the module's diagram for the moves allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OrderStatus {
    /// Placed and priced, payment not yet under way; an order only passes through it within checkout.
    Created,
    /// Waiting for its money: a card checkout at the provider, or a wallet payment in flight.
    PaymentPending,
    /// Manual capture: the buyer's money is held, one hold per merchant, until each captures or voids.
    Authorised,
    /// The money was taken: stock committed, merchants credited.
    Paid,
    /// A merchant delivered it.
    Fulfilled,
    /// Final: never paid (payment failed or expired, the buyer gave up) or every authorised part voided.
    Cancelled,
    /// Some, not all, of the paid total was refunded.
    PartiallyRefunded,
    /// Final: the whole paid total was refunded.
    Refunded,
}

impl OrderStatus {
    /// Every status, for parsing and for tests.
    pub const ALL: [OrderStatus; 8] = [
        OrderStatus::Created,
        OrderStatus::PaymentPending,
        OrderStatus::Authorised,
        OrderStatus::Paid,
        OrderStatus::Fulfilled,
        OrderStatus::Cancelled,
        OrderStatus::PartiallyRefunded,
        OrderStatus::Refunded,
    ];

    /// The declared transitions: the only statuses this one may move to.
    pub fn successors(self) -> &'static [OrderStatus] {
        use OrderStatus::*;
        match self {
            Created => &[PaymentPending, Authorised],
            PaymentPending => &[Paid, Cancelled],
            Authorised => &[Paid, Cancelled],
            Paid => &[Fulfilled, PartiallyRefunded, Refunded],
            Fulfilled => &[PartiallyRefunded, Refunded],
            PartiallyRefunded => &[Fulfilled, PartiallyRefunded, Refunded],
            Cancelled => &[],
            Refunded => &[],
        }
    }

    /// Whether `next` is one of the declared [`successors`](OrderStatus::successors).
    pub fn can_become(self, next: OrderStatus) -> bool {
        self.successors().contains(&next)
    }

    /// Whether the order can never change again (`cancelled`, `refunded`).
    pub fn is_final(self) -> bool {
        self.successors().is_empty()
    }

    /// The stable snake_case code stored in the database and used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Created => "created",
            OrderStatus::PaymentPending => "payment_pending",
            OrderStatus::Authorised => "authorised",
            OrderStatus::Paid => "paid",
            OrderStatus::Fulfilled => "fulfilled",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::PartiallyRefunded => "partially_refunded",
            OrderStatus::Refunded => "refunded",
        }
    }

    /// The status whose [`as_str`](OrderStatus::as_str) code is `text`, if any.
    pub fn parse(text: &str) -> Option<OrderStatus> {
        OrderStatus::ALL.into_iter().find(|status| status.as_str() == text)
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the buyer pays for an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentMethod {
    /// From the buyer's wallet, in the checkout's own transaction.
    Wallet,
    /// Through a card gateway's hosted checkout, confirmed later by its webhook.
    Card,
}

impl PaymentMethod {
    /// The stable code stored in the database and used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentMethod::Wallet => "wallet",
            PaymentMethod::Card => "card",
        }
    }

    /// The method whose [`as_str`](PaymentMethod::as_str) code is `text`, if any.
    pub fn parse(text: &str) -> Option<PaymentMethod> {
        match text {
            "wallet" => Some(PaymentMethod::Wallet),
            "card" => Some(PaymentMethod::Card),
            _ => None,
        }
    }
}

/// When an order's money is taken: at checkout, or when each merchant captures its part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CaptureMethod {
    /// Taken at checkout (the usual case).
    #[default]
    Automatic,
    /// Held at checkout and taken by each merchant's capture (wallet orders only).
    Manual,
}

impl CaptureMethod {
    /// The stable code stored in the database and used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            CaptureMethod::Automatic => "automatic",
            CaptureMethod::Manual => "manual",
        }
    }

    /// The capture method whose [`as_str`](CaptureMethod::as_str) code is `text`, if any.
    pub fn parse(text: &str) -> Option<CaptureMethod> {
        match text {
            "automatic" => Some(CaptureMethod::Automatic),
            "manual" => Some(CaptureMethod::Manual),
            _ => None,
        }
    }
}

/// Who caused a change: a user, the platform itself (a background job), or a payment gateway.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Actor {
    /// A signed-in user: the buyer, a merchant or an admin.
    User(UserId),
    /// The platform itself: a background job such as the payment-expiry sweep.
    System,
    /// A payment provider, through a verified webhook.
    Gateway(ProviderName),
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::User(id) => write!(f, "user:{id}"),
            Actor::System => f.write_str("system"),
            Actor::Gateway(provider) => write!(f, "gateway:{provider}"),
        }
    }
}

impl Actor {
    /// Who this actor was to `order`, without naming anyone: `buyer`, `merchant`, `admin` (a
    /// user who is neither may only have acted as one), `system` or `gateway:<provider>`.
    pub fn party_to(&self, order: &Order) -> String {
        match self {
            Actor::User(id) if *id == order.buyer_id() => "buyer".to_owned(),
            Actor::User(id) if order.has_merchant(*id) => "merchant".to_owned(),
            Actor::User(_) => "admin".to_owned(),
            Actor::System | Actor::Gateway(_) => self.to_string(),
        }
    }

    /// The actor whose `Display` text (`user:<id>`, `system`, `gateway:<provider>`) is `text`, if any;
    /// how the audit trail is read back.
    pub fn parse(text: &str) -> Option<Actor> {
        if text == "system" {
            return Some(Actor::System);
        }
        if let Some(id) = text.strip_prefix("user:") {
            return UserId::parse(id).ok().map(Actor::User);
        }
        text.strip_prefix("gateway:")
            .and_then(|provider| ProviderName::parse(provider).ok())
            .map(Actor::Gateway)
    }
}

/// One line of an order, with the price as it was when the order was placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderItem {
    /// The product bought, which may since have changed or been archived.
    pub product_id: ProductId,
    /// The merchant who sells it and is paid for this line.
    pub merchant_id: UserId,
    /// The product's name when the order was placed.
    pub product_name: String,
    /// The quantity ordered (authorised, for a manual-capture order).
    pub quantity: Quantity,
    /// The product's price when the order was placed; later price changes do not touch the order.
    pub unit_price: Money,
    /// For a manual-capture order, how many units the merchant took when it settled its part
    /// (`0..=quantity`); `None` while the part is pending, and always for automatic capture.
    pub captured: Option<u32>,
}

impl OrderItem {
    /// The units the buyer pays for: the captured ones once the item's part is settled.
    pub fn bought(&self) -> u32 {
        self.captured.unwrap_or(self.quantity.get())
    }

    /// What the buyer pays for this line.
    pub fn line_total(&self) -> Result<Money, MoneyError> {
        self.unit_price.checked_mul(i64::from(self.bought()))
    }

    /// What the line was ordered (or authorised) for.
    pub fn ordered_total(&self) -> Result<Money, MoneyError> {
        self.unit_price.checked_mul(i64::from(self.quantity.get()))
    }
}

/// An entry of the audit trail: every status an order ever had, who set it and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    /// The order that changed.
    pub order_id: OrderId,
    /// The status before, or `None` for the order's first entry (`created`).
    pub from: Option<OrderStatus>,
    /// The status after.
    pub to: OrderStatus,
    /// Who made the change.
    pub actor: Actor,
    /// Why, in words for a person reading the trail ("payment received", "payment expired"...).
    pub reason: String,
    /// When.
    pub at: OffsetDateTime,
}

/// Why an order cannot be placed, settled or refunded as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    /// A checkout with no items.
    #[error("an order needs at least one item")]
    Empty,
    /// A checkout with more than [`Order::ITEMS_MAX`] lines.
    #[error("an order may have at most {max} items")]
    TooManyItems {
        /// The limit, [`Order::ITEMS_MAX`].
        max: usize,
    },
    /// One product on two lines; a line carries the whole quantity.
    #[error("product {0} appears more than once")]
    DuplicateProduct(ProductId),
    /// A product that is off sale or archived.
    #[error("product {0} is not on sale")]
    ProductInactive(ProductId),
    /// Lines priced in different currencies; an order is paid in one.
    #[error("all items of an order must share one currency")]
    MixedCurrencies,
    /// A merchant trying to buy their own product.
    #[error("merchants cannot buy their own product {0}")]
    OwnProduct(ProductId),
    /// A refund of more than what is left to refund.
    #[error("cannot refund {requested}: only {refundable} is refundable")]
    RefundExceedsPaid {
        /// What is left to refund: the total less what was already refunded.
        refundable: Money,
        /// What the refund asked for.
        requested: Money,
    },
    /// A refund of zero or less, or in another currency than the order's.
    #[error("the amount must be positive and in the order's currency")]
    InvalidAmount,
    /// The order's total would exceed [`Money::AMOUNT_MINOR_MAX`].
    #[error("the order's total would be more than the largest amount accepted ({max})")]
    TotalTooLarge {
        /// The largest amount accepted, in the order's currency.
        max: Money,
    },
    /// The merchant has no part of this order awaiting capture (not authorised, already settled, or
    /// not a merchant of it).
    #[error("the order has no part of merchant {0} awaiting capture")]
    NoPendingPart(UserId),
    /// A capture names a product that is not among the merchant's lines of the order.
    #[error("product {0} is not one of this merchant's items of the order")]
    NotInPart(ProductId),
    /// A capture of more units than were authorised.
    #[error("cannot capture {requested} of product {product_id}: {ordered} were authorised")]
    CaptureExceedsOrdered {
        /// The product of the line.
        product_id: ProductId,
        /// The units authorised.
        ordered: u32,
        /// The units asked for.
        requested: u32,
    },
    /// The status cannot move as asked.
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// Checked arithmetic on the order's amounts overflowed.
    #[error(transparent)]
    Money(#[from] MoneyError),
}

/// A move the state machine does not declare, such as `paid -> cancelled`: the caller asked for
/// something the order's status no longer allows (a late webhook, a double cancel).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an order cannot go from {from} to {to}")]
pub struct TransitionError {
    /// The order's status.
    pub from: OrderStatus,
    /// The status asked for.
    pub to: OrderStatus,
}

/// An order. Its fields are private: it changes only through its transitions, which keep the
/// status, the refunded amount and the audit trail in step.
///
/// An order moves only by consuming itself:
///
/// ```
/// use domain::catalog::{Product, Quantity};
/// use domain::ids::{OrderId, ProductId, UserId};
/// use domain::money::{Currency, Money};
/// use domain::order::{Actor, Order, OrderStatus, PaymentMethod, TransitionError};
/// use domain::OffsetDateTime;
/// use uuid::Uuid;
///
/// let now = OffsetDateTime::UNIX_EPOCH;
/// let (buyer, merchant) = (UserId::from_uuid(Uuid::from_u128(1)), UserId::from_uuid(Uuid::from_u128(2)));
/// let price = Money::from_minor(1_250, Currency::Usd);
/// let mug = Product::new(ProductId::from_uuid(Uuid::from_u128(3)), merchant, "Mug", "", price, now).unwrap();
///
/// let id = OrderId::from_uuid(Uuid::from_u128(4));
/// let (order, _) = Order::place(id, buyer, &[(&mug, Quantity::new(2).unwrap())], PaymentMethod::Card, now).unwrap();
/// assert_eq!(order.total(), Money::from_minor(2_500, Currency::Usd));
///
/// let (order, _) = order.await_payment(Actor::User(buyer), now).unwrap();
/// let (order, change) = order.mark_paid(Actor::System, now).unwrap();
/// assert_eq!((change.from, change.to), (Some(OrderStatus::PaymentPending), OrderStatus::Paid));
///
/// // A paid order cannot be cancelled: it is refunded instead.
/// let refused = order.clone().cancel(Actor::User(buyer), "changed my mind", now);
/// assert_eq!(refused.unwrap_err(), TransitionError { from: OrderStatus::Paid, to: OrderStatus::Cancelled });
/// let (order, _) = order.record_refund(Money::from_minor(1_000, Currency::Usd), Actor::User(merchant), "one broke", now).unwrap();
/// assert_eq!(order.status(), OrderStatus::PartiallyRefunded);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    id: OrderId,
    buyer_id: UserId,
    items: Vec<OrderItem>,
    total: Money,
    refunded: Money,
    payment_method: PaymentMethod,
    capture_method: CaptureMethod,
    status: OrderStatus,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

/// An order as storage keeps it: what `Order::restore` rebuilds one from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRecord {
    /// The order's id.
    pub id: OrderId,
    /// The user who placed and pays for the order.
    pub buyer_id: UserId,
    /// The lines, each with its merchant and price at the time.
    pub items: Vec<OrderItem>,
    /// What the buyer pays: the sum of the lines as bought.
    pub total: Money,
    /// How much of `total` has been refunded so far.
    pub refunded: Money,
    /// How the buyer pays.
    pub payment_method: PaymentMethod,
    /// When the money is taken.
    pub capture_method: CaptureMethod,
    /// The current status.
    pub status: OrderStatus,
    /// When the order was placed.
    pub created_at: OffsetDateTime,
    /// When its status or lines last changed.
    pub updated_at: OffsetDateTime,
}

impl Order {
    /// The most lines one order may have, which bounds the rows one checkout locks.
    pub const ITEMS_MAX: usize = 50;

    /// Rebuilds an order from storage, which enforces the same invariants as `Order` does.
    pub fn restore(record: OrderRecord) -> Order {
        let OrderRecord {
            id,
            buyer_id,
            items,
            total,
            refunded,
            payment_method,
            capture_method,
            status,
            created_at,
            updated_at,
        } = record;
        Order {
            id,
            buyer_id,
            items,
            total,
            refunded,
            payment_method,
            capture_method,
            status,
            created_at,
            updated_at,
        }
    }

    /// The order's id.
    pub fn id(&self) -> OrderId {
        self.id
    }

    /// The user who placed and pays for the order.
    pub fn buyer_id(&self) -> UserId {
        self.buyer_id
    }

    /// The lines, in the order the buyer gave them.
    pub fn items(&self) -> &[OrderItem] {
        &self.items
    }

    /// The products of the order, in product id order (the order stock is locked in).
    pub fn product_ids(&self) -> Vec<ProductId> {
        let mut ids: Vec<ProductId> = self.items.iter().map(|item| item.product_id).collect();
        ids.sort();
        ids
    }

    /// What the buyer pays: the sum of the lines as bought (for manual capture, what was captured once
    /// every part settled).
    pub fn total(&self) -> Money {
        self.total
    }

    /// How much of [`total`](Order::total) has been refunded so far.
    pub fn refunded(&self) -> Money {
        self.refunded
    }

    /// How the buyer pays.
    pub fn payment_method(&self) -> PaymentMethod {
        self.payment_method
    }

    /// When the money is taken.
    pub fn capture_method(&self) -> CaptureMethod {
        self.capture_method
    }

    /// The current status.
    pub fn status(&self) -> OrderStatus {
        self.status
    }

    /// When the order was placed.
    pub fn created_at(&self) -> OffsetDateTime {
        self.created_at
    }

    /// When its status or lines last changed.
    pub fn updated_at(&self) -> OffsetDateTime {
        self.updated_at
    }

    /// Whether the order waits for its payment (`payment_pending`), so the payment's outcome may still
    /// move it.
    pub fn is_awaiting_payment(&self) -> bool {
        self.status == OrderStatus::PaymentPending
    }

    /// A new order in status `created`, priced from the products as they are now.
    pub fn place(
        id: OrderId,
        buyer_id: UserId,
        lines: &[(&Product, Quantity)],
        payment_method: PaymentMethod,
        at: OffsetDateTime,
    ) -> Result<(Order, StatusChange), OrderError> {
        let (first, _) = lines.first().ok_or(OrderError::Empty)?;
        if lines.len() > Order::ITEMS_MAX {
            return Err(OrderError::TooManyItems { max: Order::ITEMS_MAX });
        }
        let currency = first.price.currency();
        let mut seen = BTreeSet::new();
        let mut items = Vec::with_capacity(lines.len());
        let mut total = Money::zero(currency);
        for (product, quantity) in lines {
            if !seen.insert(product.id) {
                return Err(OrderError::DuplicateProduct(product.id));
            }
            if !product.active {
                return Err(OrderError::ProductInactive(product.id));
            }
            if product.price.currency() != currency {
                return Err(OrderError::MixedCurrencies);
            }
            if product.merchant_id == buyer_id {
                return Err(OrderError::OwnProduct(product.id));
            }
            let item = OrderItem {
                product_id: product.id,
                merchant_id: product.merchant_id,
                product_name: product.name.clone(),
                quantity: *quantity,
                unit_price: product.price,
                captured: None,
            };
            // One bound for every amount: no line and no order may exceed what a single amount
            // may be, so totals, refunds and postings derived from it cannot overflow.
            let too_large = || OrderError::TotalTooLarge {
                max: Money::from_minor(Money::AMOUNT_MINOR_MAX, currency),
            };
            total = item
                .line_total()
                .and_then(|line| total.checked_add(line))
                .ok()
                .filter(|total| total.amount_minor() <= Money::AMOUNT_MINOR_MAX)
                .ok_or_else(too_large)?;
            items.push(item);
        }
        let order = Order {
            id,
            buyer_id,
            items,
            total,
            refunded: Money::zero(currency),
            payment_method,
            capture_method: CaptureMethod::Automatic,
            status: OrderStatus::Created,
            created_at: at,
            updated_at: at,
        };
        let change = StatusChange {
            order_id: id,
            from: None,
            to: OrderStatus::Created,
            actor: Actor::User(buyer_id),
            reason: "order placed".to_owned(),
            at,
        };
        Ok((order, change))
    }

    /// The one currency of the order's lines and total.
    pub fn currency(&self) -> Currency {
        self.total.currency()
    }

    fn transition(
        mut self,
        to: OrderStatus,
        actor: Actor,
        reason: &str,
        at: OffsetDateTime,
    ) -> Result<(Order, StatusChange), TransitionError> {
        let from = self.status;
        if !from.can_become(to) {
            return Err(TransitionError { from, to });
        }
        self.status = to;
        self.updated_at = at;
        let change = StatusChange {
            order_id: self.id,
            from: Some(from),
            to,
            actor,
            reason: reason.to_owned(),
            at,
        };
        Ok((self, change))
    }

    /// `created -> payment_pending`, once checkout has started the payment.
    pub fn await_payment(self, actor: Actor, at: OffsetDateTime) -> Result<(Order, StatusChange), TransitionError> {
        let reason = format!("awaiting {} payment", self.payment_method.as_str());
        self.transition(OrderStatus::PaymentPending, actor, &reason, at)
    }

    /// A wallet order whose money is held until each merchant captures its part.
    pub fn authorise(mut self, actor: Actor, at: OffsetDateTime) -> Result<(Order, StatusChange), TransitionError> {
        let (from, to) = (self.status, OrderStatus::Authorised);
        if self.payment_method != PaymentMethod::Wallet {
            return Err(TransitionError { from, to });
        }
        self.capture_method = CaptureMethod::Manual;
        self.transition(to, actor, "wallet funds held until captured", at)
    }

    /// Settles one merchant's part of an authorised order: `captured` units of each of its
    /// products (a product not named is captured 0 times, so an empty map voids the part). When
    /// it was the last part pending, the order becomes `paid` for what was captured in all, or
    /// `cancelled` when nothing was.
    pub fn settle_part(
        mut self,
        merchant_id: UserId,
        captured: &BTreeMap<ProductId, u32>,
        actor: Actor,
        at: OffsetDateTime,
    ) -> Result<(Order, Option<StatusChange>), OrderError> {
        if self.status != OrderStatus::Authorised || !self.pending_merchants().contains(&merchant_id) {
            return Err(OrderError::NoPendingPart(merchant_id));
        }
        if let Some(stranger) = captured.keys().find(|id| {
            !self
                .items
                .iter()
                .any(|item| item.product_id == **id && item.merchant_id == merchant_id)
        }) {
            return Err(OrderError::NotInPart(*stranger));
        }
        for item in self.items.iter_mut().filter(|item| item.merchant_id == merchant_id) {
            let requested = captured.get(&item.product_id).copied().unwrap_or(0);
            if requested > item.quantity.get() {
                return Err(OrderError::CaptureExceedsOrdered {
                    product_id: item.product_id,
                    ordered: item.quantity.get(),
                    requested,
                });
            }
            item.captured = Some(requested);
        }
        self.updated_at = at;
        if !self.pending_merchants().is_empty() {
            return Ok((self, None));
        }
        let mut bought = Money::zero(self.currency());
        for item in &self.items {
            bought = bought.checked_add(item.line_total()?)?;
        }
        if bought.is_positive() {
            self.total = bought;
            let (order, change) = self.transition(OrderStatus::Paid, actor, "captured", at)?;
            return Ok((order, Some(change)));
        }
        let (order, change) = self.transition(OrderStatus::Cancelled, actor, "authorisation voided", at)?;
        Ok((order, Some(change)))
    }

    /// The merchants of an authorised order whose part is not settled yet, in id order.
    pub fn pending_merchants(&self) -> BTreeSet<UserId> {
        if self.status != OrderStatus::Authorised {
            return BTreeSet::new();
        }
        self.items
            .iter()
            .filter(|item| item.captured.is_none())
            .map(|item| item.merchant_id)
            .collect()
    }

    /// Whether any merchant of a manual-capture order captured something.
    pub fn anything_captured(&self) -> bool {
        self.items.iter().any(|item| item.captured.is_some_and(|units| units > 0))
    }

    /// What each merchant's part was ordered (authorised) for.
    pub fn merchant_authorised(&self) -> Result<BTreeMap<UserId, Money>, MoneyError> {
        let mut totals: BTreeMap<UserId, Money> = BTreeMap::new();
        for item in &self.items {
            let line = item.ordered_total()?;
            let total = totals.entry(item.merchant_id).or_insert(Money::zero(self.currency()));
            *total = total.checked_add(line)?;
        }
        Ok(totals)
    }

    /// `payment_pending -> paid` (or `authorised -> paid`), once the money was taken.
    pub fn mark_paid(self, actor: Actor, at: OffsetDateTime) -> Result<(Order, StatusChange), TransitionError> {
        self.transition(OrderStatus::Paid, actor, "payment received", at)
    }

    /// `paid` (or `partially_refunded`) `-> fulfilled`, when a merchant delivered.
    pub fn fulfil(self, actor: Actor, at: OffsetDateTime) -> Result<(Order, StatusChange), TransitionError> {
        self.transition(OrderStatus::Fulfilled, actor, "fulfilled", at)
    }

    /// `-> cancelled`, from `payment_pending` or `authorised` only: a paid order is refunded instead.
    pub fn cancel(self, actor: Actor, reason: &str, at: OffsetDateTime) -> Result<(Order, StatusChange), TransitionError> {
        self.transition(OrderStatus::Cancelled, actor, reason, at)
    }

    /// Records a refund of `amount`: `refunded` when nothing is left to refund, otherwise
    /// `partially_refunded`.
    pub fn record_refund(
        mut self,
        amount: Money,
        actor: Actor,
        reason: &str,
        at: OffsetDateTime,
    ) -> Result<(Order, StatusChange), OrderError> {
        if amount.currency() != self.currency() || !amount.is_positive() {
            return Err(OrderError::InvalidAmount);
        }
        let refundable = self.total.checked_sub(self.refunded)?;
        if amount.amount_minor() > refundable.amount_minor() {
            return Err(OrderError::RefundExceedsPaid {
                refundable,
                requested: amount,
            });
        }
        let refunded = self.refunded.checked_add(amount)?;
        let to = if refunded == self.total {
            OrderStatus::Refunded
        } else {
            OrderStatus::PartiallyRefunded
        };
        self.refunded = refunded;
        Ok(self.transition(to, actor, reason, at)?)
    }

    /// What each merchant is owed for this order: the sum of their lines (as bought).
    pub fn merchant_totals(&self) -> Result<BTreeMap<UserId, Money>, MoneyError> {
        let mut totals: BTreeMap<UserId, Money> = BTreeMap::new();
        for item in &self.items {
            let line = item.line_total()?;
            let total = totals.entry(item.merchant_id).or_insert(Money::zero(self.currency()));
            *total = total.checked_add(line)?;
        }
        Ok(totals)
    }

    /// Whether `merchant_id` sells at least one line of the order.
    pub fn has_merchant(&self, merchant_id: UserId) -> bool {
        self.items.iter().any(|item| item.merchant_id == merchant_id)
    }

    /// Whether money was taken for this order and not (entirely) given back.
    pub fn is_paid(&self) -> bool {
        matches!(
            self.status,
            OrderStatus::Paid | OrderStatus::Fulfilled | OrderStatus::PartiallyRefunded
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use uuid::Uuid;

    fn at() -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH
    }

    fn user(n: u128) -> UserId {
        UserId::from_uuid(Uuid::from_u128(n))
    }

    fn product(n: u128, merchant: u128, price_minor: i64) -> Product {
        let price = Money::from_minor(price_minor, Currency::Usd);
        Product::new(ProductId::from_uuid(Uuid::from_u128(n)), user(merchant), "Thing", "", price, at()).unwrap_or_else(|e| panic!("{e}"))
    }

    fn quantity(units: i64) -> Quantity {
        Quantity::new(units).unwrap_or_else(|e| panic!("{e}"))
    }

    fn order() -> Order {
        let (a, b) = (product(1, 10, 250), product(2, 11, 1000));
        Order::place(
            OrderId::from_uuid(Uuid::from_u128(5)),
            user(1),
            &[(&a, quantity(2)), (&b, quantity(1))],
            PaymentMethod::Wallet,
            at(),
        )
        .map(|(order, _)| order)
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn authorised() -> Order {
        order()
            .authorise(Actor::User(user(1)), at())
            .map(|(order, _)| order)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn units(product: u128, count: u32) -> BTreeMap<ProductId, u32> {
        BTreeMap::from([(ProductId::from_uuid(Uuid::from_u128(product)), count)])
    }

    #[test]
    fn an_order_is_paid_for_what_its_merchants_captured_once_every_part_settles() -> Result<(), OrderError> {
        let order = authorised();
        assert_eq!(
            (order.capture_method(), order.pending_merchants().len()),
            (CaptureMethod::Manual, 2)
        );
        let (order, change) = order.settle_part(user(10), &units(1, 1), Actor::User(user(10)), at())?;
        assert!(change.is_none(), "the other merchant's part is pending");
        assert_eq!(
            order.total(),
            Money::from_minor(1500, Currency::Usd),
            "the total settles at the end"
        );
        let (order, change) = order.settle_part(user(11), &BTreeMap::new(), Actor::User(user(11)), at())?;
        assert_eq!(change.map(|c| c.to), Some(OrderStatus::Paid));
        assert_eq!(order.total(), Money::from_minor(250, Currency::Usd));
        assert_eq!(order.merchant_totals()?.get(&user(11)), Some(&Money::zero(Currency::Usd)));
        assert!(order.pending_merchants().is_empty());
        Ok(())
    }

    #[test]
    fn an_order_with_nothing_captured_is_cancelled() -> Result<(), OrderError> {
        let (order, _) = authorised().settle_part(user(10), &BTreeMap::new(), Actor::System, at())?;
        let (order, change) = order.settle_part(user(11), &BTreeMap::new(), Actor::System, at())?;
        assert_eq!(
            (order.status(), change.map(|c| c.to)),
            (OrderStatus::Cancelled, Some(OrderStatus::Cancelled))
        );
        assert!(!order.anything_captured());
        Ok(())
    }

    #[test]
    fn a_part_settles_once_and_only_with_its_own_items_within_what_was_authorised() -> Result<(), OrderError> {
        let order = authorised();
        let too_many = order.clone().settle_part(user(10), &units(1, 3), Actor::System, at());
        assert!(matches!(
            too_many,
            Err(OrderError::CaptureExceedsOrdered {
                ordered: 2,
                requested: 3,
                ..
            })
        ));
        let not_hers = order.clone().settle_part(user(10), &units(2, 1), Actor::System, at());
        assert!(matches!(not_hers, Err(OrderError::NotInPart(_))));
        let stranger = order.clone().settle_part(user(99), &BTreeMap::new(), Actor::System, at());
        assert!(matches!(stranger, Err(OrderError::NoPendingPart(_))));
        let (order, _) = order.settle_part(user(10), &units(1, 2), Actor::System, at())?;
        let twice = order.settle_part(user(10), &units(1, 2), Actor::System, at());
        assert!(matches!(twice, Err(OrderError::NoPendingPart(_))));
        Ok(())
    }

    #[test]
    fn only_wallet_orders_are_authorised() {
        let (card, _) = Order::place(
            OrderId::from_uuid(Uuid::from_u128(6)),
            user(1),
            &[(&product(1, 10, 250), quantity(1))],
            PaymentMethod::Card,
            at(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(card.authorise(Actor::System, at()).is_err());
    }

    #[test]
    fn the_total_and_merchant_shares_come_from_the_lines() -> Result<(), MoneyError> {
        let order = order();
        assert_eq!(order.total, Money::from_minor(1500, Currency::Usd));
        let shares = order.merchant_totals()?;
        assert_eq!(shares.get(&user(10)), Some(&Money::from_minor(500, Currency::Usd)));
        assert_eq!(shares.get(&user(11)), Some(&Money::from_minor(1000, Currency::Usd)));
        Ok(())
    }

    #[test]
    fn orders_refuse_bad_carts() {
        let place = |lines: &[(&Product, Quantity)], buyer| {
            Order::place(OrderId::from_uuid(Uuid::from_u128(5)), buyer, lines, PaymentMethod::Wallet, at()).map(|_| ())
        };
        let a = product(1, 10, 250);
        assert_eq!(place(&[], user(1)), Err(OrderError::Empty));
        assert_eq!(
            place(&[(&a, quantity(1)), (&a, quantity(1))], user(1)),
            Err(OrderError::DuplicateProduct(a.id))
        );
        assert_eq!(place(&[(&a, quantity(1))], user(10)), Err(OrderError::OwnProduct(a.id)));
        let inactive = a.clone().archive(at());
        assert_eq!(place(&[(&inactive, quantity(1))], user(1)), Err(OrderError::ProductInactive(a.id)));
        let max = Money::from_minor(Money::AMOUNT_MINOR_MAX, Currency::Usd);
        let dearest = product(3, 10, Money::AMOUNT_MINOR_MAX);
        let half = product(4, 11, Money::AMOUNT_MINOR_MAX / 2 + 1);
        assert!(
            place(&[(&dearest, quantity(1))], user(1)).is_ok(),
            "the largest amount is itself accepted"
        );
        for lines in [
            vec![(&dearest, quantity(Quantity::MAX.into()))],
            vec![(&dearest, quantity(2))],
            vec![(&half, quantity(1)), (&dearest, quantity(1))],
            vec![(&half, quantity(2))],
        ] {
            assert_eq!(place(&lines, user(1)), Err(OrderError::TotalTooLarge { max }));
        }
        let mut euro = product(3, 10, 100);
        euro.price = Money::from_minor(100, Currency::Eur);
        assert_eq!(
            place(&[(&a, quantity(1)), (&euro, quantity(1))], user(1)),
            Err(OrderError::MixedCurrencies)
        );
    }

    #[test]
    fn the_happy_path_records_every_transition() -> Result<(), OrderError> {
        let buyer = Actor::User(user(1));
        let (order, first) = order().await_payment(buyer.clone(), at())?;
        let (order, second) = order.mark_paid(buyer.clone(), at())?;
        let (order, third) = order.fulfil(Actor::User(user(10)), at())?;
        assert_eq!(order.status, OrderStatus::Fulfilled);
        assert_eq!(
            [first.from, second.from, third.from],
            [
                Some(OrderStatus::Created),
                Some(OrderStatus::PaymentPending),
                Some(OrderStatus::Paid)
            ]
        );
        Ok(())
    }

    #[test]
    fn partial_refunds_add_up_to_a_full_refund() -> Result<(), OrderError> {
        let actor = Actor::User(user(99));
        let (order, _) = order().await_payment(actor.clone(), at())?;
        let (order, _) = order.mark_paid(actor.clone(), at())?;
        let (order, _) = order.record_refund(Money::from_minor(500, Currency::Usd), actor.clone(), "r", at())?;
        assert_eq!(order.status, OrderStatus::PartiallyRefunded);
        let too_much = order
            .clone()
            .record_refund(Money::from_minor(1001, Currency::Usd), actor.clone(), "r", at());
        assert!(matches!(too_much, Err(OrderError::RefundExceedsPaid { .. })));
        let (order, _) = order.record_refund(Money::from_minor(1000, Currency::Usd), actor, "r", at())?;
        assert_eq!(order.status, OrderStatus::Refunded);
        Ok(())
    }

    #[test]
    fn an_unpaid_order_cannot_be_fulfilled_or_refunded() -> Result<(), OrderError> {
        let actor = Actor::User(user(1));
        let (pending, _) = order().await_payment(actor.clone(), at())?;
        assert_eq!(
            pending.clone().fulfil(actor.clone(), at()).err(),
            Some(TransitionError {
                from: OrderStatus::PaymentPending,
                to: OrderStatus::Fulfilled
            })
        );
        let refund = pending.record_refund(Money::from_minor(1, Currency::Usd), actor, "r", at());
        assert!(matches!(refund, Err(OrderError::Transition(_))));
        Ok(())
    }

    #[test]
    fn actors_round_trip_through_text() -> Result<(), crate::payment::ProviderNameError> {
        for actor in [Actor::System, Actor::User(user(3)), Actor::Gateway(ProviderName::parse("stripe")?)] {
            assert_eq!(Actor::parse(&actor.to_string()), Some(actor));
        }
        Ok(())
    }

    fn any_status() -> impl Strategy<Value = OrderStatus> {
        prop::sample::select(OrderStatus::ALL.to_vec())
    }

    #[derive(Debug, Clone)]
    enum Step {
        AwaitPayment,
        MarkPaid,
        Fulfil,
        Cancel,
        Refund(i64),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            Just(Step::AwaitPayment),
            Just(Step::MarkPaid),
            Just(Step::Fulfil),
            Just(Step::Cancel),
            (1i64..2000).prop_map(Step::Refund),
        ]
    }

    proptest! {
        /// Whatever is attempted, every status an order reaches was declared as a successor of the
        /// status it left, and a refused step leaves the order untouched.
        #[test]
        fn no_sequence_of_steps_reaches_an_undeclared_transition(steps in prop::collection::vec(step(), 0..30)) {
            let actor = Actor::System;
            let mut order = order();
            for step in steps {
                let before = order.clone();
                let result = match step {
                    Step::AwaitPayment => order.clone().await_payment(actor.clone(), at()).map_err(OrderError::from),
                    Step::MarkPaid => order.clone().mark_paid(actor.clone(), at()).map_err(OrderError::from),
                    Step::Fulfil => order.clone().fulfil(actor.clone(), at()).map_err(OrderError::from),
                    Step::Cancel => order.clone().cancel(actor.clone(), "c", at()).map_err(OrderError::from),
                    Step::Refund(minor) => order.clone().record_refund(Money::from_minor(minor, Currency::Usd), actor.clone(), "r", at()),
                };
                match result {
                    Ok((next, change)) => {
                        prop_assert!(before.status.can_become(next.status));
                        prop_assert_eq!(change.from, Some(before.status));
                        prop_assert_eq!(change.to, next.status);
                        prop_assert!(next.refunded.amount_minor() <= next.total.amount_minor());
                        order = next;
                    }
                    Err(_) => prop_assert_eq!(&order, &before),
                }
            }
        }

        #[test]
        fn final_statuses_have_no_way_out(from in any_status(), to in any_status()) {
            if from.is_final() {
                prop_assert!(!from.can_become(to));
            }
            prop_assert_eq!(OrderStatus::parse(from.as_str()), Some(from));
        }
    }
}
