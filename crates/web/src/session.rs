//! Sessions, cookies and CSRF tokens.
//!
//! The session cookie holds the access token and refresh token that `App::login` issues. Each
//! request verifies the access token; an expired one is exchanged with `App::refresh` and the new
//! pair set in the response. The user is read back on every request, so a suspended or deleted
//! user's session ends at once (the role shown and checked is the stored one).
//!
//! Every browser also gets a random *seed* cookie, renewed at sign-in. A form's CSRF token is the
//! HMAC of the seed under the server's key: another site can neither read the seed nor compute
//! the token. POSTs must carry it, and an `Origin` (or `Referer`) naming another host is refused.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use application::auth::{Caller, Session};
use application::ports::security::TokenError;
use application::ports::store::UnitOfWork;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::user::User;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::WebState;
use crate::error::PageError;

pub const SESSION_COOKIE: &str = "pb_session";
pub const SEED_COOKIE: &str = "pb_seed";
pub const CART_COOKIE: &str = "pb_cart";
/// Where to take the buyer after a card provider's page.
pub const RETURN_COOKIE: &str = "pb_return";

/// How long a refreshed pair is handed to other requests that still present the old one (a page
/// and its form posted at once): refreshing twice would look like a stolen refresh token.
const RENEWAL_GRACE: Duration = Duration::from_secs(30);

/// The visitor of a page: who is signed in, and the CSRF token of their forms.
#[derive(Debug, Clone)]
pub struct Visitor {
    pub user: Option<User>,
    pub csrf: String,
    /// The refresh token of the session, for signing out.
    refresh_token: Option<String>,
}

impl Visitor {
    pub fn caller(&self) -> Option<Caller> {
        self.user.as_ref().map(|user| Caller {
            user_id: user.id,
            role: user.role,
        })
    }

    /// The caller, or a redirect to the sign-in page that comes back to `here`.
    pub fn require(&self, here: &str) -> Result<Caller, PageError> {
        self.caller().ok_or_else(|| PageError::SignIn(here.to_owned()))
    }

    pub fn refresh_token(&self) -> Option<&str> {
        self.refresh_token.as_deref()
    }
}

impl FromRequest for Visitor {
    type Error = PageError;
    type Future = std::future::Ready<Result<Visitor, PageError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let visitor = req.extensions().get::<Visitor>().cloned();
        std::future::ready(visitor.ok_or_else(|| PageError::Internal("the session middleware did not run".to_owned())))
    }
}

/// Refreshed pairs by the hash of the refresh token they replaced.
#[derive(Debug, Default)]
pub struct Renewals(Mutex<HashMap<String, (String, Instant)>>);

impl Renewals {
    fn get(&self, old: &str) -> Option<String> {
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(&digest(old))
            .filter(|(_, at)| at.elapsed() < RENEWAL_GRACE)
            .map(|(value, _)| value.clone())
    }

    fn put(&self, old: &str, new: &str) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.retain(|_, (_, at)| at.elapsed() < RENEWAL_GRACE);
        map.insert(digest(old), (new.to_owned(), Instant::now()));
    }
}

fn digest(text: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(text.as_bytes()))
}

