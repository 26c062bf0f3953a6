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
//! # Phases
//!
//! A transaction is `Unbegun` (nothing sent, no connection), then `Open` (`BEGIN` answered), or
//! `Aborted` (the server refused a statement, or a write failed before it could be sent), after
//! which every call answers with the error that aborted it and only the rollback is sent.
//!
//! # BEGIN with the first read
//!
//! `BEGIN` is not sent on its own: it travels in one pipeline with the transaction's first
//! statement when that is a read (most use cases start by locking what they change), saving a
//! round trip. Only a read, which the types enforce (`sql::Read` and `sql::Write`): if `BEGIN`
//! failed while the connection lived on, the statements behind it would run outside any
//! transaction, each committing itself, which is harmless for a read and not for a write; before
//! a first write, `BEGIN` is sent alone. Until `BEGIN` is answered
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
//! sends the queue; a deferred write that fails, for whatever reason, aborts the transaction
//! exactly as if it had been sent at once, and its error is returned by the read or commit that
//! sent it. Writes whose failure a use case interprets (a unique e-mail address, a claimed
//! idempotency key) are never deferred.
//!
//! The commit sends `COMMIT` in the same pipeline as the last writes, so a wallet purchase holds
//! its locks (the hot stock row of a flash sale) for one round trip fewer. That is safe because
//! every check of a deferred write happens in the server: one that must change a known number of
//! rows is wrapped so that PostgreSQL raises an error otherwise (`Write::expecting_changed`), and
//! any error aborts the transaction, after which PostgreSQL answers the `COMMIT` by rolling back.
//! A write must therefore never fail in this process once it is queued: `defer` checks that its
//! text renders and its values were serialised (`sql` serialises each value when it is bound), and
//! a write that fails that check aborts the transaction at once.
//!
//! The writes and `COMMIT` reach the server in the order they were queued, by construction of
//! `InOrder`: it polls its futures strictly in sequence, every time, outside tokio's cooperative
//! budget (`tokio::task::unconstrained`), so each is first polled after all before it. A
//! diesel-async query is sent during its first poll unless it waits for the connection's
//! statement cache, a first-come-first-served tokio mutex held from the lookup (and any prepare)
//! to the send, so the order of first polls is the order of sending (diesel-async 0.9.2,
//! `with_prepared_statement_after_sql_built`; the version is pinned). A test defers more writes
//! than `join_all` would poll in order, each depending on the one before.

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

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use application::ports::store::{StoreError, StoreResult, Transaction};
use diesel::QueryableByName;
use diesel::connection::{TransactionDepthChange, TransactionManagerStatus};
use diesel::pg::Pg;
use diesel::result::{Error as DieselError, QueryResult};
use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_async::{AnsiTransactionManager, AsyncPgConnection, RunQueryDsl, TransactionManager as _};
use futures::future::BoxFuture;
use tokio::sync::OwnedSemaphorePermit;
use uuid::Uuid;

use crate::error::{aborts_transaction, translate};
use crate::group::{GroupKey, Member, NO_LOCK_WAIT, Opening, RELEASE, SAVEPOINT};
use crate::sql::{Read, Statement, Write};
use crate::store::PgStore;

pub(crate) type Connection = bb8::PooledConnection<'static, AsyncDieselConnectionManager<AsyncPgConnection>>;

/// A transaction in progress. Commit or roll it back; dropping it rolls it back (see the module
/// docs).
pub struct PgTx {
    /// Where the connection comes from, and a replacement if it is found dead before `BEGIN` is
    /// answered.
    store: PgStore,
    phase: Phase,
    /// Permits to queue for stock rows (see `gates`), held until the transaction ends.
    stock_permits: Vec<OwnedSemaphorePermit>,
    /// A read-only transaction of reads that may lag, on the replica if there is one
    /// (`UnitOfWork::begin_lagging`).
    lagging: bool,
    /// The statement that opens the transaction: `BEGIN`, read-only, or asking for a snapshot.
    begin_sql: &'static str,
    /// The stock rows whose group this transaction joins with its first statement, if it is
    /// grouped (`UnitOfWork::begin_grouped`, see `group`).
    group: Option<GroupKey>,
}

/// The connection a transaction's statements go to.
// Inline like the phase that holds it: boxing the pooled connection would cost every transaction
// an allocation to save a few hundred bytes of a value that is moved a handful of times.
#[allow(clippy::large_enum_variant)]
enum Held {
    /// Its own, from the pool.
    Own(Connection),
    /// Its group's, while this member runs (see `group`).
    Member(Member),
}

impl Held {
    fn shared(&self) -> StoreResult<&AsyncPgConnection> {
        match self {
            Held::Own(connection) => Ok(connection),
            Held::Member(member) => member.shared_connection(),
        }
    }
}

/// Where a transaction is (see the module docs).
enum Phase {
    /// Nothing sent, and no connection taken yet. Writes may already be queued.
    Unbegun { deferred: Vec<Write> },
    /// `BEGIN` was answered on `connection`.
    Open {
        connection: Held,
        deferred: Vec<Write>,
        /// Whether anything was written: such a transaction commits with a marker (see the module
        /// docs on a commit whose answer is lost).
        wrote: bool,
    },
    /// A statement failed in a way that aborted the transaction (or `BEGIN` failed): neither
    /// later statements nor `COMMIT` are sent, only the rollback.
    Aborted { connection: Option<Held>, cause: Aborted },
}

/// A row as a query returns it, and the domain value it stands for.
pub(crate) trait DomainRow: QueryableByName<Pg> + Send + 'static {
    type Domain;

    fn into_domain(self) -> StoreResult<Self::Domain>;
}

/// The row type of `begin_as_member` when the member's first statement is not a read.
#[derive(QueryableByName)]
struct NoRead {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    _never: i32,
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
        let phase = match &self.phase {
            Phase::Unbegun { deferred } => format!("unbegun, {} deferred", deferred.len()),
            Phase::Open { deferred, .. } => format!("open, {} deferred", deferred.len()),
            Phase::Aborted { cause, .. } => format!("aborted: {cause:?}"),
        };
        f.debug_struct("PgTx").field("phase", &phase).finish_non_exhaustive()
    }
}

