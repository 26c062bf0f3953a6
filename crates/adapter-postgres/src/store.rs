//! `PgStore`: the connection pool, and the `UnitOfWork` that starts transactions on it.
//!
//! Connections are opened by this module rather than by diesel-async's default setup, so that
//! the connect timeout, TCP keepalives and the session's `statement_timeout`, `lock_timeout` and
//! `idle_in_transaction_session_timeout` travel in the startup packet: no extra round trip, and no connection of the pool ever runs
//! without them.
//!
//! The pool does not test a connection with `SELECT 1` when it hands it out (an extra round trip
//! per transaction). `BEGIN`, sent with the transaction's first statement, is that test instead:
//! a connection whose `BEGIN` fails because the server went away is discarded and the transaction
//! continues on another one (see `tx`): at most once per connection the pool can hold, plus one,
//! since after a server restart every idle connection is dead.

use std::sync::Arc;
use std::time::Duration;

use application::ports::store::{Contention, StoreError, StoreResult, UnitOfWork};
use diesel::result::ConnectionResult;
use diesel::sql_types::Uuid as SqlUuid;
use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::bb8::{Pool, RunError};
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, PoolError};
use tokio_postgres::NoTls;
use tokio_postgres::config::Host;
use uuid::Uuid;

use crate::error::{SetupError, translate};
use crate::gates::StockGates;
use crate::group::Groups;
use crate::settings::PgSettings;
use crate::sql::{Read, Write};
use crate::tx::PgTx;

/// TCP keepalive: a server that vanished without closing the connection is noticed within about
/// `IDLE + INTERVAL * RETRIES`, even by a connection waiting for a reply.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_RETRIES: u32 = 3;

/// The connection pool's state: open and idle connections against its size, and the checkouts
/// that had to wait (or gave up waiting) since it opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStatus {
    pub max: u32,
    pub connections: u32,
    pub idle: u32,
    /// Checkouts that waited for a connection to become free.
    pub waited: u64,
    /// Checkouts that gave up after `acquire_timeout`.
    pub timed_out: u64,
    /// Time spent waiting, all checkouts together.
    pub wait_time: Duration,
}

/// The PostgreSQL store. Clones share the pool.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool<AsyncPgConnection>,
    settings: Arc<PgSettings>,
    stock_gates: Arc<StockGates>,
    /// Transactions on the same stock rows sharing one commit (`begin_grouped`, see `group`).
    groups: Arc<Groups>,
    /// Where reads that may lag go (`UnitOfWork::begin_lagging`), if anywhere but here.
    replica: Option<Arc<Replica>>,
}

/// A streaming replica of the database, for reads that may lag. When it cannot be reached,
/// those reads go to the primary instead, and the replica is tried again after
/// `REPLICA_RETRY_AFTER`: an outage of the replica slows nothing down and fails nothing.
struct Replica {
    store: PgStore,
    /// When the replica was last found unreachable, while it is.
    down_since: std::sync::Mutex<Option<std::time::Instant>>,
    /// Reads that went to the primary because the replica could not be reached.
    fallbacks: std::sync::atomic::AtomicU64,
}

/// How long lagging reads skip a replica found unreachable before trying it again.
const REPLICA_RETRY_AFTER: Duration = Duration::from_secs(5);

/// The replica's state, for metrics: its pool, and how many reads went to the primary instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaStatus {
    pub pool: PoolStatus,
    pub fallbacks: u64,
    pub up: bool,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("settings", &self.settings)
            .field("pool", &self.pool.state())
            .finish()
    }
}

impl PgStore {
    /// Opens the pool. One connection is made at once, so an unreachable server, a wrong
    /// database name or bad credentials fail here with the server's reason, not later as a pool
    /// timeout.
    ///
    /// # Errors
    /// `InvalidUrl` or `InvalidSettings` for bad settings, `Unreachable` when no connection can be
    /// made.
    pub async fn connect(settings: &PgSettings) -> Result<PgStore, SetupError> {
        settings.validate()?;
        let connector = Arc::new(Connector::new(settings, settings.statement_timeout)?);
        let first = connector.establish().await.map_err(|error| SetupError::Unreachable {
            target: connector.describe(),
            reason: error.to_string(),
        })?;
        let store = PgStore::open(settings, connector).await?;
        store.warn_about_message_language(first).await;
        Ok(store)
    }

    /// How many wallet checkouts of the same cart share one commit unless told otherwise
    /// (`with_group_commit_members`).
    pub const GROUP_COMMIT_MEMBERS_DEFAULT: usize = 16;

