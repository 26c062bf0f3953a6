//! The SQL migrations of `migrations/`, embedded in the binary and applied without libpq.
//!
//! diesel's migration harness is synchronous; diesel-async's `AsyncConnectionWrapper` gives it a
//! connection that blocks on the async one. That runs on a blocking thread (`spawn_blocking`), so
//! it works from any tokio runtime, including the current-thread one of `#[tokio::test]`, where
//! diesel-async's `AsyncMigrationHarness` (`block_in_place`) would panic.
//!
//! Several server processes may start at once: a session advisory lock lets one migrate while the
//! others wait, then find nothing left to do.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel_async::AsyncPgConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::error::SetupError;
use crate::settings::PgSettings;
use crate::store::Connector;

pub(crate) const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Any constant both migrators agree on: `pg_advisory_lock` takes a 64-bit key.
const MIGRATION_LOCK_KEY: i64 = 0x7061_796d_656e_7473;

/// Applies the migrations the database has not seen yet and returns their versions.
///
/// The connection has no statement timeout (building an index on a large table may take long)
/// but keeps the configured lock timeout, so a migration gives up rather than stall live traffic
/// behind its lock.
///
/// # Errors
/// `Unreachable` when no connection can be made, `Migration` when a migration fails (it is then
/// rolled back).
pub async fn run_migrations(settings: &PgSettings) -> Result<Vec<String>, SetupError> {
    let connector = Connector::new(settings, Duration::ZERO)?;
    let connection = connector.establish().await.map_err(|error| SetupError::Unreachable {
        target: connector.describe(),
        reason: error.to_string(),
    })?;
    tokio::task::spawn_blocking(move || migrate(connection))
        .await
        .map_err(|error| SetupError::Migration(format!("the migration thread failed: {error}")))?
}

fn migrate(connection: AsyncPgConnection) -> Result<Vec<String>, SetupError> {
    let mut connection: AsyncConnectionWrapper<AsyncPgConnection> = AsyncConnectionWrapper::from(connection);
    // Waiting for the other migrator is expected, so this one wait is not bounded by lock_timeout.
    connection
        .batch_execute(&format!(
            "SET lock_timeout = 0; SELECT pg_advisory_lock({MIGRATION_LOCK_KEY}); RESET lock_timeout"
        ))
        .map_err(|error| SetupError::Migration(format!("taking the migration lock: {error}")))?;
    let applied = connection
        .run_pending_migrations(MIGRATIONS)
        .map(|versions| versions.iter().map(ToString::to_string).collect())
        .map_err(|error| SetupError::Migration(error.to_string()));
    if let Err(error) = connection.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})")) {
        tracing::warn!(%error, "releasing the migration lock failed; closing the connection releases it");
    }
    applied
}