impl PgTx {
    /// A transaction whose connection is taken, and `BEGIN` sent, with its first statement.
    pub(crate) fn begin(store: PgStore) -> PgTx {
        PgTx {
            store,
            phase: Phase::Unbegun { deferred: Vec::new() },
            stock_permits: Vec::new(),
            lagging: false,
            begin_sql: "BEGIN",
            group: None,
        }
    }

    /// A transaction that joins the group of concurrent ones on the same rows with its first
    /// statement (see `group`).
    pub(crate) fn begin_grouped(store: PgStore, contention: GroupKey) -> PgTx {
        PgTx {
            group: Some(contention),
            ..PgTx::begin(store)
        }
    }

    /// A read-only transaction whose reads all see one snapshot (REPEATABLE READ), whatever
    /// commits meanwhile: for checks that compare several tables while others write.
    #[cfg(feature = "testing")]
    pub(crate) fn begin_snapshot(store: PgStore) -> PgTx {
        PgTx {
            begin_sql: "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
            ..PgTx::begin(store)
        }
    }

    /// As `begin`, for reads that may lag: read-only, and on the replica if there is one.
    pub(crate) fn begin_lagging(store: PgStore) -> PgTx {
        PgTx {
            lagging: true,
            begin_sql: "BEGIN READ ONLY",
            ..PgTx::begin(store)
        }
    }

    /// Waits for permission to queue for these stock rows (sorted product ids), if this
    /// transaction has sent nothing yet and so holds no row lock (see `gates`).
    pub(crate) async fn pass_stock_gates(&mut self, products: &[Uuid]) -> StoreResult<()> {
        let untouched = matches!(&self.phase, Phase::Unbegun { deferred } if deferred.is_empty());
        // A grouped transaction queues in its group, behind which only the next group waits.
        if !untouched || !self.stock_permits.is_empty() || self.group.is_some() {
            return Ok(());
        }
        let timeout = self.store.settings().lock_timeout;
        self.stock_permits = self.store.stock_gates().pass(products, timeout).await?;
        Ok(())
    }

    /// Runs a read, returning its rows. The queued writes are sent first.
    pub(crate) async fn read<R>(&mut self, statement: Read) -> StoreResult<Vec<R>>
    where
        R: QueryableByName<Pg> + Send + 'static,
    {
        self.trip(One::<R>::new(statement)).await
    }

    /// Runs two reads in one round trip, returning the rows of each. PostgreSQL runs them one
    /// after the other, so the locks the first takes are taken before the second's: two reads
    /// that together follow the lock order may travel together. The queued writes are sent first.
    pub(crate) async fn read_pair<A, B>(&mut self, first: Read, second: Read) -> StoreResult<(Vec<A>, Vec<B>)>
    where
        A: QueryableByName<Pg> + Send + 'static,
        B: QueryableByName<Pg> + Send + 'static,
    {
        self.trip(Pair(One::<A>::new(first), One::<B>::new(second))).await
    }

    /// Sends the statements of one trip: with `BEGIN` if the transaction has sent nothing yet and
    /// they only read, and with a group member's savepoint if it is grouped (see `group`).
    async fn trip<T: Trip>(&mut self, trip: T) -> StoreResult<T::Rows> {
        self.refuse_if_aborted()?;
        // A write was checked by `check_write`, which also aborts the transaction if it fails.
        if !T::WRITES {
            trip.check().map_err(translate)?;
        }
        if matches!(&self.phase, Phase::Unbegun { deferred } if deferred.is_empty()) {
            if let Some(group) = self.group.clone() {
                let rows = self.begin_as_member(group, Some(trip)).await?;
                return rows.ok_or_else(|| StoreError::Unexpected("a group member's first statement was not sent".into()));
            }
            if !T::WRITES {
                return self.begin_with_read(trip).await;
            }
        }
        self.ready().await?;
        if T::WRITES {
            self.mark_written();
        }
        let result = tokio::task::unconstrained(trip.send(self.shared_connection()?)).await;
        self.settle(result)
    }

    /// Runs a read, returning its first row if there is one.
    pub(crate) async fn read_first<R>(&mut self, statement: Read) -> StoreResult<Option<R>>
    where
        R: QueryableByName<Pg> + Send + 'static,
    {
        Ok(self.read(statement).await?.into_iter().next())
    }

    /// Runs a read and maps every row to its domain value.
    pub(crate) async fn select<R: DomainRow>(&mut self, statement: Read) -> StoreResult<Vec<R::Domain>> {
        self.read::<R>(statement).await?.into_iter().map(R::into_domain).collect()
    }

    /// The first row's domain value, if there is a row.
    pub(crate) async fn select_first<R: DomainRow>(&mut self, statement: Read) -> StoreResult<Option<R::Domain>> {
        self.read_first::<R>(statement).await?.map(R::into_domain).transpose()
    }

    /// Runs a write now (after the queued ones), returning the number of rows it affected.
    pub(crate) async fn execute(&mut self, statement: Write) -> StoreResult<usize> {
        self.check_write(&statement)?;
        self.trip(Executed(statement)).await
    }

    /// Runs a write that returns rows now (after the queued ones).
    pub(crate) async fn write_returning<R>(&mut self, statement: Write) -> StoreResult<Vec<R>>
    where
        R: QueryableByName<Pg> + Send + 'static,
    {
        self.check_write(&statement)?;
        self.trip(Returning::<R>(statement, PhantomData)).await
    }

