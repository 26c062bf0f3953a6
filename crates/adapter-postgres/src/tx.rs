//! `PgTx`: one PostgreSQL transaction on a pooled connection it owns until commit or rollback.
//!
//! Isolation is READ COMMITTED. What a use case reads in order to write it (balances, stock,
//! order status) it reads through a `lock_*` method, which takes a row lock (`FOR NO KEY UPDATE`:
//! strong enough to serialise writers of the row, weak enough not to block the foreign-key checks
//! of inserts that merely reference it) held until the transaction ends. Locks are taken in one
//! global order (stock by product id, then wallets by wallet id), so transactions wait for each
//! other but do not deadlock; this costs no retries, unlike SERIALIZABLE, which would make every
//! hot-row collision (two purchases of the last unit) a serialization failure to rerun.
//!
//! # A transaction dropped without commit or rollback
//!
//! (A panic, or a cancelled future.) The `PooledConnection` goes back to bb8, which asks the
//! manager `has_broken` first. diesel-async answers from its transaction manager: a connection
//! whose `AnsiTransactionManager` is still inside a transaction, or was interrupted in the middle
//! of `BEGIN`/`COMMIT`/`ROLLBACK`, or whose client is closed, is broken (diesel-async 0.9.2,
//! `pooled_connection::PoolableConnection::is_broken` and
//! `AnsiTransactionManager::is_broken_transaction_manager`). bb8 0.9.1 then drops it instead of
//! reusing it (`PoolInner::put_back`): the socket closes, and PostgreSQL rolls the transaction
//! back and releases its locks. No connection is ever handed out with a transaction open; the
//! price is a new connection for the pool to open. The contract test
//! `a_dropped_transaction_leaves_nothing` checks the outcome.
//!
//! # BEGIN with the first read
//!
//! `BEGIN` is not sent on its own: it travels in one pipeline with the transaction's first
//! statement when that is a read (most use cases start by locking what they change), saving a
//! round trip. Only a read: if `BEGIN` failed while the connection lived on, the statements behind
//! it would run outside any transaction, each committing itself, which is harmless for a read and
//! not for a write; before a first write, `BEGIN` is sent alone. Until `BEGIN` is answered
//! nothing can have happened in the transaction, so a connection found dead then (the server
//! restarted while it sat in the pool) is replaced by another and the round trip sent again: at
//! most once per connection the pool can hold, plus one. The connection itself is taken from the
//! pool just before `BEGIN` is sent, so a transaction that sends nothing costs nothing, and one
//! waiting at a stock gate (`gates`) holds no connection that other requests need.
//!
//! # Deferred writes, and COMMIT in the same pipeline
//!
//! Writes whose only possible failures are faults (an update of a locked row, an append to the
//! ledger or the audit trail) are not sent one by one: `defer` queues them, and the next read, or
//! the commit, sends them all at once, pipelined on the connection (PostgreSQL still runs them one
//! after another, in order). Reads always see the transaction's own writes, since every read first
//! flushes the queue; a deferred statement that fails aborts the transaction exactly as if it had
//! been sent at once, and its error is returned by the read or commit that flushed it. Writes
//! whose failure a use case interprets (a unique e-mail address, a claimed idempotency key) are
//! never deferred.
//!
//! The commit sends `COMMIT` in the same pipeline as the last writes, so a wallet purchase holds
//! its locks (the hot stock row of a flash sale) for one round trip fewer. That is safe because
//! every check of a deferred write happens in the server: one that must change a known number of
//! rows is wrapped so that PostgreSQL raises an error otherwise (`Statement::expecting_changed`),
//! and any error aborts the transaction, after which PostgreSQL answers the `COMMIT` by rolling
//! back. A statement that could not even be rendered would never reach the server, so `defer`
//! renders each one first and refuses to commit a transaction with one that does not render.
//! `COMMIT` is sent after the writes: diesel-async sends each query on its first poll unless it
//! waits for the connection's statement cache (a tokio mutex, first come first served), and
//! `join!` polls the writes first (diesel-async 0.9.2, `with_prepared_statement_after_sql_built`;
//! the version is pinned).

