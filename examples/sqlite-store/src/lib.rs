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
//!   spoiling the transaction. Any statement that fails does spoil it, as in PostgreSQL: SQLite
//!   would undo only that statement, so the transaction refuses further work and `commit` rolls
//!   it back. A `COMMIT` that fails on I/O is `OutcomeUnknown`, since the log may already hold it.
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
        if !connection.is_autocommit() {
            // A transaction whose ROLLBACK failed is still open: end it rather than refuse every
            // transaction from now on.
            connection.execute_batch("ROLLBACK").map_err(store_error)?;
        }
        // IMMEDIATE takes the write lock now rather than at the first write, so that a
        // transaction that read something never finds, at its first write, that another process
        // changed it.
        connection.execute_batch("BEGIN IMMEDIATE").map_err(store_error)?;
        Ok(SqliteTx {
            connection,
            finished: false,
            failed: None,
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
    /// Why a statement failed, once one has: SQLite undoes only the failing statement (or, on an
    /// I/O error, the whole transaction by itself), while the port promises that a failure rolls
    /// the whole transaction back. So later calls are refused and `commit` rolls back.
    failed: Option<String>,
}

impl SqliteTx {
    /// Refuses to go on after a failed statement.
    fn refuse_if_failed(&self) -> StoreResult<()> {
        match &self.failed {
            Some(why) => Err(StoreError::Unexpected(
                format!("the transaction failed earlier and can only be rolled back: {why}").into(),
            )),
            None => Ok(()),
        }
    }

    /// Marks the transaction failed and translates the error.
    fn fail(&mut self, error: rusqlite::Error) -> StoreError {
        self.failed.get_or_insert_with(|| error.to_string());
        store_error(error)
    }

    /// Runs a write and says how many rows it changed.
    pub(crate) fn execute(&mut self, sql: &str, params: impl Params) -> StoreResult<usize> {
        self.refuse_if_failed()?;
        let executed = self
            .connection
            .prepare_cached(sql)
            .and_then(|mut statement| statement.execute(params));
        executed.map_err(|error| self.fail(error))
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
        self.refuse_if_failed()?;
        let mut values = Vec::new();
        let read = read_rows(&self.connection, sql, params, |row| {
            values.push(map(row)?);
            Ok(true)
        });
        self.settle_read(read).map(|()| values)
    }

    /// The first row of a query, if any.
    pub(crate) fn query_opt<T>(
        &mut self,
        sql: &str,
        params: impl Params,
        map: impl FnOnce(&Row<'_>) -> StoreResult<T>,
    ) -> StoreResult<Option<T>> {
        self.refuse_if_failed()?;
        let mut map = Some(map);
        let mut value = None;
        let read = read_rows(&self.connection, sql, params, |row| {
            if let Some(map) = map.take() {
                value = Some(map(row)?);
            }
            Ok(false)
        });
        self.settle_read(read).map(|()| value)
    }

    /// A statement's failure spoils the transaction; a row that does not map back to a domain
    /// value does not (the database did nothing wrong).
    fn settle_read(&mut self, read: Result<StoreResult<()>, rusqlite::Error>) -> StoreResult<()> {
        match read {
            Ok(mapped) => mapped,
            Err(error) => Err(self.fail(error)),
        }
    }

    /// The one row a query must return (a count, a sum).
    pub(crate) fn query_one<T>(&mut self, sql: &str, params: impl Params, map: impl FnOnce(&Row<'_>) -> StoreResult<T>) -> StoreResult<T> {
        self.query_opt(sql, params, map)?
            .ok_or_else(|| StoreError::Corrupt(format!("no row from a query that always returns one: {sql}")))
    }

    /// Rolls back whatever SQLite still holds open; nothing if it rolled back by itself.
    fn roll_back(&mut self) -> StoreResult<()> {
        self.finished = true;
        if self.connection.is_autocommit() {
            return Ok(());
        }
        self.connection.execute_batch("ROLLBACK").map_err(store_error)
    }
}

/// Runs a query and hands its rows to `each` while it answers `Ok(true)`. The outer result is the
/// statement's (a failure of the database), the inner one the mapping's.
fn read_rows(
    connection: &Connection,
    sql: &str,
    params: impl Params,
    mut each: impl FnMut(&Row<'_>) -> StoreResult<bool>,
) -> Result<StoreResult<()>, rusqlite::Error> {
    let mut statement = connection.prepare_cached(sql)?;
    let mut rows = statement.query(params)?;
    while let Some(row) = rows.next()? {
        match each(row) {
            Ok(true) => {}
            Ok(false) => break,
            Err(error) => return Ok(Err(error)),
        }
    }
    Ok(Ok(()))
}

impl Transaction for SqliteTx {
    async fn commit(mut self) -> StoreResult<()> {
        if let Some(why) = self.failed.take() {
            self.roll_back()?;
            return Err(StoreError::Unexpected(
                format!("the transaction failed and was rolled back: {why}").into(),
            ));
        }
        self.finished = true;
        match self.connection.execute_batch("COMMIT") {
            Ok(()) => Ok(()),
            Err(error) => {
                let busy = matches!(
                    error.sqlite_error_code(),
                    Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
                );
                // A failed COMMIT may leave the transaction open: end it.
                let _ = self.roll_back();
                if busy {
                    // Refused before anything was written, and rolled back: it may run again.
                    Err(StoreError::Conflict)
                } else {
                    // An I/O error during COMMIT may come after the commit reached the log, which
                    // recovery would replay: whether it happened cannot be known here.
                    Err(StoreError::OutcomeUnknown(error.to_string()))
                }
            }
        }
    }

    async fn rollback(mut self) -> StoreResult<()> {
        self.roll_back()
    }
}

impl Drop for SqliteTx {
    fn drop(&mut self) {
        if !self.finished {
            // Nothing to report to: the next `begin` rolls back what this could not.
            let _ = self.roll_back();
        }
    }
}