    /// Queues a write to be sent with the next read or the commit (see the module docs). A write
    /// that could not be sent aborts the transaction now.
    pub(crate) fn defer(&mut self, statement: Write, expect: Expect) -> StoreResult<()> {
        let statement = match expect {
            Expect::Any => statement,
            Expect::Rows(expected, what) => statement.expecting_changed(expected, what),
        };
        self.check_write(&statement)?;
        match &mut self.phase {
            Phase::Unbegun { deferred } => deferred.push(statement),
            Phase::Open { deferred, wrote, .. } => {
                deferred.push(statement);
                *wrote = true;
            }
            Phase::Aborted { cause, .. } => return Err(cause.error()),
        }
        Ok(())
    }

    /// Refuses a write that could never be sent, aborting the transaction: it must not commit
    /// without it.
    fn check_write(&mut self, statement: &Write) -> StoreResult<()> {
        self.refuse_if_aborted()?;
        if let Err(error) = statement.check() {
            let error = translate(error);
            tracing::error!(%error, sql = statement.text(), "a write cannot be sent; the transaction will roll back");
            self.abort(&error);
            return Err(error);
        }
        Ok(())
    }

    fn mark_written(&mut self) {
        if let Phase::Open { wrote, .. } = &mut self.phase {
            *wrote = true;
        }
    }

    /// Opens the transaction if needed (`BEGIN` alone) and sends every queued write.
    async fn ready(&mut self) -> StoreResult<()> {
        if matches!(self.phase, Phase::Unbegun { .. }) {
            self.begin_alone().await?;
        }
        self.flush().await
    }

    /// The connection of the open transaction, for statements sent in one pipeline.
    fn shared_connection(&self) -> StoreResult<&AsyncPgConnection> {
        match &self.phase {
            Phase::Open { connection, .. } => connection.shared(),
            Phase::Aborted { cause, .. } => Err(cause.error()),
            Phase::Unbegun { .. } => Err(StoreError::Unexpected("a statement was about to be sent before BEGIN".into())),
        }
    }

    /// Sends every queued write, in order, and checks each result in order. Any failure aborts
    /// the transaction.
    async fn flush(&mut self) -> StoreResult<()> {
        let Phase::Open { connection, deferred, .. } = &mut self.phase else {
            return Ok(());
        };
        if deferred.is_empty() {
            return Ok(());
        }
        let writes = std::mem::take(deferred);
        let shared = connection.shared()?;
        let results = tokio::task::unconstrained(send_in_order(shared, &writes)).await;
        for result in results {
            if let Err(error) = result {
                let error = self.as_member_error(translate(error));
                self.abort(&error);
                return Err(error);
            }
        }
        Ok(())
    }

    /// The connection for `BEGIN`, taken from the pool.
    async fn connection_for_begin(&mut self) -> StoreResult<Connection> {
        let mut connection = if self.lagging {
            self.store.lagging_connection().await?
        } else {
            self.store.connection().await?
        };
        enter_transaction(&mut connection)?;
        Ok(connection)
    }

    /// Sends `BEGIN` alone, moving the queued writes into the open transaction.
    async fn begin_alone(&mut self) -> StoreResult<()> {
        if let Some(group) = self.group.clone() {
            return self.begin_as_member::<One<NoRead>>(group, None).await.map(drop);
        }
        let mut attempt = 1;
        loop {
            let mut connection = self.connection_for_begin().await?;
            let begun = Statement::control(self.begin_sql).execute(&mut *connection).await;
            if self.settle_begin(begun, connection, &mut attempt)? {
                return Ok(());
            }
        }
    }

    /// `BEGIN` and the transaction's first read in one round trip (see the module docs).
    async fn begin_with_read<T: Trip>(&mut self, trip: T) -> StoreResult<T::Rows> {
        let mut attempt = 1;
        loop {
            let connection = self.connection_for_begin().await?;
            let (begun, rows) = {
                let shared: &AsyncPgConnection = &connection;
                let mut for_begin = shared;
                // Sent in this order (see `InOrder`).
                let begin = Statement::control(self.begin_sql).execute(&mut for_begin);
                tokio::task::unconstrained(Both::new(begin, trip.send(shared))).await
            };
            if self.settle_begin(begun, connection, &mut attempt)? {
                return self.settle(rows);
            }
        }
    }

    /// Records the answer to `BEGIN`: opens the transaction, or says to try again on another
    /// connection (a dead one is let go while attempts remain), or fails.
    fn settle_begin(&mut self, begun: QueryResult<usize>, connection: Connection, attempt: &mut usize) -> StoreResult<bool> {
        let error = match begun {
            Ok(_) => {
                self.open_on(Held::Own(connection));
                return Ok(true);
            }
            Err(error) => translate(error),
        };
        if matches!(error, StoreError::Unavailable(_)) && *attempt < self.store.settings().pool_max_size.saturating_add(1) as usize {
            tracing::debug!(%error, attempt, "BEGIN failed on a dead connection; trying another");
            *attempt += 1;
            // Marked as inside a transaction, the dead connection is discarded by the pool.
            drop(connection);
            return Ok(false);
        }
        // No transaction is open: refuse everything but the rollback, which has nothing to do.
        drop(connection);
        self.phase = Phase::Aborted {
            connection: None,
            cause: Aborted::from_error(&error),
        };
        Err(error)
    }

    /// Opens the transaction on `connection`, moving the writes queued before it began into it.
    fn open_on(&mut self, connection: Held) {
        let deferred = match &mut self.phase {
            Phase::Unbegun { deferred } => std::mem::take(deferred),
            _ => Vec::new(),
        };
        let wrote = !deferred.is_empty();
        self.phase = Phase::Open {
            connection,
            deferred,
            wrote,
        };
    }

    /// Moves the transaction to `Aborted`, keeping its connection for the rollback.
    fn abort(&mut self, error: &StoreError) {
        let phase = std::mem::replace(&mut self.phase, Phase::Unbegun { deferred: Vec::new() });
        self.phase = match phase {
            Phase::Unbegun { .. } => Phase::Aborted {
                connection: None,
                cause: Aborted::from_error(error),
            },
            Phase::Open { connection, .. } => Phase::Aborted {
                connection: Some(connection),
                cause: Aborted::from_error(error),
            },
            aborted @ Phase::Aborted { .. } => aborted,
        };
    }

