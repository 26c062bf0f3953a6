//! A fresh database per test (feature `testing`).
//!
//! `TestDatabase::create` connects to the server of `DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`), creates a database with a unique name, migrates
//! it and opens a `PgStore` on it; dropping the `TestDatabase` drops the database. Tests running
//! side by side, as threads or as processes, never see each other's data.
//!
//! Migrating takes longer than copying, so the migrations are applied once, to a template
//! database named after a fingerprint of `migrations/` (`payments_template_<hash>`), and every test
//! database is created from it. Editing a migration changes the fingerprint: the next test builds
//! a new template and drops the old ones.
//!
//! A server that is not there fails the test, with a message saying how to start one: a storage
//! test that silently passes without its database tests nothing.

mod faults;
mod proxy;

pub use faults::{FaultInjector, StoreFault};
pub use proxy::{CommitFault, PgProxy};

use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Duration;

use tokio_postgres::NoTls;
use uuid::Uuid;

use crate::migrate::run_migrations;
use crate::settings::PgSettings;
use crate::store::{PgStore, describe, explain};

/// The server tests use when `DATABASE_URL` is not set.
pub const DATABASE_URL_DEFAULT: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Connections per test database. Tests run in parallel (one per core, or more), and they all share
/// the server's `max_connections` (100 by default).
pub const POOL_MAX_SIZE: u32 = 8;

/// A migrated database of its own, dropped (`WITH (FORCE)`) when this value is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    admin: tokio_postgres::Config,
    settings: PgSettings,
    store: PgStore,
}

impl TestDatabase {
    /// # Panics
    /// When the server cannot be reached, or the database cannot be created or migrated.
    pub async fn create() -> TestDatabase {
        TestDatabase::create_with(|_| {}).await
    }

    /// Like `create`, with the store's settings adjusted first (pool size, timeouts).
    ///
    /// # Panics
    /// As `create`.
    pub async fn create_with(adjust: impl FnOnce(&mut PgSettings)) -> TestDatabase {
        let admin_url = std::env::var("DATABASE_URL").unwrap_or_else(|_| DATABASE_URL_DEFAULT.to_owned());
        let admin: tokio_postgres::Config = admin_url
            .parse()
            .unwrap_or_else(|error| panic!("DATABASE_URL is not a PostgreSQL URL: {error}"));
        let name = format!("payments_test_{}", Uuid::now_v7().simple());
        let template = template(&admin, &admin_url)
            .await
            .unwrap_or_else(|error| server_missing(&admin, &error));
        let create = match &template {
            Some(template) => format!("CREATE DATABASE {name} TEMPLATE {template}"),
            None => format!("CREATE DATABASE {name}"),
        };
        if let Err(error) = run_admin(&admin, &create).await {
            server_missing(&admin, &explain(&error));
        }
        let mut settings = PgSettings::new(with_database(&admin_url, &name));
        settings.pool_max_size = POOL_MAX_SIZE;
        // Concurrency tests queue many tasks on a small pool; they wait, they do not fail.
        settings.acquire_timeout = Duration::from_secs(120);
        adjust(&mut settings);
        // From here on the value exists, so a failure below still drops the database.
        let pending = PendingDatabase {
            name: Some(name.clone()),
            admin: admin.clone(),
        };
        let migrated = match template {
            Some(_) => Ok(()),
            None => run_migrations(&settings).await.map(|_| ()),
        };
        if let Err(error) = migrated {
            panic!("migrating the test database {name} failed: {error}");
        }
        let store = PgStore::connect(&settings)
            .await
            .unwrap_or_else(|error| panic!("connecting to the test database {name} failed: {error}"));
        pending.keep();
        TestDatabase {
            name,
            admin,
            settings,
            store,
        }
    }

    /// The store on this database (clones share its pool).
    pub fn store(&self) -> PgStore {
        self.store.clone()
    }

    pub fn settings(&self) -> &PgSettings {
        &self.settings
    }

    /// The URL of this database, for opening other stores or raw connections on it.
    pub fn url(&self) -> &str {
        &self.settings.url
    }

