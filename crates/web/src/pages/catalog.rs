//! The catalog (search and pages) and a product's page.

use actix_web::{HttpResponse, web};
use application::catalog::{CatalogEntry, CatalogError};
use application::pagination::{Cursor, PageRequest};
use application::ports::store::UnitOfWork;
use domain::catalog::ProductSearch;
use domain::ids::ProductId;
use maud::{Markup, html};
use serde::Deserialize;

use super::{State, parse_id};
use crate::error::PageError;
use crate::money;
use crate::session::Visitor;
use crate::view::{self, Field};

const PAGE_SIZE: usize = 24;

#[derive(Debug, Default, Deserialize)]
pub struct CatalogQuery {
    q: Option<String>,
    cursor: Option<String>,
    notice: Option<String>,
}

pub fn catalog_error(error: CatalogError) -> PageError {
    match error {
        CatalogError::NotFound => PageError::NotFound,
        CatalogError::NotAMerchant => PageError::Forbidden,
        other => PageError::internal(other),
    }
}

fn card(entry: &CatalogEntry) -> Markup {
    let product = &entry.product;
    html! {
        li.card {
            h2 { a href={ "/products/" (product.id) } { (product.name) } }
            p.price { (money::format(product.price)) }
            p.muted {
                @if entry.stock.available() > 0 { (entry.stock.available()) " in stock" } @else { "Out of stock" }
            }
        }
    }
}

pub async fn list<U: UnitOfWork>(state: State<U>, visitor: Visitor, query: web::Query<CatalogQuery>) -> Result<HttpResponse, PageError> {
    let q = query.q.as_deref().map(str::trim).unwrap_or("");
    let page = PageRequest {
        limit: PAGE_SIZE,
        after: query.cursor.as_deref().and_then(|c| Cursor::decode(c).ok()),
    };
    let search = if q.is_empty() {
        Ok(None)
    } else {
        ProductSearch::parse(q).map(Some)
    };
    let (entries, next, refused) = match search {
        Ok(search) => {
            let listed = state.app.search_products(None, search, &page).await.map_err(catalog_error)?;
            (listed.items, listed.next_cursor.map(|c| c.encode()), None)
        }
        Err(error) => (Vec::new(), None, Some(error.to_string())),
    };
    let more = if q.is_empty() {
        "/catalog".to_owned()
    } else {
        format!("/catalog?q={}", view::url_encode(q))
    };
    let body = html! {
        (view::notice(query.notice.as_deref()))
        form.search method="get" action="/catalog" role="search" {
            label for="q" { "Search products" }
            input #q type="search" name="q" value=(q) placeholder="Search products" maxlength=(ProductSearch::CHARS_MAX)
                aria-describedby=[refused.as_ref().map(|_| "q-error")];
            button type="submit" { "Search" }
        }
        @if let Some(refused) = &refused { p #q-error .error-message { (refused) } }
        @else if entries.is_empty() {
            p { @if q.is_empty() { "Nothing is on sale yet." } @else { "No product matches “" (q) "”." } }
        }
        ul.grid { @for entry in &entries { (card(entry)) } }
        (view::next_link(&more, next))
    };
    Ok(view::ok(&visitor, "Catalog", body))
}

pub async fn show<U: UnitOfWork>(state: State<U>, visitor: Visitor, path: web::Path<String>) -> Result<HttpResponse, PageError> {
    let id = parse_id(&path, ProductId::parse)?;
    let caller = visitor.caller();
    let entry = state.app.product(caller.as_ref(), id).await.map_err(catalog_error)?;
    let product = &entry.product;
    let available = entry.stock.available();
    let body = html! {
        div.columns {
            div {
                p.price { (money::format(product.price)) }
                p { (product.description) }
                p.muted { @if available > 0 { (available) " in stock" } @else { "Out of stock" } }
                @if !product.active { p.error-message { "This product is not on sale." } }
            }
            @if available > 0 && product.active {
                form.card method="post" action="/cart/add" {
                    (view::csrf(&visitor))
                    input type="hidden" name="product_id" value=(product.id);
                    (Field::new("quantity", "Quantity").kind("number").value("1").render(&view::Errors::default()))
                    button type="submit" { "Add to cart" }
                }
            }
        }
        p { a href="/catalog" { "← Back to the catalog" } }
    };
    Ok(view::ok(&visitor, &product.name, body))
}