/// 32 random bytes, URL-safe.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // Without randomness the page still renders, with a seed an attacker could guess; the
    // operating system's generator failing is logged loudly.
    if getrandom::fill(&mut bytes).is_err() {
        tracing::error!("no randomness for a CSRF seed");
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn csrf_token(key: &[u8], seed: &str) -> String {
    // HMAC takes keys of any length, so this never fails; an empty token would match no form.
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(b"csrf-v1:");
    mac.update(seed.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// HMAC-SHA256 of `label` under `secret`: a key of its own for one purpose.
pub fn derive_key(secret: &[u8], label: &[u8]) -> Vec<u8> {
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(secret) else {
        return random_token().into_bytes();
    };
    mac.update(label);
    mac.finalize().into_bytes().to_vec()
}

/// The value of a cookie of the request.
pub fn cookie(req: &HttpRequest, name: &str) -> Option<String> {
    cookie_in(req.headers(), name)
}

fn cookie_in(headers: &header::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|text| text.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim_matches('"').to_owned())
}

/// A `Set-Cookie` value: host-only, `HttpOnly`, `SameSite=Lax`, `Path=/`. Values are URL-safe
/// base64, tokens and ids, so they need no quoting.
pub fn set_cookie(name: &str, value: &str, max_age_secs: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}")
}

pub fn clear_cookie(name: &str, secure: bool) -> String {
    set_cookie(name, "", 0, secure)
}

/// The session cookie's value for a session.
pub fn session_value(session: &Session) -> String {
    format!("{}~{}", session.access_token.token, session.refresh_token)
}

pub fn session_cookie(session: &Session, now: time::OffsetDateTime, secure: bool) -> String {
    let max_age = (session.refresh_expires_at - now).whole_seconds().max(0);
    set_cookie(SESSION_COOKIE, &session_value(session), max_age, secure)
}

enum Resolved {
    Valid(User, String),
    Renewed { user: User, refresh: String, cookie: String },
    Ended,
}

async fn resolve<U: UnitOfWork>(state: &WebState<U>, value: &str) -> Resolved {
    let Some((access, refresh)) = value.split_once('~') else {
        return Resolved::Ended;
    };
    let app = &state.app;
    let now = app.clock.now();
    match app.tokens.verify_access_token(access, now) {
        Ok(claims) => match app.profile(claims.user_id).await {
            Ok(user) if !user.is_suspended() => Resolved::Valid(user, refresh.to_owned()),
            Ok(_) => Resolved::Ended,
            Err(error) => {
                tracing::warn!(%error, "cannot read the signed-in user");
                Resolved::Ended
            }
        },
        Err(TokenError::Expired) => renew(state, refresh, now).await,
        Err(TokenError::Invalid) => Resolved::Ended,
    }
}

async fn renew<U: UnitOfWork>(state: &WebState<U>, refresh: &str, now: time::OffsetDateTime) -> Resolved {
    let secure = state.settings.secure_cookies;
    if let Some(value) = state.renewals.get(refresh) {
        // Another request refreshed this session a moment ago: use its pair.
        return match Box::pin(resolve(state, &value)).await {
            Resolved::Valid(user, refresh) => Resolved::Renewed {
                user,
                cookie: set_cookie(SESSION_COOKIE, &value, state.app.settings.refresh_token_ttl.whole_seconds(), secure),
                refresh,
            },
            _ => Resolved::Ended,
        };
    }
    match state.app.refresh(refresh).await {
        Ok(session) if !session.user.is_suspended() => {
            state.renewals.put(refresh, &session_value(&session));
            Resolved::Renewed {
                cookie: session_cookie(&session, now, secure),
                refresh: session.refresh_token.clone(),
                user: session.user,
            }
        }
        Ok(_) => Resolved::Ended,
        Err(error) => {
            tracing::info!(%error, "web session not renewed");
            Resolved::Ended
        }
    }
}

/// The response headers every page gets. The policy allows scripts, styles and images from this
/// server only: no inline script, no `style` attribute. Forms post here, or (after a redirect)
/// to a card provider's page.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; form-action 'self' https:; frame-ancestors 'none'; base-uri 'none'";

/// Resolves the visitor before the page runs; afterwards sets the cookies that changed and the
/// security headers.
pub async fn middleware<U: UnitOfWork>(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<WebState<U>>>().cloned() else {
        return Err(PageError::Internal("the web state is not registered".to_owned()).into());
    };
    let secure = state.settings.secure_cookies;
    let mut cookies = Vec::new();
    let seed = match cookie_in(req.headers(), SEED_COOKIE).filter(|s| s.len() == 43) {
        Some(seed) => seed,
        None => {
            let seed = random_token();
            // A year: the seed protects forms of anonymous and signed-in visitors alike.
            cookies.push((SEED_COOKIE, set_cookie(SEED_COOKIE, &seed, 365 * 24 * 3600, secure)));
            seed
        }
    };
    let (user, refresh_token) = match cookie_in(req.headers(), SESSION_COOKIE) {
        None => (None, None),
        Some(value) => match resolve(&state, &value).await {
            Resolved::Valid(user, refresh) => (Some(user), Some(refresh)),
            Resolved::Renewed { user, refresh, cookie } => {
                cookies.push((SESSION_COOKIE, cookie));
                (Some(user), Some(refresh))
            }
            Resolved::Ended => {
                cookies.push((SESSION_COOKIE, clear_cookie(SESSION_COOKIE, secure)));
                (None, None)
            }
        },
    };
    let visitor = Visitor {
        user,
        csrf: csrf_token(&state.settings.csrf_key, &seed),
        refresh_token,
    };
    req.extensions_mut().insert(visitor);
    let is_asset = req.path().starts_with("/assets/");
    let mut response = next.call(req).await?;
    let headers = response.headers_mut();
    // A page that set a cookie itself (sign in, sign out) knows better than the middleware.
    let own: Vec<String> = headers
        .get_all(header::SET_COOKIE)
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split_once('=').map(|(name, _)| name.to_owned()))
        .collect();
    for (name, value) in cookies {
        if !own.iter().any(|n| n == name)
            && let Ok(value) = HeaderValue::from_str(&value)
        {
            headers.append(header::SET_COOKIE, value);
        }
    }
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    if !is_asset {
        // Pages show personal data: never kept by a shared cache or the back button's cache.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_csrf_token_depends_on_the_key_and_the_seed() {
        let token = csrf_token(b"key", "seed");
        assert_eq!(token, csrf_token(b"key", "seed"));
        assert_ne!(token, csrf_token(b"other key", "seed"));
        assert_ne!(token, csrf_token(b"key", "other seed"));
    }

    #[test]
    fn cookies_are_read_by_exact_name() {
        let mut headers = header::HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("pb_session_x=1; pb_session=abc~def; other=2"),
        );
        assert_eq!(cookie_in(&headers, SESSION_COOKIE).as_deref(), Some("abc~def"));
        assert_eq!(cookie_in(&headers, "missing"), None);
    }
}
