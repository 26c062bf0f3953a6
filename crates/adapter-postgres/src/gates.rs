//! Admission to stock rows: how many transactions of this process may queue in PostgreSQL for the
//! same product's stock row at once; the others wait here.
//!
//! In a flash sale every purchase queues for one stock row lock. With every connection of the pool
//! queued in PostgreSQL, each commit hands the lock on through PostgreSQL's lock manager, whose
//! partition lock the whole queue contends for (sampling `pg_stat_activity` during `flash-sale`
//! found most backends in `LWLock:LockManager`). With a short queue in PostgreSQL and the rest of
//! it on a semaphore here, the row stays busy, since the next transaction is already waiting when
//! the holder commits, and the handoff is cheap: `flash-sale` gained 8% and its p99 halved
//! (docs/benchmarks.md).
//!
//! Products map onto a fixed number of stripes by the low bits of their id (random in UUIDv7), so
//! memory does not grow with the catalog; products sharing a stripe share its permits, which only
//! matters when both are hot at once. A transaction takes the permits of its cart's stripes in
//! stripe order, so two carts never wait for each other in a cycle, and only a transaction that
//! has sent nothing yet takes permits: it holds no row lock while it waits here, so this wait
//! cannot close a cycle with a lock wait in PostgreSQL. The wait is bounded by the lock timeout,
//! like a lock wait in PostgreSQL, and ends the same way (`StoreError::Timeout`). The permits are
//! released when the transaction ends. A transaction waiting here has not taken its connection
//! from the pool yet, so a flash sale occupies only the connections of the transactions queued in
//! PostgreSQL, and the rest of the traffic keeps the others.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use application::ports::store::{StoreError, StoreResult};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};
use uuid::Uuid;

const STRIPES: usize = 1024;

pub(crate) struct StockGates {
    stripes: Box<[Arc<Semaphore>]>,
    /// Transactions waiting for a permit right now: what a test waits for instead of sleeping.
    waiting: AtomicUsize,
}

/// Counts a transaction as waiting at a gate for as long as it lives, however the wait ends.
struct Waiting<'a>(&'a AtomicUsize);

impl Waiting<'_> {
    fn start(count: &AtomicUsize) -> Waiting<'_> {
        count.fetch_add(1, Ordering::SeqCst);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl StockGates {
    /// Gates letting `waiters` transactions of this process at a stock row at once.
    pub(crate) fn new(waiters: usize) -> StockGates {
        StockGates {
            stripes: (0..STRIPES).map(|_| Arc::new(Semaphore::new(waiters))).collect(),
            waiting: AtomicUsize::new(0),
        }
    }

    /// How many transactions are waiting for a permit.
    #[cfg(feature = "testing")]
    pub(crate) fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    /// Waits for a permit for every product's stripe, at most `timeout` in all (zero: no limit).
    pub(crate) async fn pass(&self, products: &[Uuid], timeout: Duration) -> StoreResult<Vec<OwnedSemaphorePermit>> {
        let mut stripes: Vec<usize> = products.iter().map(|id| stripe_of(*id)).collect();
        stripes.sort_unstable();
        stripes.dedup();
        let acquire = async {
            let mut permits = Vec::with_capacity(stripes.len());
            for stripe in stripes {
                let gate = &self.stripes[stripe];
                let permit = match Arc::clone(gate).try_acquire_owned() {
                    Ok(permit) => permit,
                    Err(TryAcquireError::Closed) => return Err(closed()),
                    Err(TryAcquireError::NoPermits) => {
                        let _waiting = Waiting::start(&self.waiting);
                        Arc::clone(gate).acquire_owned().await.map_err(|_| closed())?
                    }
                };
                permits.push(permit);
            }
            Ok(permits)
        };
        if timeout.is_zero() {
            return acquire.await;
        }
        tokio::time::timeout(timeout, acquire).await.unwrap_or(Err(StoreError::Timeout))
    }
}

fn closed() -> StoreError {
    StoreError::Unavailable("the stock gates are closed".into())
}

fn stripe_of(id: Uuid) -> usize {
    // The remainder is below STRIPES, so the conversion cannot truncate.
    (id.as_u128() % STRIPES as u128) as usize
}

impl std::fmt::Debug for StockGates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StockGates")
            .field("stripes", &self.stripes.len())
            .field("waiting", &self.waiting)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_gate_times_out_and_other_stripes_stay_open() {
        let gates = StockGates::new(1);
        let hot = Uuid::from_u128(5);
        let held = gates.pass(&[hot], Duration::ZERO).await.expect("first");
        let refused = gates.pass(&[hot], Duration::from_millis(20)).await;
        assert!(matches!(refused, Err(StoreError::Timeout)), "{refused:?}");
        assert_eq!(gates.waiting.load(Ordering::SeqCst), 0, "a wait that timed out is over");
        let other = gates.pass(&[Uuid::from_u128(6)], Duration::from_millis(20)).await;
        assert!(other.is_ok(), "{other:?}");
        drop(held);
        assert!(gates.pass(&[hot], Duration::from_millis(20)).await.is_ok());
    }

    #[tokio::test]
    async fn products_sharing_a_stripe_take_one_permit() {
        let gates = StockGates::new(1);
        let a = Uuid::from_u128(7);
        let b = Uuid::from_u128(7 + STRIPES as u128);
        let permits = gates.pass(&[a, b], Duration::from_millis(20)).await.expect("one permit for both");
        assert_eq!(permits.len(), 1);
    }

    #[tokio::test]
    async fn a_transaction_counts_as_waiting_only_while_it_waits() {
        let gates = Arc::new(StockGates::new(1));
        let hot = Uuid::from_u128(5);
        let held = gates.pass(&[hot], Duration::ZERO).await.expect("first");
        assert_eq!(gates.waiting.load(Ordering::SeqCst), 0, "an open gate is passed without waiting");
        let second = tokio::spawn({
            let gates = Arc::clone(&gates);
            async move { gates.pass(&[hot], Duration::ZERO).await.map(|permits| permits.len()) }
        });
        // On this single-threaded runtime the spawned task runs, up to its wait, when this one yields.
        while gates.waiting.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        drop(held);
        assert_eq!(second.await.expect("task").expect("pass"), 1);
        assert_eq!(gates.waiting.load(Ordering::SeqCst), 0);
    }
}
