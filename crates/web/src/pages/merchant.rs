//! The merchant console: products and stock, adding, editing and deleting a product, sales, and
//! statements with a CSV download.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use application::auth::Caller;
use application::catalog::{CatalogEntry, CatalogError, NewProduct};
use application::idempotency::StoredResponse;
use application::pagination::PageRequest;
use application::ports::store::UnitOfWork;
use application::statements::{StatementError, StatementRequest};
use domain::catalog::{ProductChanges, ProductError};
use domain::ids::ProductId;
use domain::money::{Currency, Money};
use domain::user::Role;
use maud::{Markup, html};
use serde::Deserialize;
use time::{Date, OffsetDateTime, Time};

use super::catalog::catalog_error;
use super::orders::{order_error, table};
use super::{ListQuery, State, parse_id};
use crate::error::PageError;
use crate::form::{Form, KeyedForm};
use crate::money;
use crate::once::{self, Once};
use crate::session::Visitor;
use crate::view::{self, Errors, Field};

#[derive(Debug, Default, Deserialize)]
pub struct ProductForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    price: String,
    #[serde(default)]
    stock: String,
    /// The edit form's "on sale" box: `on` when ticked, absent otherwise.
    #[serde(default)]
    active: String,
}

fn add_form(visitor: &Visitor, currency: Currency, form: &ProductForm, errors: &Errors) -> Markup {
    html! {
        section.card aria-labelledby="add-title" {
            h2 #add-title { "Add a product" }
            (errors.summary())
            form.stack method="post" action="/merchant/products" {
                (view::csrf(visitor))
                (once::field())
                (Field::new("name", "Name").value(&form.name).render(errors))
                (Field::new("description", "Description").kind("textarea").optional().value(&form.description).render(errors))
                (Field::new("price", &format!("Price ({})", currency.code())).amount().value(&form.price).render(errors))
                (Field::new("stock", "Units in stock").kind("number").value(&form.stock).render(errors))
                button type="submit" data-busy="Adding…" { "Add product" }
            }
        }
    }
}

async fn render<U: UnitOfWork>(
    state: &State<U>,
    visitor: &Visitor,
    notice: Option<&str>,
    form: &ProductForm,
    errors: &Errors,
) -> Result<Markup, PageError> {
    let caller = visitor.require("/merchant")?;
    if caller.role != Role::Merchant {
        // The console's reads are the merchant's own: anyone else is refused as the use cases
        // refuse them (`merchant_sales`), before anything is read.
        return Err(PageError::Forbidden);
    }
    let sales = state
        .app
        .merchant_sales(&caller, &PageRequest::first(20))
        .await
        .map_err(order_error)?;
    let products = state
        .app
        .merchant_products(&caller, &PageRequest::first(100))
        .await
        .map_err(catalog_error)?;
    let waiting = application::refund_requests::RefundRequestQuery {
        order: None,
        status: Some(domain::refund_request::RefundRequestStatus::Open),
    };
    let requests = state
        .app
        .refund_requests(&caller, waiting, &PageRequest::first(50))
        .await
        .map_err(PageError::internal)?;
    let currency = state.app.settings.default_currency;
    Ok(html! {
        (view::notice(notice))
        nav.actions aria-label="Merchant" { a href="#products" { "Products" } a href="#refund-requests" { "Refund requests" } a href="#sales" { "Sales" } a href="/merchant/statement" { "Statement" } a href="/merchant/webhooks" { "Webhooks" } }
        div.columns {
            div {
                h2 #products { "Your products" }
                @if products.items.is_empty() { p { "No products yet." } }
                div.table-wrap { table {
                    thead { tr { th scope="col" { "Product" } th.num scope="col" { "Price" } th scope="col" { "Stock" } th scope="col" { "Details" } } }
                    tbody {
                        @for entry in &products.items {
                            tr {
                                td { a href={ "/products/" (entry.product.id) } { (entry.product.name) } @if !entry.product.active { " (off sale)" } }
                                td.num { (money::format(entry.product.price)) }
                                td {
                                    form.inline method="post" action={ "/merchant/products/" (entry.product.id) "/stock" } {
                                        (view::csrf(visitor))
                                        label.muted for={ "s-" (entry.product.id) } { "Available " }
                                        input id={ "s-" (entry.product.id) } type="number" name="available" min="0" value=(entry.stock.available());
                                        " "
                                        button.secondary type="submit" { "Set" }
                                    }
                                    @if entry.stock.reserved() > 0 { span.muted { " · " (entry.stock.reserved()) " reserved" } }
                                }
                                td { a href={ "/merchant/products/" (entry.product.id) } aria-label={ "Edit " (entry.product.name) } { "Edit" } }
                            }
                        }
                    }
                } }
            }
            (add_form(visitor, currency, form, errors))
        }
        h2 #refund-requests { "Refund requests waiting for you" }
        @if requests.items.is_empty() { p { "None." } } @else {
            ul {
                @for request in &requests.items {
                    li {
                        a href={ "/orders/" (request.order_id()) "#refund-requests" } { "Order #" (crate::pages::orders::short(&request.order_id().to_string())) }
                        ": " @match request.amount() { Some(amount) => (money::format(amount)), None => "everything left" }
                        " · " (request.reason()) " · " (view::when(request.created_at()))
                    }
                }
            }
        }
        h2 #sales { "Sales" }
        (table(&sales.items))
    })
}