//! # A commit whose answer is lost
//!
//! When the connection dies while `COMMIT` is in flight (the server was restarted, a backend
//! terminated, the network cut), the transaction may or may not have committed. Answering "retry"
//! would let a client without an idempotency key buy twice; answering "failed" would hide a
//! purchase that happened. So every transaction that wrote anything also inserts a row with a
//! fresh id into `commit_markers`, in the pipeline with its last writes. If the answer to `COMMIT`
//! is lost, the store inserts the same id on another connection (`PgStore::resolve_commit`): if the
//! row is there, the transaction committed; if the insert succeeds, it did not, and never will,
//! since its own insert of that id would now conflict (a fence); while the transaction is still
//! in progress on the server, the insert waits for it, bounded by `lock_timeout`. Only when even
//! that cannot be learned is the outcome reported as unknown.

use application::ports::store::{StoreError, StoreResult, Transaction};
use diesel::QueryableByName;
use diesel::connection::{TransactionDepthChange, TransactionManagerStatus};
use diesel::pg::Pg;
use diesel::result::{Error as DieselError, QueryResult};
use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_async::{AnsiTransactionManager, AsyncPgConnection, RunQueryDsl, TransactionManager as _};

use crate::error::{aborts_transaction, translate};
use crate::sql::Statement;
use crate::store::PgStore;
use tokio::sync::OwnedSemaphorePermit;
use uuid::Uuid;

pub(crate) type Connection = bb8::PooledConnection<'static, AsyncDieselConnectionManager<AsyncPgConnection>>;

/// A transaction in progress. Commit or roll it back; dropping it rolls it back (see the module
/// docs).
pub struct PgTx {
    /// Where the connection comes from, and a replacement if it is found dead before `BEGIN` is
    /// answered.
    store: PgStore,
    /// Taken from the pool just before `BEGIN` is sent, so that a transaction waiting for a stock
    /// gate holds none.
    connection: Option<Connection>,
    /// `BEGIN` has not been sent yet (see the module docs).
    begin_pending: bool,
    /// Permits to queue for stock rows (see `gates`), held until the transaction ends.
    stock_permits: Vec<OwnedSemaphorePermit>,
    /// Writes waiting to be sent with the next read or the commit.
    deferred: Vec<Statement<'static>>,
    /// Set when the server refused a statement. PostgreSQL has then aborted the transaction: later
    /// statements would fail and `COMMIT` would quietly roll back, so neither is sent.
    aborted: Option<Aborted>,
    /// Whether anything was written: such a transaction commits with a marker (see the module
    /// docs on a commit whose answer is lost).
    wrote: bool,
}

/// A row as a query returns it, and the domain value it stands for.
pub(crate) trait DomainRow: QueryableByName<Pg> + Send + 'static {
    type Domain;

    fn into_domain(self) -> StoreResult<Self::Domain>;
}

/// The number of rows a deferred write must affect (checked by the server, see the module docs).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Expect {
    Any,
    Rows(usize, &'static str),
}

/// What aborted the transaction, replayed to every later call: a lost connection stays
/// `Unavailable` and a deadlock stays a retryable `Conflict`.
#[derive(Debug, Clone)]
enum Aborted {
    Conflict,
    Timeout,
    Unavailable(String),
    Other(String),
}

impl Aborted {
    fn from_error(error: &StoreError) -> Aborted {
        match error {
            StoreError::Conflict => Aborted::Conflict,
            StoreError::Timeout => Aborted::Timeout,
            StoreError::Unavailable(reason) => Aborted::Unavailable(reason.clone()),
            other => Aborted::Other(other.to_string()),
        }
    }

    fn error(&self) -> StoreError {
        match self {
            Aborted::Conflict => StoreError::Conflict,
            Aborted::Timeout => StoreError::Timeout,
            Aborted::Unavailable(reason) => StoreError::Unavailable(reason.clone()),
            Aborted::Other(reason) => StoreError::Unexpected(format!("the transaction was aborted by an earlier error: {reason}").into()),
        }
    }
}

impl std::fmt::Debug for PgTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTx")
            .field("aborted", &self.aborted)
            .field("deferred", &self.deferred.len())
            .finish_non_exhaustive()
    }
}

impl PgTx {
    /// A transaction whose connection is taken, and `BEGIN` sent, with its first statement.
    pub(crate) fn begin(store: PgStore) -> PgTx {
        PgTx {
            store,
            connection: None,
            begin_pending: true,
            stock_permits: Vec::new(),
            deferred: Vec::new(),
            aborted: None,
            wrote: false,
        }
    }

