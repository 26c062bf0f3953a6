//! The web UI: server-rendered pages for buyers, merchants and admins.
//!
//! A driving adapter beside `http-actix`: each page calls the use cases of `application::App`
//! directly with the `Caller` of the signed-in session, so every page is authorised exactly as
//! the use case it calls (a customer opening an admin page gets the use case's refusal, shown as a
//! 403 page). Pages are maud templates compiled into the binary; the stylesheet and the one small
//! script are embedded too (`assets`). Forms are plain HTML forms, posted and answered with a
//! redirect, so every page works without the script; the script only adds progress feedback.
//!
//! Security (`session`): the session cookie holds the access and refresh tokens the auth use
//! cases issue (`HttpOnly`, `SameSite=Lax`, `Secure` outside demo mode); every form carries a
//! CSRF token derived with HMAC from a per-browser random seed, checked with the request's
//! `Origin` on every POST; the content security policy allows no inline script or style.

mod assets;
mod error;
mod form;
mod money;
mod once;
mod pages;
mod session;
mod view;

use std::sync::Arc;

use actix_web::guard;
use actix_web::middleware::from_fn;
use actix_web::web;
use application::App;
use application::ports::rate_limit::{Quota, RateLimiter};
use application::ports::store::UnitOfWork;

pub use crate::session::{CART_COOKIE, SEED_COOKIE, SESSION_COOKIE};

/// How the pages are served.
#[derive(Debug, Clone)]
pub struct WebSettings {
    /// Whether cookies carry `Secure` (everywhere but demo mode, which serves plain HTTP).
    pub secure_cookies: bool,
    /// The key of the CSRF tokens' HMAC; instances that share sessions must share it.
    pub csrf_key: Vec<u8>,
    /// Sign-in and sign-up attempts per client address, shared with the API's `auth` quota.
    pub auth_quota: Option<Quota>,
}

impl WebSettings {
    /// The CSRF key derived from a server secret (the JWT secret), so that it differs from it
    /// and every instance sharing the secret shares the key; a random key without one.
    pub fn csrf_key_from(secret: Option<&[u8]>) -> Vec<u8> {
        match secret {
            Some(secret) => session::derive_key(secret, b"web-ui csrf key v1"),
            None => session::random_token().into_bytes(),
        }
    }
}

/// What every page reaches.
#[derive(Debug)]
pub struct WebState<U> {
    pub app: Arc<App<U>>,
    pub limiter: Arc<dyn RateLimiter>,
    pub settings: WebSettings,
    renewals: session::Renewals,
}

impl<U> WebState<U> {
    pub fn new(app: Arc<App<U>>, limiter: Arc<dyn RateLimiter>, settings: WebSettings) -> WebState<U> {
        WebState {
            app,
            limiter,
            settings,
            renewals: session::Renewals::default(),
        }
    }
}

/// The first segment of every page's path. Requests under any other (the API, the simulator's
/// pages, health, docs) pass by the pages untouched.
const SECTIONS: &[&str] = &[
    "", "catalog", "products", "sign-in", "sign-up", "sign-out", "cart", "checkout", "orders", "wallet", "calls", "merchant", "admin",
    "assets",
];

fn is_page(path: &str) -> bool {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    if first == "checkout" {
        // Only the two return pages: the API's simulator and webhooks live elsewhere.
        return path == "/checkout/complete" || path == "/checkout/cancelled";
    }
    SECTIONS.contains(&first)
}

/// Registers the pages. Register them before the API's routes: the pages answer the card
/// providers' return addresses (`/checkout/complete`, `/checkout/cancelled`) in the API's stead,
/// taking the buyer back to the order or wallet they were paying for.
pub fn configure<U: UnitOfWork>(state: web::Data<WebState<U>>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.service(
            web::scope("")
                .guard(guard::fn_guard(|ctx| is_page(ctx.head().uri.path())))
                .app_data(state)
                .wrap(from_fn(session::middleware::<U>))
                .configure(pages::register::<U>)
                .default_service(web::to(pages::not_found)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::is_page;

    #[test]
    fn only_the_pages_paths_are_pages() {
        for path in [
            "/",
            "/catalog",
            "/orders/1",
            "/admin/users",
            "/checkout/complete",
            "/assets/app.css",
        ] {
            assert!(is_page(path), "{path}");
        }
        for path in [
            "/api/v1/orders",
            "/simulator/checkout/x",
            "/health/live",
            "/docs/",
            "/metrics",
            "/checkout/other",
        ] {
            assert!(!is_page(path), "{path}");
        }
    }
}