    /// A plain tokio-postgres client on this database, for tests that must go around the
    /// repositories (raw SQL against the constraints, `pg_terminate_backend`).
    ///
    /// # Panics
    /// When the connection fails.
    pub async fn raw_client(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(self.url(), NoTls)
            .await
            .unwrap_or_else(|error| panic!("raw connection to {}: {error}", self.name));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "raw test connection ended");
            }
        });
        client
    }
}

impl TestDatabase {
    /// Makes the next `count` updates of rows of `table` fail as if the server had terminated the
    /// connection, even in transactions that roll back (a sequence counts them).
    ///
    /// # Panics
    /// When `table` is not a plain name or the SQL fails.
    pub async fn fail_updates_of(&self, table: &str, count: u32) {
        fail_updates_of(self.url(), table, count).await;
    }
}

/// `TestDatabase::fail_updates_of` for the database at `url`.
///
/// # Panics
/// As `TestDatabase::fail_updates_of`.
pub async fn fail_updates_of(url: &str, table: &str, count: u32) {
    assert!(
        table.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
        "not a table name: {table}"
    );
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|error| panic!("raw connection: {error}"));
    tokio::spawn(connection);
    let sql = format!(
        "CREATE SEQUENCE IF NOT EXISTS injected_faults_{table}; \
         CREATE OR REPLACE FUNCTION injected_fault_{table}() RETURNS trigger LANGUAGE plpgsql AS $body$ \
         BEGIN \
             IF nextval('injected_faults_{table}') <= {count} THEN \
                 RAISE EXCEPTION 'terminating connection: a fault injected by a test'; \
             END IF; \
             RETURN NEW; \
         END $body$; \
         SELECT setval('injected_faults_{table}', 1, false); \
         DROP TRIGGER IF EXISTS injected_fault ON {table}; \
         CREATE TRIGGER injected_fault BEFORE UPDATE ON {table} FOR EACH ROW EXECUTE FUNCTION injected_fault_{table}();"
    );
    client
        .batch_execute(&sql)
        .await
        .unwrap_or_else(|error| panic!("injecting a fault into {table}: {error}"));
}

fn server_missing(admin: &tokio_postgres::Config, error: &str) -> ! {
    panic!(
        "cannot create a test database on PostgreSQL at {}: {error}. If the server is not running, start it with \
         `scripts/services.sh` (or `pg_ctlcluster 15 main start`), or point DATABASE_URL at one.",
        describe(admin)
    )
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        drop_database(&self.admin, &self.name);
    }
}

/// Drops the database if `create_with` panics half-way.
struct PendingDatabase {
    name: Option<String>,
    admin: tokio_postgres::Config,
}

impl PendingDatabase {
    fn keep(mut self) {
        self.name = None;
    }
}

impl Drop for PendingDatabase {
    fn drop(&mut self) {
        if let Some(name) = &self.name {
            drop_database(&self.admin, name);
        }
    }
}

/// `Drop` cannot await, and may run inside a runtime (where blocking on it would panic): the
/// database is dropped from a thread of its own with a small runtime, which this waits for.
/// `WITH (FORCE)` ends the pool's connections still open on it.
fn drop_database(admin: &tokio_postgres::Config, name: &str) {
    let admin = admin.clone();
    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
    let outcome = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|error| error.to_string())?;
        runtime.block_on(run_admin(&admin, &sql)).map_err(|error| explain(&error))
    })
    .join();
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(error)) => eprintln!("could not drop test database {name}: {error}"),
        Err(_) => eprintln!("could not drop test database {name}: the dropping thread panicked"),
    }
}

async fn run_admin(admin: &tokio_postgres::Config, sql: &str) -> Result<(), tokio_postgres::Error> {
    let (client, driver) = connect_admin(admin).await?;
    let outcome = client.batch_execute(sql).await;
    drop(client);
    let _ = driver.await;
    outcome
}

