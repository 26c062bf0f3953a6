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

/// A `server serve` process on `database`, listening on a free port.
fn serve(database: &TestDatabase) -> (std::process::Child, String) {
    let port = free_port();
    let child = Command::new(SERVER)
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", database.url())
        .env("BIND_ADDRESS", format!("127.0.0.1:{port}"))
        .env("JWT_SECRET", "a-shared-signing-key-of-32-bytes-or-more")
        .env("ADMIN_EMAIL", "ops@example.com")
        .env("ADMIN_PASSWORD", "operator secret 42")
        .env("BCRYPT_COST", "4")
        .env("RATE_LIMIT_ENABLED", "false")
        .env("WORKERS", "2")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the server starts");
    (child, format!("http://127.0.0.1:{port}"))
}

async fn wait_ready(http: &reqwest::Client, base: &str) {
    for _ in 0..200 {
        if http
            .get(format!("{base}/health/ready"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{base} never became ready");
}

async fn call(http: &reqwest::Client, base: &str, path: &str, token: Option<&str>, body: serde_json::Value) -> (u16, serde_json::Value) {
    let mut request = http.post(format!("{base}{path}")).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    match request.send().await {
        Ok(reply) => (reply.status().as_u16(), reply.json().await.unwrap_or_default()),
        Err(_) => (0, serde_json::Value::Null),
    }
}

/// Registers a user with `role` and logs in; the access token.
async fn account(http: &reqwest::Client, base: &str, email: &str, role: &str) -> String {
    let body = serde_json::json!({"email": email, "password": "correct horse 9", "role": role});
    assert_eq!(call(http, base, "/api/v1/auth/register", None, body).await.0, 201);
    let login = serde_json::json!({"email": email, "password": "correct horse 9"});
    call(http, base, "/api/v1/auth/login", None, login).await.1["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Buys the product over and over on `base` until `stop`; counts the purchases.
fn buyers(
    http: &reqwest::Client,
    base: &str,
    tokens: &[String],
    product: &str,
    stop: &std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Vec<tokio::task::JoinHandle<u32>> {
    let cart = serde_json::json!({"items": [{"product_id": product, "quantity": 1}], "payment_method": "wallet"});
    tokens
        .iter()
        .map(|token| {
            let (http, base, token, cart, stop) = (http.clone(), base.to_owned(), token.clone(), cart.clone(), stop.clone());
            tokio::spawn(async move {
                let mut bought = 0;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    if call(&http, &base, "/api/v1/orders", Some(&token), cart.clone()).await.0 == 201 {
                        bought += 1;
                    }
                }
                bought
            })
        })
        .collect()
}

/// Two instances share one database; one is stopped (SIGSTOP) in the middle of a load on one hot
/// product, holding its row locks. The other keeps serving within seconds: PostgreSQL ends the
/// stopped instance's idle transactions after `idle_in_transaction_session_timeout` (5 s by
/// default), not after the minute it used to take.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stopped_instance_holds_no_lock_the_other_needs_for_more_than_seconds() {
    let database = TestDatabase::create().await;
    let (mut stalled, stalled_base) = serve(&database);
    let (mut healthy, healthy_base) = serve(&database);
    adapter_monnify::ensure_crypto_provider();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client");
    wait_ready(&http, &stalled_base).await;
    wait_ready(&http, &healthy_base).await;
    let admin = call(
        &http,
        &healthy_base,
        "/api/v1/auth/login",
        None,
        serde_json::json!({"email": "ops@example.com", "password": "operator secret 42"}),
    )
    .await
    .1["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let merchant = account(&http, &healthy_base, "merchant@example.com", "merchant").await;
    let product = serde_json::json!({"name": "Hot item", "price": "1.00", "currency": "USD", "stock": 1_000_000});
    let product = call(&http, &healthy_base, "/api/v1/products", Some(&merchant), product).await.1["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mut tokens = Vec::new();
    for n in 0..12 {
        let token = account(&http, &healthy_base, &format!("buyer{n}@example.com"), "customer").await;
        let me = http
            .get(format!("{healthy_base}/api/v1/auth/me"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("me");
        let id = me.json::<serde_json::Value>().await.unwrap_or_default()["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let funds = serde_json::json!({"amount": "100000.00", "currency": "USD", "reason": "load"});
        assert_eq!(
            call(
                &http,
                &healthy_base,
                &format!("/api/v1/admin/wallets/{id}/adjustments"),
                Some(&admin),
                funds
            )
            .await
            .0,
            201
        );
        tokens.push(token);
    }
    let (on_stalled, on_healthy) = tokens.split_at(6);
    let stop_stalled = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_healthy = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stalled_load = buyers(&http, &stalled_base, on_stalled, &product, &stop_stalled);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let stopped = Command::new("kill")
        .args(["-STOP", &stalled.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(stopped.success());
    stop_stalled.store(true, std::sync::atomic::Ordering::SeqCst);
    // Within a few seconds of the stop, the healthy instance sells the hot product again.
    let healthy_load = buyers(&http, &healthy_base, on_healthy, &product, &stop_healthy);
    tokio::time::sleep(Duration::from_secs(15)).await;
    stop_healthy.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut sold = 0;
    for buyer in healthy_load {
        sold += buyer.await.expect("a buyer");
    }
    let resumed = Command::new("kill")
        .args(["-CONT", &stalled.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(resumed.success());
    for buyer in stalled_load {
        let _ = buyer.await;
    }
    eprintln!("the healthy instance sold {sold} units in the 15 s after the other was stopped");
    assert!(
        sold >= 20,
        "the healthy instance was held up by the stopped one: {sold} purchases in 15 s"
    );
    let verify = http
        .get(format!("{healthy_base}/api/v1/admin/ledger/verify"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("verify");
    assert_eq!(verify.json::<serde_json::Value>().await.unwrap_or_default()["ok"], true);
    let _ = stalled.kill();
    let _ = healthy.kill();
    let _ = stalled.wait();
    let _ = healthy.wait();
}
