//! Posted forms: the CSRF check every POST passes before its page runs, and the idempotency
//! key of forms that move money (`KeyedForm`, see `once`).

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpRequest};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;

use crate::error::PageError;
use crate::once::FormKey;
use crate::session::Visitor;

/// A URL-encoded form whose CSRF token and origin were checked.
#[derive(Debug)]
pub struct Form<T>(pub T);

/// A form that moves money: checked as `Form` is, with the idempotency key it carries.
#[derive(Debug)]
pub struct KeyedForm<T> {
    pub form: T,
    pub key: Option<FormKey>,
}

#[derive(Deserialize)]
struct Token {
    #[serde(default)]
    csrf: String,
}

/// The host of an `Origin` or `Referer` value (`https://shop.example:8443/path` gives
/// `shop.example:8443`).
fn authority(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    Some(rest.split(['/', '?', '#']).next().unwrap_or(rest))
}

/// Whether the request says it comes from a page of this host. Browsers send `Origin` with every
/// POST; without it the `Referer` is checked; without either only the token decides.
fn same_origin(req: &HttpRequest) -> bool {
    let host = req.connection_info().host().to_owned();
    let named = |name: header::HeaderName| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    if let Some(origin) = named(header::ORIGIN) {
        return authority(&origin).is_some_and(|a| a.eq_ignore_ascii_case(&host));
    }
    if let Some(referer) = named(header::REFERER) {
        return authority(&referer).is_some_and(|a| a.eq_ignore_ascii_case(&host));
    }
    true
}

/// The body of a form whose CSRF token and origin were checked.
fn checked_body(req: &HttpRequest, payload: &mut Payload) -> Pin<Box<dyn Future<Output = Result<Bytes, PageError>>>> {
    let expected = Visitor::extract(req).into_inner().map(|visitor| visitor.csrf);
    let same_origin = same_origin(req);
    let body = Bytes::from_request(req, payload);
    Box::pin(async move {
        let expected = expected?;
        let body = body
            .await
            .map_err(|_| PageError::BadRequest("the form could not be read".to_owned()))?;
        let token: Token = serde_urlencoded::from_bytes(&body).map_err(|_| PageError::Csrf)?;
        let matches = !expected.is_empty() && bool::from(token.csrf.as_bytes().ct_eq(expected.as_bytes()));
        if !(same_origin && matches) {
            return Err(PageError::Csrf);
        }
        Ok(body)
    })
}

fn fields<T: DeserializeOwned>(body: &[u8]) -> Result<T, PageError> {
    serde_urlencoded::from_bytes(body).map_err(|error| PageError::BadRequest(format!("the form is incomplete: {error}")))
}

impl<T: DeserializeOwned + 'static> FromRequest for Form<T> {
    type Error = PageError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = checked_body(req, payload);
        Box::pin(async move { fields(&body.await?).map(Form) })
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for KeyedForm<T> {
    type Error = PageError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = checked_body(req, payload);
        let path = req.path().to_owned();
        Box::pin(async move {
            let body = body.await?;
            Ok(KeyedForm {
                form: fields(&body)?,
                key: FormKey::read(&path, &body),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::authority;

    #[test]
    fn the_authority_of_an_origin_or_referer() {
        assert_eq!(authority("http://127.0.0.1:8080"), Some("127.0.0.1:8080"));
        assert_eq!(authority("https://shop.example/cart?x=1"), Some("shop.example"));
        assert_eq!(authority("null"), None);
    }
}