pub async fn console<U: UnitOfWork>(state: State<U>, visitor: Visitor, query: web::Query<ListQuery>) -> Result<HttpResponse, PageError> {
    let body = render(
        &state,
        &visitor,
        query.notice.as_deref(),
        &ProductForm::default(),
        &Errors::default(),
    )
    .await?;
    Ok(view::ok(&visitor, "Merchant console", body))
}

fn product_errors(error: CatalogError) -> Result<Errors, PageError> {
    Ok(match error {
        CatalogError::Product(error) => match error {
            ProductError::Name { .. } => Errors::one("name", error.to_string()),
            ProductError::Description { .. } => Errors::one("description", error.to_string()),
            other => Errors::one("price", other.to_string()),
        },
        CatalogError::Stock(error) => Errors::one("stock", error.to_string()),
        other => return Err(catalog_error(other)),
    })
}

fn product_added(_: &CatalogEntry) -> StoredResponse {
    once::redirect("/merchant?notice=product-added".to_owned(), "")
}

pub async fn add_product<U: UnitOfWork>(
    state: State<U>,
    visitor: Visitor,
    posted: KeyedForm<ProductForm>,
) -> Result<HttpResponse, PageError> {
    let caller = visitor.require("/merchant")?;
    let form = posted.form;
    let currency = state.app.settings.default_currency;
    let mut errors = Errors::default();
    let price = Money::parse_positive(form.price.trim(), currency).map_err(|e| errors.add("price", e.to_string()));
    let stock = form
        .stock
        .trim()
        .parse::<i64>()
        .map_err(|_| errors.add("stock", "enter a whole number of units"));
    if let (Ok(price), Ok(stock)) = (price, stock) {
        let new = NewProduct {
            name: form.name.clone(),
            description: form.description.clone(),
            price,
            stock,
        };
        let ran = once::once(&state.app, &caller, posted.key, product_added, |idempotent| {
            state.app.create_product(&caller, new, idempotent)
        })
        .await?;
        match ran {
            Once::Done(_) | Once::Ran(Ok(_)) => return Ok(view::see_other("/merchant?notice=product-added")),
            Once::Ran(Err(error)) => errors = product_errors(error)?,
        }
    }
    let body = render(&state, &visitor, None, &form, &errors).await?;
    Ok(view::invalid(&visitor, "Merchant console", body))
}

/// A product the caller may change, as `update_product` decides: their own (or any, for an
/// admin), not deleted. Anyone else's is not found, as the use case says.
async fn manageable<U: UnitOfWork>(state: &State<U>, visitor: &Visitor, id: &str) -> Result<(Caller, CatalogEntry), PageError> {
    let id = parse_id(id, ProductId::parse)?;
    let caller = visitor.require(&format!("/merchant/products/{id}"))?;
    let entry = state.app.product(Some(&caller), id).await.map_err(catalog_error)?;
    if entry.product.merchant_id != caller.user_id && !caller.is_admin() {
        return Err(PageError::NotFound);
    }
    Ok((caller, entry))
}

