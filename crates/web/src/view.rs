//! The page shell and the pieces every page uses: navigation, form fields with their errors,
//! notices, dates and pagination links.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use domain::user::Role;
use maud::{DOCTYPE, Markup, html};
use time::OffsetDateTime;

use crate::assets;
use crate::session::Visitor;

pub const BRAND: &str = "Paybox";

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · " (BRAND) }
            link rel="stylesheet" href=(assets::css_path());
            script src=(assets::js_path()) defer {}
        }
    }
}

fn nav(visitor: &Visitor) -> Markup {
    html! {
        header.top {
            nav aria-label="Main" {
                a.brand href="/" { (BRAND) }
                ul {
                    li { a href="/catalog" { "Catalog" } }
                    li { a href="/cart" { "Cart" } }
                    @if let Some(user) = &visitor.user {
                        li { a href="/orders" { "Orders" } }
                        li { a href="/wallet" { "Wallet" } }
                        li { a href="/calls" { "Calls" } }
                        @if user.role == Role::Merchant { li { a href="/merchant" { "Merchant" } } }
                        @if user.role == Role::Admin { li { a href="/admin" { "Admin" } } }
                        li.who { span { (user.email.as_str()) } }
                        li {
                            form.inline method="post" action="/sign-out" {
                                (csrf(visitor))
                                button.link type="submit" { "Sign out" }
                            }
                        }
                    } @else {
                        li { a href="/sign-in" { "Sign in" } }
                        li { a href="/sign-up" { "Sign up" } }
                    }
                }
            }
        }
    }
}

/// A whole page.
pub fn page(visitor: &Visitor, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                a.skip href="#main" { "Skip to content" }
                (nav(visitor))
                main #main tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
                footer { p { (BRAND) " · prices include every fee · " a href="/docs/" { "API" } } }
            }
        }
    }
}

pub fn respond(status: StatusCode, markup: Markup) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(markup.into_string())
}

pub fn ok(visitor: &Visitor, title: &str, body: Markup) -> HttpResponse {
    respond(StatusCode::OK, page(visitor, title, body))
}

/// A form shown again with its errors: 422, so scripts and tests can tell.
pub fn invalid(visitor: &Visitor, title: &str, body: Markup) -> HttpResponse {
    respond(StatusCode::UNPROCESSABLE_ENTITY, page(visitor, title, body))
}

/// 303 to `location` (after a form: the browser then GETs it).
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((actix_web::http::header::LOCATION, location.to_owned()))
        .finish()
}

/// The page of an error, without the visitor's navigation (errors are rendered outside pages).
pub fn error_page(status: StatusCode, message: &str) -> Markup {
    let title = status.canonical_reason().unwrap_or("Error");
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header.top { nav aria-label="Main" { a.brand href="/" { (BRAND) } ul { li { a href="/catalog" { "Catalog" } } li { a href="/sign-in" { "Sign in" } } } } }
                main #main {
                    h1 { (status.as_u16()) " · " (title) }
                    p.error-message role="alert" { (message) }
                    p { a href="/" { "Back to the shop" } }
                }
            }
        }
    }
}

pub fn csrf(visitor: &Visitor) -> Markup {
    html! { input type="hidden" name="csrf" value=(visitor.csrf); }
}

