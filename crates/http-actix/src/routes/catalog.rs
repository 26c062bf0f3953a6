//! The catalog: public listing and details (served from the cache when enabled), and the
//! merchant's management of their products.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use application::catalog::{CatalogEntry, NewProduct, cache_keys};
use application::idempotency::StoredResponse;
use application::ports::store::UnitOfWork;
use domain::catalog::{ProductChanges, ProductSearch};
use domain::ids::{ProductId, UserId};
use serde::Deserialize;
use utoipa::IntoParams;

use super::State;
use crate::dto::{PageOf, ProductPatch, ProductRequest, ProductResponse, StockRequest, currency, positive_amount};
use crate::extract::{Authenticated, IdempotencyHeader, Json, MaybeAuthenticated, PageQuery, path_id};
use crate::problem::{ApiError, Problem};
use crate::respond::{idempotently, ok, stored};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProductQuery {
    /// Only this merchant's products.
    pub merchant_id: Option<uuid::Uuid>,
    /// Only products whose name or description holds this text, whatever its case (1 to 100
    /// characters).
    pub q: Option<String>,
    /// Items per page, 1 to 100 (default 20).
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

fn cached(bytes: Vec<u8>, hit: bool) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    response.insert_header((header::CONTENT_TYPE, HeaderValue::from_static("application/json")));
    response.insert_header(("x-cache", if hit { "hit" } else { "miss" }));
    response.body(bytes)
}

