//! Orders, their items and their audit trail (`OrderRepository`).
//!
//! An order is read by one query that returns a row per item, the order's columns repeated, and
//! grouped back into orders here; a listing picks its page of orders in a `WITH` clause and joins
//! their items to it. Items are numbered by `position` from 1, in the order's own order, which is
//! also how a manual-capture order's captured quantities find their rows.
//!
//! The audit trail is numbered by `order_status_history.id`, a rowid alias: entries are never
//! deleted and only one transaction writes at a time, so the ids follow the order of appending,
//! as PostgreSQL's sequence does.

use application::pagination::{Cursor, Page, PageRequest};
use application::ports::store::{OrderFilter, OrderRepository, StoreError, StoreResult};
use domain::catalog::Quantity;
use domain::ids::{OrderId, ProductId, UserId};
use domain::order::{Actor, CaptureMethod, Order, OrderItem, OrderRecord, OrderStatus, PaymentMethod, StatusChange};
use rusqlite::{Row, params};

use crate::SqliteTx;
use crate::codec;

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS orders (
    id             TEXT PRIMARY KEY,
    buyer_id       TEXT NOT NULL REFERENCES users (id),
    currency       TEXT NOT NULL CHECK (currency GLOB '[A-Z][A-Z][A-Z]'),
    total          INTEGER NOT NULL CHECK (total > 0),
    refunded       INTEGER NOT NULL,
    payment_method TEXT NOT NULL CHECK (payment_method IN ('wallet', 'card')),
    status         TEXT NOT NULL CHECK (status IN ('created', 'payment_pending', 'authorised', 'paid', 'fulfilled',
                                                   'cancelled', 'partially_refunded', 'refunded')),
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    capture_method TEXT NOT NULL DEFAULT 'automatic' CHECK (capture_method IN ('automatic', 'manual')),
    CONSTRAINT orders_refunded_within_total CHECK (refunded >= 0 AND refunded <= total)
) STRICT;

