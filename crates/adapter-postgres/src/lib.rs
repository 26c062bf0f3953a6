//! PostgreSQL storage: every repository port of `application::ports::store`, on diesel,
//! diesel-async (tokio-postgres underneath, no libpq) and a bb8 pool.
//!
//! `PgStore` is the `UnitOfWork`; its transaction `PgTx` implements every repository. Rows are
//! mapped to domain types here and nowhere else, and driver errors are translated into
//! `StoreError` at this boundary (`error`). The schema lives in `migrations/` at the workspace
//! root, embedded and applied by `run_migrations`; the database enforces the ledger's invariants
//! itself (no overdrawn user wallet, append-only postings, balanced transactions).
//!
//! With the `testing` feature, `testing::TestDatabase` gives each test a fresh, migrated database.

mod error;
mod events;
mod gates;
mod group;
mod mapping;
mod migrate;
mod repos;
mod schema;
mod settings;
mod sql;
mod store;
mod tx;

#[cfg(feature = "testing")]
pub mod testing;

pub use crate::error::SetupError;
pub use crate::migrate::run_migrations;
pub use crate::settings::PgSettings;
pub use crate::store::{PgStore, PoolStatus, ReplicaStatus};
pub use crate::tx::PgTx;
