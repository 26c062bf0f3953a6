//! Building responses, and running money-moving requests under an `Idempotency-Key`.

use std::future::Future;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};
use application::idempotency::{IdempotencyScope, Idempotent, KeyStatus, StoredResponse};
use application::ports::store::UnitOfWork;
use domain::ids::UserId;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::extract::IdempotencyHeader;
use crate::problem::ApiError;
use crate::state::ApiState;

/// A JSON response as bytes, with its status and `Location`: what an idempotency key stores.
pub fn stored<T: Serialize>(status: StatusCode, body: &T, location: Option<String>) -> StoredResponse {
    StoredResponse {
        status: status.as_u16(),
        body: serde_json::to_vec(body).unwrap_or_default(),
        location,
    }
}

pub fn send(response: &StoredResponse, replayed: bool) -> HttpResponse {
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::OK);
    let mut builder = HttpResponse::build(status);
    // A stored refusal is a problem document like the one first sent.
    let content_type = if status.is_client_error() || status.is_server_error() {
        "application/problem+json"
    } else {
        "application/json"
    };
    builder.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(content_type)));
    if let Some(location) = &response.location {
        builder.insert_header((header::LOCATION, location.as_str()));
    }
    if replayed {
        builder.insert_header(("idempotent-replayed", "true"));
        metrics::counter!("idempotent_replays_total").increment(1);
    }
    builder.body(response.body.clone())
}

pub fn json<T: Serialize>(status: StatusCode, body: &T) -> HttpResponse {
    send(&stored(status, body, None), false)
}

pub fn ok<T: Serialize>(body: &T) -> HttpResponse {
    json(StatusCode::OK, body)
}

/// The request's fingerprint: the same key must come back with the same method, path and body.
fn fingerprint(req: &HttpRequest, body: &[u8]) -> String {
    let mut digest = Sha256::new();
    digest.update(req.method().as_str().as_bytes());
    digest.update(b" ");
    digest.update(req.uri().path_and_query().map_or(req.path(), |p| p.as_str()).as_bytes());
    digest.update(b"\n");
    digest.update(body);
    hex::encode(digest.finalize())
}

/// Runs `run` once per idempotency key, with Stripe's semantics: a replay gets the stored
/// response; a use of the key for another request is refused; a request still holding the key
/// makes this one wait (409). The use case claims the key in its own first transaction. A
/// business refusal is stored as the key's outcome and replayed; a failure that stored nothing
/// (the database or a provider was unavailable) ends the claim's lease at once, so that a retry
/// resumes from whatever the use case had committed.
pub async fn idempotently<U, T, E, F, Fut>(
    state: &ApiState<U>,
    principal: Option<UserId>,
    key: IdempotencyHeader,
    (req, body): (&HttpRequest, &[u8]),
    render: fn(&T) -> StoredResponse,
    run: F,
) -> Result<HttpResponse, ApiError>
where
    U: UnitOfWork,
    F: FnOnce(Option<Idempotent<T>>) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    ApiError: From<E>,
{
    let Some(key) = key.0 else {
        let output = run(None).await?;
        return Ok(send(&render(&output), false));
    };
    let scope = IdempotencyScope { principal, key };
    let fingerprint = fingerprint(req, body);
    if let KeyStatus::Replay(response) = state.app.idempotency_status(&scope, &fingerprint).await? {
        return Ok(send(&response, true));
    }
    let idempotent = Idempotent {
        scope: scope.clone(),
        fingerprint: fingerprint.clone(),
        render,
    };
    let error = match run(Some(idempotent)).await {
        Ok(output) => return Ok(send(&render(&output), false)),
        Err(error) => ApiError::from(error),
    };
    if error.code() == IDEMPOTENCY_COMPLETED {
        // Another request with the key finished while this one started: answer as it did.
        if let KeyStatus::Replay(response) = state.app.idempotency_status(&scope, &fingerprint).await? {
            return Ok(send(&response, true));
        }
    }
    if error.is_outcome() {
        let response = error.to_stored_response();
        if let Err(store) = state.app.store_idempotent_refusal(&scope, &fingerprint, &response).await {
            tracing::warn!(error = %store, "could not store a refusal under its idempotency key; a retry runs again");
        }
    } else if !error.is_idempotency_conflict() {
        end_lease(state, scope).await;
    }
    Err(error)
}

/// The code of `IdempotencyError::Completed`.
pub(crate) const IDEMPOTENCY_COMPLETED: &str = "idempotency_key_completed";

/// Ends a failed request's claim so a retry may resume at once. While the database cannot be
/// reached that cannot be written; it is tried again in the background (a few times a second)
/// until it is, so a claim never blocks retries longer than the outage, and never longer than
/// its lease.
async fn end_lease<U: UnitOfWork>(state: &ApiState<U>, scope: IdempotencyScope) {
    if state.app.end_idempotency_lease(&scope).await.is_ok() {
        return;
    }
    let app = std::sync::Arc::clone(&state.app);
    let lease = app.settings.idempotency_lease.unsigned_abs();
    tokio::spawn(async move {
        let started = std::time::Instant::now();
        let mut wait = std::time::Duration::from_millis(50);
        while started.elapsed() < lease {
            tokio::time::sleep(wait).await;
            match app.end_idempotency_lease(&scope).await {
                Ok(()) => return,
                Err(error) => tracing::debug!(%error, "ending an idempotency lease failed; trying again"),
            }
            wait = (wait * 2).min(std::time::Duration::from_millis(250));
        }
    });
}
