//! The pages, one module per audience. Each handler resolves the caller from the session,
//! calls the use cases it shows, and renders; refusals come back from the use cases.

mod admin;
mod auth;
mod calls;
mod cart;
mod catalog;
mod merchant;
mod orders;
mod wallet;
mod webhooks;

use actix_web::web;
use application::ports::store::UnitOfWork;

use crate::WebState;
use crate::error::PageError;

pub type State<U> = web::Data<WebState<U>>;

pub fn register<U: UnitOfWork>(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(catalog::list::<U>))
        .route("/catalog", web::get().to(catalog::list::<U>))
        .route("/products/{id}", web::get().to(catalog::show::<U>))
        .route("/assets/{name}", web::get().to(crate::assets::serve))
        .route("/sign-up", web::get().to(auth::sign_up_form))
        .route("/sign-up", web::post().to(auth::sign_up::<U>))
        .route("/sign-in", web::get().to(auth::sign_in_form))
        .route("/sign-in", web::post().to(auth::sign_in::<U>))
        .route("/sign-out", web::post().to(auth::sign_out::<U>))
        .route("/cart", web::get().to(cart::show::<U>))
        .route("/cart/add", web::post().to(cart::add::<U>))
        .route("/cart/update", web::post().to(cart::update::<U>))
        .route("/cart/checkout", web::post().to(cart::checkout::<U>))
        .route("/checkout/complete", web::get().to(cart::returned::<U>))
        .route("/checkout/cancelled", web::get().to(cart::abandoned::<U>))
        .route("/orders", web::get().to(orders::list::<U>))
        .route("/orders/{id}", web::get().to(orders::show::<U>))
        .route("/orders/{id}/cancel", web::post().to(orders::cancel::<U>))
        .route("/orders/{id}/refund", web::post().to(orders::refund::<U>))
        .route("/orders/{id}/fulfil", web::post().to(orders::fulfil::<U>))
        .route("/wallet", web::get().to(wallet::show::<U>))
        .route("/wallet/top-up", web::post().to(wallet::top_up::<U>))
        .route("/wallet/transfer", web::post().to(wallet::transfer::<U>))
        .route("/wallet/withdraw", web::post().to(wallet::withdraw::<U>))
        .route("/calls", web::get().to(calls::list::<U>))
        .route("/calls/start", web::post().to(calls::start::<U>))
        .route("/calls/{id}/end", web::post().to(calls::end::<U>))
        .route("/merchant", web::get().to(merchant::console::<U>))
        .route("/merchant/products", web::post().to(merchant::add_product::<U>))
        .route("/merchant/products/{id}/stock", web::post().to(merchant::set_stock::<U>))
        .route("/merchant/statement", web::get().to(merchant::statement::<U>))
        .route("/merchant/webhooks", web::get().to(webhooks::list::<U>))
        .route("/merchant/webhooks", web::post().to(webhooks::create::<U>))
        .route("/merchant/webhooks/{id}", web::get().to(webhooks::show::<U>))
        .route("/merchant/webhooks/{id}/test", web::post().to(webhooks::test::<U>))
        .route("/admin", web::get().to(admin::dashboard::<U>))
        .route("/admin/users", web::get().to(admin::users::<U>))
        .route("/admin/users/{id}/suspend", web::post().to(admin::suspend::<U>))
        .route("/admin/users/{id}/reactivate", web::post().to(admin::reactivate::<U>))
        .route("/admin/orders", web::get().to(admin::orders::<U>))
        .route("/admin/payments", web::get().to(admin::payments::<U>))
        .route("/admin/refunds", web::get().to(admin::refunds::<U>))
        .route("/admin/withdrawals", web::get().to(admin::withdrawals::<U>))
        .route("/admin/withdrawals/{id}/approve", web::post().to(admin::approve::<U>))
        .route("/admin/withdrawals/{id}/reject", web::post().to(admin::reject::<U>))
        .route("/admin/follow-ups", web::get().to(admin::follow_ups::<U>))
        .route("/admin/ledger", web::get().to(admin::ledger::<U>))
        .route("/admin/audit", web::get().to(admin::audit::<U>));
}

pub async fn not_found() -> Result<actix_web::HttpResponse, PageError> {
    Err(PageError::NotFound)
}

/// Parses an id from the path; a malformed one is simply not found.
pub fn parse_id<T, E>(text: &str, parse: impl Fn(&str) -> Result<T, E>) -> Result<T, PageError> {
    parse(text).map_err(|_| PageError::NotFound)
}

/// `?notice=` and `?cursor=` of list pages.
#[derive(Debug, Default, serde::Deserialize)]
pub struct ListQuery {
    pub notice: Option<String>,
    pub cursor: Option<String>,
}

impl ListQuery {
    pub fn page(&self, limit: usize) -> application::pagination::PageRequest {
        let after = self.cursor.as_deref().and_then(|c| application::pagination::Cursor::decode(c).ok());
        application::pagination::PageRequest { limit, after }
    }
}
