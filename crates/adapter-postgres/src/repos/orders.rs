//! Orders, their items and their audit trail.
//!
//! An order and its items are written by one statement and read by one: each query returns one
//! row per item with the order's columns repeated, grouped back into orders here. A listing selects
//! its page of orders in a CTE and joins their items to it, so a page costs one round trip
//! whatever its size.

use application::pagination::{Cursor, Page, PageRequest};
use application::ports::store::{OrderFilter, OrderRepository, StoreResult};
use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use domain::catalog::Quantity;
use domain::ids::{OrderId, ProductId, UserId};
use domain::order::{Actor, CaptureMethod, Order, OrderItem, OrderRecord, OrderStatus, PaymentMethod, StatusChange};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::mapping::{corrupt, limit_plus_one, money, position_after, sequence_before, to_i32, to_u32, word};
use crate::schema::{order_items, order_status_history, orders};
use crate::sql::{Read, Write};
use crate::tx::{DomainRow, Expect, PgTx};

/// The columns of an order-with-items row, from a row source named `o` joined to `i`.
macro_rules! order_item_columns {
    () => {
        "o.id, o.buyer_id, o.currency, o.total, o.refunded, o.payment_method, o.capture_method, o.status, o.created_at, \
         o.updated_at, i.product_id, i.merchant_id, i.product_name, i.quantity, i.unit_price, i.captured_quantity"
    };
}

/// A page of orders (`page`, selected by the listing's CTE) with their items.
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

#[derive(QueryableByName)]
#[diesel(table_name = orders, check_for_backend(diesel::pg::Pg))]
struct OrderRow {
    id: Uuid,
    buyer_id: Uuid,
    currency: String,
    total: i64,
    refunded: i64,
    payment_method: String,
    capture_method: String,
    status: String,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

#[derive(QueryableByName)]
#[diesel(table_name = order_items, check_for_backend(diesel::pg::Pg))]
struct ItemRow {
    product_id: Uuid,
    merchant_id: Uuid,
    product_name: String,
    quantity: i32,
    unit_price: i64,
    captured_quantity: Option<i32>,
}

#[derive(QueryableByName)]
struct OrderItemRow {
    #[diesel(embed)]
    order: OrderRow,
    #[diesel(embed)]
    item: ItemRow,
}

impl OrderRow {
    fn into_domain(self, items: Vec<OrderItem>) -> StoreResult<Order> {
        Ok(Order::restore(OrderRecord {
            id: OrderId::from_uuid(self.id),
            buyer_id: UserId::from_uuid(self.buyer_id),
            items,
            total: money(self.total, &self.currency)?,
            refunded: money(self.refunded, &self.currency)?,
            payment_method: word("payment method", &self.payment_method, PaymentMethod::parse)?,
            capture_method: word("capture method", &self.capture_method, CaptureMethod::parse)?,
            status: word("order status", &self.status, OrderStatus::parse)?,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }))
    }
}

impl ItemRow {
    fn into_domain(self, unit_currency: &str) -> StoreResult<OrderItem> {
        Ok(OrderItem {
            product_id: ProductId::from_uuid(self.product_id),
            merchant_id: UserId::from_uuid(self.merchant_id),
            product_name: self.product_name,
            quantity: Quantity::new(i64::from(self.quantity)).map_err(corrupt)?,
            unit_price: money(self.unit_price, unit_currency)?,
            captured: self.captured_quantity.map(|units| to_u32(units, "captured quantity")).transpose()?,
        })
    }
}

/// Groups rows (ordered by order, then item position) back into orders.
fn group_orders(rows: Vec<OrderItemRow>) -> StoreResult<Vec<Order>> {
    let mut orders: Vec<(OrderRow, Vec<OrderItem>)> = Vec::new();
    for OrderItemRow { order, item } in rows {
        let item = item.into_domain(&order.currency)?;
        match orders.last_mut() {
            Some((current, items)) if current.id == order.id => items.push(item),
            _ => orders.push((order, vec![item])),
        }
    }
    orders.into_iter().map(|(order, items)| order.into_domain(items)).collect()
}

impl PgTx {
    async fn select_order(&mut self, statement: Read) -> StoreResult<Option<Order>> {
        let rows = self.read::<OrderItemRow>(statement).await?;
        Ok(group_orders(rows)?.into_iter().next())
    }

