//! An example of a service that embeds the payment core: a loyalty programme that sells through
//! `application::App` and keeps its own points. It knows nothing of storage: it takes an `App`
//! over any `UnitOfWork`, so production runs it over PostgreSQL (`adapter-postgres`) and its tests
//! over the in-memory store (`adapter-memory`), as `tests/loyalty.rs` does.
//!
//! The points follow the money: one point per whole unit of a paid order's total, awarded once
//! the order is paid, and taken back in proportion to what a refund returns.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use application::auth::Caller;
use application::checkout::{CheckoutCommand, CheckoutError};
use application::context::App;
use application::ports::store::UnitOfWork;
use application::refunds::{RefundCommand, RefundError};
use domain::ids::{OrderId, UserId};
use domain::money::Money;
use domain::order::{Order, OrderStatus};

/// What went wrong, as the payment core said it.
#[derive(Debug, thiserror::Error)]
pub enum LoyaltyError {
    #[error(transparent)]
    Checkout(#[from] CheckoutError),
    #[error(transparent)]
    Refund(#[from] RefundError),
    #[error("the order was not paid at once (a card checkout is paid later, by its webhook)")]
    NotPaid,
    #[error("points are only awarded for orders bought through this programme")]
    UnknownOrder,
}

/// The loyalty programme: the payment core, and the points it has awarded.
#[derive(Debug)]
pub struct Loyalty<U> {
    payments: Arc<App<U>>,
    points: Mutex<Ledger>,
}

#[derive(Debug, Default)]
struct Ledger {
    by_member: HashMap<UserId, i64>,
    /// Who bought each order and what it awarded, to take points back on a refund.
    awarded: HashMap<OrderId, (UserId, i64, Money)>,
}

impl<U: UnitOfWork> Loyalty<U> {
    pub fn new(payments: Arc<App<U>>) -> Loyalty<U> {
        Loyalty {
            payments,
            points: Mutex::new(Ledger::default()),
        }
    }

    /// Buys `cart` for `member` (paid from their wallet) and awards the order's points.
    ///
    /// # Errors
    /// The payment core's refusal (out of stock, insufficient funds, ...), or `NotPaid` for a
    /// checkout that is not paid yet: no points without money.
    pub async fn buy(&self, member: &Caller, cart: CheckoutCommand) -> Result<Order, LoyaltyError> {
        let checkout = self.payments.checkout(member, cart, None).await?;
        let order = checkout.order;
        if order.status() != OrderStatus::Paid {
            return Err(LoyaltyError::NotPaid);
        }
        let earned = points_for(order.total());
        let mut ledger = self.ledger();
        *ledger.by_member.entry(member.user_id).or_default() += earned;
        ledger.awarded.insert(order.id(), (member.user_id, earned, order.total()));
        Ok(order)
    }

    /// The merchant refunds (part of) an order; the member loses the points of what came back.
    ///
    /// # Errors
    /// The payment core's refusal (not the merchant's order, more than is refundable, ...), or
    /// `UnknownOrder` for an order not bought through the programme.
    pub async fn refund(&self, merchant: &Caller, order: OrderId, amount: Option<Money>) -> Result<i64, LoyaltyError> {
        let Some(&(member, earned, total)) = self.ledger().awarded.get(&order) else {
            return Err(LoyaltyError::UnknownOrder);
        };
        let command = RefundCommand {
            amount,
            merchant_id: Some(merchant.user_id),
            reason: "returned".into(),
        };
        let refunds = self.payments.refund_order(merchant, order, command, None).await?;
        let returned: i64 = refunds.iter().map(|refund| refund.amount().amount_minor()).sum();
        // Rounded up, so that a member never keeps more points than the money they kept earns.
        let total = total.amount_minor().max(1);
        let taken = ((earned * returned + total - 1) / total).min(earned);
        *self.ledger().by_member.entry(member).or_default() -= taken;
        Ok(taken)
    }

    pub fn points(&self, member: UserId) -> i64 {
        self.ledger().by_member.get(&member).copied().unwrap_or(0)
    }

    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.points.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One point per whole unit of the currency (100 minor units for USD and EUR).
fn points_for(total: Money) -> i64 {
    total.amount_minor() / 100
}
