//! Building responses, and running money-moving requests under an `Idempotency-Key`.

use std::future::Future;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};
use application::idempotency::{Admission, IdempotencyScope, Idempotent, StoredResponse};
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
    builder.insert_header((header::CONTENT_TYPE, HeaderValue::from_static("application/json")));
    if let Some(location) = &response.location {
        builder.insert_header((header::LOCATION, location.as_str()));
    }
    if replayed {
        builder.insert_header(("idempotent-replayed", "true"));
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

/// Runs `run` once per idempotency key: a replay gets the stored response, a use of the key for
/// another request is refused, and a failure releases the key for another try.
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
    let claim = match state.app.admit_idempotent(scope, fingerprint(req, body)).await? {
        Admission::Replay(response) => return Ok(send(&response, true)),
        Admission::Proceed(claim) => claim,
    };
    match run(Some(Idempotent {
        claim: claim.clone(),
        render,
    }))
    .await
    {
        Ok(output) => Ok(send(&render(&output), false)),
        Err(error) => {
            if let Err(release) = state.app.release_idempotent(&claim).await {
                tracing::warn!(error = %release, "could not release an idempotency key; it frees itself when its lease ends");
            }
            Err(error.into())
        }
    }
}
