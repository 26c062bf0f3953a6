//! Idempotency keys, with Stripe's semantics: once a request has started executing, its outcome
//! is the key's outcome.
//!
//! A client sends `Idempotency-Key` with a request that moves money or creates something. The
//! use case claims the key **in its first transaction**, together with its effect:
//!
//! - A use case of one transaction completes the key with its response in that transaction. If
//!   the transaction fails, the claim rolls back with the effect: there is nothing to release,
//!   and a retry (even right after a database outage) runs afresh.
//! - A use case of several steps (a card checkout, top-up or refund: commit, call the provider,
//!   record its answer) commits the claim in progress with a *recovery point* naming what it has
//!   committed so far. A retry whose claim is no longer held resumes from there, asking the
//!   provider again under the same provider idempotency key, so no committed effect is repeated.
//!
//! A later request with the key and the same request fingerprint gets the stored response back;
//! with another fingerprint it is refused; while the first still holds the key it is told to
//! wait. Business refusals (insufficient funds, out of stock) are stored and replayed like
//! successes; failures that committed nothing (storage unavailable, a conflict) store nothing.
//! A claim is held for a lease: a request that fails ends its lease at once, and one whose
//! process died loses it when the lease runs out.

use time::{Duration, OffsetDateTime};

use crate::context::App;
pub use crate::ports::records::{
    IdempotencyKey, IdempotencyKeyError, IdempotencyRecord, IdempotencyScope, IdempotencyState, RecoveryPoint, RecoveryPointError,
    StoredResponse,
};
use crate::ports::store::{ClaimOutcome, IdempotencyRepository, StoreError, UnitOfWork};
use crate::transact::{Retryable, transact, work};

/// What the HTTP layer hands to a use case: the key, the request's fingerprint, and how to render
/// the use case's result as the response to store.
///
/// A key's life, as the HTTP layer drives it (its own `render` writes the JSON it sends):
///
/// ```
/// use std::sync::Arc;
///
/// use adapter_memory::{MemoryCache, MemoryStore};
/// use application::auth::{RegisterError, Registration};
/// use application::idempotency::{IdempotencyError, IdempotencyKey, IdempotencyScope, Idempotent, KeyStatus, StoredResponse};
/// use application::ports::gateway::Gateways;
/// use application::ports::system::{ManualClock, UuidV7Generator};
/// use application::testing::{PlainHasher, RecordingWebhooks, SpelledTokens};
/// use application::{App, Settings};
/// use domain::user::{Role, User};
/// use domain::OffsetDateTime;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let app = App {
/// #     store: MemoryStore::new(),
/// #     clock: Arc::new(ManualClock::new(OffsetDateTime::UNIX_EPOCH)),
/// #     ids: Arc::new(UuidV7Generator),
/// #     hasher: Arc::new(PlainHasher),
/// #     tokens: Arc::new(SpelledTokens::default()),
/// #     gateways: Gateways::new(),
/// #     cache: Arc::new(MemoryCache::new()),
/// #     webhooks: Arc::new(RecordingWebhooks::default()),
/// #     settings: Settings::default(),
/// # };
/// fn render(user: &User) -> StoredResponse {
///     StoredResponse { status: 201, body: user.id.to_string().into_bytes(), location: None }
/// }
/// // Sign-up is anonymous, so its keys have no principal.
/// let scope = IdempotencyScope { principal: None, key: IdempotencyKey::parse("signup-7f3a")? };
/// let keyed = || Idempotent { scope: scope.clone(), fingerprint: "sha256-of-the-request".into(), render };
/// let registration = || Registration { email: "ann@example.com".into(), password: "correct horse 9".into(), role: Role::Customer };
///
/// // Before running a request, the HTTP layer asks what the key says: free, so it runs.
/// assert_eq!(app.idempotency_status(&scope, "sha256-of-the-request").await?, KeyStatus::Free);
/// let user = app.register(registration(), Some(keyed())).await?;
///
/// // A retry of the same request is answered with the stored response; the use case does not run.
/// match app.idempotency_status(&scope, "sha256-of-the-request").await? {
///     KeyStatus::Replay(response) => assert_eq!(response.body, user.id.to_string().into_bytes()),
///     KeyStatus::Free => unreachable!("the key was completed with the sign-up"),
/// }
/// // The key with another request is refused (422); and the use case itself never runs twice.
/// assert!(matches!(app.idempotency_status(&scope, "another-request").await, Err(IdempotencyError::Mismatch)));
/// assert!(matches!(
///     app.register(registration(), Some(keyed())).await,
///     Err(RegisterError::Idempotency(IdempotencyError::Completed))
/// ));
/// # Ok(())
/// # }
/// ```
pub struct Idempotent<T> {
    /// The client's key, scoped to the caller.
    pub scope: IdempotencyScope,
    /// A digest of the request (method, path, body): the same key must come with the same request.
    pub fingerprint: String,
    /// Renders the use case's result as the response a retry replays.
    pub render: fn(&T) -> StoredResponse,
}