    /// A manual-capture order's row and its items' captured quantities.
    async fn update_captured_order(&mut self, order: &Order) -> StoreResult<()> {
        let captured = order
            .items()
            .iter()
            .map(|item| item.captured.map(|units| to_i32(units, "captured quantity")).transpose())
            .collect::<StoreResult<Vec<Option<i32>>>>()?;
        let row = Write::new("UPDATE orders SET status = $2, refunded = $3, updated_at = $4, total = $5 WHERE id = $1")
            .bind::<SqlUuid, _>(order.id().as_uuid())
            .bind::<Text, _>(order.status().as_str())
            .bind::<BigInt, _>(order.refunded().amount_minor())
            .bind::<Timestamptz, _>(order.updated_at())
            .bind::<BigInt, _>(order.total().amount_minor());
        self.defer(row, Expect::Rows(1, "order"))?;
        let items = Write::new(
            "UPDATE order_items i SET captured_quantity = c.captured \
             FROM unnest($2::uuid[], $3::integer[]) AS c(product_id, captured) \
             WHERE i.order_id = $1 AND i.product_id = c.product_id",
        )
        .bind::<SqlUuid, _>(order.id().as_uuid())
        .bind::<Array<SqlUuid>, _>(order.items().iter().map(|i| i.product_id.as_uuid()).collect::<Vec<_>>())
        .bind::<Array<Nullable<Integer>>, _>(captured);
        self.defer(items, Expect::Rows(order.items().len(), "order item"))
    }
}

impl OrderRepository for PgTx {
    /// The order and its items, in one statement. Items are numbered in their order, and made from
    /// the inserted order row, so a taken id is reported as `orders_pkey`.
    async fn insert_order(&mut self, order: &Order) -> StoreResult<()> {
        let quantities = order
            .items()
            .iter()
            .map(|item| to_i32(item.quantity.get(), "quantity"))
            .collect::<StoreResult<Vec<i32>>>()?;
        let statement = Write::new(
            "WITH placed AS ( \
                 INSERT INTO orders (id, buyer_id, currency, total, refunded, payment_method, status, created_at, updated_at, \
                                     capture_method) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $15) \
                 RETURNING id \
             ) \
             INSERT INTO order_items (order_id, position, product_id, merchant_id, product_name, quantity, unit_price) \
             SELECT placed.id, i.position, i.product_id, i.merchant_id, i.product_name, i.quantity, i.unit_price \
             FROM placed, unnest($10::uuid[], $11::uuid[], $12::text[], $13::integer[], $14::bigint[]) \
                  WITH ORDINALITY AS i(product_id, merchant_id, product_name, quantity, unit_price, position)",
        )
        .bind::<SqlUuid, _>(order.id().as_uuid())
        .bind::<SqlUuid, _>(order.buyer_id().as_uuid())
        .bind::<Text, _>(order.currency().code())
        .bind::<BigInt, _>(order.total().amount_minor())
        .bind::<BigInt, _>(order.refunded().amount_minor())
        .bind::<Text, _>(order.payment_method().as_str())
        .bind::<Text, _>(order.status().as_str())
        .bind::<Timestamptz, _>(order.created_at())
        .bind::<Timestamptz, _>(order.updated_at())
        .bind::<Array<SqlUuid>, _>(order.items().iter().map(|i| i.product_id.as_uuid()).collect::<Vec<_>>())
        .bind::<Array<SqlUuid>, _>(order.items().iter().map(|i| i.merchant_id.as_uuid()).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(order.items().iter().map(|i| i.product_name.clone()).collect::<Vec<_>>())
        .bind::<Array<Integer>, _>(quantities)
        .bind::<Array<BigInt>, _>(order.items().iter().map(|i| i.unit_price.amount_minor()).collect::<Vec<_>>())
        .bind::<Text, _>(order.capture_method().as_str());
        self.defer(statement, Expect::Any)
    }

    /// The status, refunded amount and time; for a manual-capture order also the total and what
    /// each item captured, which settle as its merchants capture.
    async fn update_order(&mut self, order: &Order) -> StoreResult<()> {
        if order.capture_method() == CaptureMethod::Manual {
            return self.update_captured_order(order).await;
        }
        let statement = Write::new("UPDATE orders SET status = $2, refunded = $3, updated_at = $4 WHERE id = $1")
            .bind::<SqlUuid, _>(order.id().as_uuid())
            .bind::<Text, _>(order.status().as_str())
            .bind::<BigInt, _>(order.refunded().amount_minor())
            .bind::<Timestamptz, _>(order.updated_at());
        self.defer(statement, Expect::Rows(1, "order"))
    }

    async fn find_order(&mut self, id: OrderId) -> StoreResult<Option<Order>> {
        let statement = Read::new(concat!(
            "SELECT ",
            order_item_columns!(),
            " FROM orders o JOIN order_items i ON i.order_id = o.id WHERE o.id = $1 ORDER BY i.position"
        ))
        .bind::<SqlUuid, _>(id.as_uuid());
        self.select_order(statement).await
    }

    /// Locks the order row only; items change only under it. A statement that waited for the
    /// lock sees the order row as committed since, but joins the items of its own snapshot, from
    /// before the wait: the items of a manual-capture order (which its captures change) are read
    /// again once the lock is held.
    async fn lock_order(&mut self, id: OrderId) -> StoreResult<Option<Order>> {
        let statement = Read::new(with_items!("SELECT * FROM orders WHERE id = $1 FOR NO KEY UPDATE")).bind::<SqlUuid, _>(id.as_uuid());
        match self.select_order(statement).await? {
            Some(order) if order.capture_method() == CaptureMethod::Manual => self.find_order(id).await,
            other => Ok(other),
        }
    }

    async fn list_orders(&mut self, filter: OrderFilter, page: &PageRequest) -> StoreResult<Page<Order>> {
        let (at, id) = position_after(page);
        let text = match filter {
            OrderFilter::Buyer(_) => with_items!(
                "SELECT * FROM orders WHERE buyer_id = $4 AND (created_at, id) < ($1, $2) ORDER BY created_at DESC, id DESC LIMIT $3"
            ),
            OrderFilter::Merchant(_) => with_items!(
                "SELECT * FROM orders WHERE id IN (SELECT order_id FROM order_items WHERE merchant_id = $4) \
                 AND (created_at, id) < ($1, $2) ORDER BY created_at DESC, id DESC LIMIT $3"
            ),
            OrderFilter::All(_) => with_items!(
                "SELECT * FROM orders WHERE (created_at, id) < ($1, $2) AND ($4::text IS NULL OR status = $4) \
                   AND ($5::uuid IS NULL OR buyer_id = $5) \
                   AND ($6::uuid IS NULL OR id IN (SELECT order_id FROM order_items WHERE merchant_id = $6)) \
                   AND ($7::text IS NULL OR currency = $7::currency_code) \
                   AND ($8::timestamptz IS NULL OR created_at >= $8) AND ($9::timestamptz IS NULL OR created_at < $9) \
                 ORDER BY created_at DESC, id DESC LIMIT $3"
            ),
        };
        let mut statement = Read::new(text)
            .bind::<Timestamptz, _>(at)
            .bind::<SqlUuid, _>(id)
            .bind::<BigInt, _>(limit_plus_one(page.limit));
        statement = match filter {
            OrderFilter::Buyer(user) | OrderFilter::Merchant(user) => statement.bind::<SqlUuid, _>(user.as_uuid()),
            OrderFilter::All(filter) => statement
                .bind::<Nullable<Text>, _>(filter.status.map(OrderStatus::as_str))
                .bind::<Nullable<SqlUuid>, _>(filter.buyer.map(|user| user.as_uuid()))
                .bind::<Nullable<SqlUuid>, _>(filter.merchant.map(|user| user.as_uuid()))
                .bind::<Nullable<Text>, _>(filter.currency.map(|c| c.code()))
                .bind::<Nullable<Timestamptz>, _>(filter.created.from)
                .bind::<Nullable<Timestamptz>, _>(filter.created.to),
        };
        let orders = group_orders(self.read::<OrderItemRow>(statement).await?)?;
        Ok(Page::from_rows(orders, page.limit, |order| Cursor::Position {
            at: order.created_at(),
            id: order.id().as_uuid(),
        }))
    }

    /// Numbered (`order_status_history.id`) in the order given.
    async fn append_status_changes(&mut self, changes: &[StatusChange]) -> StoreResult<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let statement = Write::new(
            "INSERT INTO order_status_history (order_id, from_status, to_status, actor, reason, at) \
             SELECT c.order_id, c.from_status, c.to_status, c.actor, c.reason, c.at \
             FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[]) \
                  WITH ORDINALITY AS c(order_id, from_status, to_status, actor, reason, at, position) \
             ORDER BY c.position",
        )
        .bind::<Array<SqlUuid>, _>(changes.iter().map(|c| c.order_id.as_uuid()).collect::<Vec<_>>())
        .bind::<Array<Nullable<Text>>, _>(changes.iter().map(|c| c.from.map(OrderStatus::as_str)).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(changes.iter().map(|c| c.to.as_str()).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(changes.iter().map(|c| c.actor.to_string()).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(changes.iter().map(|c| c.reason.clone()).collect::<Vec<_>>())
        .bind::<Array<Timestamptz>, _>(changes.iter().map(|c| c.at).collect::<Vec<_>>());
        self.defer(statement, Expect::Any)
    }

    async fn list_status_changes(&mut self, order: Option<OrderId>, page: &PageRequest) -> StoreResult<Page<StatusChange>> {
        let statement = match order {
            Some(order) => Read::new(
                "SELECT id, order_id, from_status, to_status, actor, reason, at FROM order_status_history \
                 WHERE order_id = $3 AND id < $1 ORDER BY id DESC LIMIT $2",
            )
            .bind::<BigInt, _>(sequence_before(page))
            .bind::<BigInt, _>(limit_plus_one(page.limit))
            .bind::<SqlUuid, _>(order.as_uuid()),
            None => Read::new(
                "SELECT id, order_id, from_status, to_status, actor, reason, at FROM order_status_history \
                 WHERE id < $1 ORDER BY id DESC LIMIT $2",
            )
            .bind::<BigInt, _>(sequence_before(page))
            .bind::<BigInt, _>(limit_plus_one(page.limit)),
        };
        let rows = self.select::<StatusChangeRow>(statement).await?;
        Ok(Page::from_rows(rows, page.limit, |(sequence, _)| Cursor::Sequence(*sequence)).map(|(_, change)| change))
    }
}

#[derive(QueryableByName)]
#[diesel(table_name = order_status_history, check_for_backend(diesel::pg::Pg))]
struct StatusChangeRow {
    id: i64,
    order_id: Uuid,
    from_status: Option<String>,
    to_status: String,
    actor: String,
    reason: String,
    at: OffsetDateTime,
}

impl DomainRow for StatusChangeRow {
    type Domain = (i64, StatusChange);

    fn into_domain(self) -> StoreResult<(i64, StatusChange)> {
        let from = self
            .from_status
            .map(|status| word("order status", &status, OrderStatus::parse))
            .transpose()?;
        let change = StatusChange {
            order_id: OrderId::from_uuid(self.order_id),
            from,
            to: word("order status", &self.to_status, OrderStatus::parse)?,
            actor: word("actor", &self.actor, Actor::parse)?,
            reason: self.reason,
            at: self.at,
        };
        Ok((self.id, change))
    }
}
