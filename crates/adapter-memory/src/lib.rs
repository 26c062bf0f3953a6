//! Every storage port in memory: the store of demo mode and of fast tests.
//!
//! One lock guards the whole state, so transactions run one at a time (serializable by
//! construction). A transaction works on a copy of the state, which is cheap because the tables are
//! persistent data structures (`imbl`) that share structure between copies. Commit swaps the copy
//! in; rollback, or dropping the transaction, throws it away. The same uniqueness rules as the
//! database apply: one account per e-mail address, one wallet per user and currency, one record per
//! idempotency key, webhook event and refresh-token hash.

mod cache;
mod state;
mod tx;
mod webhooks;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use application::ports::store::{StoreError, StoreResult, UnitOfWork};
use tokio::sync::Mutex;

pub use crate::cache::MemoryCache;
use crate::state::State;
pub use crate::tx::MemoryTx;

/// The in-memory store. Clones share the same data.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
    faults: Arc<Faults>,
}

/// Failures to inject, for tests of what callers do when storage fails.
#[derive(Debug, Default)]
pub struct Faults {
    conflicting_commits: AtomicU32,
    failing_commits: AtomicU32,
    /// Commits that take effect and then report a failure, as when the connection drops after
    /// the database committed but before it answered.
    unacknowledged_commits: AtomicU32,
    /// A deliberate bug, for showing that the simulation finds one: claiming an idempotency key
    /// always succeeds, as if the unique constraint were missing.
    #[cfg(feature = "mutations")]
    forget_idempotency_claims: std::sync::atomic::AtomicBool,
    /// Repository operations (reads and writes of any table) to let through before one fails;
    /// zero when none is due.
    operations_before_failure: AtomicU32,
    /// Updates of these tables (named as in the PostgreSQL schema) fail while their count lasts.
    failing_writes: std::sync::Mutex<std::collections::HashMap<&'static str, u32>>,
}

impl Faults {
    fn take(counter: &AtomicU32) -> bool {
        counter
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    /// Fails an update of `table` if a failure is due for it, as if the database went away.
    pub(crate) fn write(&self, table: &'static str) -> StoreResult<()> {
        let mut failing = self.failing_writes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match failing.get_mut(table) {
            Some(count) if *count > 0 => {
                *count -= 1;
                Err(StoreError::Unavailable(format!("injected failure writing to {table}")))
            }
            _ => Ok(()),
        }
    }

    /// Counts a repository operation, and fails it if it is the one due to fail, as if the
    /// database went away in the middle of the transaction.
    pub(crate) fn operation(&self, name: &'static str) -> StoreResult<()> {
        let counted = self
            .operations_before_failure
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        match counted {
            Ok(1) => Err(StoreError::Unavailable(format!("injected failure at {name}"))),
            _ => Ok(()),
        }
    }

    /// Whether a commit that took effect reports a failure anyway.
    pub(crate) fn commit_unacknowledged(&self) -> bool {
        Faults::take(&self.unacknowledged_commits)
    }

    /// Whether the deliberate idempotency bug is switched on.
    pub(crate) fn forgets_idempotency_claims(&self) -> bool {
        #[cfg(feature = "mutations")]
        {
            self.forget_idempotency_claims.load(Ordering::SeqCst)
        }
        #[cfg(not(feature = "mutations"))]
        {
            false
        }
    }

    pub(crate) fn commit_outcome(&self) -> StoreResult<()> {
        if Faults::take(&self.conflicting_commits) {
            return Err(StoreError::Conflict);
        }
        if Faults::take(&self.failing_commits) {
            return Err(StoreError::Unavailable("injected commit failure".into()));
        }
        Ok(())
    }
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// The next `count` commits fail with a serialization conflict (and are rolled back).
    pub fn inject_conflicts(&self, count: u32) {
        self.faults.conflicting_commits.store(count, Ordering::SeqCst);
    }

    /// The next `count` commits fail as if the database went away (and are rolled back).
    pub fn inject_commit_failures(&self, count: u32) {
        self.faults.failing_commits.store(count, Ordering::SeqCst);
    }

    /// The next `count` commits take effect and then fail as if the connection dropped before the
    /// database answered: the caller sees an error for work that was done.
    pub fn inject_unacknowledged_commits(&self, count: u32) {
        self.faults.unacknowledged_commits.store(count, Ordering::SeqCst);
    }

    /// The `n`th repository operation from now (`n` >= 1), a read or a write of any table in any
    /// transaction, fails as if the database went away, failing its transaction.
    pub fn fail_operation(&self, n: u32) {
        self.faults.operations_before_failure.store(n, Ordering::SeqCst);
    }

    /// Switches on a deliberate bug (claiming an idempotency key always succeeds), so that a test
    /// can show the simulation catches it.
    #[cfg(feature = "mutations")]
    pub fn forget_idempotency_claims(&self, on: bool) {
        self.faults.forget_idempotency_claims.store(on, Ordering::SeqCst);
    }

    /// The next `count` updates of rows of `table` (`refunds`, `payments`, `orders` or `stock`,
    /// named as in the PostgreSQL schema) fail as if the database went away, failing their
    /// transaction.
    pub fn fail_updates_of(&self, table: &'static str, count: u32) {
        let mut failing = self.faults.failing_writes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        failing.insert(table, count);
    }
}

impl MemoryStore {
    /// A transaction that no injected fault touches, for observers (the simulation's
    /// invariants): its operations neither fail nor count towards the next failure.
    pub async fn begin_unfaulted(&self) -> MemoryTx {
        let guard = Arc::clone(&self.state).lock_owned().await;
        MemoryTx::new(guard, Arc::new(Faults::default()))
    }
}

impl UnitOfWork for MemoryStore {
    type Tx = MemoryTx;

    async fn begin(&self) -> StoreResult<MemoryTx> {
        let guard = Arc::clone(&self.state).lock_owned().await;
        Ok(MemoryTx::new(guard, Arc::clone(&self.faults)))
    }

    async fn ping(&self) -> StoreResult<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use application::ports::store::{OrderRepository, ProductRepository, StoreError, Transaction, UnitOfWork, UserRepository};
    use domain::ids::{OrderId, ProductId, UserId};
    use uuid::Uuid;

    use super::MemoryStore;

    #[tokio::test]
    async fn the_nth_operation_from_now_fails_whatever_it_reads_and_only_it() {
        let store = MemoryStore::new();
        store.fail_operation(3);
        let mut tx = store.begin().await.expect("begin");
        let first = tx.find_user(UserId::from_uuid(Uuid::nil())).await;
        assert!(matches!(first, Ok(None)), "{first:?}");
        tx.rollback().await.expect("rollback");
        // The count runs across transactions.
        let mut tx = store.begin().await.expect("begin");
        let second = tx.find_product(ProductId::from_uuid(Uuid::nil())).await;
        assert!(matches!(second, Ok(None)), "{second:?}");
        let third = tx.find_order(OrderId::from_uuid(Uuid::nil())).await;
        assert!(
            matches!(&third, Err(StoreError::Unavailable(why)) if why.contains("find_order")),
            "{third:?}"
        );
        let fourth = tx.find_order(OrderId::from_uuid(Uuid::nil())).await;
        assert!(matches!(fourth, Ok(None)), "only one operation fails: {fourth:?}");
    }
}