    fn refuse_if_aborted(&self) -> StoreResult<()> {
        match &self.phase {
            Phase::Aborted { cause, .. } => Err(cause.error()),
            _ => Ok(()),
        }
    }

    /// The result of a statement sent at once; an error the server raised aborts the transaction.
    fn settle<T>(&mut self, result: QueryResult<T>) -> StoreResult<T> {
        result.map_err(|error| {
            let aborts = aborts_transaction(&error);
            let translated = self.as_member_error(translate(error));
            if aborts {
                self.abort(&translated);
            }
            translated
        })
    }

    /// Sends the queued writes and `COMMIT` in one pipeline (see the module docs).
    async fn flush_and_commit(&mut self) -> StoreResult<()> {
        let Phase::Open {
            connection: Held::Own(connection),
            deferred,
            ..
        } = &mut self.phase
        else {
            return Err(StoreError::Unexpected("COMMIT outside an open transaction of its own".into()));
        };
        let writes = std::mem::take(deferred);
        send_commit(connection, &writes).await
    }

    /// The transaction's place in its group, if it runs as a member of one (see `group`).
    fn member(&self) -> Option<&Member> {
        match &self.phase {
            Phase::Open {
                connection: Held::Member(member),
                ..
            }
            | Phase::Aborted {
                connection: Some(Held::Member(member)),
                ..
            } => Some(member),
            _ => None,
        }
    }

    /// Whether this transaction runs as a member of a group (see `group`).
    pub(crate) fn is_member(&self) -> bool {
        self.member().is_some()
    }

    /// An error of this transaction's statement, as its use case sees it (see `member_error`).
    fn as_member_error(&self, error: StoreError) -> StoreError {
        match self.member() {
            Some(member) => member_error(member.is_opener(), error),
            None => error,
        }
    }

    /// Joins the group on `key`, waits for its connection, and opens this member's savepoint (and
    /// the group's transaction, for its first member) in one pipeline with its first statements,
    /// if any. A write travels with the savepoint, which an open transaction runs or refuses
    /// before it, but never with `BEGIN` (see the module docs): the first member sends its first
    /// write once `BEGIN` is answered.
    async fn begin_as_member<T: Trip>(&mut self, key: GroupKey, trip: Option<T>) -> StoreResult<Option<T::Rows>> {
        let ticket = self.store.groups().join(&self.store, &key);
        let answers: Answers<T::Rows> = Arc::new(std::sync::Mutex::new(None));
        let opening = trip.as_ref().map(|trip| opening_ahead(trip.clone(), Arc::clone(&answers)));
        let seated = ticket.take_seat(self.store.settings().lock_timeout, opening).await;
        let seated = match seated {
            // The member before sent this one's opening with its release: its answers are here.
            Ok(mut member) if member.opened_ahead() => {
                let answered = answers.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
                let Some((opened, rows)) = answered else {
                    member.break_group("a member's opening sent ahead left no answer");
                    member.leave();
                    let error = StoreError::Conflict;
                    self.abort(&error);
                    return Err(error);
                };
                return self.opened_as_member(member, opened, Ok::<_, T>(Some(rows))).await;
            }
            other => other,
        };
        let opened = match seated {
            Ok(mut member) => match member.opening().await {
                Ok(opening) => Ok((member, opening)),
                Err(error) => {
                    member.leave();
                    Err(error)
                }
            },
            Err(error) => Err(error),
        };
        let (member, opening) = match opened {
            Ok(opened) => opened,
            Err(error) => {
                self.abort(&error);
                return Err(error);
            }
        };
        let (opened, rows) = {
            let shared = member.shared_connection()?;
            let controls = send_controls(shared, opening);
            match trip {
                Some(trip) if !T::WRITES || !member.is_opener() => {
                    let (opened, rows) = tokio::task::unconstrained(Both::new(controls, trip.send(shared))).await;
                    (opened, Ok(Some(rows)))
                }
                // The group's first member, with a write: sent once `BEGIN` is answered.
                Some(trip) => (tokio::task::unconstrained(controls).await, Err(trip)),
                None => (tokio::task::unconstrained(controls).await, Ok(None)),
            }
        };
        self.opened_as_member(member, opened, rows).await
    }

    /// Records how a member's opening was answered: on success the transaction is open on the
    /// group's connection, and the answer to its first statements is settled. `rows` is that
    /// answer, or the first statements themselves when they are still to be sent (a first write
    /// of the group's opener), or nothing.
    async fn opened_as_member<T: Trip>(
        &mut self,
        member: Member,
        opened: Vec<QueryResult<usize>>,
        rows: Result<Option<QueryResult<T::Rows>>, T>,
    ) -> StoreResult<Option<T::Rows>> {
        if let Some(error) = opened.into_iter().find_map(Result::err) {
            let mut member = member;
            member.break_group(&format!("opening a member failed: {error}"));
            member.leave();
            let error = run_again_if_lost(translate(error));
            self.abort(&error);
            return Err(error);
        }
        self.open_on(Held::Member(member));
        if T::WRITES {
            self.mark_written();
        }
        let rows = match rows {
            Ok(rows) => rows,
            Err(trip) => Some(tokio::task::unconstrained(trip.send(self.shared_connection()?)).await),
        };
        rows.map(|rows| self.settle(rows)).transpose()
    }

    /// A setting of the transaction's session (`SHOW name`), for tests of how connections are
    /// set up.
    ///
    /// # Errors
    /// As any read.
    #[cfg(feature = "testing")]
    pub async fn show(&mut self, name: &'static str) -> StoreResult<String> {
        #[derive(diesel::QueryableByName)]
        struct Setting {
            #[diesel(sql_type = diesel::sql_types::Text)]
            value: String,
        }
        let statement = Read::new("SELECT current_setting($1) AS value").bind::<diesel::sql_types::Text, _>(name);
        let setting: Option<Setting> = self.read_first(statement).await?;
        Ok(setting.map(|setting| setting.value).unwrap_or_default())
    }

