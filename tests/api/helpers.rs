//! Spawns the real server on a free port and talks to it over HTTP.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use api_client::types;
use application::ports::system::{Clock, ManualClock, SystemClock};
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use server::Application;
use server::config::Settings;

pub const ADMIN_EMAIL: &str = "root@example.com";
pub const ADMIN_PASSWORD: &str = "operator secret 42";
pub const PASSWORD: &str = "correct horse 9";
/// The simulated gateway's webhook secret, so tests can sign their own events.
pub const SIMULATOR_SECRET: &str = "whsec_test_simulator_secret_0123456789";
/// How long a test waits for something the server or another task brings about.
const DEADLINE: Duration = Duration::from_secs(10);

/// Waits until `check` holds, checking again each time other tasks have had a turn; fails the
/// test, naming `what`, if it does not within ten seconds. Tests wait with this, never by sleeping.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
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

/// The clock the server under test reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerClock {
    System,
    /// Stands still until the test moves it (`TestApp::advance`): expiry and refill are tested
    /// by moving time, not by waiting for it.
    Manual,
}

/// Which storage the server under test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Memory,
    /// A fresh, migrated database of the test's own, dropped afterwards.
    Postgres,
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts an RFC 7807 problem with this status and code.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "unexpected status; body: {}", self.text);
        assert_eq!(self.header("content-type"), Some("application/problem+json"), "{}", self.text);
        assert_eq!(self.body["status"], json!(status), "{}", self.text);
        assert_eq!(self.body["code"], json!(code), "{}", self.text);
        assert_eq!(self.body["type"], json!(format!("urn:payments:problem:{code}")), "{}", self.text);
        assert!(self.body["title"].is_string() && self.body["detail"].is_string(), "{}", self.text);
        assert!(self.body["request_id"].is_string(), "{}", self.text);
    }

    #[track_caller]
    pub fn assert_status(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "unexpected status; body: {}", self.text);
        &self.body
    }
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub email: String,
    pub token: String,
}