impl<T> std::fmt::Debug for Idempotent<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Idempotent").field("scope", &self.scope).finish_non_exhaustive()
    }
}

/// A key claimed inside a use case's transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Claim {
    /// Nothing was committed under the key yet: run the use case.
    Fresh,
    /// An earlier attempt committed this much and then stopped: carry on from here.
    Resume(RecoveryPoint),
}

/// What a key says before a request runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyStatus {
    /// The request may run (it claims the key in its transaction).
    Free,
    /// Already answered: send this.
    Replay(StoredResponse),
}

/// Why a request cannot run under its key. The HTTP layer answers 409 for `InProgress` and 422 for
/// `Mismatch`, and replays the stored response for `Completed`.
#[derive(Debug, thiserror::Error)]
pub enum IdempotencyError {
    /// Another request with the key is still running (its lease has not run out).
    #[error("a request with this idempotency key is still being processed")]
    InProgress,
    /// The key was used with a different request (another fingerprint).
    #[error("this idempotency key was used with a different request")]
    Mismatch,
    /// Another request with the key completed while this one started; replay its response.
    #[error("a request with this idempotency key has just completed")]
    Completed,
    /// Storage failed; nothing was stored under the key.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Retryable for IdempotencyError {
    fn store_error(&self) -> Option<&StoreError> {
        match self {
            IdempotencyError::Store(error) => Some(error),
            IdempotencyError::InProgress | IdempotencyError::Mismatch | IdempotencyError::Completed => None,
        }
    }
}

/// Implements `From<IdempotencyError>` for use-case errors with `Idempotency` and `Store`
/// variants, keeping storage failures where `transact` looks for them.
#[macro_export]
macro_rules! keyed {
    ($($error:ty),* $(,)?) => {
        $(impl From<$crate::idempotency::IdempotencyError> for $error {
            fn from(error: $crate::idempotency::IdempotencyError) -> Self {
                match error {
                    $crate::idempotency::IdempotencyError::Store(error) => Self::Store(error),
                    other => Self::Idempotency(other),
                }
            }
        })*
    };
}

/// The key of a request, if it has one, as its use case holds it: claimed first in the use case's
/// transaction, then marked with recovery points or completed with the response.
pub(crate) struct Key<'a, T> {
    idempotent: Option<&'a Idempotent<T>>,
    lease: Duration,
}

// Not derived: a key is a pair of a reference and a duration whatever `T` is.
impl<T> Clone for Key<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Key<'_, T> {}

impl<'a, T> Key<'a, T> {
    /// Claims the key, if there is one. Call it first: the key row is the first lock a keyed use
    /// case takes. A concurrent request with the same key waits for this transaction and then
    /// finds the key taken.
    pub(crate) async fn claim<Tx: IdempotencyRepository + Send>(self, tx: &mut Tx, now: OffsetDateTime) -> Result<Claim, IdempotencyError> {
        let Some(idempotent) = self.idempotent else {
            return Ok(Claim::Fresh);
        };
        let locked_until = now + self.lease;
        let record = IdempotencyRecord {
            scope: idempotent.scope.clone(),
            fingerprint: idempotent.fingerprint.clone(),
            state: IdempotencyState::InProgress {
                locked_until,
                recovery: None,
            },
            created_at: now,
        };
        let existing = match tx.claim_idempotency_key(&record).await? {
            ClaimOutcome::Claimed => return Ok(Claim::Fresh),
            ClaimOutcome::Existing(existing) => existing,
        };
        if existing.fingerprint != record.fingerprint {
            return Err(IdempotencyError::Mismatch);
        }
        match existing.state {
            IdempotencyState::Completed(_) => Err(IdempotencyError::Completed),
            IdempotencyState::InProgress {
                locked_until: held_until, ..
            } if held_until > now => Err(IdempotencyError::InProgress),
            IdempotencyState::InProgress { recovery, .. } => {
                tx.renew_idempotency_lease(&record.scope, locked_until).await?;
                Ok(recovery.map_or(Claim::Fresh, Claim::Resume))
            }
        }
    }