fn edit_page(visitor: &Visitor, entry: &CatalogEntry, form: &ProductForm, errors: &Errors) -> Markup {
    let product = &entry.product;
    let action = format!("/merchant/products/{}", product.id);
    html! {
        p { a href={ "/products/" (product.id) } { "See it as buyers do" } " · " (entry.stock.available()) " in stock" }
        section.card aria-labelledby="edit-title" {
            h2 #edit-title { "Edit the product" }
            (errors.summary())
            form.stack method="post" action=(action) {
                (view::csrf(visitor))
                (Field::new("name", "Name").value(&form.name).render(errors))
                (Field::new("description", "Description").kind("textarea").optional().value(&form.description).render(errors))
                (Field::new("price", &format!("Price ({})", product.price.currency().code())).amount().value(&form.price).render(errors))
                div.field.check {
                    input #f-active type="checkbox" name="active" value="on" checked[form.active == "on"] aria-describedby="f-active-hint";
                    " "
                    label for="f-active" { "On sale" }
                    small.hint #f-active-hint { "Untick to take it off sale for now; buyers no longer see it." }
                }
                button type="submit" data-busy="Saving…" { "Save changes" }
            }
        }
        section.card aria-labelledby="delete-title" {
            h2 #delete-title { "Delete the product" }
            p { "It leaves the catalog for good; past orders keep their copy of it." }
            form method="post" action={ (action) "/delete" } data-confirm="Delete this product for good?" {
                (view::csrf(visitor))
                button.danger type="submit" { "Delete product" }
            }
        }
        p { a href="/merchant" { "← Merchant console" } }
    }
}

fn filled(entry: &CatalogEntry) -> ProductForm {
    let product = &entry.product;
    ProductForm {
        name: product.name.clone(),
        description: product.description.clone(),
        price: product.price.to_major_string(),
        stock: String::new(),
        active: if product.active { "on".to_owned() } else { String::new() },
    }
}

/// `GET /merchant/products/{id}`: the product's edit form, filled in.
pub async fn edit_product<U: UnitOfWork>(
    state: State<U>,
    visitor: Visitor,
    path: web::Path<String>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, PageError> {
    let (_, entry) = manageable(&state, &visitor, &path).await?;
    let body = html! { (view::notice(query.notice.as_deref())) (edit_page(&visitor, &entry, &filled(&entry), &Errors::default())) };
    Ok(view::ok(&visitor, &entry.product.name, body))
}

/// `POST /merchant/products/{id}`: name, description, price and whether it is on sale.
pub async fn update_product<U: UnitOfWork>(
    state: State<U>,
    visitor: Visitor,
    path: web::Path<String>,
    Form(form): Form<ProductForm>,
) -> Result<HttpResponse, PageError> {
    let (caller, entry) = manageable(&state, &visitor, &path).await?;
    let id = entry.product.id;
    let errors = match Money::parse_positive(form.price.trim(), entry.product.price.currency()) {
        Err(error) => Errors::one("price", error.to_string()),
        Ok(price) => {
            let changes = ProductChanges {
                name: Some(form.name.clone()),
                description: Some(form.description.clone()),
                price: Some(price),
                active: Some(form.active == "on"),
            };
            match state.app.update_product(&caller, id, changes).await {
                Ok(_) => return Ok(view::see_other(&format!("/merchant/products/{id}?notice=product-updated"))),
                Err(error) => product_errors(error)?,
            }
        }
    };
    Ok(view::invalid(
        &visitor,
        &entry.product.name,
        edit_page(&visitor, &entry, &form, &errors),
    ))
}

/// `POST /merchant/products/{id}/delete`: archived, off sale for good.
pub async fn delete_product<U: UnitOfWork>(
    state: State<U>,
    visitor: Visitor,
    path: web::Path<String>,
    _form: Form<Empty>,
) -> Result<HttpResponse, PageError> {
    let (caller, entry) = manageable(&state, &visitor, &path).await?;
    state.app.delete_product(&caller, entry.product.id).await.map_err(catalog_error)?;
    Ok(view::see_other("/merchant?notice=product-deleted"))
}

#[derive(Debug, Deserialize)]
pub struct Empty {}

#[derive(Debug, Deserialize)]
pub struct StockForm {
    #[serde(default)]
    available: String,
}

pub async fn set_stock<U: UnitOfWork>(
    state: State<U>,
    visitor: Visitor,
    path: web::Path<String>,
    Form(form): Form<StockForm>,
) -> Result<HttpResponse, PageError> {
    let caller = visitor.require("/merchant")?;
    let id = parse_id(&path, ProductId::parse)?;
    let message = match form.available.trim().parse::<i64>() {
        Err(_) => "enter a whole number of units".to_owned(),
        Ok(available) => match state.app.set_stock(&caller, id, available).await {
            Ok(_) => return Ok(view::see_other("/merchant?notice=stock-updated")),
            Err(CatalogError::Stock(error)) => error.to_string(),
            Err(other) => return Err(catalog_error(other)),
        },
    };
    let errors = Errors::one("", format!("Stock not changed: {message}"));
    let body = render(&state, &visitor, None, &ProductForm::default(), &errors).await?;
    Ok(view::invalid(&visitor, "Merchant console", body))
}

#[derive(Debug, Default, Deserialize)]
pub struct StatementQuery {
    from: Option<String>,
    to: Option<String>,
    format: Option<String>,
}

fn day(text: Option<&str>, default: Date) -> Result<Date, String> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(default),
        Some(text) => Date::parse(text, &format).map_err(|_| format!("“{text}” is not a date such as 2026-01-31")),
    }
}