pub struct TestApp {
    pub backend: Backend,
    /// The database of a PostgreSQL-backed app, which another instance may share.
    pub database_url: Option<String>,
    pub base: String,
    pub http: reqwest::Client,
    pub admin: User,
    /// The server's storage, for injecting faults.
    pub storage: server::Backend,
    /// The server's clock, when the test moves it (`ServerClock::Manual`).
    clock: Option<Arc<ManualClock>>,
    jobs: server::JobRound,
    _guard: Option<Box<dyn std::any::Any + Send>>,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        TestApp::spawn_with(backend, &[]).await
    }

    /// Starts a server with test settings, overridden by `extra` (environment-style pairs).
    pub async fn spawn_with(backend: Backend, extra: &[(&str, &str)]) -> TestApp {
        TestApp::spawn_on(backend, extra, ServerClock::System).await
    }

    /// As `spawn_with`, on the given clock.
    pub async fn spawn_on(backend: Backend, extra: &[(&str, &str)], clock: ServerClock) -> TestApp {
        let manual = match clock {
            ServerClock::System => None,
            ServerClock::Manual => Some(Arc::new(ManualClock::new(SystemClock.now()))),
        };
        TestApp::start(backend, extra, manual).await
    }

    /// Moves the server's clock forward.
    ///
    /// # Panics
    /// When the server was not started on a manual clock.
    pub fn advance(&self, by: Duration) {
        let clock = self.clock.as_ref().expect("a server started on ServerClock::Manual");
        clock.advance(time::Duration::try_from(by).expect("a duration time can hold"));
    }

    /// Runs one round of the server's background job and waits for it, as its timer would.
    pub async fn run_jobs(&self) {
        self.jobs.run().await;
    }

    /// The server's background job, to run a round in a task of the test's.
    pub fn jobs(&self) -> server::JobRound {
        self.jobs.clone()
    }

    async fn start(backend: Backend, extra: &[(&str, &str)], clock: Option<Arc<ManualClock>>) -> TestApp {
        let mut vars: HashMap<String, String> = [
            ("BIND_ADDRESS", "127.0.0.1:0"),
            ("BCRYPT_COST", "4"),
            ("WORKERS", "2"),
            ("RATE_LIMIT_ENABLED", "false"),
            ("ADMIN_EMAIL", ADMIN_EMAIL),
            ("ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("SIMULATOR_WEBHOOK_SECRET", SIMULATOR_SECRET),
            ("JWT_SECRET", "test-secret-of-at-least-thirty-two-bytes"),
            ("LOG_FORMAT", "pretty"),
            // Tests make the data they need; demo mode's shop would be in their way.
            ("DEMO_SEED", "false"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let guard: Option<Box<dyn std::any::Any + Send>> = match backend {
            Backend::Memory => None,
            Backend::Postgres => {
                let database = adapter_postgres::testing::TestDatabase::create().await;
                vars.insert("DATABASE_URL".into(), database.url().to_owned());
                vars.insert("DATABASE_POOL_MAX".into(), "8".into());
                Some(Box::new(database))
            }
        };
        for (key, value) in extra {
            vars.insert((*key).to_owned(), (*value).to_owned());
        }
        // The simulator is demo mode's gateway; on a database the tests ask for it, unless they
        // configure a real provider or say otherwise.
        let real_gateway =
            vars.contains_key("STRIPE_SECRET_KEY") || vars.contains_key("MONNIFY_API_KEY") || vars.contains_key("PAYSTACK_SECRET_KEY");
        if vars.contains_key("DATABASE_URL") && !real_gateway && !vars.contains_key("SIMULATED_GATEWAY") {
            vars.insert("SIMULATED_GATEWAY".into(), "true".into());
        }
        let database_url = vars.get("DATABASE_URL").cloned();
        if std::env::var_os("TEST_LOG").is_some() {
            server::telemetry::init(false);
        }
        let settings = Settings::from_vars(&vars).expect("test settings");
        let server_clock: Arc<dyn Clock> = match &clock {
            Some(manual) => manual.clone(),
            None => Arc::new(SystemClock),
        };
        let application = Application::build_with_clock(settings, server_clock)
            .await
            .expect("the server starts");
        let base = application.base_url().to_owned();
        let storage = application.backend().clone();
        let jobs = application.job_round();
        tokio::spawn(application.run_until_stopped());
        adapter_monnify::ensure_crypto_provider();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let mut app = TestApp {
            backend,
            database_url,
            base,
            http,
            admin: User {
                id: String::new(),
                email: ADMIN_EMAIL.into(),
                token: String::new(),
            },
            storage,
            clock,
            jobs,
            _guard: guard,
        };
        app.admin = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        app
    }

    /// A second server instance on the same database.
    pub async fn alongside(&self, extra: &[(&str, &str)]) -> TestApp {
        self.alongside_on(extra, ServerClock::System).await
    }

    /// A second server instance on the same database, on the given clock.
    pub async fn alongside_on(&self, extra: &[(&str, &str)], clock: ServerClock) -> TestApp {
        let url = self
            .database_url
            .clone()
            .expect("only a PostgreSQL-backed app has a database to share");
        let mut vars: Vec<(&str, &str)> = vec![("DATABASE_URL", url.as_str()), ("DATABASE_POOL_MAX", "8")];
        vars.extend_from_slice(extra);
        TestApp::spawn_on(Backend::Memory, &vars, clock).await
    }

    /// The next `count` updates of rows of `table` fail as if the database went away (on either
    /// backend).
    pub async fn fail_updates_of(&self, table: &'static str, count: u32) {
        match &self.storage {
            server::Backend::Memory(store) => store.fail_updates_of(table, count),
            server::Backend::Postgres(_) => {
                let url = self.database_url.as_deref().expect("a PostgreSQL app has a database");
                adapter_postgres::testing::fail_updates_of(url, table, count).await;
            }
        }
    }

    /// A server on a fresh database reached through a proxy that fails on cue.
    pub async fn behind_proxy(extra: &[(&str, &str)]) -> (TestApp, adapter_postgres::testing::PgProxy) {
        let database = adapter_postgres::testing::TestDatabase::create().await;
        let target: std::net::SocketAddr = "127.0.0.1:5432".parse().expect("address");
        let proxy = adapter_postgres::testing::PgProxy::start(target).await;
        let url = proxy.url_for(database.url());
        let mut vars: Vec<(&str, &str)> = vec![("DATABASE_URL", url.as_str()), ("DATABASE_POOL_MAX", "4")];
        vars.extend_from_slice(extra);
        let mut app = TestApp::spawn_with(Backend::Memory, &vars).await;
        app.backend = Backend::Postgres;
        app._guard = Some(Box::new(database));
        (app, proxy)
    }

    pub async fn send(&self, method: Method, path: &str, token: Option<&str>, body: Option<&Value>, headers: &[(&str, &str)]) -> Reply {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body.to_string());
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("the server answers");
        Reply::from(response).await
    }

    /// Sends raw bytes with a content type, for malformed-input tests.
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Reply::from(request.send().await.expect("the server answers")).await
    }

    pub async fn get_with(&self, path: &str, token: Option<&str>, headers: &[(&str, &str)]) -> Reply {
        self.send(Method::GET, path, token, None, headers).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.get_with(path, token, &[]).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Reply {
        self.send(Method::POST, path, token, Some(body), &[]).await
    }

    pub async fn post_idempotent(&self, path: &str, token: &str, body: &Value, key: &str) -> Reply {
        self.send(Method::POST, path, Some(token), Some(body), &[("idempotency-key", key)])
            .await
    }

    /// The typed client of the API (generated from its OpenAPI document), calling anonymously.
    pub fn client(&self) -> api_client::Client {
        api_client::Client::new_with_client(&self.base, self.http.clone(), api_client::Credentials::anonymous())
    }

    /// The typed client, calling as `user`.
    pub fn client_as(&self, user: &User) -> api_client::Client {
        self.client().with_token(&user.token)
    }

    pub async fn login(&self, email: &str, password: &str) -> User {
        let request = types::LoginRequest {
            email: parse(email),
            password: parse(password),
        };
        let session = answer(self.client().auth_login(&request).await, "login");
        User {
            id: session.user.id.to_string(),
            email: email.to_owned(),
            token: session.access_token,
        }
    }

    /// Registers a user with a fresh e-mail address and logs in.
    pub async fn user(&self, role: &str) -> User {
        let email = format!("{role}-{}@example.com", uuid::Uuid::now_v7().simple());
        let request = types::RegisterRequest {
            email: parse(&email),
            password: parse(PASSWORD),
            role: Some(parse(role)),
        };
        answer(self.client().auth_register(None, &request).await, "registration");
        self.login(&email, PASSWORD).await
    }

    /// Credits a user's wallet through an admin adjustment.
    pub async fn fund(&self, user: &User, amount: &str, currency: &str) {
        let request = types::AdjustmentRequestBody {
            amount: parse(amount),
            currency: parse(currency),
            reason: parse("test funds"),
        };
        let admin = self.client_as(&self.admin);
        answer(admin.admin_adjust(&parse(&user.id), None, &request).await, "an adjustment");
    }

    pub async fn customer_with(&self, amount: &str) -> User {
        let customer = self.user("customer").await;
        self.fund(&customer, amount, "USD").await;
        customer
    }

    pub async fn product(&self, merchant: &User, name: &str, price: &str, stock: i64) -> String {
        let request = types::ProductRequest {
            name: parse(name),
            description: Some(parse("")),
            price: parse(price),
            currency: parse("USD"),
            stock,
        };
        let product = answer(self.client_as(merchant).catalog_create(None, &request).await, "a product");
        product.id.to_string()
    }

    /// The user's USD wallet, as JSON for tests that read single fields.
    pub async fn wallet(&self, user: &User) -> Value {
        let wallet = answer(self.client_as(user).wallets_show(types::WalletsShowCurrency::Usd).await, "a wallet");
        serde_json::to_value(wallet).expect("a wallet is JSON")
    }

    pub async fn balance(&self, user: &User) -> String {
        answer(self.client_as(user).wallets_show(types::WalletsShowCurrency::Usd).await, "a wallet").balance
    }

    pub async fn stock(&self, product_id: &str) -> (i64, i64) {
        let admin = self.client_as(&self.admin);
        let product = answer(admin.catalog_show(&parse(product_id)).await, "a product");
        (product.stock.available, product.stock.reserved)
    }

    /// Presses a button on the simulator's hosted checkout page, as the payer would.
    pub async fn press(&self, checkout_url: &str, button: &str) {
        let response = self
            .http
            .post(format!("{checkout_url}/{button}"))
            .send()
            .await
            .expect("the checkout page answers");
        assert_eq!(response.status().as_u16(), 303, "{}", response.text().await.unwrap_or_default());
    }

    pub async fn assert_ledger_ok(&self) {
        let report = answer(self.client_as(&self.admin).admin_verify_ledger().await, "the ledger report");
        assert!(report.ok, "ledger problems: {:?}", report.problems);
    }

    /// Asks for `path` until `done` holds for the body (see `eventually`), for what the server
    /// does in the background; the body.
    pub async fn eventually(&self, path: &str, token: &str, done: impl Fn(&Value) -> bool) -> Value {
        let polled = tokio::time::timeout(DEADLINE, async {
            loop {
                let reply = self.get(path, Some(token)).await;
                if reply.status == 200 && done(&reply.body) {
                    return reply.body;
                }
                tokio::task::yield_now().await;
            }
        })
        .await;
        polled.unwrap_or_else(|_| panic!("{path} did not reach the expected state within {DEADLINE:?}"))
    }
}

/// The body of a successful typed call; fails the test with the problem otherwise.
#[track_caller]
pub fn answer<T>(result: Result<api_client::ResponseValue<T>, api_client::Error<types::Problem>>, what: &str) -> T {
    match result {
        Ok(response) => response.into_inner(),
        Err(api_client::Error::ErrorResponse(problem)) => {
            panic!("{what}: {} {}", problem.status().as_u16(), problem.detail)
        }
        Err(error) => panic!("{what}: {error}"),
    }
}

/// A value of a generated type with a format (an amount, a currency, an e-mail address) from
/// its text, which the test knows to be valid.
#[track_caller]
pub fn parse<T: std::str::FromStr>(text: &str) -> T
where
    T::Err: std::fmt::Display,
{
    text.parse().unwrap_or_else(|error| panic!("{text:?}: {error}"))
}

impl Reply {
    async fn from(response: reqwest::Response) -> Reply {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            text,
        }
    }
}

/// Generates one test per backend from `async fn name(app: TestApp)`.
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn on_memory() {
                    super::$name($crate::helpers::TestApp::spawn($crate::helpers::Backend::Memory).await).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn on_postgres() {
                    super::$name($crate::helpers::TestApp::spawn($crate::helpers::Backend::Postgres).await).await;
                }
            }
        )*
    };
}
