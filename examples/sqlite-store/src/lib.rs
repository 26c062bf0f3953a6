//! An example of embedding the payment core with a storage adapter of its own: every storage port
//! of `application` implemented over SQLite, through rusqlite.
//!
//! The adapter is written from the ports alone, the way a team with its own database would write
//! one, and it passes the same repository contract as the in-memory and PostgreSQL stores
//! (`tests/contract.rs`). `src/main.rs` drives a purchase and a refund through `application::App`
//! over it, with the ledger checked at the end.
//!
//! How it keeps the ports' promises:
//!
//! - **One writer.** The store owns one connection behind an async mutex, and a transaction holds
//!   that mutex from `begin` to `commit`, `rollback` or drop, inside `BEGIN IMMEDIATE`. So
//!   transactions run one at a time, serializable by construction, and the `lock_*` methods are
//!   plain reads: nothing else can change the rows until the transaction ends. A second process
//!   opening the same file waits for SQLite's write lock (`busy_timeout`) and gets
//!   `StoreError::Timeout` past it.
//! - **Every write reports at once.** Statements run when the port method is called, and a refused
//!   insert (`ON CONFLICT DO NOTHING` with no row changed) is reported as `Duplicate` without
//!   spoiling the transaction.
//! - **Values stored plainly.** Ids are UUID text (which sorts like PostgreSQL's `uuid`), instants
//!   are integer nanoseconds since the Unix epoch (exact, and ordered), money is integer minor
//!   units beside a currency code, and vocabularies (statuses, roles, kinds) are the domain's own
//!   words. `codec` holds the conversions.
//!
//! SQLite calls block the thread they run on. That is fine for an embedded store whose statements
//! take microseconds, but a service with slow disks would run them on `spawn_blocking`.

mod codec;
mod schema;
pub mod shop;

mod calls;
mod catalog;
mod follow_ups;
mod holds;
mod idempotency;
mod ledger;
mod messages;
mod orders;
mod payments;
mod refunds;
mod transfers;
mod users;
mod wallets;
mod webhooks;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use application::ports::store::{StoreError, StoreResult, Transaction, UnitOfWork};
use rusqlite::{Connection, Params, Row};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::codec::store_error;

/// How long a transaction waits for another process's write lock on the same file.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The SQLite store. Clones share one connection, and so one transaction at a time.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    connection: Arc<Mutex<Connection>>,
}

impl SqliteStore {
    /// Opens (or creates) the database file at `path` and brings its schema up to date.
    ///
    /// # Errors
    /// `Unavailable` when the file cannot be opened or the schema cannot be created.
    pub fn open(path: impl AsRef<Path>) -> StoreResult<SqliteStore> {
        let connection = Connection::open(path).map_err(|error| StoreError::Unavailable(error.to_string()))?;
        SqliteStore::with_connection(connection)
    }

    /// A store in memory, gone when the last clone is dropped: for tests.
    ///
    /// # Errors
    /// As `open`.
    pub fn in_memory() -> StoreResult<SqliteStore> {
        let connection = Connection::open_in_memory().map_err(|error| StoreError::Unavailable(error.to_string()))?;
        SqliteStore::with_connection(connection)
    }

    fn with_connection(connection: Connection) -> StoreResult<SqliteStore> {
        connection.busy_timeout(BUSY_TIMEOUT).map_err(store_error)?;
        // Write-ahead logging lets readers in other processes see the last commit while a
        // transaction writes; foreign keys are off in SQLite unless asked for.
        connection
            .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
            .map_err(store_error)?;
        schema::migrate(&connection)?;
        Ok(SqliteStore {
            connection: Arc::new(Mutex::new(connection)),
        })
    }
}

impl UnitOfWork for SqliteStore {
    type Tx = SqliteTx;

