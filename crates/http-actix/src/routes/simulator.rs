//! The hosted checkout pages of the simulated gateway (demo mode): a page showing what is being
//! paid, with Pay and Decline buttons. Choosing makes the simulator send the server its signed
//! webhook. Without a simulator these routes answer 404.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpResponse, web};
use application::ports::gateway::{ChoiceError, CustomerChoice, HostedSession, HostedSessionState};
use application::ports::store::UnitOfWork;

use super::State;
use crate::problem::{ApiError, Problem};

fn escape(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '&' => "&amp;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            other => other.to_string(),
        })
        .collect()
}

fn page(session: &HostedSession) -> String {
    let lines: String = session
        .lines
        .iter()
        .map(|l| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&l.name),
                l.quantity,
                escape(&l.unit_amount.to_string())
            )
        })
        .collect();
    let id = escape(&session.session_id);
    let actions = match session.state {
        HostedSessionState::Open => format!(
            r#"<form method="post" action="/simulator/checkout/{id}/pay"><button id="pay">Pay {}</button></form>
<form method="post" action="/simulator/checkout/{id}/decline"><button id="decline">Decline</button></form>"#,
            escape(&session.amount.to_string())
        ),
        // Where a real provider redirects the payer: the shop's return pages.
        HostedSessionState::Paid => {
            "<p id=\"state\">Paid.</p><p><a id=\"return\" href=\"/checkout/complete\">Return to the shop</a></p>".to_owned()
        }
        HostedSessionState::Declined => {
            "<p id=\"state\">Declined.</p><p><a id=\"return\" href=\"/checkout/cancelled\">Return to the shop</a></p>".to_owned()
        }
        HostedSessionState::Expired => "<p id=\"state\">This checkout has expired.</p>".to_owned(),
    };
    format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>Simulated checkout</title></head>
<body><h1>Simulated card checkout</h1><p>{}</p><p>Payer: {}</p>
<table><tr><th>Item</th><th>Qty</th><th>Unit price</th></tr>{lines}</table>
<p>Total: <strong>{}</strong></p>{actions}</body></html>"#,
        escape(&session.description),
        escape(&session.customer_email),
        escape(&session.amount.to_string()),
    )
}

fn choice_error(error: ChoiceError) -> ApiError {
    let detail = error.to_string();
    match error {
        ChoiceError::UnknownSession => ApiError::not_found(detail),
        ChoiceError::Closed(_) => ApiError::conflict("checkout_closed", "Checkout closed", detail),
        ChoiceError::Expired => ApiError::new(StatusCode::GONE, "checkout_expired", "Checkout expired", detail),
        ChoiceError::Delivery(gateway) => ApiError::from(gateway),
    }
}

fn html(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .body(body)
}

/// The hosted checkout page of a simulated session.
#[utoipa::path(get, path = "/simulator/checkout/{session_id}", tag = "simulator",
    params(("session_id" = String, Path, description = "Checkout session id")),
    responses((status = 200, description = "The checkout page", content_type = "text/html"), (status = 404, description = "No such session or no simulator")))]
pub async fn show<U: UnitOfWork>(state: State<U>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let hosted = state
        .hosted_checkout
        .as_ref()
        .ok_or_else(|| ApiError::not_found("no simulated gateway is configured"))?;
    let session = hosted
        .session(&path)
        .ok_or_else(|| ApiError::not_found("no such checkout session"))?;
    Ok(html(page(&session)))
}

async fn choose<U: UnitOfWork>(state: State<U>, session_id: &str, choice: CustomerChoice) -> Result<HttpResponse, ApiError> {
    let hosted = state
        .hosted_checkout
        .as_ref()
        .ok_or_else(|| ApiError::not_found("no simulated gateway is configured"))?;
    hosted.choose(session_id, choice).await.map_err(choice_error)?;
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, format!("/simulator/checkout/{session_id}")))
        .finish())
}

/// The customer pays: the simulator sends `checkout.session.completed`.
#[utoipa::path(post, path = "/simulator/checkout/{session_id}/pay", tag = "simulator",
    params(("session_id" = String, Path, description = "Checkout session id")),
    responses(
        (status = 303, description = "Back to the page"),
        (status = 404, description = "No such session or no simulator", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The checkout was already paid or declined", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The checkout expired or was closed", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn pay<U: UnitOfWork>(state: State<U>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    choose(state, &path, CustomerChoice::Pay).await
}

/// The card is declined: the simulator sends `checkout.session.async_payment_failed`.
#[utoipa::path(post, path = "/simulator/checkout/{session_id}/decline", tag = "simulator",
    params(("session_id" = String, Path, description = "Checkout session id")),
    responses(
        (status = 303, description = "Back to the page"),
        (status = 404, description = "No such session or no simulator", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The checkout was already paid or declined", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The checkout expired or was closed", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn decline<U: UnitOfWork>(state: State<U>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    choose(state, &path, CustomerChoice::Decline).await
}