/// Active products, newest first; with `q`, those whose name or description holds it.
#[utoipa::path(get, path = "/api/v1/products", tag = "catalog",
    params(ProductQuery),
    responses(
        (status = 200, description = "A page of products", body = PageOf<ProductResponse>),
        (status = 400, description = "Bad query", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list<U: UnitOfWork>(state: State<U>, query: web::Query<ProductQuery>) -> Result<HttpResponse, ApiError> {
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor.clone(),
    }
    .page()?;
    let merchant = query.merchant_id.map(UserId::from_uuid);
    if let Some(text) = query.q.as_deref() {
        // Searches are not cached: their keys would be as many as the texts searched for.
        let search = ProductSearch::parse(text).map_err(|error| {
            ApiError::bad_request("invalid_query", error.to_string()).with_field("q", "1 to 100 characters, no control characters")
        })?;
        let products = state.app.search_products(merchant, Some(search), &page).await?;
        return Ok(ok(&PageOf::from_page(&products, |item| ProductResponse::from(item))));
    }
    let cache_key = format!(
        "m={};l={};c={}",
        merchant.map(|m| m.to_string()).unwrap_or_default(),
        page.limit,
        query.cursor.as_deref().unwrap_or("")
    );
    let prefix = cache_keys::list_prefix(&cache_key);
    let version = if state.catalog_cache {
        match state.app.cache.get_versioned(cache_keys::LIST_VERSION, &prefix).await {
            Ok((_, Some(bytes))) => return Ok(cached(bytes, true)),
            Ok((version, None)) => Some(version),
            Err(error) => {
                tracing::debug!(%error, "catalog cache unavailable; reading the database");
                None
            }
        }
    } else {
        None
    };
    let products = state.app.list_products(merchant, &page).await?;
    let body = serde_json::to_vec(&PageOf::from_page(&products, |item| ProductResponse::from(item))).unwrap_or_default();
    if let Some(version) = version {
        let ttl = state.app.settings.catalog_cache_ttl;
        if let Err(error) = state.app.cache.set(&format!("{prefix}{version}"), &body, ttl).await {
            tracing::debug!(%error, "catalog cache write failed");
        }
    }
    Ok(cached(body, false))
}

/// A product. Inactive products are only shown to their merchant and to admins.
#[utoipa::path(get, path = "/api/v1/products/{id}", tag = "catalog",
    params(("id" = uuid::Uuid, Path, description = "Product id")),
    responses(
        (status = 200, description = "The product", body = ProductResponse),
        (status = 404, description = "No such product", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn show<U: UnitOfWork>(state: State<U>, viewer: MaybeAuthenticated, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path, ProductId::parse)?;
    let (version_key, prefix) = (cache_keys::product_version(id), cache_keys::product_prefix(id));
    let version = if state.catalog_cache {
        match state.app.cache.get_versioned(&version_key, &prefix).await {
            Ok((_, Some(bytes))) => return Ok(cached(bytes, true)),
            Ok((version, None)) => Some(version),
            Err(_) => None,
        }
    } else {
        None
    };
    let entry = state.app.product(viewer.0.as_ref(), id).await?;
    let body = serde_json::to_vec(&ProductResponse::from(&entry)).unwrap_or_default();
    // Only what the public may see goes into the shared cache.
    if let (Some(version), true) = (version, entry.product.active) {
        let ttl = state.app.settings.catalog_cache_ttl;
        if let Err(error) = state.app.cache.set(&format!("{prefix}{version}"), &body, ttl).await {
            tracing::debug!(%error, "catalog cache write failed");
        }
    }
    Ok(cached(body, false))
}

fn render_product(entry: &CatalogEntry) -> StoredResponse {
    stored(
        StatusCode::CREATED,
        &ProductResponse::from(entry),
        Some(format!("/api/v1/products/{}", entry.product.id)),
    )
}

/// Puts a product on sale (merchants only).
#[utoipa::path(post, path = "/api/v1/products", tag = "catalog", security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retried request safe")),
    request_body = ProductRequest,
    responses(
        (status = 201, description = "Created", body = ProductResponse),
        (status = 403, description = "Not a merchant", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid name, price, currency or stock", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create<U: UnitOfWork>(
    state: State<U>,
    caller: Authenticated,
    req: HttpRequest,
    key: IdempotencyHeader,
    body: Json<ProductRequest>,
) -> Result<HttpResponse, ApiError> {
    let currency = currency("currency", &body.value.currency)?;
    let new = NewProduct {
        name: body.value.name.clone(),
        description: body.value.description.clone(),
        price: positive_amount("price", &body.value.price, currency)?,
        stock: body.value.stock,
    };
    let caller = caller.0;
    idempotently(&state, Some(caller.user_id), key, (&req, &body.raw), render_product, |idempotent| {
        state.app.create_product(&caller, new, idempotent)
    })
    .await
}

/// Changes a product (its merchant or an admin).
#[utoipa::path(patch, path = "/api/v1/products/{id}", tag = "catalog", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Product id")),
    request_body = ProductPatch,
    responses(
        (status = 200, description = "Updated", body = ProductResponse),
        (status = 404, description = "No such product of yours", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid field", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn update<U: UnitOfWork>(
    state: State<U>,
    caller: Authenticated,
    path: web::Path<String>,
    body: Json<ProductPatch>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path, ProductId::parse)?;
    let patch = body.value;
    let price = match &patch.price {
        Some(text) => {
            let current = state.app.product(Some(&caller.0), id).await?;
            Some(positive_amount("price", text, current.product.price.currency())?)
        }
        None => None,
    };
    let changes = ProductChanges {
        name: patch.name,
        description: patch.description,
        price,
        active: patch.active,
    };
    let entry = state.app.update_product(&caller.0, id, changes).await?;
    Ok(ok(&ProductResponse::from(&entry)))
}

/// Deletes a product: never on sale again, and gone from the API (404 from now on); the orders
/// that sold it keep their copy of its name and price. To take a product off sale for a while,
/// set `active` to false instead.
#[utoipa::path(delete, path = "/api/v1/products/{id}", tag = "catalog", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Product id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such product of yours", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete<U: UnitOfWork>(state: State<U>, caller: Authenticated, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path, ProductId::parse)?;
    state.app.delete_product(&caller.0, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Sets the units on sale (its merchant or an admin).
#[utoipa::path(patch, path = "/api/v1/products/{id}/stock", tag = "catalog", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Product id")),
    request_body = StockRequest,
    responses(
        (status = 200, description = "Updated", body = ProductResponse),
        (status = 404, description = "No such product of yours", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Negative or absurd stock", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn set_stock<U: UnitOfWork>(
    state: State<U>,
    caller: Authenticated,
    path: web::Path<String>,
    body: Json<StockRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path, ProductId::parse)?;
    let entry = state.app.set_stock(&caller.0, id, body.value.available).await?;
    Ok(ok(&ProductResponse::from(&entry)))
}

/// The caller's own products, inactive ones included.
#[utoipa::path(get, path = "/api/v1/merchant/products", tag = "catalog", security(("bearer" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "A page of products", body = PageOf<ProductResponse>),
        (status = 403, description = "Not a merchant", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn merchant_products<U: UnitOfWork>(
    state: State<U>,
    caller: Authenticated,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = state.app.merchant_products(&caller.0, &query.page()?).await?;
    Ok(ok(&PageOf::from_page(&page, |item| ProductResponse::from(item))))
}
