//! The `server` binary itself: its operator commands against a real database, and a graceful stop.

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use adapter_postgres::testing::TestDatabase;
use tokio::sync::{mpsc, watch};

const SERVER: &str = env!("CARGO_BIN_EXE_server");

/// How long a test waits for something the server or the database brings about.
const DEADLINE: Duration = Duration::from_secs(10);

/// Waits until `check` holds, checking again each time other tasks have had a turn; fails the
/// test, naming `what`, if it does not within ten seconds. Tests wait with this, never by sleeping.
pub(crate) async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let waited = tokio::time::timeout(DEADLINE, async {
        while !check().await {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(waited.is_ok(), "still waiting after {DEADLINE:?} for {what}");
}

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

fn server_with(database: &TestDatabase, vars: &[(&str, &str)], args: &[&str]) -> Output {
    Command::new(SERVER)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", database.url())
        .env("BCRYPT_COST", "4")
        .env("RUST_LOG", "warn")
        .envs(vars.iter().copied())
        .output()
        .expect("the server binary runs")
}

#[tokio::test]
async fn create_admin_refuses_a_customers_address_and_takes_admin_password_alone() {
    let database = TestDatabase::create().await;
    let seeded = server(&database, &["seed"]);
    assert!(seeded.status.success(), "{}", text(&seeded.stderr));
    let refused = server(
        &database,
        &[
            "create-admin",
            "--email",
            "customer1@example.com",
            "--password",
            "operator secret 1",
        ],
    );
    assert!(!refused.status.success(), "{}", text(&refused.stdout));
    assert!(
        text(&refused.stderr).contains("already registered as a customer"),
        "{}",
        text(&refused.stderr)
    );
    let client = database.raw_client().await;
    let role: String = client
        .query_one("SELECT role FROM users WHERE email = 'customer1@example.com'", &[])
        .await
        .expect("the customer")
        .get(0);
    assert_eq!(role, "customer", "left as it was");
    let from_env = server_with(
        &database,
        &[("ADMIN_PASSWORD", "operator secret 1")],
        &["create-admin", "--email", "ops@example.com"],
    );
    assert!(from_env.status.success(), "{}", text(&from_env.stderr));
    assert!(text(&from_env.stdout).contains("created"), "{}", text(&from_env.stdout));
}

#[tokio::test]
async fn seed_uses_an_admin_with_another_password_and_a_refused_admin_password_is_named() {
    let database = TestDatabase::create().await;
    let created = server(
        &database,
        &["create-admin", "--email", "admin@example.com", "--password", "another secret 9"],
    );
    assert!(created.status.success(), "{}", text(&created.stderr));
    let seeded = server(&database, &["seed"]);
    assert!(seeded.status.success(), "{}", text(&seeded.stderr));
    let weak = server_with(
        &database,
        &[("ADMIN_EMAIL", "admin@example.com"), ("ADMIN_PASSWORD", "admin password 1")],
        &["migrate"],
    );
    assert_eq!(weak.status.code(), Some(78), "{}", text(&weak.stdout));
    let said = text(&weak.stderr);
    assert!(said.contains("ADMIN_PASSWORD") && said.contains("`admin`"), "{said}");
    let alone = server_with(&database, &[("ADMIN_EMAIL", "admin@example.com")], &["migrate"]);
    assert!(text(&alone.stderr).contains("ADMIN_PASSWORD is not"), "{}", text(&alone.stderr));
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

/// A `server serve` process and the lines it logs.
pub(crate) struct Served {
    pub(crate) child: Child,
    address: String,
    pub(crate) base: String,
    log: mpsc::UnboundedReceiver<String>,
}

/// A `server serve` process on `database`, listening on a free port; its connections carry
/// `name` as their `application_name`, so the test can tell two instances apart in
/// `pg_stat_activity`.
fn serve(database: &TestDatabase, name: &str) -> Served {
    serve_with(database, name, &[])
}

/// As `serve`, with more variables in its environment.
pub(crate) fn serve_with(database: &TestDatabase, name: &str, vars: &[(&str, &str)]) -> Served {
    let address = format!("127.0.0.1:{}", free_port());
    let separator = if database.url().contains('?') { '&' } else { '?' };
    let mut child = Command::new(SERVER)
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", format!("{}{separator}application_name={name}", database.url()))
        .env("BIND_ADDRESS", &address)
        .env("JWT_SECRET", "a-shared-signing-key-of-32-bytes-or-more")
        .env("ADMIN_EMAIL", "ops@example.com")
        .env("ADMIN_PASSWORD", "operator secret 42")
        .env("BCRYPT_COST", "4")
        .env("RATE_LIMIT_ENABLED", "false")
        .env("WORKERS", "2")
        // actix-server says when it listens and when a worker finishes connections at a stop.
        .env("RUST_LOG", "error,actix_server=info")
        .envs(vars.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the server starts");
    let stdout = child.stdout.take().expect("the server's stdout");
    let (lines, log) = mpsc::unbounded_channel();
    // Read on a thread of its own, to the end, so that the server never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    Served {
        child,
        base: format!("http://{address}"),
        address,
        log,
    }
}

/// A test that fails leaves no server behind, not even a stopped one.
impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    /// Waits for a line of the server's log containing `needle`.
    async fn logged(&mut self, needle: &str) -> String {
        let found = tokio::time::timeout(DEADLINE, async {
            while let Some(line) = self.log.recv().await {
                if line.contains(needle) {
                    return Some(line);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(line)) => line,
            Ok(None) => panic!("{} exited without logging {needle:?}", self.base),
            Err(_) => panic!("{} did not log {needle:?} within {DEADLINE:?}", self.base),
        }
    }

    /// Waits until the server accepts connections and handles signals: actix-server logs its
    /// address once its accept loop and signal handlers are in place.
    pub(crate) async fn listening(&mut self) {
        let needle = format!("listening on: {}", self.address);
        self.logged(&needle).await;
    }

    pub(crate) fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill {signal}");
    }
}

/// Backends of this database waiting for a heavyweight lock, those of `application` only if given.
async fn lock_waiters(client: &tokio_postgres::Client, application: Option<&str>) -> i64 {
    let row = client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' \
             AND ($1::text IS NULL OR application_name = $1)",
            &[&application],
        )
        .await
        .expect("pg_stat_activity");
    row.get(0)
}

#[tokio::test]
async fn sigterm_lets_the_request_in_flight_finish() {
    let database = TestDatabase::create().await;
    let mut server = serve(&database, "payments");
    server.listening().await;
    // The test holds back every write to `users`, so a registration stays in flight, inside the
    // server, until the test lets it go.
    let blocker = database.raw_client().await;
    blocker
        .batch_execute("BEGIN; LOCK TABLE users IN SHARE MODE")
        .await
        .expect("lock users");
    adapter_monnify::ensure_crypto_provider();
    let http = reqwest::Client::new();
    let body = serde_json::json!({"email": "ann@example.com", "password": "correct horse 9"});
    let request = tokio::spawn({
        let (http, base) = (http.clone(), server.base.clone());
        async move {
            http.post(format!("{base}/api/v1/auth/register"))
                .json(&body)
                .send()
                .await
                .map(|r| r.status().as_u16())
        }
    });
    let watcher = database.raw_client().await;
    eventually("the registration to wait for the users table", || async {
        lock_waiters(&watcher, None).await > 0
    })
    .await;
    server.signal("-TERM");
    server.logged("graceful worker shutdown; finishing").await;
    blocker.batch_execute("ROLLBACK").await.expect("release users");
    assert_eq!(
        request.await.expect("the request task").expect("an answer"),
        201,
        "the request in flight is answered"
    );
    let exit = server.child.wait().expect("the server exits");
    assert!(exit.success(), "{exit:?}");
    assert!(
        http.get(format!("{}/health/live", server.base)).send().await.is_err(),
        "the server no longer listens"
    );
}

pub(crate) async fn call(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    token: Option<&str>,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
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
pub(crate) async fn account(http: &reqwest::Client, base: &str, email: &str, role: &str) -> String {
    let body = serde_json::json!({"email": email, "password": "correct horse 9", "role": role});
    assert_eq!(call(http, base, "/api/v1/auth/register", None, body).await.0, 201);
    let login = serde_json::json!({"email": email, "password": "correct horse 9"});
    call(http, base, "/api/v1/auth/login", None, login).await.1["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Buys the product over and over on `base` until `stop`, counting the purchases in `sold`.
fn buyers(
    http: &reqwest::Client,
    base: &str,
    tokens: &[String],
    product: &str,
    stop: &Arc<AtomicBool>,
    sold: &Arc<watch::Sender<u32>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let cart = serde_json::json!({"items": [{"product_id": product, "quantity": 1}], "payment_method": "wallet"});
    tokens
        .iter()
        .map(|token| {
            let (http, base, token, cart, stop, sold) = (
                http.clone(),
                base.to_owned(),
                token.clone(),
                cart.clone(),
                stop.clone(),
                sold.clone(),
            );
            tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    if call(&http, &base, "/api/v1/orders", Some(&token), cart.clone()).await.0 == 201 {
                        sold.send_modify(|n| *n += 1);
                    }
                }
            })
        })
        .collect()
}

/// An admin's token, a merchant's hot product with plenty of stock, and twelve funded buyers.
async fn hot_sale(http: &reqwest::Client, base: &str) -> (String, String, Vec<String>) {
    let admin = serde_json::json!({"email": "ops@example.com", "password": "operator secret 42"});
    let admin = call(http, base, "/api/v1/auth/login", None, admin).await.1["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let merchant = account(http, base, "merchant@example.com", "merchant").await;
    let product = serde_json::json!({"name": "Hot item", "price": "1.00", "currency": "USD", "stock": 1_000_000});
    let product = call(http, base, "/api/v1/products", Some(&merchant), product).await.1["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mut tokens = Vec::new();
    for n in 0..12 {
        let token = account(http, base, &format!("buyer{n}@example.com"), "customer").await;
        let me = http
            .get(format!("{base}/api/v1/auth/me"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("me");
        let id = me.json::<serde_json::Value>().await.unwrap_or_default()["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let funds = serde_json::json!({"amount": "100000.00", "currency": "USD", "reason": "load"});
        let adjustment = format!("/api/v1/admin/wallets/{id}/adjustments");
        assert_eq!(call(http, base, &adjustment, Some(&admin), funds).await.0, 201);
        tokens.push(token);
    }
    (admin, product, tokens)
}

/// Backends of `application` with a transaction open and idle: stopped in the middle of it.
async fn idle_in_transaction(client: &tokio_postgres::Client, application: &str) -> Vec<i32> {
    client
        .query(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1 \
             AND state = 'idle in transaction' AND backend_xid IS NOT NULL",
            &[&application],
        )
        .await
        .expect("pg_stat_activity")
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// Two instances share one database; one is stopped (SIGSTOP) in the middle of a load on one hot
/// product, holding its row lock. The other keeps serving within seconds: PostgreSQL ends the
/// stopped instance's idle transaction after `idle_in_transaction_session_timeout` (5 s by
/// default), not after the minute it used to take.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stopped_instance_holds_no_lock_the_other_needs_for_more_than_seconds() {
    let database = TestDatabase::create().await;
    let (mut stalled, mut healthy) = (serve(&database, "stalled"), serve(&database, "healthy"));
    adapter_monnify::ensure_crypto_provider();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client");
    stalled.listening().await;
    healthy.listening().await;
    let (admin, product, tokens) = hot_sale(&http, &healthy.base).await;
    let (on_stalled, on_healthy) = tokens.split_at(6);

    // The test holds the hot row while the stalled instance's buyers queue for it in PostgreSQL,
    // stops that instance, then lets the row go: the first of them takes it, and keeps it.
    let (holder, watcher) = (database.raw_client().await, database.raw_client().await);
    holder.batch_execute("BEGIN").await.expect("begin");
    holder
        .execute(
            "SELECT 1 FROM stock WHERE product_id = $1::text::uuid FOR NO KEY UPDATE",
            &[&product],
        )
        .await
        .expect("lock the hot row");
    let stop_stalled = Arc::new(AtomicBool::new(false));
    let stalled_load = buyers(
        &http,
        &stalled.base,
        on_stalled,
        &product,
        &stop_stalled,
        &Arc::new(watch::channel(0).0),
    );
    eventually("the stalled instance's buyers to queue for the hot row", || async {
        lock_waiters(&watcher, Some("stalled")).await > 0
    })
    .await;
    stalled.signal("-STOP");
    let stopped_at = tokio::time::Instant::now();
    stop_stalled.store(true, Ordering::SeqCst);
    holder.batch_execute("ROLLBACK").await.expect("let the hot row go");
    let stuck = tokio::time::timeout(DEADLINE, async {
        loop {
            let stuck = idle_in_transaction(&watcher, "stalled").await;
            if !stuck.is_empty() {
                return stuck;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("a transaction of the stopped instance holds the hot row");

    // Within seconds of the stop, the healthy instance sells the hot product again.
    let stop_healthy = Arc::new(AtomicBool::new(false));
    let (sold, mut sales) = watch::channel(0_u32);
    let healthy_load = buyers(&http, &healthy.base, on_healthy, &product, &stop_healthy, &Arc::new(sold));
    let selling = tokio::time::timeout_at(stopped_at + Duration::from_secs(15), sales.wait_for(|n| *n >= 20))
        .await
        .is_ok();
    let sold = *sales.borrow();
    eprintln!("the healthy instance sold {sold} units within 15 s of the other's stop");
    assert!(
        selling,
        "the healthy instance was held up by the stopped one: {sold} purchases in 15 s"
    );
    eventually("PostgreSQL to end the stopped instance's transaction", || async {
        let left = watcher
            .query("SELECT 1 FROM pg_stat_activity WHERE pid = ANY($1)", &[&stuck])
            .await
            .expect("pg_stat_activity");
        left.is_empty()
    })
    .await;
    stop_healthy.store(true, Ordering::SeqCst);
    for buyer in healthy_load {
        buyer.await.expect("a buyer");
    }
    stalled.signal("-CONT");
    for buyer in stalled_load {
        let _ = buyer.await;
    }
    let verify = http
        .get(format!("{}/api/v1/admin/ledger/verify", healthy.base))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("verify");
    assert_eq!(verify.json::<serde_json::Value>().await.unwrap_or_default()["ok"], true);
}
