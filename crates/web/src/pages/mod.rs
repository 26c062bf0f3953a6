//! The pages, one module per audience. Each handler resolves the caller from the session,
//! calls the use cases it shows, and renders; refusals come back from the use cases.

mod admin;
mod admin_reads;
mod admin_users;
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

/// Declares the pages: registers each route, and lists them all (`PAGES`) so that a path served
/// under other methods answers 405 with `Allow`, not 404.
macro_rules! pages {
    ($($method:ident $path:literal => $handler:expr;)*) => {
        /// Every page route: (method, path pattern).
        pub const PAGES: &[(&str, &str)] = &[$((stringify!($method), $path)),*];

        pub fn register<U: UnitOfWork>(cfg: &mut web::ServiceConfig) {
            $(cfg.route($path, web::$method().to($handler));)*
        }
    };
}

pages! {
    get "/" => catalog::list::<U>;
    get "/catalog" => catalog::list::<U>;
    get "/products/{id}" => catalog::show::<U>;
    get "/assets/{name}" => crate::assets::serve;
    get "/sign-up" => auth::sign_up_form;
    post "/sign-up" => auth::sign_up::<U>;
    get "/sign-in" => auth::sign_in_form;
    post "/sign-in" => auth::sign_in::<U>;
    post "/sign-out" => auth::sign_out::<U>;
    get "/cart" => cart::show::<U>;
    post "/cart/add" => cart::add::<U>;
    post "/cart/update" => cart::update::<U>;
    post "/cart/checkout" => cart::checkout::<U>;
    get "/checkout/complete" => cart::returned::<U>;
    get "/checkout/cancelled" => cart::abandoned::<U>;
    get "/orders" => orders::list::<U>;
    get "/orders/{id}" => orders::show::<U>;
    post "/orders/{id}/cancel" => orders::cancel::<U>;
    post "/orders/{id}/pay" => orders::pay_again::<U>;
    post "/orders/{id}/refund" => orders::refund::<U>;
    post "/orders/{id}/fulfil" => orders::fulfil::<U>;
    post "/orders/{id}/refund-requests" => orders::ask_refund::<U>;
    post "/orders/{id}/refund-requests/{request}/approve" => orders::approve_refund_request::<U>;
    post "/orders/{id}/refund-requests/{request}/decline" => orders::decline_refund_request::<U>;
    post "/orders/{id}/refund-requests/{request}/withdraw" => orders::withdraw_refund_request::<U>;
    get "/wallet" => wallet::show::<U>;
    post "/wallet/top-up" => wallet::top_up::<U>;
    post "/wallet/transfer" => wallet::transfer::<U>;
    post "/wallet/withdraw" => wallet::withdraw::<U>;
    get "/calls" => calls::list::<U>;
    post "/calls/start" => calls::start::<U>;
    post "/calls/{id}/end" => calls::end::<U>;
    get "/merchant" => merchant::console::<U>;
    post "/merchant/products" => merchant::add_product::<U>;
    get "/merchant/products/{id}" => merchant::edit_product::<U>;
    post "/merchant/products/{id}" => merchant::update_product::<U>;
    post "/merchant/products/{id}/stock" => merchant::set_stock::<U>;
    post "/merchant/products/{id}/delete" => merchant::delete_product::<U>;
    get "/merchant/statement" => merchant::statement::<U>;
    get "/merchant/webhooks" => webhooks::list::<U>;
    post "/merchant/webhooks" => webhooks::create::<U>;
    get "/merchant/webhooks/{id}" => webhooks::show::<U>;
    post "/merchant/webhooks/{id}/test" => webhooks::test::<U>;
    post "/merchant/webhooks/{id}/roll-secret" => webhooks::roll_secret::<U>;
    post "/merchant/webhooks/{id}/enable" => webhooks::enable::<U>;
    post "/merchant/webhooks/{id}/disable" => webhooks::disable::<U>;
    post "/merchant/webhooks/{id}/delete" => webhooks::delete::<U>;
    post "/merchant/webhooks/{id}/deliveries/{delivery}/redeliver" => webhooks::redeliver::<U>;
    get "/admin" => admin::dashboard::<U>;
    get "/admin/users" => admin::users::<U>;
    get "/admin/users/{id}" => admin_users::show::<U>;
    post "/admin/users/{id}/adjust" => admin_users::adjust::<U>;
    post "/admin/users/{id}/suspend" => admin::suspend::<U>;
    post "/admin/users/{id}/reactivate" => admin::reactivate::<U>;
    get "/admin/orders" => admin::orders::<U>;
    get "/admin/payments" => admin::payments::<U>;
    get "/admin/payments/{id}" => admin_reads::payment::<U>;
    get "/admin/refunds" => admin::refunds::<U>;
    get "/admin/refunds/{id}" => admin_reads::refund::<U>;
    get "/admin/withdrawals" => admin::withdrawals::<U>;
    post "/admin/withdrawals/{id}/approve" => admin::approve::<U>;
    post "/admin/withdrawals/{id}/reject" => admin::reject::<U>;
    post "/admin/withdrawals/{id}/mark-paid" => admin::mark_paid::<U>;
    post "/admin/withdrawals/{id}/mark-failed" => admin::mark_failed::<U>;
    get "/admin/follow-ups" => admin::follow_ups::<U>;
    get "/admin/ledger" => admin::ledger::<U>;
    get "/admin/ledger/transactions/{id}" => admin_reads::transaction::<U>;
    get "/admin/audit" => admin::audit::<U>;
}

/// Whether `path` matches a pattern such as `/orders/{id}`, segment by segment.
fn matches(pattern: &str, path: &str) -> bool {
    let (mut pattern, mut path) = (pattern.split('/'), path.split('/'));
    loop {
        match (pattern.next(), path.next()) {
            (None, None) => return true,
            (Some(p), Some(s)) if p.starts_with('{') || p == s => {}
            _ => return false,
        }
    }
}

/// No page here: 405 with `Allow` when the path is a page under other methods, else 404.
pub async fn not_found(req: actix_web::HttpRequest) -> Result<actix_web::HttpResponse, PageError> {
    let mut allowed: Vec<String> = PAGES
        .iter()
        .filter(|(_, pattern)| matches(pattern, req.path()))
        .map(|(method, _)| method.to_ascii_uppercase())
        .collect();
    allowed.dedup();
    if allowed.is_empty() {
        return Err(PageError::NotFound);
    }
    Err(PageError::MethodNotAllowed(allowed.join(", ")))
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

#[cfg(test)]
mod tests {
    use super::{PAGES, matches};

    #[test]
    fn page_patterns_match_whole_segments() {
        assert!(matches("/orders/{id}", "/orders/123"));
        assert!(!matches("/orders/{id}", "/orders/123/cancel"));
        assert!(matches("/", "/"));
        assert!(!matches("/", "/x"));
        assert!(PAGES.iter().any(|(method, path)| *method == "get" && *path == "/checkout/complete"));
    }
}
