//! Running a use case's work in a transaction, with bounded retry of conflicts.
//!
//! The work is a closure that borrows the transaction and returns a future, usually a call of a
//! named `async fn(tx: &mut Tx, ...)` with the narrow repository bounds it needs:
//!
//! ```
//! use adapter_memory::MemoryStore;
//! use application::ports::store::{StoreError, UserRepository, WalletRepository};
//! use application::transact::{transact, work};
//! use domain::ids::UserId;
//! use uuid::Uuid;
//!
//! /// A unit of work, with only the repositories it needs.
//! async fn wallet_count<Tx: UserRepository + WalletRepository + Send>(tx: &mut Tx, user: UserId) -> Result<Option<usize>, StoreError> {
//!     if tx.find_user(user).await?.is_none() {
//!         return Ok(None);
//!     }
//!     Ok(Some(tx.list_user_wallets(user).await?.len()))
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), StoreError> {
//! let store = MemoryStore::new();
//! let nobody = UserId::from_uuid(Uuid::from_u128(1));
//! let count = transact(&store, |tx| work(wallet_count(tx, nobody))).await?;
//! assert_eq!(count, None);
//! # Ok(())
//! # }
//! ```
//!
//! In the use cases it reads `transact(&self.store, |tx| work(pay_by_wallet(tx, ids, buyer, ..))).await`.
//!
//! On `Ok` the transaction is committed, on `Err` rolled back. A serialization failure or deadlock
//! (`StoreError::Conflict`) reruns the whole work, at most `ATTEMPTS_MAX` times, so a client never
//! sees one unless the database is pathologically contended.
//!
//! Each attempt runs in a `transaction` span (a child of the use case's span), which names the
//! line that called `transact` (`caller`), the attempt's number and how it ended (`outcome`:
//! `commit`; `conflict`, then retried; or `rollback`, for the work's error or the database's),
//! so a trace shows every unit of work and its retries.

use std::future::Future;
use std::marker::PhantomData;
use std::panic::Location;
use std::pin::Pin;

use tracing::Instrument;

use crate::ports::store::{Contention, StoreError, Transaction, UnitOfWork};

/// How many times a conflicted transaction is run in all before the conflict is returned.
pub const ATTEMPTS_MAX: u32 = 5;

/// Implemented by every use-case error: says whether it wraps a retryable storage error.
pub trait Retryable: From<StoreError> {
    /// The storage error inside, if there is one.
    fn store_error(&self) -> Option<&StoreError>;

    /// Whether the error is a storage conflict, so that [`transact`] runs the work again.
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

/// Names the repositories a group of use-case functions needs, as a trait every transaction with
/// them implements: `repositories!(pub(crate) SettlementTx: PaymentRepository, OrderRepository);`
#[macro_export]
macro_rules! repositories {
    ($vis:vis $name:ident: $first:path $(, $rest:path)* $(,)?) => {
        $vis trait $name: $first $(+ $rest)* + Send {}

        impl<T: $first $(+ $rest)* + Send> $name for T {}
    };
}

/// The work of one transaction: a future that borrows the transaction for `'t` and the use case's
/// own data for `'c`. `'c` outlives `'t`, which the phantom says; that is what lets the work
/// borrow both (the trick of the `scoped-futures` crate, as diesel-async uses it). Boxed, so that
/// it is `Send` whatever the work, as tasks need.
pub struct Work<'c, 't, T>(Pin<Box<dyn Future<Output = T> + Send + 't>>, PhantomData<&'t &'c ()>);

impl<T> std::fmt::Debug for Work<'_, '_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Work")
    }
}

/// Wraps a future as a transaction's work.
pub fn work<'c, 't, T>(future: impl Future<Output = T> + Send + 't) -> Work<'c, 't, T> {
    Work(Box::pin(future), PhantomData)
}

/// Runs `body` in a transaction of `store`: commits on `Ok`, rolls back on `Err`, reruns on a
/// conflict. (A plain `fn` returning the future, so that `#[track_caller]` can name the caller's
/// line in each attempt's span.)
#[track_caller]
pub fn transact<'c, U, T, E, F>(store: &U, body: F) -> impl Future<Output = Result<T, E>>
where
    U: UnitOfWork,
    E: Retryable,
    F: for<'t> FnMut(&'t mut U::Tx) -> Work<'c, 't, Result<T, E>>,
{
    let caller = Location::caller();
    run_transaction(store, Source::Primary, body, caller)
}

/// As `transact`, for reads that may lag behind the latest commits (`UnitOfWork::begin_lagging`:
/// a read replica where there is one): lists, history, statements, the catalog. Never for work
/// that decides about money or writes.
#[track_caller]
pub fn transact_lagging<'c, U, T, E, F>(store: &U, body: F) -> impl Future<Output = Result<T, E>>
where
    U: UnitOfWork,
    E: Retryable,
    F: for<'t> FnMut(&'t mut U::Tx) -> Work<'c, 't, Result<T, E>>,
{
    let caller = Location::caller();
    run_transaction(store, Source::Lagging, body, caller)
}

/// As `transact`, for work that contends with concurrent work of its kind on the rows `contention`
/// names, which the store may group into one commit (`UnitOfWork::begin_grouped`): a wallet
/// checkout, a transfer. A conflict, including a group that did not commit, reruns the work in a
/// transaction of its own, so a request fails only for its own reasons.
#[track_caller]
pub fn transact_grouped<'c, U, T, E, F>(store: &U, contention: &Contention, body: F) -> impl Future<Output = Result<T, E>>
where
    U: UnitOfWork,
    E: Retryable,
    F: for<'t> FnMut(&'t mut U::Tx) -> Work<'c, 't, Result<T, E>>,
{
    let caller = Location::caller();
    run_transaction(store, Source::Grouped(contention), body, caller)
}

/// Where a transaction runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source<'p> {
    Primary,
    Lagging,
    /// On the primary, grouped with others on the same rows on its first attempt.
    Grouped(&'p Contention),
}

async fn run_transaction<'c, U, T, E, F>(store: &U, source: Source<'_>, mut body: F, caller: &'static Location<'static>) -> Result<T, E>
where
    U: UnitOfWork,
    E: Retryable,
    F: for<'t> FnMut(&'t mut U::Tx) -> Work<'c, 't, Result<T, E>>,
{
    let mut attempt = 1;
    loop {
        let span = tracing::info_span!(
            "transaction",
            caller = %caller,
            attempt,
            lagging = source == Source::Lagging,
            grouped = matches!(source, Source::Grouped(_)) && attempt == 1,
            outcome = tracing::field::Empty
        );
        let outcome: Result<T, E> = async {
            let mut tx = match source {
                Source::Primary => store.begin().await?,
                Source::Lagging => store.begin_lagging().await?,
                Source::Grouped(contention) if attempt == 1 => store.begin_grouped(contention).await?,
                Source::Grouped(_) => store.begin().await?,
            };
            let result = body(&mut tx).0.await;
            match result {
                Ok(value) => tx.commit().await.map(|()| value).map_err(E::from),
                Err(error) => {
                    if let Err(rollback) = tx.rollback().await {
                        tracing::warn!(error = %rollback, "rollback failed; the connection is discarded");
                    }
                    Err(error)
                }
            }
        }
        .instrument(span.clone())
        .await;
        match outcome {
            Err(error) if error.is_retryable() && attempt < ATTEMPTS_MAX => {
                span.record("outcome", "conflict");
                tracing::debug!(attempt, "transaction conflicted; retrying");
                attempt += 1;
            }
            other => {
                span.record("outcome", if other.is_ok() { "commit" } else { "rollback" });
                return other;
            }
        }
    }
}