CREATE INDEX IF NOT EXISTS orders_by_buyer ON orders (buyer_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS orders_newest ON orders (created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS orders_by_status ON orders (status, created_at DESC, id DESC);

-- Items keep the name and price the buyer saw, in the order's currency. `captured_quantity` is
-- NULL while a manual-capture part is pending, and always for automatic capture.
CREATE TABLE IF NOT EXISTS order_items (
    order_id          TEXT NOT NULL REFERENCES orders (id),
    position          INTEGER NOT NULL,
    product_id        TEXT NOT NULL REFERENCES products (id),
    merchant_id       TEXT NOT NULL REFERENCES users (id),
    product_name      TEXT NOT NULL,
    quantity          INTEGER NOT NULL CHECK (quantity > 0),
    unit_price        INTEGER NOT NULL CHECK (unit_price > 0),
    captured_quantity INTEGER CHECK (captured_quantity >= 0 AND captured_quantity <= quantity),
    PRIMARY KEY (order_id, position)
) STRICT;

-- A merchant's sales: the orders with at least one of their items.
CREATE INDEX IF NOT EXISTS order_items_by_merchant ON order_items (merchant_id, order_id);

-- The audit trail; `from_status` is NULL for the entry that created the order.
CREATE TABLE IF NOT EXISTS order_status_history (
    id          INTEGER PRIMARY KEY,
    order_id    TEXT NOT NULL REFERENCES orders (id),
    from_status TEXT,
    to_status   TEXT NOT NULL,
    actor       TEXT NOT NULL,
    reason      TEXT NOT NULL,
    at          INTEGER NOT NULL
) STRICT;

CREATE INDEX IF NOT EXISTS order_status_history_by_order ON order_status_history (order_id, id DESC);
";

/// The name PostgreSQL gives a taken order id, reported the same way here.
const ORDERS_PKEY: &str = "orders_pkey";

/// The columns `order_item` reads, from a row source of orders named `o` joined to `i`.
macro_rules! order_item_columns {
    () => {
        "o.id, o.buyer_id, o.currency, o.total, o.refunded, o.payment_method, o.capture_method, o.status, o.created_at, \
         o.updated_at, i.product_id, i.merchant_id, i.product_name, i.quantity, i.unit_price, i.captured_quantity"
    };
}

/// A page of orders (`$page`, a query of whole `orders` rows) with their items, newest first.
macro_rules! with_items {
    ($page:expr) => {
        concat!(
            "WITH page AS (",
            $page,
            ") SELECT ",
            order_item_columns!(),
            " FROM page o JOIN order_items i ON i.order_id = o.id ORDER BY o.created_at DESC, o.id DESC, i.position"
        )
    };
}

const FIND: &str = concat!(
    "SELECT ",
    order_item_columns!(),
    " FROM orders o JOIN order_items i ON i.order_id = o.id WHERE o.id = ?1 ORDER BY i.position"
);

const LIST_BY_BUYER: &str =
    with_items!("SELECT * FROM orders WHERE buyer_id = ?4 AND (created_at, id) < (?1, ?2) ORDER BY created_at DESC, id DESC LIMIT ?3");

const LIST_BY_MERCHANT: &str = with_items!(
    "SELECT * FROM orders WHERE id IN (SELECT order_id FROM order_items WHERE merchant_id = ?4) \
     AND (created_at, id) < (?1, ?2) ORDER BY created_at DESC, id DESC LIMIT ?3"
);

/// The admins' listing, every filter optional; the period includes its start, not its end.
const LIST_ALL: &str = with_items!(
    "SELECT * FROM orders WHERE (created_at, id) < (?1, ?2) AND (?4 IS NULL OR status = ?4) \
       AND (?5 IS NULL OR buyer_id = ?5) \
       AND (?6 IS NULL OR id IN (SELECT order_id FROM order_items WHERE merchant_id = ?6)) \
       AND (?7 IS NULL OR currency = ?7) \
       AND (?8 IS NULL OR created_at >= ?8) AND (?9 IS NULL OR created_at < ?9) \
     ORDER BY created_at DESC, id DESC LIMIT ?3"
);

/// An order's columns (0 to 9 of `order_item_columns!`), with no items yet.
fn order_record(row: &Row<'_>) -> StoreResult<OrderRecord> {
    let currency: String = codec::get(row, 2)?;
    let payment_method: String = codec::get(row, 5)?;
    let capture_method: String = codec::get(row, 6)?;
    let status: String = codec::get(row, 7)?;
    Ok(OrderRecord {
        id: OrderId::from_uuid(codec::uuid(row, 0)?),
        buyer_id: UserId::from_uuid(codec::uuid(row, 1)?),
        items: Vec::new(),
        total: codec::money(codec::get(row, 3)?, &currency)?,
        refunded: codec::money(codec::get(row, 4)?, &currency)?,
        payment_method: codec::word("payment method", &payment_method, PaymentMethod::parse)?,
        capture_method: codec::word("capture method", &capture_method, CaptureMethod::parse)?,
        status: codec::word("order status", &status, OrderStatus::parse)?,
        created_at: codec::instant(row, 8)?,
        updated_at: codec::instant(row, 9)?,
    })
}

/// An item's columns (10 to 15), priced in the order's currency (column 2).
fn order_item(row: &Row<'_>) -> StoreResult<OrderItem> {
    let currency: String = codec::get(row, 2)?;
    let captured: Option<i64> = codec::get(row, 15)?;
    Ok(OrderItem {
        product_id: ProductId::from_uuid(codec::uuid(row, 10)?),
        merchant_id: UserId::from_uuid(codec::uuid(row, 11)?),
        product_name: codec::get(row, 12)?,
        quantity: Quantity::new(codec::get(row, 13)?).map_err(codec::corrupt)?,
        unit_price: codec::money(codec::get(row, 14)?, &currency)?,
        captured: captured.map(|units| codec::to_u32(units, "captured quantity")).transpose()?,
    })
}

/// The orders of item rows that come grouped by order (each order's rows together, by position).
fn read_orders(tx: &mut SqliteTx, sql: &str, params: impl rusqlite::Params) -> StoreResult<Vec<Order>> {
    let rows = tx.query(sql, params, |row| Ok((order_record(row)?, order_item(row)?)))?;
    let mut records: Vec<OrderRecord> = Vec::new();
    for (record, item) in rows {
        match records.last_mut() {
            Some(current) if current.id == record.id => current.items.push(item),
            _ => records.push(OrderRecord {
                items: vec![item],
                ..record
            }),
        }
    }
    Ok(records.into_iter().map(Order::restore).collect())
}

fn find(tx: &mut SqliteTx, id: OrderId) -> StoreResult<Option<Order>> {
    Ok(read_orders(tx, FIND, params![codec::id_text(id.as_uuid())])?.into_iter().next())
}

/// An item's units as stored.
fn units(units: u32) -> i64 {
    i64::from(units)
}

fn status_change(row: &Row<'_>) -> StoreResult<(i64, StatusChange)> {
    let from: Option<String> = codec::get(row, 2)?;
    let to: String = codec::get(row, 3)?;
    let actor: String = codec::get(row, 4)?;
    let change = StatusChange {
        order_id: OrderId::from_uuid(codec::uuid(row, 1)?),
        from: from
            .map(|status| codec::word("order status", &status, OrderStatus::parse))
            .transpose()?,
        to: codec::word("order status", &to, OrderStatus::parse)?,
        actor: codec::word("actor", &actor, Actor::parse)?,
        reason: codec::get(row, 5)?,
        at: codec::instant(row, 6)?,
    };
    Ok((codec::get(row, 0)?, change))
}

impl OrderRepository for SqliteTx {
    /// The order, then its items numbered from 1. A taken id is reported as PostgreSQL names it.
    async fn insert_order(&mut self, order: &Order) -> StoreResult<()> {
        let order_id = codec::id_text(order.id().as_uuid());
        let inserted = self.execute(
            "INSERT INTO orders (id, buyer_id, currency, total, refunded, payment_method, capture_method, status, created_at, \
                                 updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (id) DO NOTHING",
            params![
                order_id,
                codec::id_text(order.buyer_id().as_uuid()),
                order.currency().code(),
                order.total().amount_minor(),
                order.refunded().amount_minor(),
                order.payment_method().as_str(),
                order.capture_method().as_str(),
                order.status().as_str(),
                codec::nanos(order.created_at()),
                codec::nanos(order.updated_at()),
            ],
        )?;
        if inserted == 0 {
            return Err(StoreError::Duplicate(ORDERS_PKEY.to_owned()));
        }
        for (position, item) in (1_i64..).zip(order.items()) {
            self.execute(
                "INSERT INTO order_items (order_id, position, product_id, merchant_id, product_name, quantity, unit_price, \
                                          captured_quantity) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    order_id,
                    position,
                    codec::id_text(item.product_id.as_uuid()),
                    codec::id_text(item.merchant_id.as_uuid()),
                    item.product_name,
                    units(item.quantity.get()),
                    item.unit_price.amount_minor(),
                    item.captured.map(units),
                ],
            )?;
        }
        Ok(())
    }

    /// The status, refunded amount and time; for a manual-capture order also the total and what
    /// each item captured, which settle as its merchants capture.
    async fn update_order(&mut self, order: &Order) -> StoreResult<()> {
        let order_id = codec::id_text(order.id().as_uuid());
        if order.capture_method() != CaptureMethod::Manual {
            return self.execute_one(
                "UPDATE orders SET status = ?2, refunded = ?3, updated_at = ?4 WHERE id = ?1",
                params![
                    order_id,
                    order.status().as_str(),
                    order.refunded().amount_minor(),
                    codec::nanos(order.updated_at()),
                ],
                "order",
            );
        }
        self.execute_one(
            "UPDATE orders SET status = ?2, refunded = ?3, updated_at = ?4, total = ?5 WHERE id = ?1",
            params![
                order_id,
                order.status().as_str(),
                order.refunded().amount_minor(),
                codec::nanos(order.updated_at()),
                order.total().amount_minor(),
            ],
            "order",
        )?;
        // The product id guards against items given in another order than they were placed in.
        for (position, item) in (1_i64..).zip(order.items()) {
            self.execute_one(
                "UPDATE order_items SET captured_quantity = ?4 WHERE order_id = ?1 AND position = ?2 AND product_id = ?3",
                params![
                    order_id,
                    position,
                    codec::id_text(item.product_id.as_uuid()),
                    item.captured.map(units),
                ],
                "order item",
            )?;
        }
        Ok(())
    }

    async fn find_order(&mut self, id: OrderId) -> StoreResult<Option<Order>> {
        find(self, id)
    }

    /// A plain read: the transaction already keeps every other writer out.
    async fn lock_order(&mut self, id: OrderId) -> StoreResult<Option<Order>> {
        find(self, id)
    }

    async fn list_orders(&mut self, filter: OrderFilter, page: &PageRequest) -> StoreResult<Page<Order>> {
        let (at, id) = codec::position_after(page);
        let limit = codec::limit_plus_one(page.limit);
        let orders = match filter {
            OrderFilter::Buyer(user) => read_orders(self, LIST_BY_BUYER, params![at, id, limit, codec::id_text(user.as_uuid())])?,
            OrderFilter::Merchant(user) => read_orders(self, LIST_BY_MERCHANT, params![at, id, limit, codec::id_text(user.as_uuid())])?,
            OrderFilter::All(filter) => read_orders(
                self,
                LIST_ALL,
                params![
                    at,
                    id,
                    limit,
                    filter.status.map(OrderStatus::as_str),
                    filter.buyer.map(|user| codec::id_text(user.as_uuid())),
                    filter.merchant.map(|user| codec::id_text(user.as_uuid())),
                    filter.currency.map(|currency| currency.code()),
                    codec::nanos_opt(filter.created.from),
                    codec::nanos_opt(filter.created.to),
                ],
            )?,
        };
        Ok(Page::from_rows(orders, page.limit, |order| Cursor::Position {
            at: order.created_at(),
            id: order.id().as_uuid(),
        }))
    }

    /// Numbered in the order given.
    async fn append_status_changes(&mut self, changes: &[StatusChange]) -> StoreResult<()> {
        for change in changes {
            self.execute(
                "INSERT INTO order_status_history (order_id, from_status, to_status, actor, reason, at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    codec::id_text(change.order_id.as_uuid()),
                    change.from.map(OrderStatus::as_str),
                    change.to.as_str(),
                    change.actor.to_string(),
                    change.reason,
                    codec::nanos(change.at),
                ],
            )?;
        }
        Ok(())
    }

    async fn list_status_changes(&mut self, order: Option<OrderId>, page: &PageRequest) -> StoreResult<Page<StatusChange>> {
        let before = codec::sequence_before(page);
        let limit = codec::limit_plus_one(page.limit);
        let rows = match order {
            Some(order) => self.query(
                "SELECT id, order_id, from_status, to_status, actor, reason, at FROM order_status_history \
                 WHERE order_id = ?3 AND id < ?1 ORDER BY id DESC LIMIT ?2",
                params![before, limit, codec::id_text(order.as_uuid())],
                status_change,
            )?,
            None => self.query(
                "SELECT id, order_id, from_status, to_status, actor, reason, at FROM order_status_history \
                 WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
                params![before, limit],
                status_change,
            )?,
        };
        Ok(Page::from_rows(rows, page.limit, |(sequence, _)| Cursor::Sequence(*sequence)).map(|(_, change)| change))
    }
}