/// Errors of a form, each tied to a field (or to the form as a whole, with the field `""`).
#[derive(Debug, Default)]
pub struct Errors(Vec<(&'static str, String)>);

impl Errors {
    pub fn one(field: &'static str, message: impl Into<String>) -> Errors {
        Errors(vec![(field, message.into())])
    }

    pub fn add(&mut self, field: &'static str, message: impl Into<String>) {
        self.0.push((field, message.into()));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, field: &str) -> Option<&str> {
        self.0.iter().find(|(f, _)| *f == field).map(|(_, m)| m.as_str())
    }

    /// What is not about one field, shown above the form.
    pub fn summary(&self) -> Markup {
        html! {
            @if let Some(message) = self.get("") {
                p.error-message role="alert" { (message) }
            } @else if !self.is_empty() {
                p.error-message role="alert" { "Please correct the fields marked below." }
            }
        }
    }
}

/// One labelled input, with its error below it and tied to it for screen readers.
pub struct Field<'a> {
    pub name: &'static str,
    /// Tells apart the ids of fields of the same name in several forms of one page.
    pub prefix: &'a str,
    pub label: &'a str,
    pub kind: &'a str,
    pub value: &'a str,
    pub required: bool,
    pub hint: Option<&'a str>,
    pub autocomplete: Option<&'a str>,
    pub extra: Option<(&'static str, &'a str)>,
}

impl<'a> Field<'a> {
    pub fn new(name: &'static str, label: &'a str) -> Field<'a> {
        Field {
            name,
            prefix: "",
            label,
            kind: "text",
            value: "",
            required: true,
            hint: None,
            autocomplete: None,
            extra: None,
        }
    }

    pub fn prefix(self, prefix: &'a str) -> Field<'a> {
        Field { prefix, ..self }
    }

    pub fn kind(self, kind: &'a str) -> Field<'a> {
        Field { kind, ..self }
    }

    pub fn value(self, value: &'a str) -> Field<'a> {
        Field { value, ..self }
    }

    pub fn optional(self) -> Field<'a> {
        Field { required: false, ..self }
    }

    pub fn hint(self, hint: &'a str) -> Field<'a> {
        Field { hint: Some(hint), ..self }
    }

    pub fn autocomplete(self, autocomplete: &'a str) -> Field<'a> {
        Field {
            autocomplete: Some(autocomplete),
            ..self
        }
    }

    /// A decimal amount: the phone shows a number pad.
    pub fn amount(self) -> Field<'a> {
        Field {
            extra: Some(("decimal", "")),
            ..self
        }
    }

    pub fn render(&self, errors: &Errors) -> Markup {
        let id = format!("f-{}{}", self.prefix, self.name);
        let error = errors.get(self.name);
        let error_id = format!("{id}-error");
        let hint_id = format!("{id}-hint");
        let mut described = Vec::new();
        if self.hint.is_some() {
            described.push(hint_id.clone());
        }
        if error.is_some() {
            described.push(error_id.clone());
        }
        let described = (!described.is_empty()).then(|| described.join(" "));
        let inputmode = self.extra.map(|(mode, _)| mode);
        html! {
            div.field.invalid[error.is_some()] {
                label for=(id) { (self.label) @if !self.required { span.muted { " (optional)" } } }
                @if self.kind == "textarea" {
                    textarea id=(id) name=(self.name) required[self.required] aria-invalid=[error.map(|_| "true")] aria-describedby=[described.as_deref()] { (self.value) }
                } @else {
                    input id=(id) name=(self.name) type=(self.kind) value=(self.value) required[self.required]
                        inputmode=[inputmode] autocomplete=[self.autocomplete]
                        aria-invalid=[error.map(|_| "true")] aria-describedby=[described.as_deref()];
                }
                @if let Some(hint) = self.hint { small.hint id=(hint_id) { (hint) } }
                @if let Some(error) = error { p.field-error id=(error_id) { (error) } }
            }
        }
    }
}

/// A notice after a redirect (`?notice=...`): only the fixed texts of `notice_text`, so a link
/// cannot make the site say anything else.
pub fn notice(code: Option<&str>) -> Markup {
    let text = code.and_then(notice_text);
    html! { @if let Some(text) = text { p.notice role="status" { (text) } } }
}

fn notice_text(code: &str) -> Option<&'static str> {
    Some(match code {
        "welcome" => "Welcome! Your account is ready.",
        "signed-in" => "You are signed in.",
        "signed-out" => "You are signed out.",
        "added" => "Added to your cart.",
        "cart-updated" => "Your cart is updated.",
        "paid" => "Thank you: your order is paid.",
        "card-pending" => "Your payment is being confirmed with the card provider.",
        "card-cancelled" => "The card payment was not completed; nothing was charged.",
        "cancelled" => "The order is cancelled.",
        "refunded" => "The refund is on its way.",
        "refund-asked" => "Your refund request is sent to the merchant.",
        "refund-approved" => "The request is approved: the refund is on its way.",
        "refund-declined" => "The request is declined; the buyer sees your note.",
        "refund-withdrawn" => "Your refund request is withdrawn.",
        "top-up-pending" => "Your top-up is being confirmed with the card provider.",
        "transferred" => "The money was sent.",
        "withdrawal" => "Your withdrawal request is recorded.",
        "product-added" => "The product is on sale.",
        "stock-updated" => "The stock is updated.",
        "product-updated" => "The product is updated.",
        "product-deleted" => "The product is deleted.",
        "call-started" => "The call has started.",
        "call-ended" => "The call has ended and is billed.",
        "call-already-ended" => "That call had already ended and been billed.",
        "suspended" => "The user is suspended.",
        "reactivated" => "The user is reactivated.",
        "approved" => "The withdrawal is approved.",
        "rejected" => "The withdrawal is rejected and its amount released.",
        "withdrawal-paid" => "The withdrawal is paid.",
        "withdrawal-failed" => "The withdrawal failed and its amount is available again.",
        "adjusted" => "The adjustment is posted.",
        "fulfilled" => "The order is marked fulfilled.",
        "test-sent" => "A test event is queued for delivery.",
        "redelivered" => "The delivery is queued again.",
        "endpoint-enabled" => "The endpoint is enabled: it receives events again.",
        "endpoint-disabled" => "The endpoint is disabled: it receives no events until enabled.",
        "endpoint-deleted" => "The endpoint is deleted.",
        _ => return None,
    })
}

pub fn when(at: OffsetDateTime) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    at.format(&format).unwrap_or_else(|_| at.to_string())
}

pub fn datetime_attr(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

pub fn status(text: &str) -> Markup {
    html! { span class={ "badge badge-" (text) } { (text.replace('_', " ")) } }
}

/// Percent-encodes a query parameter's value.
pub fn url_encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~/".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A "next page" link, when there is one.
pub fn next_link(base: &str, cursor: Option<String>) -> Markup {
    let separator = if base.contains('?') { '&' } else { '?' };
    html! {
        @if let Some(cursor) = cursor {
            nav.pager aria-label="Pages" { a href={ (base) (separator) "cursor=" (url_encode(&cursor)) } rel="next" { "Next page →" } }
        }
    }
}
