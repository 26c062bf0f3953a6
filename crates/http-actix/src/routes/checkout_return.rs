//! Where a card provider's hosted page sends the payer back (the default `STRIPE_SUCCESS_URL`,
//! `STRIPE_CANCEL_URL` and Monnify redirect). Returning proves nothing: only the provider's signed
//! webhook settles a payment, so these pages say so and change nothing.

use actix_web::HttpResponse;
use actix_web::http::header;
use application::ports::store::UnitOfWork;

use super::State;
use crate::problem::ApiError;

fn page(title: &str, message: &str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(format!(
            r#"<!doctype html><html><head><meta charset="utf-8"><title>{title}</title></head>
<body><h1>{title}</h1><p>{message}</p></body></html>"#
        ))
}

/// The payer finished on the provider's page.
#[utoipa::path(get, path = "/checkout/complete", tag = "checkout",
    responses((status = 200, description = "A page telling the payer the payment is being confirmed", content_type = "text/html", body = String)))]
pub async fn complete<U: UnitOfWork>(_state: State<U>) -> Result<HttpResponse, ApiError> {
    Ok(page(
        "Thank you",
        "Your payment is being confirmed with the card provider. Your order or top-up shows as paid as soon as the provider confirms it; you can close this page.",
    ))
}

/// The payer left the provider's page without paying.
#[utoipa::path(get, path = "/checkout/cancelled", tag = "checkout",
    responses((status = 200, description = "A page telling the payer nothing was charged", content_type = "text/html", body = String)))]
pub async fn cancelled<U: UnitOfWork>(_state: State<U>) -> Result<HttpResponse, ApiError> {
    Ok(page(
        "Checkout cancelled",
        "Nothing was charged. Items held for this order are released when the checkout expires; you can start a new order at any time.",
    ))
}