    /// Records that a statement sent with `load` or `first` writes (an insert that returns rows).
    pub(crate) fn note_write(&mut self) {
        self.wrote = true;
    }

    /// The connection for `BEGIN`, taken from the pool the first time.
    async fn connection_for_begin(&mut self) -> StoreResult<&AsyncPgConnection> {
        if self.connection.is_none() {
            let mut connection = self.store.connection().await?;
            enter_transaction(&mut connection)?;
            self.connection = Some(connection);
        }
        self.open().map(|connection| &*connection)
    }

    /// The connection of a transaction whose `BEGIN` has been sent.
    fn open(&mut self) -> StoreResult<&mut AsyncPgConnection> {
        match &mut self.connection {
            Some(connection) => Ok(&mut **connection),
            None => Err(StoreError::Unexpected(
                "a statement was sent before the transaction had a connection".into(),
            )),
        }
    }

    /// Waits for permission to queue for these stock rows (sorted product ids), if this
    /// transaction has sent nothing yet and so holds no row lock (see `gates`).
    pub(crate) async fn pass_stock_gates(&mut self, products: &[Uuid]) -> StoreResult<()> {
        if !self.begin_pending || !self.deferred.is_empty() || !self.stock_permits.is_empty() {
            return Ok(());
        }
        let timeout = self.store.settings().lock_timeout;
        self.stock_permits = self.store.stock_gates().pass(products, timeout).await?;
        Ok(())
    }

    /// Sends `BEGIN` alone, if it has not been sent.
    async fn ensure_begun(&mut self) -> StoreResult<()> {
        let mut attempt = 1;
        while self.begin_pending {
            let mut connection = self.connection_for_begin().await?;
            let begun = Statement::new("BEGIN").execute(&mut connection).await;
            self.settle_begin(begun, &mut attempt)?;
        }
        Ok(())
    }

