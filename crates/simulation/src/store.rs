//! The stores a simulation runs on, behind one trait: the in-memory store (deterministic, fast)
//! and PostgreSQL (`postgres`), each with the driver that polls its futures, the faults it can
//! inject, and a consistent read for the invariants.

use std::future::Future;

use adapter_memory::MemoryStore;
use application::ports::store::{StoreResult, UnitOfWork};

use crate::executor::Driver;
use crate::rng::Rng;

/// Tables whose updates can be made to fail, named as in the PostgreSQL schema.
pub const FAILING_TABLES: [&str; 4] = ["orders", "payments", "refunds", "stock"];

/// A store the simulation can run the application on.
pub trait SimStore: 'static {
    type Store: UnitOfWork;

    /// The store the application uses.
    fn store(&self) -> Self::Store;

    fn driver(&self) -> &Driver;

    /// Injects a store fault chosen by `rng`; returns what it was, for the trace.
    fn inject_fault(&self, rng: &mut Rng) -> String;

    /// A transaction whose reads all see one committed state, for the invariants.
    fn begin_check(&self) -> impl Future<Output = StoreResult<<Self::Store as UnitOfWork>::Tx>>;

    /// A transaction for reading (and locking) once nothing else runs: the reconciliation.
    fn begin_read(&self) -> impl Future<Output = StoreResult<<Self::Store as UnitOfWork>::Tx>>;

    /// Whether every future awaited is in process, so that a check that cannot get the store
    /// means a task holds it across an await point.
    fn in_process(&self) -> bool {
        matches!(self.driver(), Driver::InProcess)
    }
}

/// The in-memory store, with its own fault injection.
#[derive(Debug)]
pub struct InMemory {
    pub store: MemoryStore,
    driver: Driver,
}

impl InMemory {
    pub fn new(store: MemoryStore) -> InMemory {
        InMemory {
            store,
            driver: Driver::InProcess,
        }
    }
}

impl SimStore for InMemory {
    type Store = MemoryStore;

    fn store(&self) -> MemoryStore {
        self.store.clone()
    }

    fn driver(&self) -> &Driver {
        &self.driver
    }

    fn inject_fault(&self, rng: &mut Rng) -> String {
        match rng.below(6) {
            0 => {
                self.store.inject_conflicts(1);
                "conflict at the next commit".into()
            }
            1 => {
                self.store.inject_commit_failures(1);
                "failure at the next commit".into()
            }
            2 => {
                self.store.inject_unacknowledged_commits(1);
                "failure after the next commit".into()
            }
            3 => {
                let n = u32::try_from(rng.range(1, 40)).unwrap_or(1);
                self.store.fail_operation(n);
                format!("failure at the store operation {n} from now")
            }
            _ => {
                let table = *rng.pick(&FAILING_TABLES).unwrap_or(&"orders");
                self.store.fail_updates_of(table, 1);
                format!("failure at the next update of {table}")
            }
        }
    }

    async fn begin_check(&self) -> StoreResult<adapter_memory::MemoryTx> {
        // The whole store is behind one lock: a transaction sees one committed state. The faults
        // injected are for the application's transactions, not for the checks'.
        Ok(self.store.begin_unfaulted().await)
    }

    async fn begin_read(&self) -> StoreResult<adapter_memory::MemoryTx> {
        Ok(self.store.begin_unfaulted().await)
    }
}
