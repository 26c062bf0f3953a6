//! The cart (kept in a cookie: product ids and quantities, nothing else) and checkout, by wallet
//! at once or by card on the provider's page, after which the provider sends the buyer back to
//! `/checkout/complete` and this site takes them to their order.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use application::catalog::CatalogEntry;
use application::checkout::{Checkout, CheckoutCommand, CheckoutError};
use application::idempotency::StoredResponse;
use application::ports::store::UnitOfWork;
use domain::catalog::Quantity;
use domain::ids::ProductId;
use domain::money::Money;
use domain::order::{CaptureMethod, Order, PaymentMethod};
use maud::{Markup, html};
use serde::Deserialize;

use super::State;
use crate::error::PageError;
use crate::form::{Form, KeyedForm};
use crate::money;
use crate::once::{self, Once};
use crate::session::{self, CART_COOKIE, RETURN_COOKIE, Visitor};
use crate::view::{self, Errors};

/// The most lines a cart holds: an order's own limit.
const LINES_MAX: usize = Order::ITEMS_MAX;
const QUANTITY_MAX: i64 = 99;

/// The cart from its cookie; whatever does not parse is dropped.
fn read(req: &HttpRequest) -> Vec<(ProductId, i64)> {
    let Some(text) = session::cookie(req, CART_COOKIE) else {
        return Vec::new();
    };
    text.split('.')
        .filter_map(|line| {
            let (id, quantity) = line.split_once('x')?;
            let quantity: i64 = quantity.parse().ok()?;
            Some((ProductId::parse(id).ok()?, quantity))
        })
        .filter(|(_, quantity)| (1..=QUANTITY_MAX).contains(quantity))
        .take(LINES_MAX)
        .collect()
}

/// `<uuid>x<quantity>` lines joined by dots: cookie-safe without quoting.
fn cookie_value(lines: &[(ProductId, i64)]) -> String {
    lines
        .iter()
        .map(|(id, quantity)| format!("{id}x{quantity}"))
        .collect::<Vec<_>>()
        .join(".")
}

fn with_cart<U>(state: &State<U>, location: &str, lines: &[(ProductId, i64)]) -> HttpResponse {
    let secure = state.settings.secure_cookies;
    let cookie = if lines.is_empty() {
        session::clear_cookie(CART_COOKIE, secure)
    } else {
        session::set_cookie(CART_COOKIE, &cookie_value(lines), 30 * 24 * 3600, secure)
    };
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location.to_owned()))
        .append_header((header::SET_COOKIE, cookie))
        .finish()
}

#[derive(Debug, Deserialize)]
pub struct Line {
    product_id: String,
    #[serde(default)]
    quantity: String,
}

pub async fn add<U: UnitOfWork>(state: State<U>, req: HttpRequest, Form(line): Form<Line>) -> Result<HttpResponse, PageError> {
    let id = ProductId::parse(&line.product_id).map_err(|_| PageError::BadRequest("no such product".to_owned()))?;
    let quantity: i64 = line.quantity.trim().parse().unwrap_or(1).clamp(1, QUANTITY_MAX);
    let mut lines = read(&req);
    if let Some((_, existing)) = lines.iter_mut().find(|(product, _)| *product == id) {
        *existing = (*existing + quantity).min(QUANTITY_MAX);
    } else if lines.len() < LINES_MAX {
        lines.push((id, quantity));
    } else {
        return Err(PageError::BadRequest(format!("a cart holds at most {LINES_MAX} products")));
    }
    Ok(with_cart(&state, "/cart?notice=added", &lines))
}

/// Sets a line's quantity; 0 removes it.
pub async fn update<U: UnitOfWork>(state: State<U>, req: HttpRequest, Form(line): Form<Line>) -> Result<HttpResponse, PageError> {
    let id = ProductId::parse(&line.product_id).map_err(|_| PageError::BadRequest("no such product".to_owned()))?;
    let quantity: i64 = line.quantity.trim().parse().unwrap_or(0).clamp(0, QUANTITY_MAX);
    let mut lines = read(&req);
    if quantity == 0 {
        lines.retain(|(product, _)| *product != id);
    } else if let Some((_, existing)) = lines.iter_mut().find(|(product, _)| *product == id) {
        *existing = quantity;
    }
    Ok(with_cart(&state, "/cart?notice=cart-updated", &lines))
}

struct CartLine {
    entry: Option<CatalogEntry>,
    id: ProductId,
    quantity: i64,
}