    /// `BEGIN` and the transaction's first read in one round trip (see the module docs).
    async fn begin_with_load<R>(&mut self, statement: Statement<'_>) -> StoreResult<Vec<R>>
    where
        R: QueryableByName<Pg> + Send + 'static,
    {
        let mut attempt = 1;
        loop {
            let (begun, rows) = {
                let connection = self.connection_for_begin().await?;
                let mut for_begin = connection;
                let mut for_load = connection;
                // `join!` polls `BEGIN` first: it is sent first.
                futures::join!(
                    Statement::new("BEGIN").execute(&mut for_begin),
                    statement.clone().load::<R>(&mut for_load)
                )
            };
            self.settle_begin(begun, &mut attempt)?;
            if !self.begin_pending {
                return self.settle(rows);
            }
        }
    }

    /// Records the answer to `BEGIN`. A dead connection is let go (`begin_pending` stays set, for
    /// the caller to send again on another) while attempts remain; any other failure is returned.
    fn settle_begin(&mut self, begun: QueryResult<usize>, attempt: &mut usize) -> StoreResult<()> {
        let error = match begun {
            Ok(_) => {
                self.begin_pending = false;
                return Ok(());
            }
            Err(error) => translate(error),
        };
        if matches!(error, StoreError::Unavailable(_)) && *attempt < self.store.settings().pool_max_size.saturating_add(1) as usize {
            tracing::debug!(%error, attempt, "BEGIN failed on a dead connection; trying another");
            *attempt += 1;
            // Marked as inside a transaction, the dead connection is discarded by the pool; the
            // next attempt takes another.
            self.connection = None;
            return Ok(());
        }
        // No transaction is open: refuse everything but the rollback.
        self.aborted.get_or_insert(Aborted::from_error(&error));
        Err(error)
    }

    /// Queues a write to be sent with the next read or the commit (see the module docs).
    pub(crate) fn defer(&mut self, statement: Statement<'static>, expect: Expect) {
        self.wrote = true;
        let statement = match expect {
            Expect::Any => statement,
            Expect::Rows(expected, what) => statement.expecting_changed(expected, what),
        };
        if let Err(error) = statement.check_renders() {
            // It could never be sent; the rest of the transaction must not commit without it.
            let error = translate(error);
            tracing::error!(%error, "a deferred write does not render; the transaction will roll back");
            self.aborted.get_or_insert(Aborted::from_error(&error));
            return;
        }
        self.deferred.push(statement);
    }

    /// Sends every queued write, pipelined, and checks each result in order.
    async fn flush(&mut self) -> StoreResult<()> {
        if self.deferred.is_empty() {
            return Ok(());
        }
        self.refuse_if_aborted()?;
        let deferred = std::mem::take(&mut self.deferred);
        let results = {
            // diesel-async pipelines statements run concurrently through a shared reference.
            let connection: &AsyncPgConnection = self.open()?;
            let writes = deferred.into_iter().map(|statement| {
                let mut shared = connection;
                statement.execute(&mut shared)
            });
            futures::future::join_all(writes).await
        };
        for result in results {
            self.settle(result)?;
        }
        Ok(())
    }

    /// Sends the queued writes and `COMMIT` in one pipeline (see the module docs).
    async fn flush_and_commit(&mut self) -> StoreResult<()> {
        let deferred = std::mem::take(&mut self.deferred);
        let (writes, commit) = {
            let connection: &AsyncPgConnection = self.open()?;
            let writes = futures::future::join_all(deferred.into_iter().map(|statement| {
                let mut shared = connection;
                statement.execute(&mut shared)
            }));
            let mut shared = connection;
            let commit = Statement::new("COMMIT").execute(&mut shared);
            // `join!` polls the writes before the commit: they are sent first.
            futures::join!(writes, commit)
        };
        self.record_transaction_end(&commit);
        let mut unsent = None;
        for result in writes {
            match result {
                Ok(_) => {}
                // The server refused a write: the transaction was aborted and COMMIT rolled it back.
                Err(error @ DieselError::DatabaseError(..)) => return Err(translate(error)),
                Err(error) => {
                    unsent.get_or_insert(error);
                }
            }
        }
        match (commit, unsent) {
            (Err(error), _) => Err(translate(error)),
            (Ok(_), None) => Ok(()),
            // Not reachable while `defer` renders every write first; reported loudly if it ever is.
            (Ok(_), Some(error)) => {
                tracing::error!(%error, "a deferred write failed before reaching the server, yet the transaction committed");
                Err(StoreError::Corrupt(format!(
                    "committed without a write that failed to send: {error}"
                )))
            }
        }
    }

    /// Tells the transaction manager how a `COMMIT` sent outside it ended, so that the pool
    /// reuses the connection only when the transaction is known to be over: after an answer to
    /// `COMMIT`, whichever it was, PostgreSQL has ended it. Without an answer (a lost connection)
    /// the connection is marked broken and the pool discards it.
    fn record_transaction_end(&mut self, commit: &QueryResult<usize>) {
        let Some(connection) = &mut self.connection else {
            return;
        };
        let status = AnsiTransactionManager::transaction_manager_status_mut(&mut **connection);
        let answered = match commit {
            Ok(_) => true,
            Err(DieselError::DatabaseError(kind, _)) => !matches!(
                kind,
                diesel::result::DatabaseErrorKind::ClosedConnection | diesel::result::DatabaseErrorKind::UnableToSendCommand
            ),
            Err(_) => false,
        };
        let ended = match status {
            TransactionManagerStatus::Valid(valid) if answered => {
                valid.change_transaction_depth(TransactionDepthChange::DecreaseDepth).is_ok()
            }
            _ => false,
        };
        if !ended {
            status.set_in_error();
        }
    }

    /// Runs a statement, returning the number of rows it affected.
    pub(crate) async fn execute(&mut self, statement: Statement<'_>) -> StoreResult<usize> {
        self.wrote = true;
        self.refuse_if_aborted()?;
        self.ensure_begun().await?;
        self.flush().await?;
        self.refuse_if_aborted()?;
        let result = statement.execute(self.open()?).await;
        self.settle(result)
    }

    /// Runs a query, returning its rows.
    pub(crate) async fn load<R>(&mut self, statement: Statement<'_>) -> StoreResult<Vec<R>>
    where
        R: QueryableByName<Pg> + Send + 'static,
    {
        self.refuse_if_aborted()?;
        if self.begin_pending && self.deferred.is_empty() {
            return self.begin_with_load(statement).await;
        }
        self.ensure_begun().await?;
        self.flush().await?;
        self.refuse_if_aborted()?;
        let result = statement.load::<R>(self.open()?).await;
        self.settle(result)
    }

    /// Runs a query, returning its first row if there is one.
    pub(crate) async fn first<R>(&mut self, statement: Statement<'_>) -> StoreResult<Option<R>>
    where
        R: QueryableByName<Pg> + Send + 'static,
    {
        Ok(self.load(statement).await?.into_iter().next())
    }

    /// Runs a query and maps every row to its domain value.
    pub(crate) async fn select<R: DomainRow>(&mut self, statement: Statement<'_>) -> StoreResult<Vec<R::Domain>> {
        self.load::<R>(statement).await?.into_iter().map(R::into_domain).collect()
    }

    /// The first row's domain value, if there is a row.
    pub(crate) async fn select_first<R: DomainRow>(&mut self, statement: Statement<'_>) -> StoreResult<Option<R::Domain>> {
        self.first::<R>(statement).await?.map(R::into_domain).transpose()
    }

    fn refuse_if_aborted(&self) -> StoreResult<()> {
        match &self.aborted {
            Some(aborted) => Err(aborted.error()),
            None => Ok(()),
        }
    }

    fn settle<T>(&mut self, result: QueryResult<T>) -> StoreResult<T> {
        result.map_err(|error| {
            let aborts = aborts_transaction(&error);
            let translated = translate(error);
            if aborts && self.aborted.is_none() {
                self.aborted = Some(Aborted::from_error(&translated));
            }
            translated
        })
    }

    /// The process id of the server backend running this transaction, so that a test can
    /// terminate it with `pg_terminate_backend`.
    #[cfg(feature = "testing")]
    pub async fn backend_pid(&mut self) -> StoreResult<i32> {
        #[derive(QueryableByName)]
        struct Pid {
            #[diesel(sql_type = diesel::sql_types::Integer)]
            pid: i32,
        }
        let row: Option<Pid> = self.first(Statement::new("SELECT pg_backend_pid() AS pid")).await?;
        row.map(|row| row.pid)
            .ok_or_else(|| StoreError::Corrupt("pg_backend_pid() returned no row".into()))
    }
}

impl Transaction for PgTx {
    async fn commit(mut self) -> StoreResult<()> {
        let marker = self.wrote.then(Uuid::now_v7);
        if let Some(marker) = marker {
            let statement = Statement::new("INSERT INTO commit_markers (id) VALUES ($1)").bind::<diesel::sql_types::Uuid, _>(marker);
            self.defer(statement, Expect::Any);
        }
        if let Some(aborted) = self.aborted.take() {
            if let Some(connection) = &mut self.connection
                && let Err(error) = AnsiTransactionManager::rollback_transaction(&mut **connection).await
            {
                tracing::warn!(%error, "rolling back an aborted transaction failed; the connection is discarded");
            }
            return Err(aborted.error());
        }
        if self.begin_pending && self.deferred.is_empty() {
            // Nothing was sent: there is nothing to commit.
            self.record_transaction_end(&Ok(0));
            return Ok(());
        }
        self.ensure_begun().await?;
        let committed = if self.deferred.is_empty() {
            AnsiTransactionManager::commit_transaction(self.open()?).await.map_err(translate)
        } else {
            self.flush_and_commit().await
        };
        match (committed, marker) {
            // The answer to COMMIT was lost: learn on another connection whether it committed.
            (Err(StoreError::Unavailable(lost)), Some(marker)) => {
                drop(self.connection.take());
                self.store.resolve_commit(marker, lost).await
            }
            (outcome, _) => outcome,
        }
    }

    async fn rollback(mut self) -> StoreResult<()> {
        self.deferred.clear();
        if self.begin_pending {
            self.record_transaction_end(&Ok(0));
            return Ok(());
        }
        AnsiTransactionManager::rollback_transaction(self.open()?).await.map_err(translate)
    }
}

/// Tells the connection's transaction manager that a transaction is open, before `BEGIN` is sent:
/// a transaction dropped at any point from here on returns its connection to the pool marked
/// broken (see the module docs).
fn enter_transaction(connection: &mut Connection) -> StoreResult<()> {
    match AnsiTransactionManager::transaction_manager_status_mut(&mut **connection) {
        TransactionManagerStatus::Valid(status) => status
            .change_transaction_depth(TransactionDepthChange::IncreaseDepth)
            .map_err(translate),
        TransactionManagerStatus::InError => Err(StoreError::Unavailable("the connection's transaction state is broken".into())),
    }
}
