//! Products and their stock (`ProductRepository`).
//!
//! Stock has a table of its own, as in the PostgreSQL store: checkouts change only `stock` rows,
//! catalog edits only `products` rows. Here that keeps the two shapes of write apart rather than
//! their locks (a transaction holds the whole database), and the tables stay the same as there.
//!
//! A search matches with the domain's own rule (`ProductSearch::matches`: any case, Unicode
//! included), applied to the listing's rows in Rust. SQLite's `LIKE` and `lower` fold ASCII only,
//! so a query could not tell that "MÜG" holds "müg"; reading the listing in batches until the page
//! is full costs a scan of the catalog per search, as an unindexed `ILIKE` does in PostgreSQL.

use std::collections::{HashMap, HashSet};

use application::pagination::{Cursor, Page, PageRequest};
use application::ports::store::{InventoryFilter, ProductFilter, ProductRepository, StoreError, StoreResult};
use domain::catalog::{Product, Stock};
use domain::ids::{ProductId, UserId};
use rusqlite::{Row, params};
use uuid::Uuid;

use crate::SqliteTx;
use crate::codec;

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS products (
    id          TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL REFERENCES users (id),
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    currency    TEXT NOT NULL CHECK (currency GLOB '[A-Z][A-Z][A-Z]'),
    price       INTEGER NOT NULL CHECK (price > 0),
    active      INTEGER NOT NULL CHECK (active IN (0, 1)),
    archived_at INTEGER,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;

-- Listings are newest first by (created_at, id), resumed after a cursor.
CREATE INDEX IF NOT EXISTS products_newest ON products (created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS products_by_merchant ON products (merchant_id, created_at DESC, id DESC);

CREATE TABLE IF NOT EXISTS stock (
    product_id TEXT PRIMARY KEY REFERENCES products (id),
    available  INTEGER NOT NULL,
    reserved   INTEGER NOT NULL,
    CONSTRAINT stock_available_not_negative CHECK (available >= 0),
    CONSTRAINT stock_reserved_not_negative CHECK (reserved >= 0)
) STRICT;
";

/// The name PostgreSQL gives a taken product id, reported the same way here.
const PRODUCTS_PKEY: &str = "products_pkey";

/// The columns `product_with_stock` reads, from `products p` joined to `stock s`.
macro_rules! product_columns {
    () => {
        "p.id, p.merchant_id, p.name, p.description, p.currency, p.price, p.active, p.archived_at, p.created_at, p.updated_at, \
         s.product_id, s.available, s.reserved"
    };
}

/// The products on sale or paused (never archived ones), newest first after `(?1, ?2)`; `?4`
/// keeps only active ones when true.
const LIST: &str = concat!(
    "SELECT ",
    product_columns!(),
    " FROM products p JOIN stock s ON s.product_id = p.id \
     WHERE p.archived_at IS NULL AND (p.active OR NOT ?4) AND (p.created_at, p.id) < (?1, ?2) \
     ORDER BY p.created_at DESC, p.id DESC LIMIT ?3"
);

/// As `LIST`, for one merchant (`?5`), read from that merchant's index.
const LIST_MERCHANT: &str = concat!(
    "SELECT ",
    product_columns!(),
    " FROM products p JOIN stock s ON s.product_id = p.id \
     WHERE p.merchant_id = ?5 AND p.archived_at IS NULL AND (p.active OR NOT ?4) AND (p.created_at, p.id) < (?1, ?2) \
     ORDER BY p.created_at DESC, p.id DESC LIMIT ?3"
);

/// The admins' inventory: archived products too, every filter optional.
const LIST_INVENTORY: &str = concat!(
    "SELECT ",
    product_columns!(),
    " FROM products p JOIN stock s ON s.product_id = p.id \
     WHERE (p.created_at, p.id) < (?1, ?2) AND (?4 IS NULL OR p.merchant_id = ?4) \
       AND (?5 IS NULL OR p.active = ?5) AND (?6 IS NULL OR s.available < ?6) \
     ORDER BY p.created_at DESC, p.id DESC LIMIT ?3"
);

/// How many listing rows a search reads at a time while it fills its page.
const SEARCH_BATCH: usize = 200;

/// A product from columns 0 to 9 of `product_columns!`.
fn product(row: &Row<'_>) -> StoreResult<Product> {
    let currency: String = codec::get(row, 4)?;
    Ok(Product {
        id: ProductId::from_uuid(codec::uuid(row, 0)?),
        merchant_id: UserId::from_uuid(codec::uuid(row, 1)?),
        name: codec::get(row, 2)?,
        description: codec::get(row, 3)?,
        price: codec::money(codec::get(row, 5)?, &currency)?,
        active: codec::get(row, 6)?,
        archived_at: codec::instant_opt(row, 7)?,
        created_at: codec::instant(row, 8)?,
        updated_at: codec::instant(row, 9)?,
    })
}

/// A stock row from three columns starting at `first`: product id, available, reserved.
fn stock(row: &Row<'_>, first: usize) -> StoreResult<Stock> {
    let product_id = ProductId::from_uuid(codec::uuid(row, first)?);
    Stock::restore(product_id, codec::get(row, first + 1)?, codec::get(row, first + 2)?).map_err(codec::corrupt)
}

fn product_with_stock(row: &Row<'_>) -> StoreResult<(Product, Stock)> {
    Ok((product(row)?, stock(row, 10)?))
}

/// Ids once each, in ascending order (the lock order the port describes), as a JSON list.
fn sorted_id_list(ids: &[ProductId]) -> Option<String> {
    let mut sorted: Vec<Uuid> = ids.iter().map(ProductId::as_uuid).collect();
    sorted.sort_unstable();
    sorted.dedup();
    (!sorted.is_empty()).then(|| codec::id_list(sorted))
}

fn page_of(rows: Vec<(Product, Stock)>, limit: usize) -> Page<(Product, Stock)> {
    Page::from_rows(rows, limit, |(product, _)| Cursor::Position {
        at: product.created_at,
        id: product.id.as_uuid(),
    })
}

/// Up to `limit` rows of a product listing, newest first after `(at, id)`.
fn product_listing(tx: &mut SqliteTx, filter: &ProductFilter, (at, id): (i64, &str), limit: i64) -> StoreResult<Vec<(Product, Stock)>> {
    match filter.merchant {
        Some(merchant) => tx.query(
            LIST_MERCHANT,
            params![at, id, limit, filter.active_only, codec::id_text(merchant.as_uuid())],
            product_with_stock,
        ),
        None => tx.query(LIST, params![at, id, limit, filter.active_only], product_with_stock),
    }
}

impl ProductRepository for SqliteTx {
    /// The product, then its stock row. A taken id is reported as PostgreSQL names it.
    async fn insert_product(&mut self, product: &Product, stock: &Stock) -> StoreResult<()> {
        let inserted = self.execute(
            "INSERT INTO products (id, merchant_id, name, description, currency, price, active, archived_at, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (id) DO NOTHING",
            params![
                codec::id_text(product.id.as_uuid()),
                codec::id_text(product.merchant_id.as_uuid()),
                product.name,
                product.description,
                product.price.currency().code(),
                product.price.amount_minor(),
                product.active,
                codec::nanos_opt(product.archived_at),
                codec::nanos(product.created_at),
                codec::nanos(product.updated_at),
            ],
        )?;
        if inserted == 0 {
            return Err(StoreError::Duplicate(PRODUCTS_PKEY.to_owned()));
        }
        self.execute(
            "INSERT INTO stock (product_id, available, reserved) VALUES (?1, ?2, ?3)",
            params![codec::id_text(product.id.as_uuid()), stock.available(), stock.reserved()],
        )
        .map(|_| ())
    }

    async fn update_product(&mut self, product: &Product) -> StoreResult<()> {
        self.execute_one(
            "UPDATE products SET name = ?2, description = ?3, currency = ?4, price = ?5, active = ?6, archived_at = ?7, \
                 updated_at = ?8 \
             WHERE id = ?1",
            params![
                codec::id_text(product.id.as_uuid()),
                product.name,
                product.description,
                product.price.currency().code(),
                product.price.amount_minor(),
                product.active,
                codec::nanos_opt(product.archived_at),
                codec::nanos(product.updated_at),
            ],
            "product",
        )
    }

    async fn find_product(&mut self, id: ProductId) -> StoreResult<Option<(Product, Stock)>> {
        self.query_opt(
            concat!(
                "SELECT ",
                product_columns!(),
                " FROM products p JOIN stock s ON s.product_id = p.id WHERE p.id = ?1"
            ),
            params![codec::id_text(id.as_uuid())],
            product_with_stock,
        )
    }

    /// A plain read: the transaction already keeps every other writer out.
    async fn lock_product(&mut self, id: ProductId) -> StoreResult<Option<Product>> {
        self.query_opt(
            "SELECT id, merchant_id, name, description, currency, price, active, archived_at, created_at, updated_at \
             FROM products WHERE id = ?1",
            params![codec::id_text(id.as_uuid())],
            product,
        )
    }

    /// In the order of `ids`, leaving out unknown ones.
    async fn find_products(&mut self, ids: &[ProductId]) -> StoreResult<Vec<Product>> {
        let Some(list) = sorted_id_list(ids) else {
            return Ok(Vec::new());
        };
        let found: HashMap<ProductId, Product> = self
            .query(
                "SELECT id, merchant_id, name, description, currency, price, active, archived_at, created_at, updated_at \
                 FROM products WHERE id IN (SELECT value FROM json_each(?1))",
                params![list],
                product,
            )?
            .into_iter()
            .map(|product| (product.id, product))
            .collect();
        Ok(ids.iter().filter_map(|id| found.get(id).cloned()).collect())
    }

    async fn list_products(&mut self, filter: ProductFilter, page: &PageRequest) -> StoreResult<Page<(Product, Stock)>> {
        let (mut at, mut id) = codec::position_after(page);
        let Some(search) = &filter.search else {
            let rows = product_listing(self, &filter, (at, &id), codec::limit_plus_one(page.limit))?;
            return Ok(page_of(rows, page.limit));
        };
        // The listing's rows, a batch at a time, until `limit + 1` match or none are left.
        let wanted = page.limit.saturating_add(1);
        let mut found = Vec::new();
        loop {
            let batch = product_listing(self, &filter, (at, &id), codec::limit(SEARCH_BATCH))?;
            let exhausted = batch.len() < SEARCH_BATCH;
            if let Some((last, _)) = batch.last() {
                (at, id) = (codec::nanos(last.created_at), codec::id_text(last.id.as_uuid()));
            }
            found.extend(batch.into_iter().filter(|(product, _)| search.matches(product)));
            if exhausted || found.len() >= wanted {
                return Ok(page_of(found, page.limit));
            }
        }
    }

    async fn list_inventory(&mut self, filter: InventoryFilter, page: &PageRequest) -> StoreResult<Page<(Product, Stock)>> {
        let (at, id) = codec::position_after(page);
        let rows = self.query(
            LIST_INVENTORY,
            params![
                at,
                id,
                codec::limit_plus_one(page.limit),
                filter.merchant.map(|merchant| codec::id_text(merchant.as_uuid())),
                filter.active,
                filter.below,
            ],
            product_with_stock,
        )?;
        Ok(page_of(rows, page.limit))
    }

    /// In ascending product id order; a plain read, as for `lock_product`.
    async fn lock_cart(&mut self, ids: &[ProductId]) -> StoreResult<Vec<(Stock, Product)>> {
        let Some(list) = sorted_id_list(ids) else {
            return Ok(Vec::new());
        };
        self.query(
            concat!(
                "SELECT ",
                product_columns!(),
                " FROM stock s JOIN products p ON p.id = s.product_id \
                 WHERE s.product_id IN (SELECT value FROM json_each(?1)) ORDER BY s.product_id"
            ),
            params![list],
            |row| product_with_stock(row).map(|(product, stock)| (stock, product)),
        )
    }

    async fn lock_stock(&mut self, ids: &[ProductId]) -> StoreResult<Vec<Stock>> {
        let Some(list) = sorted_id_list(ids) else {
            return Ok(Vec::new());
        };
        self.query(
            "SELECT product_id, available, reserved FROM stock \
             WHERE product_id IN (SELECT value FROM json_each(?1)) ORDER BY product_id",
            params![list],
            |row| stock(row, 0),
        )
    }

    /// A product given more than once is written as last given.
    async fn update_stock(&mut self, stock: &[Stock]) -> StoreResult<()> {
        let mut seen = HashSet::new();
        for row in stock.iter().rev().filter(|row| seen.insert(row.product_id)) {
            self.execute_one(
                "UPDATE stock SET available = ?2, reserved = ?3 WHERE product_id = ?1",
                params![codec::id_text(row.product_id.as_uuid()), row.available(), row.reserved()],
                "stock row",
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use application::ports::store::{Transaction, UnitOfWork, UserRepository};
    use domain::catalog::ProductSearch;
    use domain::user::Role;
    use repository_contract::fixtures::{id, now, usd, user};
    use time::Duration;

    use super::*;
    use crate::SqliteStore;

    #[tokio::test]
    async fn a_search_reads_past_its_first_batch_and_folds_any_case() {
        let store = SqliteStore::in_memory().expect("store");
        let ann = user(Role::Merchant);
        let mut tx = store.begin().await.expect("begin");
        tx.insert_user(&ann).await.expect("ann");
        // The match is the oldest product, behind more than one batch of newer ones.
        let catalog = (0..=SEARCH_BATCH).map(|n| {
            let (name, seconds) = if n == 0 {
                ("Blue MÜG", 0)
            } else {
                ("Kettle", i64::try_from(n).expect("n"))
            };
            Product::new(id(), ann.id, name, "Boils water", usd(100), now() + Duration::seconds(seconds)).expect("product")
        });
        for product in catalog {
            let stock = Stock::new(product.id, 1).expect("stock");
            tx.insert_product(&product, &stock).await.expect("insert");
        }
        let filter = ProductFilter {
            search: Some(ProductSearch::parse("müg").expect("search")),
            ..ProductFilter::default()
        };
        let found = tx.list_products(filter, &PageRequest::first(1)).await.expect("search");
        let names: Vec<&str> = found.items.iter().map(|(product, _)| product.name.as_str()).collect();
        assert_eq!((names, found.next_cursor), (vec!["Blue MÜG"], None));
        tx.rollback().await.expect("rollback");
    }
}