    /// The tables this transaction has read with a sequential scan so far, with how many scans
    /// each (`pg_stat_xact_user_tables`), for tests that the hot statements reach rows by key.
    ///
    /// # Errors
    /// As any read.
    #[cfg(feature = "testing")]
    pub async fn sequential_scans(&mut self) -> StoreResult<Vec<(String, i64)>> {
        #[derive(QueryableByName)]
        struct Scans {
            #[diesel(sql_type = diesel::sql_types::Text)]
            relname: String,
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            seq_scan: i64,
        }
        let statement =
            Read::new("SELECT relname::text AS relname, seq_scan FROM pg_stat_xact_user_tables WHERE seq_scan > 0 ORDER BY relname");
        let scans: Vec<Scans> = self.read(statement).await?;
        Ok(scans.into_iter().map(|scans| (scans.relname, scans.seq_scan)).collect())
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
        let row: Option<Pid> = self.read_first(Read::new("SELECT pg_backend_pid() AS pid")).await?;
        row.map(|row| row.pid)
            .ok_or_else(|| StoreError::Corrupt("pg_backend_pid() returned no row".into()))
    }
}

impl Transaction for PgTx {
    async fn commit(mut self) -> StoreResult<()> {
        if self.group.is_some() {
            if matches!(&self.phase, Phase::Unbegun { deferred } if !deferred.is_empty()) {
                // Writes queued and nothing sent: joining the group sends them. An error lands
                // in the phase, handled below.
                let _ = self.ready().await;
            }
            match std::mem::replace(&mut self.phase, Phase::Unbegun { deferred: Vec::new() }) {
                Phase::Open {
                    connection: Held::Member(member),
                    deferred,
                    ..
                } => return release_member(member, deferred).await,
                Phase::Aborted {
                    connection: Some(Held::Member(member)),
                    cause,
                } => {
                    member.undo().await;
                    return Err(cause.error());
                }
                // Never joined a group: it sent nothing, or failed before its first statement.
                other => self.phase = other,
            }
        }
        let wrote = match &self.phase {
            Phase::Unbegun { deferred } => !deferred.is_empty(),
            Phase::Open { wrote, deferred, .. } => *wrote || !deferred.is_empty(),
            Phase::Aborted { .. } => false,
        };
        let marker = wrote.then(Uuid::now_v7);
        if let Some(marker) = marker {
            let statement = Write::new("INSERT INTO commit_markers (id) VALUES ($1)").bind::<diesel::sql_types::Uuid, _>(marker);
            // A failure here aborts the transaction, which the match below rolls back.
            let _ = self.defer(statement, Expect::Any);
        }
        if let Phase::Aborted { connection, cause } = &mut self.phase {
            let cause = cause.error();
            if let Some(Held::Own(connection)) = connection
                && let Err(error) = AnsiTransactionManager::rollback_transaction(&mut **connection).await
            {
                tracing::warn!(%error, "rolling back an aborted transaction failed; the connection is discarded");
            }
            return Err(cause);
        }
        if let Phase::Unbegun { deferred } = &self.phase {
            if deferred.is_empty() {
                // Nothing was sent: there is nothing to commit.
                return Ok(());
            }
            self.begin_alone().await?;
        }
        let committed = match &mut self.phase {
            Phase::Open {
                connection: Held::Own(connection),
                deferred,
                ..
            } if deferred.is_empty() => AnsiTransactionManager::commit_transaction(&mut **connection)
                .await
                .map_err(translate),
            _ => self.flush_and_commit().await,
        };
        match (committed, marker) {
            // The answer to COMMIT was lost: learn on another connection whether it committed.
            (Err(StoreError::Unavailable(lost)), Some(marker)) => {
                self.phase = Phase::Unbegun { deferred: Vec::new() };
                self.store.resolve_commit(marker, lost).await
            }
            (outcome, _) => outcome,
        }
    }

    async fn rollback(mut self) -> StoreResult<()> {
        match std::mem::replace(&mut self.phase, Phase::Unbegun { deferred: Vec::new() }) {
            Phase::Unbegun { .. } | Phase::Aborted { connection: None, .. } => Ok(()),
            Phase::Open {
                connection: Held::Member(member),
                ..
            }
            | Phase::Aborted {
                connection: Some(Held::Member(member)),
                ..
            } => {
                member.undo().await;
                Ok(())
            }
            Phase::Open {
                connection: Held::Own(mut connection),
                ..
            }
            | Phase::Aborted {
                connection: Some(Held::Own(mut connection)),
                ..
            } => AnsiTransactionManager::rollback_transaction(&mut *connection)
                .await
                .map_err(translate),
        }
    }
}

/// A member's commit: its writes with `RELEASE SAVEPOINT` in one pipeline, then the group's
/// commit (see `group`). A write the server refused takes the member back to its savepoint. The
/// group's last member sends the group's `COMMIT` in the same pipeline as its writes.
async fn release_member(mut member: Member, writes: Vec<Write>) -> StoreResult<()> {
    if member.close_if_last() {
        return member.commit_group(writes).await;
    }
    // The next member's opening follows this one's release in the same pipeline, so the rows
    // pass from member to member without waiting for a round trip (see `group`).
    let next = member.next_opening();
    let sent_ahead = next.is_some();
    let failed = match member.shared_connection() {
        Ok(shared) => {
            let mut for_release = shared;
            let release = Statement::control(RELEASE).execute(&mut for_release);
            let ahead: BoxFuture<'_, ()> = match next {
                Some(opening) => opening(shared),
                None => Box::pin(async {}),
            };
            let mine = Both::new(send_in_order(shared, &writes), release);
            let ((results, released), ()) = tokio::task::unconstrained(Both::new(mine, ahead)).await;
            results.into_iter().find_map(Result::err).or(released.err()).map(translate)
        }
        Err(error) => Some(error),
    };
    match failed {
        None => member.applied(sent_ahead).await,
        Some(error) => {
            let opener = member.is_opener();
            member.undo().await;
            Err(member_error(opener, error))
        }
    }
}