    /// At most `members` transactions on the same hot rows share one transaction and commit
    /// (`UnitOfWork::begin_grouped`, see `group`); 1 runs each on its own. The default is
    /// `GROUP_COMMIT_MEMBERS_DEFAULT`.
    ///
    /// # Errors
    /// `InvalidSettings` for zero members.
    pub fn with_group_commit_members(mut self, members: usize) -> Result<PgStore, SetupError> {
        if members == 0 {
            return Err(SetupError::InvalidSettings(
                "a group commit needs at least 1 member (1: no grouping)",
            ));
        }
        self.groups = Arc::new(Groups::new(members));
        Ok(self)
    }

    /// Sends the reads that may lag (`UnitOfWork::begin_lagging`: lists, history, statements,
    /// the catalog) to a streaming replica of the database, in read-only transactions on a pool of
    /// their own. Nothing is connected yet: an unreachable replica does not keep the service from
    /// starting, since those reads then go to the primary (see `Replica`).
    ///
    /// # Errors
    /// `InvalidUrl` or `InvalidSettings` for bad settings.
    pub async fn with_replica(mut self, settings: &PgSettings) -> Result<PgStore, SetupError> {
        settings.validate()?;
        let connector = Arc::new(Connector::new(settings, settings.statement_timeout)?);
        tracing::info!(replica = %connector.describe(), "reads that may lag go to the replica");
        let store = PgStore::open(settings, connector).await?;
        self.replica = Some(Arc::new(Replica {
            store,
            down_since: std::sync::Mutex::new(None),
            fallbacks: std::sync::atomic::AtomicU64::new(0),
        }));
        Ok(self)
    }

    /// The pool, opening connections with `connector` when they are needed.
    async fn open(settings: &PgSettings, connector: Arc<Connector>) -> Result<PgStore, SetupError> {
        let mut manager_config = ManagerConfig::<AsyncPgConnection>::default();
        manager_config.custom_setup = Box::new(move |_url| {
            let connector = Arc::clone(&connector);
            Box::pin(async move { connector.establish().await })
        });
        let manager = AsyncDieselConnectionManager::new_with_config(settings.url.clone(), manager_config);
        let pool = Pool::builder()
            .max_size(settings.pool_max_size)
            .connection_timeout(settings.acquire_timeout)
            .test_on_check_out(false)
            .error_sink(Box::new(LogErrors))
            .build(manager)
            .await
            .map_err(|error| SetupError::Pool(error.to_string()))?;
        Ok(PgStore {
            pool,
            settings: Arc::new(settings.clone()),
            stock_gates: Arc::new(StockGates::new(settings.stock_row_waiters)),
            groups: Arc::new(Groups::new(PgStore::GROUP_COMMIT_MEMBERS_DEFAULT)),
            replica: None,
        })
    }

    pub fn settings(&self) -> &PgSettings {
        &self.settings
    }

    /// The pool's connections now, and its waits since it opened: what saturation looks like.
    pub fn pool_status(&self) -> PoolStatus {
        let state = self.pool.state();
        PoolStatus {
            max: self.settings.pool_max_size,
            connections: state.connections,
            idle: state.idle_connections,
            waited: state.statistics.get_waited,
            timed_out: state.statistics.get_timed_out,
            wait_time: state.statistics.get_wait_time,
        }
    }

    /// The replica's pool and fallbacks, if reads that may lag go to one.
    pub fn replica_status(&self) -> Option<ReplicaStatus> {
        self.replica.as_ref().map(|replica| ReplicaStatus {
            pool: replica.store.pool_status(),
            fallbacks: replica.fallbacks.load(std::sync::atomic::Ordering::Relaxed),
            up: replica.down_since().is_none(),
        })
    }

    pub(crate) fn stock_gates(&self) -> &StockGates {
        &self.stock_gates
    }

    pub(crate) fn groups(&self) -> &Arc<Groups> {
        &self.groups
    }

    /// How many transactions have joined the groups that still take members, so that a test can
    /// wait until they are there instead of sleeping.
    #[cfg(feature = "testing")]
    pub fn group_members_joined(&self) -> usize {
        self.groups.joined()
    }

    /// How many members of the groups that still take members are waiting for their group's
    /// connection, so that a test can wait until they queue for it.
    #[cfg(feature = "testing")]
    pub fn group_members_waiting(&self) -> usize {
        self.groups.waiting()
    }

    /// How many members so far had their opening sent by the member before them (see `group`).
    #[cfg(feature = "testing")]
    pub fn group_openings_sent_ahead(&self) -> usize {
        self.groups.sent_ahead()
    }