async fn load<U: UnitOfWork>(state: &State<U>, lines: &[(ProductId, i64)]) -> Result<Vec<CartLine>, PageError> {
    let mut loaded = Vec::new();
    for (id, quantity) in lines {
        let entry = match state.app.product(None, *id).await {
            Ok(entry) => Some(entry),
            Err(application::catalog::CatalogError::NotFound) => None,
            Err(other) => return Err(PageError::internal(other)),
        };
        loaded.push(CartLine {
            entry,
            id: *id,
            quantity: *quantity,
        });
    }
    Ok(loaded)
}

/// The total of the lines still on sale, when they share a currency.
fn total(lines: &[CartLine]) -> Option<Money> {
    let mut total: Option<Money> = None;
    for line in lines {
        let Some(entry) = &line.entry else { continue };
        let amount = entry.product.price.checked_mul(line.quantity).ok()?;
        total = Some(match total {
            None => amount,
            Some(sum) => sum.checked_add(amount).ok()?,
        });
    }
    total
}

fn cart_page(visitor: &Visitor, lines: &[CartLine], errors: &Errors, notice: Option<&str>) -> Markup {
    html! {
        (view::notice(notice))
        (errors.summary())
        @if lines.is_empty() {
            p { "Your cart is empty. " a href="/catalog" { "Browse the catalog" } }
        } @else {
            div.table-wrap { table {
                caption.muted { "Products in your cart" }
                thead { tr { th scope="col" { "Product" } th.num scope="col" { "Price" } th scope="col" { "Quantity" } th.num scope="col" { "Subtotal" } } }
                tbody {
                    @for line in lines {
                        tr {
                            @match &line.entry {
                                Some(entry) => {
                                    td { a href={ "/products/" (line.id) } { (entry.product.name) } }
                                    td.num { (money::format(entry.product.price)) }
                                    td {
                                        form.inline method="post" action="/cart/update" {
                                            (view::csrf(visitor))
                                            input type="hidden" name="product_id" value=(line.id);
                                            label for={ "q-" (line.id) } class="muted" { "Quantity " }
                                            input id={ "q-" (line.id) } type="number" name="quantity" min="0" max="99" value=(line.quantity);
                                            " "
                                            button.secondary type="submit" { "Update" }
                                        }
                                    }
                                    td.num { @if let Ok(subtotal) = entry.product.price.checked_mul(line.quantity) { (money::format(subtotal)) } }
                                }
                                None => {
                                    td colspan="3" { "A product that is no longer on sale" }
                                    td {
                                        form.inline method="post" action="/cart/update" {
                                            (view::csrf(visitor))
                                            input type="hidden" name="product_id" value=(line.id);
                                            input type="hidden" name="quantity" value="0";
                                            button.secondary type="submit" { "Remove" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                @if let Some(total) = total(lines) {
                    tfoot { tr { th scope="row" colspan="3" { "Total" } td.num #cart-total { strong { (money::format(total)) } } } }
                }
            } }
            @if let Some(error) = errors.get("items") { p.field-error { (error) } }
            form.stack method="post" action="/cart/checkout" {
                (view::csrf(visitor))
                (once::field())
                fieldset.field.invalid[errors.get("method").is_some()] {
                    legend { "Pay with" }
                    label { input type="radio" name="method" value="wallet" checked; " My wallet" }
                    br;
                    label { input type="radio" name="method" value="card"; " A card (on the card provider's page)" }
                    @if let Some(error) = errors.get("method") { p.field-error id="method-error" { (error) " " a href="/wallet" { "Top up your wallet" } } }
                }
                button type="submit" data-busy="Placing your order…" { "Place order" }
            }
        }
    }
}

pub async fn show<U: UnitOfWork>(
    state: State<U>,
    req: HttpRequest,
    visitor: Visitor,
    query: web::Query<super::ListQuery>,
) -> Result<HttpResponse, PageError> {
    let lines = load(&state, &read(&req)).await?;
    Ok(view::ok(
        &visitor,
        "Your cart",
        cart_page(&visitor, &lines, &Errors::default(), query.notice.as_deref()),
    ))
}

#[derive(Debug, Deserialize)]
pub struct Pay {
    #[serde(default)]
    method: String,
}

fn checkout_errors(error: CheckoutError) -> Result<Errors, PageError> {
    Ok(match error {
        error @ CheckoutError::InsufficientFunds { .. } => Errors::one("method", format!("Your wallet cannot pay this: {error}.")),
        error @ (CheckoutError::OutOfStock { .. } | CheckoutError::ProductNotFound(_) | CheckoutError::Order(_)) => {
            Errors::one("items", error.to_string())
        }
        error @ (CheckoutError::NoGateway(_) | CheckoutError::Route(_) | CheckoutError::PlatformLimit(_) | CheckoutError::Gateway(_)) => {
            Errors::one("method", format!("Card payment is unavailable: {error}."))
        }
        CheckoutError::Store(error) => return Err(PageError::internal(error)),
        other => Errors::one("", other.to_string()),
    })
}

/// Where a checkout sends the buyer: the provider's page for a card (noting the order), or the
/// paid order.
fn placed(checkout: &Checkout) -> StoredResponse {
    let order = format!("/orders/{}", checkout.order.id());
    match checkout.payment.as_ref().and_then(|p| p.checkout_url()) {
        Some(url) => once::redirect(url.to_owned(), &order),
        None => once::redirect(format!("{order}?notice=paid"), &order),
    }
}

/// The answer to a placed order, the first time or again: the cart emptied, and on to the
/// provider's page (the order noted as where to come back) or the order.
fn follow<U>(state: &State<U>, answer: &StoredResponse) -> HttpResponse {
    let secure = state.settings.secure_cookies;
    let location = once::location(answer).unwrap_or("/orders");
    let mut response = HttpResponse::SeeOther();
    response
        .insert_header((header::LOCATION, location.to_owned()))
        .append_header((header::SET_COOKIE, session::clear_cookie(CART_COOKIE, secure)));
    let order = once::note(answer);
    if !location.starts_with('/') && order.starts_with("/orders/") {
        response.append_header((header::SET_COOKIE, session::set_cookie(RETURN_COOKIE, order, 3600, secure)));
    }
    response.finish()
}

pub async fn checkout<U: UnitOfWork>(
    state: State<U>,
    req: HttpRequest,
    visitor: Visitor,
    posted: KeyedForm<Pay>,
) -> Result<HttpResponse, PageError> {
    let caller = visitor.require("/cart")?;
    let raw = read(&req);
    let mut items = Vec::new();
    for (id, quantity) in &raw {
        let quantity = Quantity::new(*quantity).map_err(|e| PageError::BadRequest(e.to_string()))?;
        items.push((*id, quantity));
    }
    let card = posted.form.method == "card";
    let command = CheckoutCommand {
        items,
        payment_method: if card { PaymentMethod::Card } else { PaymentMethod::Wallet },
        provider: None,
        capture: CaptureMethod::Automatic,
    };
    // The cart is in a cookie, not in the form: the same key with another cart is another order.
    let key = posted.key.map(|key| key.with(&cookie_value(&raw)));
    let ran = once::once(&state.app, &caller, key, placed, |idempotent| {
        state.app.checkout(&caller, command, idempotent)
    })
    .await?;
    match ran {
        Once::Done(answer) => Ok(follow(&state, &answer)),
        Once::Ran(Ok(checkout)) => Ok(follow(&state, &placed(&checkout))),
        Once::Ran(Err(error)) => {
            let errors = checkout_errors(error)?;
            let lines = load(&state, &raw).await?;
            Ok(view::invalid(&visitor, "Your cart", cart_page(&visitor, &lines, &errors, None)))
        }
    }
}

/// Where the buyer came from before the provider's page, if it is a page of this site.
fn return_path(req: &HttpRequest) -> Option<String> {
    session::cookie(req, RETURN_COOKIE).filter(|p| (p.starts_with("/orders/") || p == "/wallet") && !p.contains(['?', '\\']))
}

fn back<U>(state: &State<U>, req: &HttpRequest, visitor: &Visitor, notice: &str, title: &str, text: &str) -> HttpResponse {
    let secure = state.settings.secure_cookies;
    match return_path(req) {
        Some(path) => HttpResponse::SeeOther()
            .insert_header((header::LOCATION, format!("{path}?notice={notice}")))
            .append_header((header::SET_COOKIE, session::clear_cookie(RETURN_COOKIE, secure)))
            .finish(),
        None => view::ok(
            visitor,
            title,
            html! { p { (text) } p { a href="/orders" { "Your orders" } " · " a href="/wallet" { "Your wallet" } } },
        ),
    }
}

/// The card provider's return address after paying. Returning proves nothing: the provider's
/// signed webhook settles the payment, and the order page shows it once it has.
pub async fn returned<U: UnitOfWork>(state: State<U>, req: HttpRequest, visitor: Visitor) -> HttpResponse {
    back(
        &state,
        &req,
        &visitor,
        "card-pending",
        "Thank you",
        "Your payment is being confirmed with the card provider. Your order or top-up shows as paid as soon as the provider confirms it.",
    )
}

/// The card provider's return address after leaving without paying.
pub async fn abandoned<U: UnitOfWork>(state: State<U>, req: HttpRequest, visitor: Visitor) -> HttpResponse {
    back(
        &state,
        &req,
        &visitor,
        "card-cancelled",
        "Checkout cancelled",
        "Nothing was charged. Items held for an order are released when its checkout expires.",
    )
}