/// How an error of a group member's statement reaches its use case: a lost connection, or a lock
/// that a member other than the opener was not given at once, runs the member again alone.
pub(crate) fn member_error(opener: bool, error: StoreError) -> StoreError {
    match error {
        StoreError::Timeout if !opener => {
            tracing::debug!("a group member would have waited for a lock; it runs again alone");
            StoreError::Conflict
        }
        other => run_again_if_lost(other),
    }
}

/// A group member that lost the group's connection may run again: nothing of the group has
/// committed, and now nothing will (see `group`).
pub(crate) fn run_again_if_lost(error: StoreError) -> StoreError {
    match error {
        StoreError::Unavailable(reason) => {
            tracing::debug!(%reason, "a group member lost the group's connection; it runs again");
            StoreError::Conflict
        }
        other => other,
    }
}

/// The writes, a commit marker and `COMMIT` in one pipeline on a connection with a transaction
/// open, for a group's commit; a lost answer is resolved with the marker (see the module docs).
pub(crate) async fn commit_with_marker(store: &PgStore, connection: &mut Connection, mut writes: Vec<Write>) -> StoreResult<()> {
    let marker = Uuid::now_v7();
    writes.push(Write::new("INSERT INTO commit_markers (id) VALUES ($1)").bind::<diesel::sql_types::Uuid, _>(marker));
    match send_commit(connection, &writes).await {
        Err(StoreError::Unavailable(lost)) => store.resolve_commit(marker, lost).await,
        other => other,
    }
}

/// Sends `writes` and `COMMIT` in one pipeline and tells the connection's transaction manager
/// how it ended.
async fn send_commit(connection: &mut Connection, writes: &[Write]) -> StoreResult<()> {
    let (results, commit) = {
        let shared: &AsyncPgConnection = connection;
        let mut for_commit = shared;
        let commit = Statement::control("COMMIT").execute(&mut for_commit);
        tokio::task::unconstrained(Both::new(send_in_order(shared, writes), commit)).await
    };
    record_transaction_end(connection, &commit);
    let mut unsent = None;
    for result in results {
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
        // Not reachable while every queued write is checked before it is queued; reported
        // loudly if it ever is.
        (Ok(_), Some(error)) => {
            tracing::error!(%error, "a deferred write failed before reaching the server, yet the transaction committed");
            Err(StoreError::Corrupt(format!(
                "committed without a write that failed to send: {error}"
            )))
        }
    }
}

/// Sends `writes` pipelined on the connection, in order (see `InOrder`), and returns each result.
fn send_in_order<'c>(connection: &'c AsyncPgConnection, writes: &[Write]) -> InOrder<BoxFuture<'c, QueryResult<usize>>> {
    let futures = writes
        .iter()
        .map(|write| {
            let mut shared = connection;
            write.clone().execute(&mut shared)
        })
        .collect();
    InOrder::new(futures)
}

/// Sends control statements (`SAVEPOINT`, `SET LOCAL`, ...) pipelined on the connection, in order.
fn send_controls<'c>(connection: &'c AsyncPgConnection, texts: &[&'static str]) -> InOrder<BoxFuture<'c, QueryResult<usize>>> {
    let futures = texts
        .iter()
        .map(|text| {
            let mut for_control = connection;
            Statement::control(text).execute(&mut for_control)
        })
        .collect();
    InOrder::new(futures)
}

/// Polls its futures strictly in the order given, each time it is polled, and completes with all
/// their outputs in that order. Unlike `join_all` (which switches to `FuturesOrdered` above 30
/// futures) the order of first polls is fixed by construction.
pub(crate) struct InOrder<F: Future> {
    futures: Vec<Option<F>>,
    outputs: Vec<Option<F::Output>>,
}

impl<F: Future> InOrder<F> {
    fn new(futures: Vec<F>) -> InOrder<F> {
        let outputs = futures.iter().map(|_| None).collect();
        InOrder {
            futures: futures.into_iter().map(Some).collect(),
            outputs,
        }
    }
}

// The outputs are never pinned: only the futures are polled in place, and they are `Unpin`.
impl<F: Future + Unpin> Unpin for InOrder<F> {}

impl<F: Future + Unpin> Future for InOrder<F> {
    type Output = Vec<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Vec<F::Output>> {
        let this = &mut *self;
        for (slot, output) in this.futures.iter_mut().zip(this.outputs.iter_mut()) {
            if let Some(future) = slot
                && let Poll::Ready(value) = Pin::new(future).poll(cx)
            {
                *output = Some(value);
                *slot = None;
            }
        }
        if this.futures.iter().any(Option::is_some) {
            return Poll::Pending;
        }
        Poll::Ready(this.outputs.iter_mut().filter_map(Option::take).collect())
    }
}

/// Where a member's opening sent ahead leaves its answers: those of the savepoint's statements,
/// and of the member's first statements.
type Answers<Rows> = Arc<std::sync::Mutex<Option<(Vec<QueryResult<usize>>, QueryResult<Rows>)>>>;

/// A later member's opening (its savepoint, `NO_LOCK_WAIT` and its first statements), for the
/// member before it to send in the pipeline of its release (see `group`).
fn opening_ahead<T: Trip>(trip: T, answers: Answers<T::Rows>) -> Opening {
    fn boxed<F>(opening: F) -> Opening
    where
        F: for<'c> FnOnce(&'c AsyncPgConnection) -> BoxFuture<'c, ()> + Send + 'static,
    {
        Box::new(opening)
    }
    boxed(move |connection| {
        let controls = send_controls(connection, &[SAVEPOINT, NO_LOCK_WAIT]);
        let first = trip.send(connection);
        Box::pin(async move {
            let answered = Both::new(controls, first).await;
            *answers.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(answered);
        })
    })
}