    /// How many transactions of this store are waiting at a stock gate, so that a test can wait
    /// until they are there instead of sleeping.
    #[cfg(feature = "testing")]
    pub fn stock_gate_waiters(&self) -> usize {
        self.stock_gates.waiting()
    }

    /// A read-only transaction over one snapshot of the database (see `PgTx::begin_snapshot`).
    #[cfg(feature = "testing")]
    pub fn begin_snapshot(&self) -> PgTx {
        PgTx::begin_snapshot(self.clone())
    }

    /// Error classification reads the server's messages (see `error`); say so if they are not
    /// in English. The connection then joins the pool.
    async fn warn_about_message_language(&self, mut connection: AsyncPgConnection) {
        #[derive(diesel::QueryableByName)]
        struct Setting {
            #[diesel(sql_type = diesel::sql_types::Text)]
            value: String,
        }
        let query = Read::new("SELECT current_setting('lc_messages') AS value");
        let setting = diesel_async::RunQueryDsl::get_result::<Setting>(query, &mut connection).await;
        match setting {
            Ok(Setting { value }) if !english_messages(&value) => tracing::warn!(
                lc_messages = %value,
                "PostgreSQL sends messages in another language: deadlocks and timeouts will be reported as unexpected errors"
            ),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "could not read lc_messages"),
        }
        if self.pool.add(connection).is_err() {
            tracing::debug!("the pool was full; the first connection is closed");
        }
    }

    /// A connection for a transaction of reads that may lag: the replica's, if there is one
    /// and it answers; the primary's otherwise.
    pub(crate) async fn lagging_connection(&self) -> StoreResult<crate::tx::Connection> {
        let Some(replica) = &self.replica else {
            return self.connection().await;
        };
        if replica.down_since().is_some_and(|since| since.elapsed() < REPLICA_RETRY_AFTER) {
            replica.fallbacks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return self.connection().await;
        }
        match replica.store.connection().await {
            Ok(connection) => {
                replica.mark(None);
                Ok(connection)
            }
            Err(StoreError::Unavailable(reason)) => {
                replica.mark(Some(reason));
                replica.fallbacks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.connection().await
            }
            Err(other) => Err(other),
        }
    }

    /// Whether the replica answers `SELECT 1`, if there is one.
    pub async fn ping_replica(&self) -> Option<StoreResult<()>> {
        let replica = self.replica.as_ref()?;
        Some(replica.store.ping_primary().await)
    }

    async fn ping_primary(&self) -> StoreResult<()> {
        let mut connection = self.connection().await?;
        diesel_async::RunQueryDsl::execute(Read::new("SELECT 1"), &mut *connection)
            .await
            .map(|_| ())
            .map_err(translate)
    }

    pub(crate) async fn connection(&self) -> StoreResult<crate::tx::Connection> {
        self.pool.get_owned().await.map_err(|error| match error {
            RunError::TimedOut => StoreError::Unavailable(format!(
                "no database connection became free within {:?}",
                self.settings.acquire_timeout
            )),
            RunError::User(PoolError::ConnectionError(error)) => StoreError::Unavailable(error.to_string()),
            RunError::User(PoolError::QueryError(error)) => translate(error),
        })
    }
}

impl PgStore {
    /// Learns whether the transaction that inserted commit marker `marker` committed, after the
    /// answer to its `COMMIT` was lost (see `tx`): inserting the marker again either finds it
    /// (committed) or fences the transaction out (it did not, and now cannot).
    pub(crate) async fn resolve_commit(&self, marker: Uuid, lost: String) -> StoreResult<()> {
        let fence = Write::new("INSERT INTO commit_markers (id) VALUES ($1) ON CONFLICT (id) DO NOTHING").bind::<SqlUuid, _>(marker);
        // Idle connections may have died with the one that was lost: try others.
        let mut last_error = String::new();
        for _ in 0..=self.settings.pool_max_size {
            let answer = match self.connection().await {
                Ok(mut connection) => diesel_async::RunQueryDsl::execute(fence.clone(), &mut *connection)
                    .await
                    .map_err(translate),
                Err(error) => Err(error),
            };
            match answer {
                Ok(0) => {
                    tracing::warn!(%marker, reason = %lost, "the answer to COMMIT was lost, but the transaction committed");
                    return Ok(());
                }
                Ok(_) => {
                    tracing::warn!(%marker, reason = %lost, "the answer to COMMIT was lost; the transaction did not commit");
                    return Err(StoreError::Unavailable(format!("{lost} (the transaction did not commit)")));
                }
                Err(StoreError::Unavailable(reason)) => last_error = reason,
                Err(other) => {
                    last_error = other.to_string();
                    break;
                }
            }
        }
        tracing::error!(%marker, reason = %lost, error = %last_error, "the answer to COMMIT was lost and its outcome cannot be learned");
        Err(StoreError::OutcomeUnknown(format!("{lost}; asking again failed: {last_error}")))
    }
}

