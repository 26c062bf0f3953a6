//! Forms that move money act once.
//!
//! Such a form carries a hidden idempotency key, made fresh each time the form is rendered
//! (`field`). Its page hands the key to the use case exactly as the API hands on an
//! `Idempotency-Key` header: scoped to the signed-in user, with a fingerprint of what the form
//! asks (its path and fields, not the CSRF token), claimed in the use case's own transaction and
//! completed there with where the first answer went (a `303` and its `Location`). A double
//! submit, or a browser retrying the post, then finds the key: it waits a moment for a first
//! submission still running, and is sent where the first one was sent, without acting again.
//!
//! A refusal (a bad amount, too little money) stores nothing: the page shows the form again with
//! a fresh key, so that the corrected form is a new request. A failure after a first step was
//! committed (a card checkout whose provider did not answer) ends the key's lease, as the API
//! does, so that sending the same form again resumes from what was committed.

use std::future::Future;
use std::time::Duration;

use application::App;
use application::adjustments::AdjustmentError;
use application::auth::Caller;
use application::calls::CallUseError;
use application::catalog::CatalogError;
use application::checkout::CheckoutError;
use application::idempotency::{IdempotencyError, IdempotencyKey, IdempotencyScope, Idempotent, KeyStatus, StoredResponse};
use application::ports::store::UnitOfWork;
use application::refund_requests::RefundRequestUseError;
use application::refunds::RefundError;
use application::top_ups::TopUpError;
use application::transfers::TransferError;
use application::withdrawals::WithdrawalError;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use maud::{Markup, html};
use sha2::{Digest, Sha256};

use crate::error::PageError;

/// The name of the hidden field.
pub const FIELD: &str = "idempotency_key";

/// How long a second submission waits, at most, for the first one to finish.
const WAIT_STEP: Duration = Duration::from_millis(100);
const WAIT_STEPS: u32 = 50;

const STILL_RUNNING: &str = "This form was just sent and is still being processed. Reload the page in a moment to see its outcome.";
const OTHER_VALUES: &str = "This form was already sent with other values. Reload the page to fill in a new one.";

/// A fresh key: 16 random bytes, `web-` first so that it never meets a key an API client chose.
/// Without randomness there is no key (the form still works, as it did without keys): a key
/// every form shared would merge distinct payments.
fn new_key() -> Option<String> {
    let mut bytes = [0u8; 16];
    match getrandom::fill(&mut bytes) {
        Ok(()) => Some(format!("web-{}", URL_SAFE_NO_PAD.encode(bytes))),
        Err(error) => {
            tracing::error!(%error, "no randomness for a form's idempotency key");
            None
        }
    }
}

/// The hidden field of a form that moves money.
pub fn field() -> Markup {
    html! { @if let Some(key) = new_key() { input type="hidden" name=(FIELD) value=(key); } }
}

/// The key a posted form carried, with the fingerprint of what it asked.
#[derive(Debug, Clone)]
pub struct FormKey {
    key: IdempotencyKey,
    fingerprint: String,
}

impl FormKey {
    /// The key of a form posted to `path`, if it carries a well-formed one. The fingerprint is
    /// over the path and every field but the CSRF token (which changes at sign-in) and the key.
    pub fn read(path: &str, body: &[u8]) -> Option<FormKey> {
        let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(body).ok()?;
        let key = fields.iter().find(|(name, _)| name == FIELD)?;
        let key = IdempotencyKey::parse(&key.1).ok()?;
        let mut digest = Sha256::new();
        digest.update(b"POST ");
        digest.update(path.as_bytes());
        for (name, value) in fields.iter().filter(|(name, _)| name != FIELD && name != "csrf") {
            // Lengths first: `a=b&c` and `a=b%26c` must not collide.
            for part in [name, value] {
                digest.update((part.len() as u64).to_be_bytes());
                digest.update(part.as_bytes());
            }
        }
        Some(FormKey {
            key,
            fingerprint: URL_SAFE_NO_PAD.encode(digest.finalize()),
        })
    }

    /// The same key, with something the request carries outside its fields (the cart, in a
    /// cookie) in its fingerprint.
    pub fn with(self, extra: &str) -> FormKey {
        let mut digest = Sha256::new();
        digest.update(self.fingerprint.as_bytes());
        digest.update(b"\n");
        digest.update(extra.as_bytes());
        FormKey {
            fingerprint: URL_SAFE_NO_PAD.encode(digest.finalize()),
            ..self
        }
    }
}

/// The answer a form's first submission got, stored with its key: a redirect to `location`,
/// with `note` kept in the body for the page's own use (the order a card checkout returns to).
pub fn redirect(location: String, note: &str) -> StoredResponse {
    StoredResponse {
        status: 303,
        body: note.as_bytes().to_vec(),
        location: Some(location),
    }
}

/// Where a stored answer sent the browser, and its note.
pub fn location(stored: &StoredResponse) -> Option<&str> {
    stored.location.as_deref()
}

pub fn note(stored: &StoredResponse) -> &str {
    std::str::from_utf8(&stored.body).unwrap_or("")
}

/// A use case's error that may be the refusal of its idempotency key.
pub trait Keyed {
    fn idempotency(&self) -> Option<&IdempotencyError>;
}

