//! The merchant catalog: products with stock, owned by merchants, listed publicly.
//!
//! Reads of the public catalog may be served from the cache. Every write bumps the cache version
//! of what it changed *after* it commits, so a reader never sees a product older than a write that
//! finished before its read began (see `Cache::get_versioned`).

use domain::catalog::{Product, ProductChanges, ProductError, ProductSearch, Stock, StockError};
use domain::events::DomainEvent;
use domain::ids::{ProductId, UserId};
use domain::money::Money;
use domain::user::Role;
use time::OffsetDateTime;

use crate::caller::Caller;
use crate::context::App;
use crate::effects::publish;
use crate::idempotency::{IdempotencyError, Idempotent};
use crate::pagination::{Cursor, Page, PageRequest};
use crate::ports::store::{ProductFilter, ProductRepository, StoreError, UnitOfWork};
use crate::transact::{transact, transact_lagging, work};
use crate::{keyed, retryable};

/// Cache keys of the catalog, shared by the writers here and the readers in the HTTP layer.
pub mod cache_keys {
    use domain::ids::ProductId;

    /// Bumped by every write to any product: listings depend on all of them.
    pub const LIST_VERSION: &str = "catalog:list:version";

    /// The key of one product's version, bumped by every write to it.
    pub fn product_version(id: ProductId) -> String {
        format!("catalog:product:{id}:version")
    }

    /// The prefix of a product's cached entry; the version number completes it.
    pub fn product_prefix(id: ProductId) -> String {
        format!("catalog:product:{id}:v")
    }

    /// The prefix of a cached listing page; the version number completes it.
    pub fn list_prefix(query: &str) -> String {
        format!("catalog:list:{query}:v")
    }
}

/// A product together with its stock: what the catalog shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogEntry {
    /// The product.
    pub product: Product,
    /// Its stock.
    pub stock: Stock,
}

/// A product a merchant puts on sale.
#[derive(Debug, Clone)]
pub struct NewProduct {
    /// Its name, 1 to 200 characters.
    pub name: String,
    /// Its description, at most 2,000 characters.
    pub description: String,
    /// The unit price; its currency is the product's for good.
    pub price: Money,
    /// The units on sale at first.
    pub stock: i64,
}

/// Whose listing: the public one may lag behind the last commits (a read replica); a merchant's
/// own may not, since the merchant has just created or changed what it lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listing {
    Public,
    Own,
}

