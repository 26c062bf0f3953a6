//! Running a use case in a transaction, with bounded retry of conflicts.
//!
//! The body receives the transaction by value and hands it back with its result, which lets it
//! borrow freely inside an `async move` block. On `Ok` the transaction is committed, on `Err` rolled
//! back. A serialization failure or deadlock (`StoreError::Conflict`) reruns the whole body, at most
//! `ATTEMPTS_MAX` times, so a client never sees one unless the database is pathologically contended.

use std::future::Future;

use crate::ports::store::{StoreError, Transaction, UnitOfWork};

pub const ATTEMPTS_MAX: u32 = 5;

/// Implemented by every use-case error: says whether it wraps a retryable storage error.
pub trait Retryable: From<StoreError> {
    fn store_error(&self) -> Option<&StoreError>;

    fn is_retryable(&self) -> bool {
        self.store_error().is_some_and(StoreError::is_retryable)
    }
}

impl Retryable for StoreError {
    fn store_error(&self) -> Option<&StoreError> {
        Some(self)
    }
}

/// Implements `Retryable` for an error enum with a `Store(StoreError)` variant.
#[macro_export]
macro_rules! retryable {
    ($($error:ty),* $(,)?) => {
        $(impl $crate::transact::Retryable for $error {
            fn store_error(&self) -> Option<&$crate::ports::store::StoreError> {
                match self {
                    Self::Store(error) => Some(error),
                    _ => None,
                }
            }
        })*
    };
}

pub async fn transact<U, T, E, F, Fut>(store: &U, mut body: F) -> Result<T, E>
where
    U: UnitOfWork,
    E: Retryable,
    F: FnMut(U::Tx) -> Fut,
    Fut: Future<Output = (U::Tx, Result<T, E>)>,
{
    let mut attempt = 1;
    loop {
        let tx = store.begin().await?;
        let (tx, result) = body(tx).await;
        let outcome = match result {
            Ok(value) => tx.commit().await.map(|()| value).map_err(E::from),
            Err(error) => {
                if let Err(rollback) = tx.rollback().await {
                    tracing::warn!(error = %rollback, "rollback failed; the connection is discarded");
                }
                Err(error)
            }
        };
        match outcome {
            Err(error) if error.is_retryable() && attempt < ATTEMPTS_MAX => {
                tracing::debug!(attempt, "transaction conflicted; retrying");
                attempt += 1;
            }
            other => return other,
        }
    }
}
