//! The repository contract, run against the SQLite store: the same tests the in-memory and
//! PostgreSQL stores pass.

use example_sqlite_store::SqliteStore;

repository_contract::contract_tests!(async { (SqliteStore::in_memory().expect("an in-memory database"), ()) });