async fn connect_admin(
    admin: &tokio_postgres::Config,
) -> Result<(tokio_postgres::Client, tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>), tokio_postgres::Error> {
    let mut config = admin.clone();
    config.connect_timeout(Duration::from_secs(5));
    let (client, connection) = config.connect(NoTls).await?;
    Ok((client, tokio::spawn(connection)))
}

/// Serialises the building of templates across test processes.
const TEMPLATE_LOCK_KEY: i64 = 0x7465_6d70_6c61_7465;

/// The name of a migrated template database for the current migrations, built if missing. `None`
/// when the migrations cannot be read from the source tree (the test database is then migrated
/// itself).
async fn template(admin: &tokio_postgres::Config, admin_url: &str) -> Result<Option<String>, String> {
    let Some(fingerprint) = migrations_fingerprint() else {
        return Ok(None);
    };
    let name = format!("payments_template_{fingerprint:016x}");
    let (client, driver) = connect_admin(admin).await.map_err(|error| explain(&error))?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&TEMPLATE_LOCK_KEY])
        .await
        .map_err(|error| explain(&error))?;
    let built = build_template(&client, admin_url, &name).await;
    // Ending the session releases the advisory lock too; unlocking first is just tidier.
    let _ = client.execute("SELECT pg_advisory_unlock($1)", &[&TEMPLATE_LOCK_KEY]).await;
    drop(client);
    let _ = driver.await;
    built.map(|()| Some(name))
}

/// Builds the template under a temporary name and renames it when complete, so that no test ever
/// copies a half-migrated one. Templates of other migrations are dropped (best effort).
async fn build_template(client: &tokio_postgres::Client, admin_url: &str, name: &str) -> Result<(), String> {
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .map_err(|error| explain(&error))?
        .is_some();
    if exists {
        return Ok(());
    }
    let building = format!("{name}_building");
    client
        .batch_execute(&format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"))
        .await
        .map_err(|error| explain(&error))?;
    client
        .batch_execute(&format!("CREATE DATABASE {building}"))
        .await
        .map_err(|error| explain(&error))?;
    run_migrations(&PgSettings::new(with_database(admin_url, &building)))
        .await
        .map_err(|error| error.to_string())?;
    client
        .batch_execute(&format!("ALTER DATABASE {building} RENAME TO {name}"))
        .await
        .map_err(|error| explain(&error))?;
    let stale = client
        .query(
            "SELECT datname FROM pg_database WHERE datname LIKE 'payments\\_template\\_%' AND datname <> $1",
            &[&name],
        )
        .await
        .map_err(|error| explain(&error))?;
    for row in stale {
        let old: String = row.get(0);
        if let Err(error) = client.batch_execute(&format!("DROP DATABASE IF EXISTS {old}")).await {
            tracing::debug!(%error, database = %old, "an old template is still in use");
        }
    }
    Ok(())
}

/// A hash of every file under `migrations/`, read from the source tree this crate was built from.
fn migrations_fingerprint() -> Option<u64> {
    let root = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations"));
    let mut files = Vec::new();
    for migration in std::fs::read_dir(root).ok()? {
        let migration = migration.ok()?.path();
        for file in std::fs::read_dir(&migration).ok()? {
            files.push(file.ok()?.path());
        }
    }
    files.sort();
    let mut hasher = DefaultHasher::new();
    for file in files {
        file.strip_prefix(root).ok()?.hash(&mut hasher);
        std::fs::read(&file).ok()?.hash(&mut hasher);
    }
    Some(hasher.finish())
}

/// `url` with its database replaced by `database`, keeping the query string.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |index| index + 3);
    let authority_end = base[authority_start..]
        .find('/')
        .map_or(base.len(), |index| authority_start + index);
    let mut replaced = format!("{}/{database}", &base[..authority_end]);
    if let Some(query) = query {
        replaced.push('?');
        replaced.push_str(query);
    }
    replaced
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_of_a_url_is_replaced() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "t2"),
            "postgres://u:p@h/t2?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h:5433", "t3"), "postgres://h:5433/t3");
    }
}
