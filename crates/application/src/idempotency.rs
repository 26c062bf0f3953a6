//! Idempotency keys.
//!
//! A client sends `Idempotency-Key` with a request that moves money or creates something. The
//! first request *claims* the key (a short transaction), then runs its use case, which stores the
//! response **in the same transaction as its effect**. A later request with the same key and the
//! same request fingerprint gets the stored response back; with a different fingerprint it is
//! refused; while the first is still running it is told to wait. If the first request fails
//! without effect, its claim is released and the key may be used again. If its process dies, the
//! claim's lease runs out and the next attempt takes it over: nothing was committed, so running
//! again is safe.

use domain::ids::UserId;
use time::{Duration, OffsetDateTime};

use crate::context::App;
use crate::ports::store::{ClaimOutcome, IdempotencyRepository, StoreError, UnitOfWork};
use crate::transact::{Retryable, transact};

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdempotencyKey(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an idempotency key has 1 to 255 visible ASCII characters")]
pub struct IdempotencyKeyError;

impl IdempotencyKey {
    pub fn parse(text: &str) -> Result<IdempotencyKey, IdempotencyKeyError> {
        let valid = !text.is_empty() && text.len() <= 255 && text.bytes().all(|b| b.is_ascii_graphic());
        if valid {
            Ok(IdempotencyKey(text.to_owned()))
        } else {
            Err(IdempotencyKeyError)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whose key it is. Anonymous requests (registration) share one scope; their replay still needs
/// the identical request, password included.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdempotencyScope {
    pub principal: Option<UserId>,
    pub key: IdempotencyKey,
}

impl IdempotencyScope {
    /// The principal as stored: a user id, or `anonymous`.
    pub fn principal_text(&self) -> String {
        self.principal.map_or_else(|| "anonymous".to_owned(), |id| id.to_string())
    }
}

/// A response as the client first received it, replayed byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub body: Vec<u8>,
    pub location: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyState {
    InProgress { locked_until: OffsetDateTime },
    Completed(StoredResponse),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub scope: IdempotencyScope,
    /// A digest of method, path and body: the same key must come with the same request.
    pub fingerprint: String,
    pub state: IdempotencyState,
    pub created_at: OffsetDateTime,
}

/// Proof that this request holds the key; use cases complete it in their transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyClaim {
    pub scope: IdempotencyScope,
}

/// What the HTTP layer hands to a use case: the claim, and how to render the use case's result
/// as the response to store.
pub struct Idempotent<T> {
    pub claim: IdempotencyClaim,
    pub render: fn(&T) -> StoredResponse,
}

impl<T> std::fmt::Debug for Idempotent<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Idempotent").field("claim", &self.claim).finish_non_exhaustive()
    }
}

impl<T> Idempotent<T> {
    /// Stores the rendered response in the use case's transaction.
    pub(crate) async fn complete<Tx: IdempotencyRepository>(&self, tx: &mut Tx, output: &T, at: OffsetDateTime) -> Result<(), StoreError> {
        tx.complete_idempotency_key(&self.claim.scope, &(self.render)(output), at).await
    }
}

/// Completes the claim, if there is one.
pub(crate) async fn complete_if_claimed<Tx: IdempotencyRepository, T>(
    idempotent: Option<&Idempotent<T>>,
    tx: &mut Tx,
    output: &T,
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    match idempotent {
        Some(idempotent) => idempotent.complete(tx, output, at).await,
        None => Ok(()),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Go ahead; complete the claim with the response.
    Proceed(IdempotencyClaim),
    /// Already done: send this.
    Replay(StoredResponse),
}

#[derive(Debug, thiserror::Error)]
pub enum IdempotencyError {
    #[error("a request with this idempotency key is still being processed")]
    InProgress,
    #[error("this idempotency key was used with a different request")]
    Mismatch,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Retryable for IdempotencyError {
    fn store_error(&self) -> Option<&StoreError> {
        match self {
            IdempotencyError::Store(error) => Some(error),
            IdempotencyError::InProgress | IdempotencyError::Mismatch => None,
        }
    }
}

impl<U: UnitOfWork> App<U> {
    /// Claims a key for a request, or says what to do instead.
    pub async fn admit_idempotent(&self, scope: IdempotencyScope, fingerprint: String) -> Result<Admission, IdempotencyError> {
        let now = self.clock.now();
        let locked_until = now + self.settings.idempotency_lease;
        let record = IdempotencyRecord {
            scope: scope.clone(),
            fingerprint,
            state: IdempotencyState::InProgress { locked_until },
            created_at: now,
        };
        let record = &record;
        transact(&self.store, move |mut tx| async move {
            let result = admit(&mut tx, record, now, locked_until).await;
            (tx, result)
        })
        .await
    }

    /// Gives up a claim whose request had no effect, so the key can be used again.
    pub async fn release_idempotent(&self, claim: &IdempotencyClaim) -> Result<(), StoreError> {
        transact(&self.store, move |mut tx| async move {
            let result = tx.release_idempotency_key(&claim.scope).await;
            (tx, result)
        })
        .await
    }
}

async fn admit<Tx: IdempotencyRepository>(
    tx: &mut Tx,
    record: &IdempotencyRecord,
    now: OffsetDateTime,
    locked_until: OffsetDateTime,
) -> Result<Admission, IdempotencyError> {
    let claim = IdempotencyClaim {
        scope: record.scope.clone(),
    };
    let existing = match tx.claim_idempotency_key(record).await? {
        ClaimOutcome::Claimed => return Ok(Admission::Proceed(claim)),
        ClaimOutcome::Existing(existing) => existing,
    };
    if existing.fingerprint != record.fingerprint {
        return Err(IdempotencyError::Mismatch);
    }
    match existing.state {
        IdempotencyState::Completed(response) => Ok(Admission::Replay(response)),
        IdempotencyState::InProgress { locked_until: lease_end } if lease_end > now => Err(IdempotencyError::InProgress),
        IdempotencyState::InProgress { .. } => {
            tx.renew_idempotency_lease(&record.scope, locked_until).await?;
            Ok(Admission::Proceed(claim))
        }
    }
}

/// How long a claim protects a running request before another may take the key over.
pub const LEASE_DEFAULT: Duration = Duration::seconds(60);