/// A statement of a period (`from` inclusive, `to` exclusive, whole UTC days), as a page or as
/// CSV.
pub async fn statement<U: UnitOfWork>(
    state: State<U>,
    visitor: Visitor,
    query: web::Query<StatementQuery>,
) -> Result<HttpResponse, PageError> {
    let caller = visitor.require("/merchant/statement")?;
    let today = state.app.clock.now().date();
    let first = today.replace_day(1).unwrap_or(today);
    let tomorrow = today.next_day().unwrap_or(today);
    let mut errors = Errors::default();
    let from = day(query.from.as_deref(), first).map_err(|e| errors.add("from", e));
    let to = day(query.to.as_deref(), tomorrow).map_err(|e| errors.add("to", e));
    let (from_text, to_text) = (
        from.as_ref().map(ToString::to_string).unwrap_or_default(),
        to.as_ref().map(ToString::to_string).unwrap_or_default(),
    );
    let mut statement = None;
    if let (Ok(from), Ok(to)) = (from, to) {
        let request = StatementRequest {
            merchant_id: None,
            currency: state.app.settings.default_currency,
            from: OffsetDateTime::new_utc(from, Time::MIDNIGHT),
            to: OffsetDateTime::new_utc(to, Time::MIDNIGHT),
        };
        match state.app.statement(&caller, request).await {
            Ok(found) => statement = Some(found),
            Err(StatementError::Forbidden | StatementError::MerchantRequired) => return Err(PageError::Forbidden),
            Err(error @ StatementError::Period(_)) => errors.add("to", error.to_string()),
            Err(other) => return Err(PageError::internal(other)),
        }
    }
    if let (Some(statement), Some("csv")) = (&statement, query.format.as_deref()) {
        let mut csv = String::from("line,postings,amount,currency\n");
        csv.push_str(&format!(
            "opening_balance,,{},{}\n",
            statement.opening_balance().to_major_string(),
            statement.currency()
        ));
        for line in statement.lines() {
            csv.push_str(&format!(
                "{},{},{},{}\n",
                line.line.as_str(),
                line.postings,
                line.amount.to_major_string(),
                statement.currency()
            ));
        }
        csv.push_str(&format!(
            "closing_balance,,{},{}\n",
            statement.closing_balance().to_major_string(),
            statement.currency()
        ));
        return Ok(HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, "text/csv; charset=utf-8"))
            .insert_header((
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"statement-{from_text}-{to_text}.csv\""),
            ))
            .body(csv));
    }
    let body = html! {
        (errors.summary())
        form.actions method="get" action="/merchant/statement" {
            (Field::new("from", "From").kind("date").value(&from_text).render(&errors))
            (Field::new("to", "To (not included)").kind("date").value(&to_text).render(&errors))
            button type="submit" { "Show" }
        }
        @if let Some(statement) = &statement {
            div.table-wrap { table {
                thead { tr { th scope="col" { "Line" } th.num scope="col" { "Postings" } th.num scope="col" { "Amount" } } }
                tbody {
                    tr { td { "Opening balance" } td {} td.num { (money::format(statement.opening_balance())) } }
                    @for line in statement.lines() { tr { td { (line.line.as_str().replace('_', " ")) } td.num { (line.postings) } td.num { (money::format(line.amount)) } } }
                    tr { th scope="row" { "Closing balance" } td {} td.num { strong { (money::format(statement.closing_balance())) } } }
                }
            } }
            p { a.button href={ "/merchant/statement?from=" (from_text) "&to=" (to_text) "&format=csv" } download { "Download CSV" } }
        }
        p { a href="/merchant" { "← Merchant console" } }
    };
    Ok(view::ok(&visitor, "Statement", body))
}