impl Replica {
    fn down_since(&self) -> Option<std::time::Instant> {
        *self.down_since.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records whether the replica answered (`None`) or why not; logs only when that changes.
    fn mark(&self, unreachable: Option<String>) {
        let mut down_since = self.down_since.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match (down_since.is_some(), unreachable) {
            (false, Some(reason)) => {
                tracing::warn!(%reason, "the read replica cannot be reached; reads that may lag go to the primary");
                *down_since = Some(std::time::Instant::now());
            }
            (true, Some(_)) => *down_since = Some(std::time::Instant::now()),
            (true, None) => {
                tracing::info!("the read replica answers again");
                *down_since = None;
            }
            (false, None) => {}
        }
    }
}

/// How long commit markers are kept: a lost commit is resolved within the lock timeout.
const COMMIT_MARKERS_KEPT: time::Duration = time::Duration::minutes(10);

impl UnitOfWork for PgStore {
    type Tx = PgTx;

    /// The connection is taken from the pool with the transaction's first statement (see `tx`).
    async fn begin(&self) -> StoreResult<PgTx> {
        Ok(PgTx::begin(self.clone()))
    }

    /// On the replica, if there is one and it answers; on the primary otherwise. The
    /// transaction is read-only either way.
    async fn begin_lagging(&self) -> StoreResult<PgTx> {
        Ok(PgTx::begin_lagging(self.clone()))
    }

    /// Joins the group of concurrent transactions on the same rows, if grouping is on
    /// (`with_group_commit_members`); see `group`.
    async fn begin_grouped(&self, contention: &Contention) -> StoreResult<PgTx> {
        if !self.groups.enabled() || contention.is_empty() {
            return Ok(PgTx::begin(self.clone()));
        }
        Ok(PgTx::begin_grouped(self.clone(), contention.clone()))
    }

    async fn ping(&self) -> StoreResult<()> {
        self.ping_primary().await
    }

    async fn ping_lagging(&self) -> Option<StoreResult<()>> {
        self.ping_replica().await
    }

    /// Prunes commit markers older than `COMMIT_MARKERS_KEPT`. Their ids are version 7 UUIDs,
    /// ordered by time, so the primary key finds them.
    async fn upkeep(&self, now: time::OffsetDateTime) -> StoreResult<()> {
        let before = oldest_uuid_at(now - COMMIT_MARKERS_KEPT);
        let prune = Write::new("DELETE FROM commit_markers WHERE id < $1").bind::<SqlUuid, _>(before);
        let mut connection = self.connection().await?;
        let pruned = diesel_async::RunQueryDsl::execute(prune, &mut *connection)
            .await
            .map_err(translate)?;
        tracing::debug!(pruned, "commit markers pruned");
        Ok(())
    }
}

/// The smallest version 7 UUID of the millisecond `at`.
fn oldest_uuid_at(at: time::OffsetDateTime) -> Uuid {
    let millis = u64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
    let mut bytes = [0_u8; 16];
    bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    bytes[6] = 0x70;
    bytes[8] = 0x80;
    Uuid::from_bytes(bytes)
}

/// Logs what the pool meets while opening connections in the background.
#[derive(Debug, Clone, Copy)]
struct LogErrors;

impl bb8::ErrorSink<PoolError> for LogErrors {
    fn sink(&self, error: PoolError) {
        tracing::warn!(%error, "database connection failed");
    }