macro_rules! keyed {
    ($($error:ident),* $(,)?) => {
        $(impl Keyed for $error {
            fn idempotency(&self) -> Option<&IdempotencyError> {
                match self {
                    $error::Idempotency(error) => Some(error),
                    _ => None,
                }
            }
        })*
    };
}

keyed!(
    AdjustmentError,
    CallUseError,
    CatalogError,
    CheckoutError,
    RefundError,
    RefundRequestUseError,
    TopUpError,
    TransferError,
    WithdrawalError,
);

/// What running a form under its key came to.
#[derive(Debug)]
pub enum Once<T, E> {
    /// The use case ran now (or refused).
    Ran(Result<T, E>),
    /// The form was sent before and acted then: its stored answer.
    Done(StoredResponse),
}

/// Runs `run` once per key: with no key it simply runs; with a key already answered it does
/// not run and gives the stored answer (after waiting a moment for a first submission still
/// running).
///
/// # Errors
///
/// `Conflict` when the key was used with other values, or its first submission is still
/// running after the wait; `Internal` when the key's record cannot be read.
pub async fn once<U, T, E, F, Fut>(
    app: &App<U>,
    caller: &Caller,
    key: Option<FormKey>,
    render: fn(&T) -> StoredResponse,
    run: F,
) -> Result<Once<T, E>, PageError>
where
    U: UnitOfWork,
    E: Keyed,
    F: FnOnce(Option<Idempotent<T>>) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let Some(FormKey { key, fingerprint }) = key else {
        return Ok(Once::Ran(run(None).await));
    };
    let scope = IdempotencyScope {
        principal: Some(caller.user_id),
        key,
    };
    if let Some(done) = settled(app, &scope, &fingerprint).await? {
        return Ok(Once::Done(done));
    }
    let idempotent = Idempotent {
        scope: scope.clone(),
        fingerprint: fingerprint.clone(),
        render,
    };
    let error = match run(Some(idempotent)).await {
        Ok(output) => return Ok(Once::Ran(Ok(output))),
        Err(error) => error,
    };
    match error.idempotency() {
        // Another submission claimed the key between the look and the claim.
        Some(IdempotencyError::Completed | IdempotencyError::InProgress) => match settled(app, &scope, &fingerprint).await? {
            Some(done) => Ok(Once::Done(done)),
            None => Err(PageError::Conflict(STILL_RUNNING)),
        },
        Some(IdempotencyError::Mismatch) => Err(PageError::Conflict(OTHER_VALUES)),
        Some(IdempotencyError::Store(store)) => Err(PageError::internal(store)),
        None => {
            // Whatever was committed under the key stays; a resubmission resumes from it.
            if let Err(store) = app.end_idempotency_lease(&scope).await {
                tracing::warn!(error = %store, "could not end a form's idempotency lease; it runs out by itself");
            }
            Ok(Once::Ran(Err(error)))
        }
    }
}

/// The stored answer of the key, waiting for a first submission still running; `None` when
/// the form may run.
async fn settled<U: UnitOfWork>(app: &App<U>, scope: &IdempotencyScope, fingerprint: &str) -> Result<Option<StoredResponse>, PageError> {
    for _ in 0..WAIT_STEPS {
        match app.idempotency_status(scope, fingerprint).await {
            Ok(KeyStatus::Replay(response)) => return Ok(Some(response)),
            Ok(KeyStatus::Free) => return Ok(None),
            Err(IdempotencyError::InProgress) => actix_web::rt::time::sleep(WAIT_STEP).await,
            Err(IdempotencyError::Mismatch) => return Err(PageError::Conflict(OTHER_VALUES)),
            Err(other) => return Err(PageError::internal(other)),
        }
    }
    Err(PageError::Conflict(STILL_RUNNING))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_covers_the_path_and_fields_but_not_the_token_or_the_key() {
        let read = |path: &str, body: &str| FormKey::read(path, body.as_bytes()).expect("a key");
        let first = read("/wallet/transfer", "csrf=a&amount=1.00&to=x%40example.com&idempotency_key=web-k");
        let again = read("/wallet/transfer", "amount=1.00&csrf=b&to=x%40example.com&idempotency_key=web-k");
        assert_eq!(first.fingerprint, again.fingerprint);
        assert_eq!(first.key.as_str(), "web-k");
        let other = read("/wallet/transfer", "csrf=a&amount=2.00&to=x%40example.com&idempotency_key=web-k");
        assert_ne!(first.fingerprint, other.fingerprint);
        let elsewhere = read("/wallet/withdraw", "csrf=a&amount=1.00&to=x%40example.com&idempotency_key=web-k");
        assert_ne!(first.fingerprint, elsewhere.fingerprint);
        assert_ne!(first.fingerprint, first.clone().with("cart").fingerprint);
    }

    #[test]
    fn a_form_without_a_well_formed_key_has_none() {
        assert!(FormKey::read("/x", b"amount=1").is_none());
        assert!(FormKey::read("/x", b"idempotency_key=").is_none());
        assert!(FormKey::read("/x", b"idempotency_key=a%20b").is_none());
    }

    #[test]
    fn fresh_keys_differ() {
        let (a, b) = (new_key().expect("randomness"), new_key().expect("randomness"));
        assert_ne!(a, b);
        assert!(a.starts_with("web-") && IdempotencyKey::parse(&a).is_ok());
    }
}
