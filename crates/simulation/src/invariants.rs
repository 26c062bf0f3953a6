//! The invariants checked after every step, read from the store in one transaction (the store's
//! truth, not the application's caches).

use application::ledger::LedgerReport;
use application::ports::store::{LedgerRepository, OrderRepository, PaymentRepository, ProductRepository, RefundRepository, Transaction, UnitOfWork};
use domain::payment::RefundStatus;

use crate::executor::block_on;
use crate::world::{CHECK_POLLS_MAX, World};

/// Every broken invariant, described; empty when all hold.
pub fn check(world: &mut World) -> Vec<String> {
    let mut broken = std::mem::take(&mut world.violations);
    match block_on(read_and_check(world), CHECK_POLLS_MAX) {
        Some(Ok(found)) => broken.extend(found),
        Some(Err(error)) => broken.push(format!("the store could not be read: {error}")),
        None => broken.push("the store stayed locked: a task holds a transaction across an await point".into()),
    }
    broken
}

async fn read_and_check(world: &World) -> Result<Vec<String>, application::ports::store::StoreError> {
    let mut broken = Vec::new();
    let mut tx = world.store.begin().await?;
    let report = LedgerReport::from_audit(tx.audit_ledger().await?);
    if !report.is_ok() {
        broken.push(format!("ledger: {:?}", report.problems));
    }
    for &(product_id, stocked, _) in &world.products {
        let Some((_, stock)) = tx.find_product(product_id).await? else {
            broken.push(format!("product {product_id} vanished"));
            continue;
        };
        if stock.available() < 0 || stock.reserved() < 0 {
            broken.push(format!("product {product_id}: negative stock {stock:?}"));
        }
        if stock.available() + stock.reserved() > stocked {
            broken.push(format!("product {product_id}: more stock than was stocked ({stocked}): {stock:?}"));
        }
    }
    for &(order_id, ..) in &world.orders {
        let Some(order) = tx.find_order(order_id).await? else {
            broken.push(format!("order {order_id} vanished"));
            continue;
        };
        let total = order.total().amount_minor();
        if order.refunded().amount_minor() > total {
            broken.push(format!("order {order_id}: refunded {} of {total}", order.refunded()));
        }
        let refunds = tx.list_order_refunds(order_id).await?;
        let owed: i64 = refunds
            .iter()
            .filter(|r| r.status() != RefundStatus::Failed)
            .map(|r| r.amount().amount_minor())
            .sum();
        if owed > total {
            broken.push(format!("order {order_id}: refunds of {owed} on a total of {total}"));
        }
        let succeeded: i64 = refunds
            .iter()
            .filter(|r| r.status() == RefundStatus::Succeeded)
            .map(|r| r.amount().amount_minor())
            .sum();
        if order.refunded().amount_minor() > succeeded.max(owed) {
            broken.push(format!("order {order_id}: refunded {} but its refunds sum to {owed}", order.refunded()));
        }
        if let Some(payment) = tx.find_order_payment(order_id).await?
            && payment.amount() != order.total()
        {
            broken.push(format!("order {order_id}: paid {} for a total of {}", payment.amount(), order.total()));
        }
    }
    tx.rollback().await?;
    Ok(broken)
}