/// The statements of one round trip: a read, a write sent at once, or two of them in one pipeline.
pub(crate) trait Trip: Clone + Send + 'static {
    type Rows: Send + 'static;

    /// Whether the trip writes: then it never travels with `BEGIN` (see the module docs).
    const WRITES: bool;

    /// Whether every statement can be sent (see `Statement::check`).
    fn check(&self) -> QueryResult<()>;

    /// Sends the statements, in order, when first polled (see `InOrder`), and answers with their
    /// rows, or the first error.
    fn send<'c>(&self, connection: &'c AsyncPgConnection) -> BoxFuture<'c, QueryResult<Self::Rows>>;
}

/// One read, and the type of its rows.
struct One<R> {
    read: Read,
    rows: PhantomData<fn() -> R>,
}

impl<R> One<R> {
    fn new(read: Read) -> One<R> {
        One { read, rows: PhantomData }
    }
}

impl<R> Clone for One<R> {
    fn clone(&self) -> One<R> {
        One::new(self.read.clone())
    }
}

impl<R: QueryableByName<Pg> + Send + 'static> Trip for One<R> {
    type Rows = Vec<R>;

    const WRITES: bool = false;

    fn check(&self) -> QueryResult<()> {
        self.read.check()
    }

    fn send<'c>(&self, connection: &'c AsyncPgConnection) -> BoxFuture<'c, QueryResult<Vec<R>>> {
        let read = self.read.clone();
        Box::pin(async move {
            let mut shared = connection;
            read.load::<R>(&mut shared).await
        })
    }
}

/// A write sent at once, answered with the number of rows it changed.
#[derive(Clone)]
struct Executed(Write);

impl Trip for Executed {
    type Rows = usize;

    const WRITES: bool = true;

    fn check(&self) -> QueryResult<()> {
        self.0.check()
    }

    fn send<'c>(&self, connection: &'c AsyncPgConnection) -> BoxFuture<'c, QueryResult<usize>> {
        let write = self.0.clone();
        Box::pin(async move {
            let mut shared = connection;
            write.execute(&mut shared).await
        })
    }
}

/// A write sent at once that returns rows.
struct Returning<R>(Write, PhantomData<fn() -> R>);

impl<R> Clone for Returning<R> {
    fn clone(&self) -> Returning<R> {
        Returning(self.0.clone(), PhantomData)
    }
}

impl<R: QueryableByName<Pg> + Send + 'static> Trip for Returning<R> {
    type Rows = Vec<R>;

    const WRITES: bool = true;

    fn check(&self) -> QueryResult<()> {
        self.0.check()
    }

    fn send<'c>(&self, connection: &'c AsyncPgConnection) -> BoxFuture<'c, QueryResult<Vec<R>>> {
        let write = self.0.clone();
        Box::pin(async move {
            let mut shared = connection;
            write.load::<R>(&mut shared).await
        })
    }
}

/// Two trips in one pipeline. When the first fails, PostgreSQL refuses the second as part of an
/// aborted transaction: the first's error is the one to tell.
#[derive(Clone)]
struct Pair<A, B>(A, B);

impl<A: Trip, B: Trip> Trip for Pair<A, B> {
    type Rows = (A::Rows, B::Rows);

    const WRITES: bool = A::WRITES || B::WRITES;

    fn check(&self) -> QueryResult<()> {
        self.0.check().and_then(|()| self.1.check())
    }

    fn send<'c>(&self, connection: &'c AsyncPgConnection) -> BoxFuture<'c, QueryResult<(A::Rows, B::Rows)>> {
        let both = Both::new(self.0.send(connection), self.1.send(connection));
        Box::pin(async move {
            let (first, second) = both.await;
            Ok((first?, second?))
        })
    }
}

/// Two futures polled in order, the first always before the second; completes with both outputs.
struct Both<A: Future, B: Future> {
    first: Option<A>,
    second: Option<B>,
    outputs: (Option<A::Output>, Option<B::Output>),
}

impl<A: Future, B: Future> Both<A, B> {
    fn new(first: A, second: B) -> Both<A, B> {
        Both {
            first: Some(first),
            second: Some(second),
            outputs: (None, None),
        }
    }
}

// As for `InOrder`: only the futures are polled in place.
impl<A: Future + Unpin, B: Future + Unpin> Unpin for Both<A, B> {}

impl<A: Future + Unpin, B: Future + Unpin> Future for Both<A, B> {
    type Output = (A::Output, B::Output);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if let Some(first) = &mut this.first
            && let Poll::Ready(value) = Pin::new(first).poll(cx)
        {
            this.outputs.0 = Some(value);
            this.first = None;
        }
        if let Some(second) = &mut this.second
            && let Poll::Ready(value) = Pin::new(second).poll(cx)
        {
            this.outputs.1 = Some(value);
            this.second = None;
        }
        match (this.outputs.0.take(), this.outputs.1.take()) {
            (Some(first), Some(second)) => Poll::Ready((first, second)),
            (first, second) => {
                this.outputs = (first, second);
                Poll::Pending
            }
        }
    }
}

/// Tells the transaction manager how a `COMMIT` sent outside it ended, so that the pool reuses
/// the connection only when the transaction is known to be over: after an answer to `COMMIT`,
/// whichever it was, PostgreSQL has ended it. Without an answer (a lost connection) the
/// connection is marked broken and the pool discards it.
fn record_transaction_end(connection: &mut Connection, commit: &QueryResult<usize>) {
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
        TransactionManagerStatus::Valid(valid) if answered => valid.change_transaction_depth(TransactionDepthChange::DecreaseDepth).is_ok(),
        _ => false,
    };
    if !ended {
        status.set_in_error();
    }
}

/// Tells the connection's transaction manager that a transaction is open, before `BEGIN` is sent:
/// a transaction dropped at any point from here on returns its connection to the pool marked
/// broken (see the module docs).
pub(crate) fn enter_transaction(connection: &mut Connection) -> StoreResult<()> {
    match AnsiTransactionManager::transaction_manager_status_mut(&mut **connection) {
        TransactionManagerStatus::Valid(status) => status
            .change_transaction_depth(TransactionDepthChange::IncreaseDepth)
            .map_err(translate),
        TransactionManagerStatus::InError => Err(StoreError::Unavailable("the connection's transaction state is broken".into())),
    }
}