    async fn begin(&self) -> StoreResult<SqliteTx> {
        let connection = Arc::clone(&self.connection).lock_owned().await;
        // IMMEDIATE takes the write lock now rather than at the first write, so that a
        // transaction that read something never finds, at its first write, that another process
        // changed it.
        connection.execute_batch("BEGIN IMMEDIATE").map_err(store_error)?;
        Ok(SqliteTx {
            connection,
            finished: false,
        })
    }

    async fn ping(&self) -> StoreResult<()> {
        let connection = self.connection.lock().await;
        connection.query_row("SELECT 1", [], |_| Ok(())).map_err(store_error)
    }
}

/// One transaction: the store's connection, held from `BEGIN IMMEDIATE` to its end.
#[derive(Debug)]
pub struct SqliteTx {
    connection: OwnedMutexGuard<Connection>,
    /// Whether `COMMIT` or `ROLLBACK` has run; if not, dropping the transaction rolls it back.
    finished: bool,
}

impl SqliteTx {
    /// Runs a write and says how many rows it changed.
    pub(crate) fn execute(&mut self, sql: &str, params: impl Params) -> StoreResult<usize> {
        let mut statement = self.connection.prepare_cached(sql).map_err(store_error)?;
        statement.execute(params).map_err(store_error)
    }

    /// Runs a write that must change exactly one row; `what` names the row for the error.
    pub(crate) fn execute_one(&mut self, sql: &str, params: impl Params, what: &str) -> StoreResult<()> {
        match self.execute(sql, params)? {
            1 => Ok(()),
            0 => Err(codec::missing(what)),
            n => Err(StoreError::Corrupt(format!("{n} rows of {what} changed where one was meant to"))),
        }
    }

    /// Every row of a query, each turned into a value by `map`.
    pub(crate) fn query<T>(
        &mut self,
        sql: &str,
        params: impl Params,
        mut map: impl FnMut(&Row<'_>) -> StoreResult<T>,
    ) -> StoreResult<Vec<T>> {
        let mut statement = self.connection.prepare_cached(sql).map_err(store_error)?;
        let mut rows = statement.query(params).map_err(store_error)?;
        let mut values = Vec::new();
        while let Some(row) = rows.next().map_err(store_error)? {
            values.push(map(row)?);
        }
        Ok(values)
    }

    /// The first row of a query, if any.
    pub(crate) fn query_opt<T>(
        &mut self,
        sql: &str,
        params: impl Params,
        map: impl FnOnce(&Row<'_>) -> StoreResult<T>,
    ) -> StoreResult<Option<T>> {
        let mut statement = self.connection.prepare_cached(sql).map_err(store_error)?;
        let mut rows = statement.query(params).map_err(store_error)?;
        match rows.next().map_err(store_error)? {
            Some(row) => map(row).map(Some),
            None => Ok(None),
        }
    }

    /// The one row a query must return (a count, a sum).
    pub(crate) fn query_one<T>(&mut self, sql: &str, params: impl Params, map: impl FnOnce(&Row<'_>) -> StoreResult<T>) -> StoreResult<T> {
        self.query_opt(sql, params, map)?
            .ok_or_else(|| StoreError::Corrupt(format!("no row from a query that always returns one: {sql}")))
    }

    fn finish(&mut self, sql: &str) -> StoreResult<()> {
        self.finished = true;
        self.connection.execute_batch(sql).map_err(store_error)
    }
}

impl Transaction for SqliteTx {
    async fn commit(mut self) -> StoreResult<()> {
        let committed = self.finish("COMMIT");
        if committed.is_err() && !self.connection.is_autocommit() {
            // A failed COMMIT (a full disk, say) leaves the transaction open: end it.
            let _ = self.connection.execute_batch("ROLLBACK");
        }
        committed
    }

    async fn rollback(mut self) -> StoreResult<()> {
        self.finish("ROLLBACK")
    }
}

impl Drop for SqliteTx {
    fn drop(&mut self) {
        if !self.finished && !self.connection.is_autocommit() {
            // Nothing to report to: the next `begin` would fail if this did, and say why.
            let _ = self.connection.execute_batch("ROLLBACK");
        }
    }
}