    /// Records, in a step's transaction, what the request has committed so far.
    pub(crate) async fn mark<Tx: IdempotencyRepository + Send>(self, tx: &mut Tx, point: &RecoveryPoint) -> Result<(), StoreError> {
        match self.idempotent {
            Some(idempotent) => tx.set_idempotency_recovery_point(&idempotent.scope, point).await,
            None => Ok(()),
        }
    }

    /// Stores the rendered response in the use case's transaction, if the request has a key.
    pub(crate) async fn complete<Tx: IdempotencyRepository + Send>(
        self,
        tx: &mut Tx,
        output: &T,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        match self.idempotent {
            Some(idempotent) => {
                tx.complete_idempotency_key(&idempotent.scope, &(idempotent.render)(output), at)
                    .await
            }
            None => Ok(()),
        }
    }

    /// Whether a retry under the key can resume this request.
    pub(crate) fn resumable(self) -> bool {
        self.idempotent.is_some()
    }
}

impl<U: UnitOfWork> App<U> {
    /// The request's key as its use case holds it, with the configured lease.
    pub(crate) fn key<'a, T>(&self, idempotent: Option<&'a Idempotent<T>>) -> Key<'a, T> {
        Key {
            idempotent,
            lease: self.settings.idempotency_lease,
        }
    }
}

impl<U: UnitOfWork> App<U> {
    /// What the key says before the request runs: free, already answered, used for another
    /// request, or held by a request still running. A read: the claim itself happens in the use
    /// case's transaction.
    pub async fn idempotency_status(&self, scope: &IdempotencyScope, fingerprint: &str) -> Result<KeyStatus, IdempotencyError> {
        let now = self.clock.now();
        let record = transact(&self.store, |tx| work(tx.find_idempotency_record(scope))).await?;
        let Some(record) = record else {
            return Ok(KeyStatus::Free);
        };
        if record.fingerprint != fingerprint {
            return Err(IdempotencyError::Mismatch);
        }
        match record.state {
            IdempotencyState::Completed(response) => Ok(KeyStatus::Replay(response)),
            IdempotencyState::InProgress { locked_until, .. } if locked_until > now => Err(IdempotencyError::InProgress),
            IdempotencyState::InProgress { .. } => Ok(KeyStatus::Free),
        }
    }

    /// Stores a business refusal (insufficient funds, out of stock, a declined card) as the key's
    /// outcome, so a retry replays it. A key another request has completed meanwhile keeps its
    /// response.
    pub async fn store_idempotent_refusal(
        &self,
        scope: &IdempotencyScope,
        fingerprint: &str,
        response: &StoredResponse,
    ) -> Result<(), StoreError> {
        let now = self.clock.now();
        let record = IdempotencyRecord {
            scope: scope.clone(),
            fingerprint: fingerprint.to_owned(),
            state: IdempotencyState::Completed(response.clone()),
            created_at: now,
        };
        let record = &record;
        transact(&self.store, |tx| work(tx.settle_idempotency_key(record, now))).await
    }

    /// Ends the lease of a claim whose request failed without a stored outcome, so a retry may
    /// take the key at once and resume from its recovery point. A key that was never committed
    /// (the use case's transaction rolled back) has nothing to end.
    pub async fn end_idempotency_lease(&self, scope: &IdempotencyScope) -> Result<(), StoreError> {
        let now = self.clock.now();
        transact(&self.store, |tx| work(tx.end_idempotency_lease(scope, now))).await
    }
}