    fn boxed_clone(&self) -> Box<dyn bb8::ErrorSink<PoolError>> {
        Box::new(*self)
    }
}

/// How the connections are opened: the driver's configuration (the URL's settings plus timeouts
/// and keepalives) and the session settings every connection runs with.
///
/// The session settings travel in the startup packet (`options`): no extra round trip. A pooler
/// in front of PostgreSQL may refuse that parameter (PgBouncer answers "unsupported startup
/// parameter: options"); then, from that connection on, they are set by one statement right after
/// connecting, before the connection joins the pool, so that no connection runs without them.
/// (PgBouncer must then pool by session: see `docs/scaling.md`.)
pub(crate) struct Connector {
    /// With the session settings in `options`.
    config: tokio_postgres::Config,
    /// Without them, for a server that refuses `options`.
    plain: tokio_postgres::Config,
    /// The session settings as `SET` statements.
    set_session: String,
    options_refused: std::sync::atomic::AtomicBool,
}

impl Connector {
    pub(crate) fn new(settings: &PgSettings, statement_timeout: Duration) -> Result<Connector, SetupError> {
        let mut plain: tokio_postgres::Config = settings
            .url
            .parse()
            .map_err(|error: tokio_postgres::Error| SetupError::InvalidUrl(error.to_string()))?;
        plain
            .connect_timeout(settings.connect_timeout)
            .keepalives(true)
            .keepalives_idle(KEEPALIVE_IDLE)
            .keepalives_interval(KEEPALIVE_INTERVAL)
            .keepalives_retries(KEEPALIVE_RETRIES);
        if plain.get_application_name().is_none() {
            plain.application_name("payments");
        }
        // Generic plans: every statement here is a short lookup or write by key, for which the
        // generic plan is as good as a custom one, and with id arrays (`= ANY($1)`) PostgreSQL
        // would otherwise keep re-planning each execution, which measured as a sixth of a
        // purchase's database CPU.
        let session = [
            ("plan_cache_mode", "force_generic_plan".to_owned()),
            ("statement_timeout", statement_timeout.as_millis().to_string()),
            ("lock_timeout", settings.lock_timeout.as_millis().to_string()),
            (
                "idle_in_transaction_session_timeout",
                settings.idle_in_transaction_timeout.as_millis().to_string(),
            ),
        ];
        let in_options = session
            .iter()
            .map(|(name, value)| format!("-c {name}={value}"))
            .collect::<Vec<_>>()
            .join(" ");
        let set_session = session
            .iter()
            .map(|(name, value)| format!("SET {name} = '{value}';"))
            .collect::<String>();
        let options = match plain.get_options() {
            Some(existing) if !existing.trim().is_empty() => format!("{existing} {in_options}"),
            _ => in_options,
        };
        let mut config = plain.clone();
        config.options(options);
        Ok(Connector {
            config,
            plain,
            set_session,
            options_refused: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Opens one connection, driven by a task on the current runtime, with the session settings.
    pub(crate) async fn establish(&self) -> ConnectionResult<AsyncPgConnection> {
        use std::sync::atomic::Ordering;
        if !self.options_refused.load(Ordering::Relaxed) {
            match open(&self.config).await {
                Err(refused) if refuses_options(&refused) => {
                    if !self.options_refused.swap(true, Ordering::Relaxed) {
                        tracing::info!(
                            target = %describe(&self.plain),
                            "the server refuses session options at startup (a pooler?); they are set after connecting"
                        );
                    }
                }
                Err(other) => return Err(diesel::ConnectionError::BadConnection(explain(&other))),
                Ok((client, connection)) => return AsyncPgConnection::try_from_client_and_connection(client, connection).await,
            }
        }
        let (client, connection) = open(&self.plain)
            .await
            .map_err(|error| diesel::ConnectionError::BadConnection(explain(&error)))?;
        let mut connection = AsyncPgConnection::try_from_client_and_connection(client, connection).await?;
        diesel_async::SimpleAsyncConnection::batch_execute(&mut connection, &self.set_session)
            .await
            .map_err(|error| diesel::ConnectionError::BadConnection(error.to_string()))?;
        Ok(connection)
    }

    /// `host:port/database`, for messages (never the password).
    pub(crate) fn describe(&self) -> String {
        describe(&self.plain)
    }
}

async fn open(
    config: &tokio_postgres::Config,
) -> Result<
    (
        tokio_postgres::Client,
        tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>,
    ),
    tokio_postgres::Error,
> {
    config.connect(NoTls).await
}

/// Whether the server refused the `options` startup parameter (PgBouncer does: SQLSTATE 08P01,
/// "unsupported startup parameter: options").
fn refuses_options(error: &tokio_postgres::Error) -> bool {
    error
        .as_db_error()
        .is_some_and(|db| db.message().contains("unsupported startup parameter") && db.message().contains("options"))
}

/// A driver error with its causes and the server's message: tokio-postgres displays only
/// "error connecting to server" or "db error".
pub(crate) fn explain(error: &tokio_postgres::Error) -> String {
    let mut text = error.to_string();
    if let Some(db) = error.as_db_error() {
        text.push_str(": ");
        text.push_str(db.message());
        return text;
    }
    let mut cause = std::error::Error::source(error);
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

/// `host:port/database`, for messages (never the password).
pub(crate) fn describe(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(name)) => name.clone(),
        Some(Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}/{}", config.get_dbname().unwrap_or("(default database)"))
}

fn english_messages(lc_messages: &str) -> bool {
    let lower = lc_messages.to_ascii_lowercase();
    lower.is_empty() || lower == "c" || lower.starts_with("c.") || lower == "posix" || lower.starts_with("en")
}
