//! The example's purchase and refund over SQLite: through the library over a database in memory,
//! and through the binary over a file it reopens.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use adapter_memory::MemoryCache;
use application::context::{App, Settings};
use application::ports::gateway::Gateways;
use application::ports::system::{SystemClock, UuidV7Generator};
use application::testing::{PlainHasher, RecordingWebhooks, SpelledTokens};
use domain::order::OrderStatus;
use example_sqlite_store::SqliteStore;
use example_sqlite_store::shop::purchase_and_refund;

fn app(store: SqliteStore) -> App<SqliteStore> {
    App {
        store,
        clock: Arc::new(SystemClock),
        ids: Arc::new(UuidV7Generator),
        hasher: Arc::new(PlainHasher),
        tokens: Arc::new(SpelledTokens::default()),
        gateways: Gateways::new(),
        cache: Arc::new(MemoryCache::new()),
        webhooks: Arc::new(RecordingWebhooks::default()),
        settings: Settings::default(),
    }
}

#[tokio::test]
async fn two_lamps_are_bought_from_the_wallet_and_one_is_refunded() {
    let app = app(SqliteStore::in_memory().expect("an in-memory database"));

    let receipt = purchase_and_refund(&app, "one").await.expect("the purchase and the refund");

    assert_eq!(receipt.order_total, 5_100);
    assert_eq!(receipt.refunded, 2_550);
    assert_eq!(receipt.order_status, OrderStatus::PartiallyRefunded);
    assert!(receipt.retry_answered_with_the_same_order);
    assert_eq!(receipt.customer_balance, 10_000 - 5_100 + 2_550);
    assert_eq!(receipt.merchant_balance, 5_100 - 2_550);
    assert_eq!(receipt.stock_left, 1);
    assert_eq!(receipt.ledger_problems, Vec::<String>::new());
}

#[tokio::test]
async fn a_second_run_over_the_same_store_keeps_both_runs_books() {
    let app = app(SqliteStore::in_memory().expect("an in-memory database"));
    let first = purchase_and_refund(&app, "one").await.expect("the first run");
    let second = purchase_and_refund(&app, "two").await.expect("the second run");
    assert_ne!(first.order, second.order);
    assert_eq!(second.ledger_problems, Vec::<String>::new(), "the verification covers both runs");
}

/// A database file in the system's temporary directory, removed with its WAL files at the end.
struct TempDatabase(PathBuf);

impl TempDatabase {
    fn new(name: &str) -> TempDatabase {
        let path = std::env::temp_dir().join(format!("{name}-{}-{}.db", std::process::id(), uuid_suffix()));
        TempDatabase(path)
    }
}

fn uuid_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|since| since.as_nanos())
        .unwrap_or_default()
}

impl Drop for TempDatabase {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut path = self.0.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

#[test]
fn the_binary_runs_twice_over_one_file_and_the_books_stay_exact() {
    let database = TempDatabase::new("sqlite-store-example");
    for run in 1..=2 {
        let output = Command::new(env!("CARGO_BIN_EXE_example-sqlite-store"))
            .arg(&database.0)
            .env("BCRYPT_COST", "4")
            .output()
            .expect("the example runs");
        let printed = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "run {run}: {printed}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            printed.contains("2 lamps for 51.00 USD, PartiallyRefunded after a refund of 25.50 USD"),
            "run {run}: {printed}"
        );
        assert!(printed.contains("answered with the same order"), "run {run}: {printed}");
        assert!(printed.contains("customer wallet: 74.50 USD"), "run {run}: {printed}");
        assert!(printed.contains("ledger: exact"), "run {run}: {printed}");
    }
}