#[cfg(test)]
mod tests {
    use application::ports::store::{StoreError, Transaction, UnitOfWork};
    use diesel::QueryableByName;
    use diesel::pg::Pg;
    use diesel::serialize::{Output, ToSql};
    use diesel::sql_types::{BigInt, Integer, Text};

    use super::Expect;
    use crate::sql::{Read, Write};
    use crate::testing::TestDatabase;

    #[derive(Debug, QueryableByName)]
    struct Step {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }

    async fn steps_table(db: &TestDatabase) {
        db.raw_client()
            .await
            .batch_execute("CREATE TABLE steps (id int PRIMARY KEY, n bigint NOT NULL)")
            .await
            .expect("create steps");
    }

    async fn step_count(db: &TestDatabase) -> Option<i64> {
        let mut tx = db.store().begin().await.expect("begin");
        let row: Option<Step> = tx.read_first(Read::new("SELECT n FROM steps WHERE id = 1")).await.expect("read");
        tx.rollback().await.expect("rollback");
        row.map(|row| row.n)
    }

    /// Each write changes the row the one before it left, so a write sent out of order changes no
    /// row and aborts the transaction (`expect_changed`). More than `join_all` polls in order.
    #[tokio::test]
    async fn deferred_writes_reach_the_server_in_the_order_they_were_queued() {
        const WRITES: i64 = 64;
        let db = TestDatabase::create().await;
        steps_table(&db).await;
        let mut tx = db.store().begin().await.expect("begin");
        let insert = Write::new("INSERT INTO steps (id, n) VALUES (1, 0)");
        tx.defer(insert, Expect::Any).expect("queued");
        for n in 0..WRITES {
            let step = Write::new("UPDATE steps SET n = $2 WHERE id = 1 AND n = $1")
                .bind::<BigInt, _>(n)
                .bind::<BigInt, _>(n + 1);
            tx.defer(step, Expect::Rows(1, "step")).expect("queued");
        }
        // Half are sent by a read, the rest with the commit.
        let middle: Vec<Step> = tx.read(Read::new("SELECT n FROM steps WHERE id = 1")).await.expect("read");
        assert_eq!(middle.first().map(|row| row.n), Some(WRITES));
        for n in WRITES..2 * WRITES {
            let step = Write::new("UPDATE steps SET n = $2 WHERE id = 1 AND n = $1")
                .bind::<BigInt, _>(n)
                .bind::<BigInt, _>(n + 1);
            tx.defer(step, Expect::Rows(1, "step")).expect("queued");
        }
        tx.commit().await.expect("commit");
        assert_eq!(step_count(&db).await, Some(2 * WRITES));
    }

    /// A value whose serialisation fails, as a value of a type diesel cannot encode would.
    #[derive(Debug, diesel::expression::AsExpression)]
    #[diesel(sql_type = Text)]
    struct Unserialisable;

    impl ToSql<Text, Pg> for Unserialisable {
        fn to_sql<'b>(&'b self, _out: &mut Output<'b, '_, Pg>) -> diesel::serialize::Result {
            Err("this value cannot be serialised".into())
        }
    }

    #[tokio::test]
    async fn a_write_whose_bind_fails_is_refused_when_queued_and_nothing_commits() {
        let db = TestDatabase::create().await;
        steps_table(&db).await;
        let mut tx = db.store().begin().await.expect("begin");
        let before = Write::new("INSERT INTO steps (id, n) VALUES (1, 0)");
        tx.defer(before, Expect::Any).expect("queued");
        let bad = Write::new("UPDATE steps SET n = 1 WHERE id = $1 AND $2 = 'x'")
            .bind::<Integer, _>(1)
            .bind::<Text, _>(Unserialisable);
        assert!(tx.defer(bad, Expect::Any).is_err(), "refused when queued");
        let after = Write::new("UPDATE steps SET n = 2 WHERE id = 1");
        assert!(tx.defer(after, Expect::Any).is_err(), "the transaction is aborted");
        assert!(tx.commit().await.is_err(), "and does not commit");
        assert_eq!(step_count(&db).await, None, "nothing was written");
    }

    #[tokio::test]
    async fn a_write_sent_at_once_whose_bind_fails_is_refused_before_anything_is_sent() {
        let db = TestDatabase::create().await;
        steps_table(&db).await;
        let mut tx = db.store().begin().await.expect("begin");
        tx.defer(Write::new("INSERT INTO steps (id, n) VALUES (1, 0)"), Expect::Any)
            .expect("queued");
        let bad = Write::new("UPDATE steps SET n = 1 WHERE $1 = 'x'").bind::<Text, _>(Unserialisable);
        assert!(matches!(tx.execute(bad).await, Err(StoreError::Unexpected(_))));
        assert!(tx.commit().await.is_err());
        assert_eq!(step_count(&db).await, None);
    }

    #[tokio::test]
    async fn a_deferred_write_the_server_refuses_aborts_the_transaction_at_the_next_read() {
        let db = TestDatabase::create().await;
        steps_table(&db).await;
        let mut tx = db.store().begin().await.expect("begin");
        let missing = Write::new("UPDATE steps SET n = 1 WHERE id = 42");
        tx.defer(missing, Expect::Rows(1, "step 42")).expect("queued");
        let read = tx.read::<Step>(Read::new("SELECT n FROM steps")).await;
        assert!(
            matches!(read, Err(StoreError::Corrupt(ref reason)) if reason.contains("step 42")),
            "{read:?}"
        );
        let again = tx.read::<Step>(Read::new("SELECT n FROM steps")).await;
        assert!(again.is_err(), "every later statement is refused");
        assert!(tx.commit().await.is_err());
    }
}