/// Why a catalog change fails.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The caller is not a merchant (or admin, where allowed).
    #[error("only merchants may sell products")]
    NotAMerchant,
    /// The product does not exist, or is not the caller's.
    #[error("the product does not exist")]
    NotFound,
    /// The product's fields are not acceptable.
    #[error(transparent)]
    Product(#[from] ProductError),
    /// The stock count is out of range.
    #[error(transparent)]
    Stock(#[from] StockError),
    /// The idempotency key is held by a request still running, was used for a different request, or
    /// was completed by another request meanwhile (replay its response).
    #[error(transparent)]
    Idempotency(IdempotencyError),
    /// Storage failed: an outage, a timeout, a conflict that outlasted the retries, or a commit whose
    /// outcome is unknown (`StoreError::OutcomeUnknown`).
    #[error(transparent)]
    Store(#[from] StoreError),
}

retryable!(CatalogError);
keyed!(CatalogError);

/// Whether `caller` may change `product`: its merchant, or an admin.
fn may_manage(caller: &Caller, product: &Product) -> bool {
    caller.is_admin() || product.merchant_id == caller.user_id
}

/// Locks a product the caller may change; one they may not, or one archived, does not exist.
async fn lock_manageable<Tx: ProductRepository + Send>(tx: &mut Tx, caller: &Caller, id: ProductId) -> Result<Product, CatalogError> {
    tx.lock_product(id)
        .await?
        .filter(|product| may_manage(caller, product) && !product.is_archived())
        .ok_or(CatalogError::NotFound)
}

impl<U: UnitOfWork> App<U> {
    /// Puts a product on sale, with its first stock, for the calling merchant.
    ///
    /// # Errors
    /// [`CatalogError::NotAMerchant`] for anyone but a merchant; [`CatalogError::Product`] or
    /// [`CatalogError::Stock`] for unacceptable fields.
    pub async fn create_product(
        &self,
        caller: &Caller,
        new: NewProduct,
        idempotent: Option<Idempotent<CatalogEntry>>,
    ) -> Result<CatalogEntry, CatalogError> {
        if caller.role != Role::Merchant {
            return Err(CatalogError::NotAMerchant);
        }
        let now = self.clock.now();
        let product = Product::new(self.next_id(), caller.user_id, &new.name, &new.description, new.price, now)?;
        let stock = Stock::new(product.id, new.stock)?;
        let entry = CatalogEntry { product, stock };
        let (entry_ref, key, ids) = (&entry, self.key(idempotent.as_ref()), self.ids.as_ref());
        transact(&self.store, |tx| {
            work(async move {
                key.claim(tx, now).await?;
                tx.insert_product(&entry_ref.product, &entry_ref.stock).await?;
                let created = DomainEvent::ProductCreated {
                    product_id: entry_ref.product.id,
                    merchant_id: entry_ref.product.merchant_id,
                };
                publish(tx, ids, created, now).await?;
                key.complete(tx, entry_ref, now).await?;
                Ok::<_, CatalogError>(())
            })
        })
        .await?;
        self.invalidate_catalog(&[entry.product.id]).await;
        Ok(entry)
    }

    /// Changes a product (its merchant or an admin); others get `NotFound`.
    pub async fn update_product(&self, caller: &Caller, id: ProductId, changes: ProductChanges) -> Result<CatalogEntry, CatalogError> {
        let event = DomainEvent::ProductUpdated { product_id: id };
        self.change_product(caller, id, event, move |product, at| product.update(changes.clone(), at))
            .await
    }

    /// Deletes a product: it is archived, off sale and gone from the API for good, while past
    /// orders keep their copy of it. Reserved units of pending card orders still settle.
    pub async fn delete_product(&self, caller: &Caller, id: ProductId) -> Result<(), CatalogError> {
        let event = DomainEvent::ProductArchived { product_id: id };
        self.change_product(caller, id, event, |product, at| Ok(product.archive(at)))
            .await
            .map(drop)
    }

    async fn change_product<F>(&self, caller: &Caller, id: ProductId, event: DomainEvent, change: F) -> Result<CatalogEntry, CatalogError>
    where
        F: Fn(Product, OffsetDateTime) -> Result<Product, ProductError> + Send + Sync,
    {
        let (ids, now) = (self.ids.as_ref(), self.clock.now());
        let (change, event) = (&change, &event);
        let entry = transact(&self.store, |tx| {
            work(async move {
                let product = lock_manageable(tx, caller, id).await?;
                tx.update_product(&change(product, now)?).await?;
                publish(tx, ids, event.clone(), now).await?;
                let (product, stock) = tx.find_product(id).await?.ok_or(CatalogError::NotFound)?;
                Ok::<_, CatalogError>(CatalogEntry { product, stock })
            })
        })
        .await?;
        self.invalidate_catalog(&[id]).await;
        Ok(entry)
    }

    /// Sets the number of units on sale (its merchant or an admin).
    pub async fn set_stock(&self, caller: &Caller, id: ProductId, available: i64) -> Result<CatalogEntry, CatalogError> {
        let (ids, now) = (self.ids.as_ref(), self.clock.now());
        let entry = transact(&self.store, |tx| {
            work(async move {
                let (product, _) = tx
                    .find_product(id)
                    .await?
                    .filter(|(product, _)| may_manage(caller, product) && !product.is_archived())
                    .ok_or(CatalogError::NotFound)?;
                let mut stock = tx.lock_stock(&[id]).await?.pop().ok_or(CatalogError::NotFound)?;
                stock.set_available(available)?;
                tx.update_stock(&[stock]).await?;
                publish(tx, ids, DomainEvent::StockChanged { product_id: id, available }, now).await?;
                Ok::<_, CatalogError>(CatalogEntry { product, stock })
            })
        })
        .await?;
        self.invalidate_catalog(&[id]).await;
        Ok(entry)
    }

    /// A product as the public sees it: inactive products only show to their merchant and admins.
    pub async fn product(&self, viewer: Option<&Caller>, id: ProductId) -> Result<CatalogEntry, CatalogError> {
        let found = transact(&self.store, |tx| work(tx.find_product(id))).await?;
        let (product, stock) = found.filter(|(product, _)| !product.is_archived()).ok_or(CatalogError::NotFound)?;
        let visible = product.active || viewer.is_some_and(|caller| may_manage(caller, &product));
        if !visible {
            return Err(CatalogError::NotFound);
        }
        Ok(CatalogEntry { product, stock })
    }

    /// Active products, newest first, optionally of one merchant.
    pub async fn list_products(&self, merchant: Option<UserId>, page: &PageRequest) -> Result<Page<CatalogEntry>, CatalogError> {
        self.search_products(merchant, None, page).await
    }

    /// Active products whose name or description holds `search` (all of them without one),
    /// newest first, optionally of one merchant.
    pub async fn search_products(
        &self,
        merchant: Option<UserId>,
        search: Option<ProductSearch>,
        page: &PageRequest,
    ) -> Result<Page<CatalogEntry>, CatalogError> {
        self.products_page(
            Listing::Public,
            ProductFilter {
                merchant,
                active_only: true,
                search,
            },
            page,
        )
        .await
    }

    /// All of a merchant's own products, inactive ones included (deleted ones are not).
    pub async fn merchant_products(&self, caller: &Caller, page: &PageRequest) -> Result<Page<CatalogEntry>, CatalogError> {
        if caller.role != Role::Merchant && !caller.is_admin() {
            return Err(CatalogError::NotAMerchant);
        }
        self.products_page(
            Listing::Own,
            ProductFilter {
                merchant: Some(caller.user_id),
                active_only: false,
                search: None,
            },
            page,
        )
        .await
    }

    async fn products_page(&self, listing: Listing, filter: ProductFilter, page: &PageRequest) -> Result<Page<CatalogEntry>, CatalogError> {
        let filter = &filter;
        let page = match listing {
            Listing::Public => transact_lagging(&self.store, |tx| work(tx.list_products(filter.clone(), page))).await?,
            Listing::Own => transact(&self.store, |tx| work(tx.list_products(filter.clone(), page))).await?,
        };
        Ok(page.map(|(product, stock)| CatalogEntry { product, stock }))
    }

    /// Bumps the cache versions of changed products and of every listing. A failure is logged, not
    /// returned: the write itself succeeded, and entries expire after the cache TTL anyway.
    pub(crate) async fn invalidate_catalog(&self, ids: &[ProductId]) {
        let mut keys: Vec<String> = ids.iter().map(|id| cache_keys::product_version(*id)).collect();
        keys.push(cache_keys::LIST_VERSION.to_owned());
        if let Err(error) = self.cache.increment_all(&keys).await {
            tracing::warn!(%error, "catalog cache invalidation failed");
        }
    }
}

/// The cursor of a catalog listing.
pub fn product_cursor(entry: &(Product, Stock)) -> Cursor {
    Cursor::Position {
        at: entry.0.created_at,
        id: entry.0.id.as_uuid(),
    }
}
