//! The PostgreSQL variant: the same world, actors, faults and invariants over `adapter-postgres`,
//! on a fresh test database per run (`adapter_postgres::testing::TestDatabase`).
//!
//! The use-case futures are polled on a current-thread tokio runtime (`executor::Driver`): the
//! seed still chooses every step, input, fault and which task is polled, but how far a task gets
//! in its turn depends on when the database answers, so a seed does not replay exactly (see
//! `docs/simulation.md`). Store faults are armed through triggers installed once
//! (`FaultInjector`): an update of a table fails, a commit fails, a commit conflicts; and the
//! application reaches the database through a proxy (`PgProxy`) that loses the answer to a
//! commit, which the store then resolves with its commit marker, or cuts every connection at
//! whatever statement its transaction is. The
//! invariants are read in a REPEATABLE READ snapshot on a pool of their own, since transactions
//! in flight may commit while they are read.

use adapter_postgres::PgStore;
use adapter_postgres::testing::{CommitFault, FaultInjector, PgProxy, StoreFault, TestDatabase};
use application::ports::store::{StoreResult, UnitOfWork};

use crate::executor::Driver;
use crate::rng::Rng;
use crate::store::{FAILING_TABLES, SimStore};
use crate::world::World;
use crate::{Failure, Summary};

/// A run's own database, its stores and the runtime that drives them.
#[derive(Debug)]
pub struct Postgres {
    /// The application's store, connected through `proxy`.
    store: PgStore,
    /// Between the application and the database: it loses the answer to a `COMMIT` on cue.
    proxy: PgProxy,
    /// A pool of its own for the invariants, so that they never wait for the application's.
    checks: PgStore,
    faults: FaultInjector,
    /// Held for its `Drop`, which drops the database: after the stores (fields drop in order),
    /// and before the runtime.
    _database: TestDatabase,
    driver: Driver,
}

impl Postgres {
    /// A fresh, migrated database with the fault triggers installed.
    ///
    /// # Panics
    /// When PostgreSQL cannot be reached (see `TestDatabase::create`).
    pub fn create() -> Postgres {
        let driver = Driver::runtime();
        let Driver::Runtime(runtime) = &driver else {
            unreachable!("Driver::runtime builds a runtime")
        };
        let (database, store, proxy, checks, faults) = runtime.block_on(async {
            let database = TestDatabase::create().await;
            let proxy = PgProxy::start(server_address(database.url())).await;
            let mut settings = database.settings().clone();
            settings.url = proxy.url_for(database.url());
            let store = PgStore::connect(&settings)
                .await
                .unwrap_or_else(|error| panic!("a pool through the proxy: {error}"));
            let checks = PgStore::connect(database.settings())
                .await
                .unwrap_or_else(|error| panic!("a second pool on the test database: {error}"));
            let faults = FaultInjector::install(database.url(), &FAILING_TABLES).await;
            (database, store, proxy, checks, faults)
        });
        Postgres {
            store,
            proxy,
            checks,
            faults,
            _database: database,
            driver,
        }
    }
}

impl SimStore for Postgres {
    type Store = PgStore;

    fn store(&self) -> PgStore {
        self.store.clone()
    }

    fn driver(&self) -> &Driver {
        &self.driver
    }

    fn inject_fault(&self, rng: &mut Rng) -> String {
        let (fault, description) = match rng.below(6) {
            0 => (StoreFault::CommitConflicts, "conflict at the next commit".to_owned()),
            1 => (StoreFault::CommitFails, "failure at the next commit".to_owned()),
            2 => {
                // Only a transaction that wrote inserts a commit marker.
                self.proxy
                    .on_commit_after("INSERT INTO commit_markers", CommitFault::LoseAnswer, false);
                return "the answer to the next writing commit is lost".to_owned();
            }
            3 => {
                // Every open connection closes, wherever its transaction is; new ones connect.
                self.proxy.cut();
                self.proxy.restore();
                return "every connection to the database is cut".to_owned();
            }
            _ => {
                let table = *rng.pick(&FAILING_TABLES).unwrap_or(&"orders");
                (StoreFault::UpdateFails(table), format!("failure at the next update of {table}"))
            }
        };
        self.driver.block_on(self.faults.arm(fault, 1), 1);
        description
    }

    async fn begin_check(&self) -> StoreResult<adapter_postgres::PgTx> {
        Ok(self.checks.begin_snapshot())
    }

    async fn begin_read(&self) -> StoreResult<adapter_postgres::PgTx> {
        // The fault triggers strike updates and commits that wrote: never a read.
        self.checks.begin().await
    }
}

/// The host and port of the server at `url` (`postgres://user@host:port/database`), for the
/// proxy to forward to.
fn server_address(url: &str) -> std::net::SocketAddr {
    use std::net::ToSocketAddrs;
    let authority = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = authority.split(['/', '?']).next().unwrap_or(authority);
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let host_port = if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:5432")
    };
    host_port
        .to_socket_addrs()
        .ok()
        .and_then(|mut addresses| addresses.next())
        .unwrap_or_else(|| panic!("the test database's server {host_port} has no address"))
}

/// `crate::run` against PostgreSQL: `steps` steps from `seed` on a fresh database.
///
/// # Errors
/// As `crate::run`.
///
/// # Panics
/// When PostgreSQL cannot be reached.
pub fn run(seed: u64, steps: u64) -> Result<Summary, Failure> {
    crate::run_world(World::with_store(seed, Postgres::create()), seed, steps)
}

/// `crate::trace` against PostgreSQL. Two calls for one seed may differ (see the module docs).
///
/// # Panics
/// When PostgreSQL cannot be reached.
pub fn trace(seed: u64, steps: u64) -> Vec<String> {
    crate::trace_world(World::with_store(seed, Postgres::create()), steps)
}
