//! Products and their stock.
//!
//! Stock is its own table (see the migration): checkouts lock and update `stock` rows only, in
//! product-id order, while catalog edits lock `products` rows.

use std::collections::{HashMap, HashSet};

use application::pagination::{Cursor, Page, PageRequest};
use application::ports::store::{InventoryFilter, LockedCart, ProductFilter, ProductRepository, StoreResult};
use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use domain::catalog::{Product, Stock};
use domain::ids::{ProductId, UserId};
use time::OffsetDateTime;
use uuid::Uuid;

use super::wallets::{WalletRow, lock_purchase_wallets};
use crate::mapping::{corrupt, limit_plus_one, money, position_after};
use crate::schema::{products, stock};
use crate::sql::{Read, Write};
use crate::tx::{DomainRow, Expect, PgTx};

macro_rules! product_columns {
    () => {
        "p.id, p.merchant_id, p.name, p.description, p.currency, p.price, p.active, p.archived_at, p.created_at, p.updated_at"
    };
}

#[derive(QueryableByName)]
#[diesel(table_name = products, check_for_backend(diesel::pg::Pg))]
struct ProductRow {
    id: Uuid,
    merchant_id: Uuid,
    name: String,
    description: String,
    currency: String,
    price: i64,
    active: bool,
    archived_at: Option<OffsetDateTime>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl DomainRow for ProductRow {
    type Domain = Product;

    fn into_domain(self) -> StoreResult<Product> {
        Ok(Product {
            id: ProductId::from_uuid(self.id),
            merchant_id: UserId::from_uuid(self.merchant_id),
            name: self.name,
            description: self.description,
            price: money(self.price, &self.currency)?,
            active: self.active,
            archived_at: self.archived_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

#[derive(QueryableByName)]
#[diesel(table_name = stock, check_for_backend(diesel::pg::Pg))]
struct StockRow {
    product_id: Uuid,
    available: i64,
    reserved: i64,
}

impl DomainRow for StockRow {
    type Domain = Stock;

    fn into_domain(self) -> StoreResult<Stock> {
        Stock::restore(ProductId::from_uuid(self.product_id), self.available, self.reserved).map_err(corrupt)
    }
}

#[derive(QueryableByName)]
struct EntryRow {
    #[diesel(embed)]
    product: ProductRow,
    #[diesel(embed)]
    stock: StockRow,
}

impl DomainRow for EntryRow {
    type Domain = (Product, Stock);

    fn into_domain(self) -> StoreResult<(Product, Stock)> {
        Ok((self.product.into_domain()?, self.stock.into_domain()?))
    }
}

/// The three shapes of a listing, each with an index that yields its rows newest first: the
/// cursor condition and the order are the same, only the filter differs.
const LIST_ALL: &str = concat!(
    "SELECT ",
    product_columns!(),
    ", s.product_id, s.available, s.reserved FROM products p JOIN stock s ON s.product_id = p.id \
     WHERE p.archived_at IS NULL AND (p.created_at, p.id) < ($1, $2) ORDER BY p.created_at DESC, p.id DESC LIMIT $3"
);
const LIST_ACTIVE: &str = concat!(
    "SELECT ",
    product_columns!(),
    ", s.product_id, s.available, s.reserved FROM products p JOIN stock s ON s.product_id = p.id \
     WHERE p.active AND (p.created_at, p.id) < ($1, $2) ORDER BY p.created_at DESC, p.id DESC LIMIT $3"
);
/// A search: the name or description holds the text (`$4`, a `LIKE` pattern), whatever its case.
/// Without an index this reads every product of the listing; fine for a catalog of thousands, and
/// what a trigram index (`pg_trgm`) would speed up when one of millions needs it.
const LIST_SEARCH: &str = concat!(
    "SELECT ",
    product_columns!(),
    ", s.product_id, s.available, s.reserved FROM products p JOIN stock s ON s.product_id = p.id \
     WHERE p.archived_at IS NULL AND (p.active OR NOT $6) AND ($5::uuid IS NULL OR p.merchant_id = $5) \
       AND (p.name ILIKE $4 ESCAPE '\\' OR p.description ILIKE $4 ESCAPE '\\') \
       AND (p.created_at, p.id) < ($1, $2) ORDER BY p.created_at DESC, p.id DESC LIMIT $3"
);

/// `text` as a `LIKE` pattern that finds it anywhere, its own `%`, `_` and `\` taken literally.
fn like_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

const LIST_MERCHANT: &str = concat!(
    "SELECT ",
    product_columns!(),
    ", s.product_id, s.available, s.reserved FROM products p JOIN stock s ON s.product_id = p.id \
     WHERE p.merchant_id = $4 AND p.archived_at IS NULL AND (p.active OR NOT $5) AND (p.created_at, p.id) < ($1, $2) \
     ORDER BY p.created_at DESC, p.id DESC LIMIT $3"
);

/// The admins' inventory: archived products too.
const LIST_INVENTORY: &str = concat!(
    "SELECT ",
    product_columns!(),
    ", s.product_id, s.available, s.reserved FROM products p JOIN stock s ON s.product_id = p.id \
     WHERE (p.created_at, p.id) < ($1, $2) AND ($4::uuid IS NULL OR p.merchant_id = $4) \
       AND ($5::boolean IS NULL OR p.active = $5) AND ($6::bigint IS NULL OR s.available < $6) \
     ORDER BY p.created_at DESC, p.id DESC LIMIT $3"
);

impl ProductRepository for PgTx {
    /// The product and its stock row, in one statement. The stock row is made from the inserted
    /// product, so a taken id is reported as `products_pkey`, the product's constraint.
    async fn insert_product(&mut self, product: &Product, stock: &Stock) -> StoreResult<()> {
        let statement = Write::new(
            "WITH product AS ( \
                 INSERT INTO products (id, merchant_id, name, description, currency, price, active, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 RETURNING id \
             ) \
             INSERT INTO stock (product_id, available, reserved) SELECT id, $10, $11 FROM product",
        )
        .bind::<SqlUuid, _>(product.id.as_uuid())
        .bind::<SqlUuid, _>(product.merchant_id.as_uuid())
        .bind::<Text, _>(product.name.as_str())
        .bind::<Text, _>(product.description.as_str())
        .bind::<Text, _>(product.price.currency().code())
        .bind::<BigInt, _>(product.price.amount_minor())
        .bind::<Bool, _>(product.active)
        .bind::<Timestamptz, _>(product.created_at)
        .bind::<Timestamptz, _>(product.updated_at)
        .bind::<BigInt, _>(stock.available())
        .bind::<BigInt, _>(stock.reserved());
        self.execute(statement).await.map(|_| ())
    }

    async fn update_product(&mut self, product: &Product) -> StoreResult<()> {
        let statement = Write::new(
            "UPDATE products SET name = $2, description = $3, currency = $4, price = $5, active = $6, archived_at = $7, \
                 updated_at = $8 \
             WHERE id = $1",
        )
        .bind::<SqlUuid, _>(product.id.as_uuid())
        .bind::<Text, _>(product.name.clone())
        .bind::<Text, _>(product.description.clone())
        .bind::<Text, _>(product.price.currency().code())
        .bind::<BigInt, _>(product.price.amount_minor())
        .bind::<Bool, _>(product.active)
        .bind::<Nullable<Timestamptz>, _>(product.archived_at)
        .bind::<Timestamptz, _>(product.updated_at);
        self.defer(statement, Expect::Rows(1, "product"))
    }

    async fn find_product(&mut self, id: ProductId) -> StoreResult<Option<(Product, Stock)>> {
        let statement = Read::new(concat!(
            "SELECT ",
            product_columns!(),
            ", s.product_id, s.available, s.reserved FROM products p JOIN stock s ON s.product_id = p.id WHERE p.id = $1"
        ))
        .bind::<SqlUuid, _>(id.as_uuid());
        self.select_first::<EntryRow>(statement).await
    }

    async fn lock_product(&mut self, id: ProductId) -> StoreResult<Option<Product>> {
        let statement = Read::new(concat!(
            "SELECT ",
            product_columns!(),
            " FROM products p WHERE p.id = $1 FOR NO KEY UPDATE"
        ))
        .bind::<SqlUuid, _>(id.as_uuid());
        self.select_first::<ProductRow>(statement).await
    }

    /// In the order of `ids`, leaving out unknown ones.
    async fn find_products(&mut self, ids: &[ProductId]) -> StoreResult<Vec<Product>> {
        let distinct: Vec<Uuid> = ids.iter().map(ProductId::as_uuid).collect::<HashSet<_>>().into_iter().collect();
        if distinct.is_empty() {
            return Ok(Vec::new());
        }
        let statement =
            Read::new(concat!("SELECT ", product_columns!(), " FROM products p WHERE p.id = ANY($1)")).bind::<Array<SqlUuid>, _>(distinct);
        let mut found: HashMap<ProductId, Product> = HashMap::new();
        for row in self.read::<ProductRow>(statement).await? {
            let product = row.into_domain()?;
            found.insert(product.id, product);
        }
        Ok(ids.iter().filter_map(|id| found.get(id).cloned()).collect())
    }

    async fn list_products(&mut self, filter: ProductFilter, page: &PageRequest) -> StoreResult<Page<(Product, Stock)>> {
        let (at, id) = position_after(page);
        if let Some(search) = &filter.search {
            let statement = Read::new(LIST_SEARCH)
                .bind::<Timestamptz, _>(at)
                .bind::<SqlUuid, _>(id)
                .bind::<BigInt, _>(limit_plus_one(page.limit))
                .bind::<Text, _>(like_pattern(search.as_str()))
                .bind::<Nullable<SqlUuid>, _>(filter.merchant.map(|merchant| merchant.as_uuid()))
                .bind::<Bool, _>(filter.active_only);
            let rows = self.select::<EntryRow>(statement).await?;
            return Ok(Page::from_rows(rows, page.limit, |(product, _)| Cursor::Position {
                at: product.created_at,
                id: product.id.as_uuid(),
            }));
        }
        let text = match (filter.merchant, filter.active_only) {
            (Some(_), _) => LIST_MERCHANT,
            (None, true) => LIST_ACTIVE,
            (None, false) => LIST_ALL,
        };
        let mut statement = Read::new(text)
            .bind::<Timestamptz, _>(at)
            .bind::<SqlUuid, _>(id)
            .bind::<BigInt, _>(limit_plus_one(page.limit));
        if let Some(merchant) = filter.merchant {
            statement = statement.bind::<SqlUuid, _>(merchant.as_uuid()).bind::<Bool, _>(filter.active_only);
        }
        let rows = self.select::<EntryRow>(statement).await?;
        Ok(Page::from_rows(rows, page.limit, |(product, _)| Cursor::Position {
            at: product.created_at,
            id: product.id.as_uuid(),
        }))
    }

    async fn list_inventory(&mut self, filter: InventoryFilter, page: &PageRequest) -> StoreResult<Page<(Product, Stock)>> {
        let (at, id) = position_after(page);
        let statement = Read::new(LIST_INVENTORY)
            .bind::<Timestamptz, _>(at)
            .bind::<SqlUuid, _>(id)
            .bind::<BigInt, _>(limit_plus_one(page.limit))
            .bind::<Nullable<SqlUuid>, _>(filter.merchant.map(|merchant| merchant.as_uuid()))
            .bind::<Nullable<Bool>, _>(filter.active)
            .bind::<Nullable<BigInt>, _>(filter.below);
        let rows = self.select::<EntryRow>(statement).await?;
        Ok(Page::from_rows(rows, page.limit, |(product, _)| Cursor::Position {
            at: product.created_at,
            id: product.id.as_uuid(),
        }))
    }

    /// Locked in ascending product id order (see `lock_wallets`); missing products are left out.
    async fn lock_cart(&mut self, ids: &[ProductId]) -> StoreResult<Vec<(Stock, Product)>> {
        let sorted = sorted_ids(ids);
        if sorted.is_empty() {
            return Ok(Vec::new());
        }
        self.pass_stock_gates(&sorted).await?;
        self.read::<EntryRow>(lock_cart(sorted))
            .await?
            .into_iter()
            .map(cart_entry)
            .collect()
    }

    /// The two statements travel in one pipeline: the stock rows are locked first, then the
    /// wallets, which is the lock order, and a purchase spends one round trip fewer holding the
    /// cart's rows (a flash sale's hot stock row).
    async fn lock_cart_and_wallets(&mut self, ids: &[ProductId], buyer: UserId) -> StoreResult<LockedCart> {
        let sorted = sorted_ids(ids);
        if sorted.is_empty() {
            return Ok(LockedCart {
                entries: Vec::new(),
                wallets: Vec::new(),
            });
        }
        self.pass_stock_gates(&sorted).await?;
        let wallets = lock_purchase_wallets(sorted.clone(), buyer);
        let (entries, wallets) = self.read_pair::<EntryRow, WalletRow>(lock_cart(sorted), wallets).await?;
        Ok(LockedCart {
            entries: entries.into_iter().map(cart_entry).collect::<StoreResult<_>>()?,
            wallets: wallets.into_iter().map(WalletRow::into_domain).collect::<StoreResult<_>>()?,
        })
    }

    async fn lock_stock(&mut self, ids: &[ProductId]) -> StoreResult<Vec<Stock>> {
        let sorted = sorted_ids(ids);
        if sorted.is_empty() {
            return Ok(Vec::new());
        }
        self.pass_stock_gates(&sorted).await?;
        let statement =
            Read::new("SELECT product_id, available, reserved FROM stock WHERE product_id = ANY($1) ORDER BY product_id FOR NO KEY UPDATE")
                .bind::<Array<SqlUuid>, _>(sorted);
        self.select::<StockRow>(statement).await
    }

    async fn update_stock(&mut self, stock: &[Stock]) -> StoreResult<()> {
        let mut seen = HashSet::new();
        let latest: Vec<&Stock> = stock.iter().rev().filter(|s| seen.insert(s.product_id)).collect();
        if latest.is_empty() {
            return Ok(());
        }
        // `= ANY($1)` as in `update_wallets`: the stock rows by their key, whatever the plan.
        let statement = Write::new(
            "UPDATE stock AS s SET available = v.available, reserved = v.reserved \
             FROM unnest($1::uuid[], $2::bigint[], $3::bigint[]) AS v(product_id, available, reserved) \
             WHERE s.product_id = v.product_id AND s.product_id = ANY($1)",
        )
        .bind::<Array<SqlUuid>, _>(latest.iter().map(|s| s.product_id.as_uuid()).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(latest.iter().map(|s| s.available()).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(latest.iter().map(|s| s.reserved()).collect::<Vec<_>>());
        self.defer(statement, Expect::Rows(latest.len(), "stock row"))
    }
}

/// Product ids in ascending order, each once: the order their stock rows are locked in.
fn sorted_ids(ids: &[ProductId]) -> Vec<Uuid> {
    let mut sorted: Vec<Uuid> = ids.iter().map(ProductId::as_uuid).collect();
    sorted.sort();
    sorted.dedup();
    sorted
}

/// Locks the stock rows of these products (sorted ids), each read with its product. Only the
/// stock rows are locked: the products are read as they are (a price change committed meanwhile
/// is simply the price of this order). Each product is read by its key for its stock row
/// (`OFFSET 0` keeps the lateral subquery a nested loop): a generic plan made while the catalogue
/// was small would otherwise scan the products table for every purchase for as long as the
/// connection lives, however large the table has grown.
fn lock_cart(sorted: Vec<Uuid>) -> Read {
    Read::new(concat!(
        "SELECT ",
        product_columns!(),
        ", s.product_id, s.available, s.reserved FROM stock s \
         CROSS JOIN LATERAL (SELECT * FROM products WHERE products.id = s.product_id OFFSET 0) p \
         WHERE s.product_id = ANY($1) ORDER BY s.product_id FOR NO KEY UPDATE OF s"
    ))
    .bind::<Array<SqlUuid>, _>(sorted)
}

fn cart_entry(row: EntryRow) -> StoreResult<(Stock, Product)> {
    row.into_domain().map(|(product, stock)| (stock, product))
}
