//! The `server` binary itself: its operator commands against a real database, and a graceful stop.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use adapter_postgres::testing::TestDatabase;

const SERVER: &str = env!("CARGO_BIN_EXE_server");

fn server(database: &TestDatabase, args: &[&str]) -> Output {
    Command::new(SERVER)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", database.url())
        .env("BCRYPT_COST", "4")
        .env("RUST_LOG", "warn")
        .output()
        .expect("the server binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn seed_is_idempotent_and_verify_ledger_reports_a_broken_invariant() {
    let database = TestDatabase::create().await;
    let seeded = server(&database, &["seed"]);
    assert!(seeded.status.success(), "{}", text(&seeded.stderr));
    assert!(text(&seeded.stdout).contains("users_created: 6"), "{}", text(&seeded.stdout));
    let again = server(&database, &["seed"]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    let again = text(&again.stdout);
    assert!(
        again.contains("users_created: 0") && again.contains("products_created: 0") && again.contains("wallets_funded: 0"),
        "{again}"
    );

    let verified = server(&database, &["verify-ledger"]);
    assert!(verified.status.success(), "{}", text(&verified.stderr));
    assert!(text(&verified.stdout).contains("ledger OK"));

    // Someone edits a cached balance behind the ledger's back.
    let client = database.raw_client().await;
    client
        .execute("UPDATE wallets SET balance = balance + 1 WHERE id = (SELECT id FROM wallets WHERE owner_user_id IS NOT NULL AND balance > 0 LIMIT 1)", &[])
        .await
        .expect("tamper");
    let broken = server(&database, &["verify-ledger"]);
    assert_eq!(broken.status.code(), Some(2), "{}", text(&broken.stdout));
    let report = text(&broken.stderr);
    assert!(report.contains("PROBLEM") && report.contains("caches balance"), "{report}");
}

#[tokio::test]
async fn create_admin_makes_an_admin_once_and_migrate_is_idempotent() {
    let database = TestDatabase::create().await;
    let created = server(
        &database,
        &["create-admin", "--email", "Ops@Example.com", "--password", "operator secret 1"],
    );
    assert!(created.status.success(), "{}", text(&created.stderr));
    assert!(text(&created.stdout).contains("admin ops@example.com"));
    let again = server(
        &database,
        &["create-admin", "--email", "ops@example.com", "--password", "operator secret 1"],
    );
    assert!(again.status.success(), "{}", text(&again.stderr));
    let weak = server(&database, &["create-admin", "--email", "other@example.com", "--password", "short"]);
    assert!(!weak.status.success());
    let migrated = server(&database, &["migrate"]);
    assert!(migrated.status.success(), "{}", text(&migrated.stderr));
    assert!(text(&migrated.stdout).contains("up to date"), "{}", text(&migrated.stdout));
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[tokio::test]
async fn sigterm_lets_the_request_in_flight_finish() {
    let port = free_port();
    // A high bcrypt cost makes registration slow enough to be caught in flight.
    let mut child = Command::new(SERVER)
        .arg("serve")
        .env("BIND_ADDRESS", format!("127.0.0.1:{port}"))
        .env("BCRYPT_COST", "14")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the server starts");
    let base = format!("http://127.0.0.1:{port}");
    adapter_monnify::ensure_crypto_provider();
    let http = reqwest::Client::new();
    for _ in 0..100 {
        if http.get(format!("{base}/health/live")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let body = serde_json::json!({"email": "ann@example.com", "password": "correct horse 9"});
    let request = tokio::spawn({
        let (http, base) = (http.clone(), base.clone());
        async move {
            http.post(format!("{base}/api/v1/auth/register"))
                .json(&body)
                .send()
                .await
                .map(|r| r.status().as_u16())
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let terminated = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(terminated.success());
    assert_eq!(
        request.await.expect("the request task").expect("an answer"),
        201,
        "the request in flight is answered"
    );
    let exit = child.wait().expect("the server exits");
    assert!(exit.success(), "{exit:?}");
    assert!(
        http.get(format!("{base}/health/live")).send().await.is_err(),
        "the server no longer listens"
    );
}
