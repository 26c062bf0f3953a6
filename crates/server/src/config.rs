//! Configuration, from environment variables (and an optional `.env` file). Every variable, its
//! default and its meaning is listed in the README. An invalid value stops start-up with a message
//! naming the variable.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use application::ports::rate_limit::Quota;
use domain::money::Currency;

/// Where the data lives.
#[derive(Debug, Clone)]
pub enum Storage {
    /// Demo mode: nothing is persisted.
    Memory,
    Postgres(PostgresSettings),
}

#[derive(Clone)]
pub struct PostgresSettings {
    pub url: String,
    pub pool_max_size: u32,
    pub connect_timeout: Duration,
    pub acquire_timeout: Duration,
    pub statement_timeout: Duration,
    pub lock_timeout: Duration,
    pub idle_in_transaction_timeout: Duration,
    pub stock_row_waiters: usize,
    pub group_commit_members: usize,
    pub run_migrations: bool,
    /// A streaming replica for the reads that may lag (`DATABASE_REPLICA_URL`), and its pool's
    /// size (`DATABASE_REPLICA_POOL_MAX`, the primary's by default).
    pub replica_url: Option<String>,
    pub replica_pool_max_size: u32,
}

impl std::fmt::Debug for PostgresSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresSettings")
            .field("url", &redact_url(&self.url))
            .field("replica_url", &self.replica_url.as_deref().map(redact_url))
            .field("pool_max_size", &self.pool_max_size)
            .field("run_migrations", &self.run_migrations)
            .finish_non_exhaustive()
    }
}

/// A connection URL with its password hidden, for logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[derive(Clone)]
pub struct Settings {
    pub bind: SocketAddr,
    /// How clients (and the simulator's webhooks) reach this server; derived from the bound
    /// address when unset.
    pub public_base_url: Option<String>,
    pub storage: Storage,
    /// The shared cache and rate limiter; in-process ones when unset.
    pub redis: Option<adapter_redis::RedisSettings>,
    /// `None` in demo mode without `JWT_SECRET`: a random key is made at start-up.
    pub jwt_secret: Option<Vec<u8>>,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    pub access_token_ttl: time::Duration,
    pub refresh_token_ttl: time::Duration,
    pub bcrypt_cost: u32,
    pub default_currency: Currency,
    pub checkout_ttl: time::Duration,
    pub call_minutes_max: u32,
    pub idempotency_lease: time::Duration,
    pub catalog_cache_ttl: Duration,
    /// Serve catalog reads from the cache (on by default; off to measure the database alone).
    pub catalog_cache: bool,
    pub stripe: Option<StripeConfig>,
    pub monnify: Option<MonnifyConfig>,
    pub paystack: Option<PaystackConfig>,
    /// Card providers per currency, in order of preference: `DEFAULT_PROVIDER_ROUTES`, with the
    /// currencies `PROVIDER_ROUTES` names replaced.
    pub provider_routes: Vec<(Currency, Vec<String>)>,
    pub simulated_gateway: bool,
    pub simulator_secret: Option<Vec<u8>>,
    pub cors_origins: Vec<String>,
    /// The bearer token `GET /metrics` asks for; unset, metrics are open (internal network only).
    pub metrics_token: Option<String>,
    pub body_limit_bytes: usize,
    pub rate_limit_enabled: bool,
    pub rate_limit_auth: Quota,
    pub rate_limit_money: Quota,
    pub rate_limit_general: Quota,
    pub trust_forwarded_for: bool,
    /// How often the job that finishes multi-step flows runs, and its batch size.
    pub job_interval: Duration,
    pub job_batch: usize,
    /// How often each instance verifies the ledger for the metrics; zero for never.
    pub ledger_verify_interval: Duration,
    pub hold_ttl: time::Duration,
    /// Per currency, the amount above which a withdrawal waits for an admin
    /// (`WITHDRAWAL_APPROVAL_ABOVE`).
    pub withdrawal_approval: application::withdrawals::ApprovalThresholds,
    pub follow_up_retry: domain::follow_up::RetryPolicy,
    pub webhooks: WebhookConfig,
    pub workers: Option<usize>,
    pub shutdown_timeout: Duration,
    pub log_json: bool,
    /// Where traces go (OpenTelemetry over OTLP/HTTP); `None`, the default, exports nothing.
    pub traces: Option<TraceSettings>,
    /// An admin to create at start-up if it does not exist (`ADMIN_EMAIL`, `ADMIN_PASSWORD`).
    pub bootstrap_admin: Option<(String, String)>,
    /// Whether demo mode starts with the seed data (`DEMO_SEED`, on by default).
    pub demo_seed: bool,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("bind", &self.bind)
            .field("public_base_url", &self.public_base_url)
            .field("storage", &self.storage)
            .field("redis", &self.redis.as_ref().map(|r| redact_url(&r.url)))
            .field("jwt_secret", &self.jwt_secret.as_ref().map(|_| "***"))
            .field("simulated_gateway", &self.simulated_gateway)
            .field("traces", &self.traces)
            .finish_non_exhaustive()
    }
}

/// Traces exported over OTLP/HTTP with protobuf bodies, when `OTEL_EXPORTER_OTLP_ENDPOINT` or
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set (the OpenTelemetry SDK's standard variables).
#[derive(Clone, PartialEq, Eq)]
pub struct TraceSettings {
    /// Where spans are POSTed: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as it is, or
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` with `/v1/traces` appended, as the specification says.
    pub endpoint: String,
    /// `service.name` (`OTEL_SERVICE_NAME`; the binary's name by default).
    pub service_name: String,
}

impl std::fmt::Debug for TraceSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceSettings")
            .field("endpoint", &redact_url(&self.endpoint))
            .field("service_name", &self.service_name)
            .finish()
    }
}

/// Outbound webhooks to merchants' endpoints.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// How often the relay runs.
    pub interval: Duration,
    /// One delivery attempt, all included.
    pub timeout: Duration,
    /// Lets endpoints reach loopback, private and link-local addresses (demo mode and tests only).
    pub allow_private_addresses: bool,
    /// Lets endpoint URLs use plain `http` (demo mode and tests only).
    pub allow_http: bool,
    /// Whether this instance relays webhooks (every instance that does must be able to reach the
    /// endpoints: one that cannot fails the deliveries it claims).
    pub relay: bool,
    /// With at least this many requests in flight on the instance, the relay gives way to them
    /// (waits a round) while the outbox's lag is under `yield_lag_max`; `None` never gives way.
    pub yield_in_flight: Option<usize>,
    /// How far behind the relay may fall by giving way: past it, it delivers however busy.
    pub yield_lag_max: Duration,
}

/// Stripe, when `STRIPE_SECRET_KEY` is set.
#[derive(Clone)]
pub struct StripeConfig {
    pub secret_key: String,
    pub webhook_secrets: Vec<String>,
    pub api_base: String,
    pub success_url: Option<String>,
    pub cancel_url: Option<String>,
    pub webhook_tolerance_secs: i64,
    pub timeout: Duration,
}

impl std::fmt::Debug for StripeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeConfig")
            .field("api_base", &self.api_base)
            .finish_non_exhaustive()
    }
}

/// Monnify, when its three credentials are set.
#[derive(Clone)]
pub struct MonnifyConfig {
    pub api_key: String,
    pub secret_key: String,
    pub contract_code: String,
    pub base_url: String,
    pub redirect_url: Option<String>,
    pub timeout: Duration,
}

impl std::fmt::Debug for MonnifyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MonnifyConfig")
            .field("api_key", &self.api_key)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// Paystack, when `PAYSTACK_SECRET_KEY` is set.
#[derive(Clone)]
pub struct PaystackConfig {
    pub secret_key: String,
    pub base_url: String,
    pub callback_url: Option<String>,
    pub timeout: Duration,
}

impl std::fmt::Debug for PaystackConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaystackConfig")
            .field("base_url", &self.base_url)
            .field("live", &self.secret_key.starts_with("sk_live_"))
            .finish_non_exhaustive()
    }
}

/// The card providers of each currency, in order of preference, unless `PROVIDER_ROUTES` says
/// otherwise for a currency. Paystack first for the African currencies it settles (Monnify as
/// naira's second), Stripe first for dollars with Paystack behind it; any other currency goes to
/// whichever configured gateway takes it (Stripe takes them all).
pub const DEFAULT_PROVIDER_ROUTES: &str = "NGN=paystack,monnify;GHS=paystack;KES=paystack;ZAR=paystack;USD=stripe,paystack";

/// The providers a route may name.
const KNOWN_PROVIDERS: [&str; 4] = ["stripe", "monnify", "paystack", "simulated"];

/// Parses `CUR=provider,provider;CUR=provider`.
fn parse_routes(name: &str, text: &str) -> anyhow::Result<Vec<(Currency, Vec<String>)>> {
    let mut routes = Vec::new();
    for entry in text.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        let (code, providers) = entry
            .split_once('=')
            .ok_or_else(|| anyhow!("{name}: {entry:?} is not CURRENCY=provider,provider"))?;
        let currency = Currency::parse(code.trim()).map_err(|e| anyhow!("{name}: {e}"))?;
        let providers: Vec<String> = providers
            .split(',')
            .map(|p| p.trim().to_ascii_lowercase())
            .filter(|p| !p.is_empty())
            .collect();
        if let Some(unknown) = providers.iter().find(|p| !KNOWN_PROVIDERS.contains(&p.as_str())) {
            bail!("{name}: unknown provider {unknown:?} (known: {})", KNOWN_PROVIDERS.join(", "));
        }
        if providers.is_empty() {
            bail!("{name}: {code} names no provider");
        }
        routes.retain(|(c, _)| *c != currency);
        routes.push((currency, providers));
    }
    Ok(routes)
}

fn provider_routes(v: &Vars<'_>) -> anyhow::Result<Vec<(Currency, Vec<String>)>> {
    let mut routes = parse_routes("DEFAULT_PROVIDER_ROUTES", DEFAULT_PROVIDER_ROUTES)?;
    if let Some(text) = v.text("PROVIDER_ROUTES") {
        for (currency, providers) in parse_routes("PROVIDER_ROUTES", &text)? {
            routes.retain(|(c, _)| *c != currency);
            routes.push((currency, providers));
        }
    }
    routes.sort_by_key(|(c, _)| *c);
    Ok(routes)
}

fn paystack_config(v: &Vars<'_>) -> anyhow::Result<Option<PaystackConfig>> {
    let Some(secret_key) = v.text("PAYSTACK_SECRET_KEY") else {
        if v.text("PAYSTACK_BASE_URL").is_some() || v.text("PAYSTACK_CALLBACK_URL").is_some() {
            bail!("PAYSTACK_BASE_URL or PAYSTACK_CALLBACK_URL is set but PAYSTACK_SECRET_KEY is not");
        }
        return Ok(None);
    };
    if !(secret_key.starts_with("sk_test_") || secret_key.starts_with("sk_live_")) {
        bail!("PAYSTACK_SECRET_KEY must be a secret key (sk_test_... or sk_live_...), not a public key");
    }
    Ok(Some(PaystackConfig {
        secret_key,
        base_url: v.text("PAYSTACK_BASE_URL").unwrap_or_else(|| "https://api.paystack.co".into()),
        callback_url: v.text("PAYSTACK_CALLBACK_URL"),
        timeout: v.millis("PAYSTACK_TIMEOUT_MS", 20_000)?,
    }))
}

fn stripe_config(v: &Vars<'_>) -> anyhow::Result<Option<StripeConfig>> {
    let (key, secrets) = (v.text("STRIPE_SECRET_KEY"), v.text("STRIPE_WEBHOOK_SECRET"));
    let (secret_key, secrets) = match (key, secrets) {
        (None, None) => return Ok(None),
        (Some(key), Some(secrets)) => (key, secrets),
        (Some(_), None) => bail!("STRIPE_SECRET_KEY is set but STRIPE_WEBHOOK_SECRET is not: webhooks could not be verified"),
        (None, Some(_)) => bail!("STRIPE_WEBHOOK_SECRET is set but STRIPE_SECRET_KEY is not"),
    };
    if !cfg!(feature = "stripe") {
        bail!("STRIPE_SECRET_KEY is set, but this server was built without Stripe (cargo feature `stripe`)");
    }
    Ok(Some(StripeConfig {
        secret_key,
        webhook_secrets: secrets.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect(),
        api_base: v.text("STRIPE_API_BASE").unwrap_or_else(|| "https://api.stripe.com/".into()),
        success_url: v.text("STRIPE_SUCCESS_URL"),
        cancel_url: v.text("STRIPE_CANCEL_URL"),
        webhook_tolerance_secs: v.parse("STRIPE_WEBHOOK_TOLERANCE_SECS", 300)?,
        timeout: v.millis("STRIPE_TIMEOUT_MS", 20_000)?,
    }))
}

fn monnify_config(v: &Vars<'_>) -> anyhow::Result<Option<MonnifyConfig>> {
    let parts = (
        v.text("MONNIFY_API_KEY"),
        v.text("MONNIFY_SECRET_KEY"),
        v.text("MONNIFY_CONTRACT_CODE"),
    );
    let (api_key, secret_key, contract_code) = match parts {
        (None, None, None) => return Ok(None),
        (Some(a), Some(s), Some(c)) => (a, s, c),
        _ => bail!("MONNIFY_API_KEY, MONNIFY_SECRET_KEY and MONNIFY_CONTRACT_CODE must be set together"),
    };
    // Test keys only work against the sandbox.
    let default_base = if api_key.starts_with("MK_TEST") {
        "https://sandbox.monnify.com"
    } else {
        "https://api.monnify.com"
    };
    Ok(Some(MonnifyConfig {
        base_url: v.text("MONNIFY_BASE_URL").unwrap_or_else(|| default_base.into()),
        redirect_url: v.text("MONNIFY_REDIRECT_URL"),
        timeout: v.millis("MONNIFY_TIMEOUT_MS", 20_000)?,
        api_key,
        secret_key,
        contract_code,
    }))
}

/// Reads settings from a map of variables (the process environment in production, a literal map
/// in tests).
struct Vars<'a>(&'a HashMap<String, String>);

impl Vars<'_> {
    fn text(&self, name: &str) -> Option<String> {
        self.0.get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    fn parse<T: std::str::FromStr>(&self, name: &str, default: T) -> anyhow::Result<T>
    where
        T::Err: std::fmt::Display,
    {
        match self.text(name) {
            None => Ok(default),
            Some(text) => text.parse().map_err(|e| anyhow!("{name}={text:?} is invalid: {e}")),
        }
    }

    fn flag(&self, name: &str, default: bool) -> anyhow::Result<bool> {
        match self.text(name).as_deref().map(str::to_ascii_lowercase).as_deref() {
            None => Ok(default),
            Some("1" | "true" | "yes" | "on") => Ok(true),
            Some("0" | "false" | "no" | "off") => Ok(false),
            Some(other) => bail!("{name}={other:?} is not a boolean (true or false)"),
        }
    }

    fn seconds(&self, name: &str, default: u64) -> anyhow::Result<Duration> {
        Ok(Duration::from_secs(self.parse(name, default)?))
    }

    fn millis(&self, name: &str, default: u64) -> anyhow::Result<Duration> {
        Ok(Duration::from_millis(self.parse(name, default)?))
    }

    fn per_minute(&self, name: &str, default: u32) -> anyhow::Result<Quota> {
        let burst: u32 = self.parse(name, default)?;
        if burst == 0 {
            bail!("{name} must be at least 1");
        }
        Ok(Quota::per_minute(burst))
    }
}

fn bind_address(v: &Vars<'_>) -> anyhow::Result<SocketAddr> {
    Ok(match (v.text("BIND_ADDRESS"), v.text("PORT")) {
        (Some(address), _) => address
            .parse()
            .with_context(|| format!("BIND_ADDRESS={address:?} is not host:port"))?,
        (None, Some(port)) => format!("0.0.0.0:{port}")
            .parse()
            .with_context(|| format!("PORT={port:?} is not a port"))?,
        (None, None) => SocketAddr::from(([127, 0, 0, 1], 8080)),
    })
}

fn storage(v: &Vars<'_>) -> anyhow::Result<Storage> {
    Ok(match v.text("DATABASE_URL") {
        None => Storage::Memory,
        Some(url) => Storage::Postgres(PostgresSettings {
            url,
            pool_max_size: v.parse("DATABASE_POOL_MAX", 16)?,
            replica_url: v.text("DATABASE_REPLICA_URL"),
            replica_pool_max_size: v.parse("DATABASE_REPLICA_POOL_MAX", v.parse("DATABASE_POOL_MAX", 16)?)?,
            connect_timeout: v.millis("DATABASE_CONNECT_TIMEOUT_MS", 5_000)?,
            acquire_timeout: v.millis("DATABASE_ACQUIRE_TIMEOUT_MS", 5_000)?,
            statement_timeout: v.millis("DATABASE_STATEMENT_TIMEOUT_MS", 10_000)?,
            lock_timeout: v.millis("DATABASE_LOCK_TIMEOUT_MS", 5_000)?,
            // No transaction here waits on anything but the database (provider calls happen
            // between transactions), so one idle for seconds belongs to a stalled process.
            idle_in_transaction_timeout: v.millis("DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS", 5_000)?,
            stock_row_waiters: v.parse("DATABASE_STOCK_ROW_WAITERS", 2)?,
            group_commit_members: v.parse("DATABASE_GROUP_COMMIT_MEMBERS", 16)?,
            run_migrations: v.flag("RUN_MIGRATIONS", false)?,
        }),
    })
}

fn redis_settings(v: &Vars<'_>) -> anyhow::Result<Option<adapter_redis::RedisSettings>> {
    Ok(match v.text("REDIS_URL") {
        None => None,
        Some(url) => Some(adapter_redis::RedisSettings {
            key_prefix: v.text("REDIS_KEY_PREFIX").unwrap_or_else(|| "payments:".into()),
            pool_max_size: v.parse("REDIS_POOL_MAX", 16)?,
            command_timeout: v.millis("REDIS_TIMEOUT_MS", 250)?,
            retry_after: v.millis("REDIS_RETRY_AFTER_MS", 1_000)?,
            ..adapter_redis::RedisSettings::new(&url)
        }),
    })
}

fn follow_up_retry(v: &Vars<'_>) -> anyhow::Result<domain::follow_up::RetryPolicy> {
    Ok(domain::follow_up::RetryPolicy {
        attempts_max: v.parse("FOLLOW_UP_ATTEMPTS_MAX", 20)?,
        first_delay: time::Duration::milliseconds(
            i64::try_from(v.millis("FOLLOW_UP_FIRST_DELAY_MS", 30_000)?.as_millis()).unwrap_or(i64::MAX),
        ),
        delay_max: time_seconds(v.seconds("FOLLOW_UP_DELAY_MAX_SECS", 7_200)?),
    })
}

/// How long catalog reads are cached: at most a day, well inside the life of the version counters
/// that invalidate them (`adapter_redis::VERSION_TTL`).
fn catalog_cache_ttl(v: &Vars<'_>) -> anyhow::Result<Duration> {
    let ttl = v.seconds("CATALOG_CACHE_TTL_SECS", 30)?;
    if ttl > Duration::from_secs(24 * 3600) {
        bail!("CATALOG_CACHE_TTL_SECS must be at most 86400");
    }
    Ok(ttl)
}

/// `WITHDRAWAL_APPROVAL_ABOVE`: a whole number of major units for every currency (`1000`, the
/// default), and per currency amounts that replace it (`1000;USD=500.00;JPY=100000`), separated
/// by `;`.
fn withdrawal_approval(v: &Vars<'_>) -> anyhow::Result<application::withdrawals::ApprovalThresholds> {
    use application::withdrawals::ApprovalThresholds;
    const NAME: &str = "WITHDRAWAL_APPROVAL_ABOVE";
    let text = v.text(NAME).unwrap_or_else(|| "1000".to_owned());
    let entries: Vec<&str> = text.split(';').map(str::trim).filter(|e| !e.is_empty()).collect();
    let mut every = None;
    let mut named = Vec::new();
    for entry in entries {
        match entry.split_once('=') {
            None => {
                let units: u32 = entry
                    .parse()
                    .map_err(|_| anyhow!("{NAME}: {entry:?} is neither a whole number of major units nor CURRENCY=amount"))?;
                every = Some(units);
            }
            Some((code, amount)) => {
                let currency = Currency::parse(code.trim()).map_err(|e| anyhow!("{NAME}: {e}"))?;
                let limit = domain::money::Money::parse(amount.trim(), currency).map_err(|e| anyhow!("{NAME}: {code}: {e}"))?;
                if limit.is_negative() {
                    bail!("{NAME}: {code}: the amount must not be negative");
                }
                named.push(limit);
            }
        }
    }
    let base = every.map_or_else(ApprovalThresholds::default, ApprovalThresholds::every_currency);
    let thresholds = named.into_iter().fold(base, ApprovalThresholds::with);
    Ok(thresholds)
}

/// The default life of a hold, within the bounds every hold's expiry must keep.
fn hold_ttl(v: &Vars<'_>) -> anyhow::Result<time::Duration> {
    let ttl = time_seconds(v.seconds("HOLD_TTL_SECS", 7 * 24 * 3600)?);
    let (min, max) = (application::holds::HOLD_TTL_MIN, application::holds::HOLD_TTL_MAX);
    if !(min..=max).contains(&ttl) {
        bail!("HOLD_TTL_SECS must be between {} and {}", min.whole_seconds(), max.whole_seconds());
    }
    Ok(ttl)
}

/// Traces are off unless an OTLP endpoint is set, and off when `OTEL_SDK_DISABLED` is true (the
/// specification's switch). Only OTLP/HTTP with protobuf is built in, the specification's
/// default: a request for another protocol is refused rather than silently ignored.
fn trace_settings(v: &Vars<'_>) -> anyhow::Result<Option<TraceSettings>> {
    let endpoint = match (v.text("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), v.text("OTEL_EXPORTER_OTLP_ENDPOINT")) {
        (Some(traces), _) => traces,
        (None, Some(base)) => format!("{}/v1/traces", base.trim_end_matches('/')),
        (None, None) => return Ok(None),
    };
    if v.flag("OTEL_SDK_DISABLED", false)? {
        return Ok(None);
    }
    for name in ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"] {
        if let Some(protocol) = v.text(name).filter(|p| p != "http/protobuf") {
            bail!("{name}={protocol:?}: only http/protobuf is built in");
        }
    }
    // The exporter parses the rest when it is built, at start-up.
    if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
        bail!("the OTLP endpoint {endpoint:?} must be an http:// or https:// URL");
    }
    let service_name = v.text("OTEL_SERVICE_NAME").unwrap_or_else(binary_name);
    Ok(Some(TraceSettings { endpoint, service_name }))
}

/// The name of the running executable (`server`), the default `service.name`.
fn binary_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|path| path.file_stem().map(|stem| stem.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "server".to_owned())
}

fn webhook_config(v: &Vars<'_>, demo: bool) -> anyhow::Result<WebhookConfig> {
    Ok(WebhookConfig {
        interval: v.millis("WEBHOOK_INTERVAL_MS", 1_000)?,
        timeout: v.millis("WEBHOOK_TIMEOUT_MS", 10_000)?,
        // Demo mode runs on a laptop, where receivers listen on localhost over plain http.
        allow_private_addresses: v.flag("WEBHOOK_ALLOW_PRIVATE_ADDRESSES", demo)?,
        allow_http: v.flag("WEBHOOK_ALLOW_HTTP", demo)?,
        relay: v.flag("WEBHOOK_RELAY", true)?,
        yield_in_flight: match v.parse("WEBHOOK_YIELD_IN_FLIGHT", 8_usize)? {
            0 => None,
            busy => Some(busy),
        },
        yield_lag_max: v.millis("WEBHOOK_YIELD_LAG_MAX_MS", 10_000)?,
    })
}

/// The admin to create at start-up: both variables, each valid. `ADMIN_PASSWORD` alone is what
/// `server create-admin --email ...` reads, and creates nothing at start-up.
fn bootstrap_admin(v: &Vars<'_>) -> anyhow::Result<Option<(String, String)>> {
    let (email, password) = match (v.text("ADMIN_EMAIL"), v.text("ADMIN_PASSWORD")) {
        (Some(email), Some(password)) => (email, password),
        (None, _) => return Ok(None),
        (Some(_), None) => bail!("ADMIN_EMAIL is set but ADMIN_PASSWORD is not: the admin needs a password"),
    };
    let parsed = domain::user::Email::parse(&email).map_err(|e| anyhow!("ADMIN_EMAIL is invalid: {e}"))?;
    domain::user::Password::new(&password, &parsed).map_err(|e| anyhow!("ADMIN_PASSWORD is refused for {email}: {e}"))?;
    Ok(Some((email, password)))
}

fn time_seconds(duration: Duration) -> time::Duration {
    time::Duration::seconds(i64::try_from(duration.as_secs()).unwrap_or(i64::MAX))
}

impl Settings {
    /// Settings from the process environment (after loading `.env`, if present).
    pub fn from_env() -> anyhow::Result<Settings> {
        let _ = dotenvy::dotenv();
        let vars: HashMap<String, String> = std::env::vars().collect();
        Settings::from_vars(&vars)
    }

    pub fn from_vars(vars: &HashMap<String, String>) -> anyhow::Result<Settings> {
        let v = Vars(vars);
        let bind = bind_address(&v)?;
        let storage = storage(&v)?;
        let jwt_secret = v.text("JWT_SECRET").map(String::into_bytes);
        if jwt_secret.as_ref().is_some_and(|s| s.len() < 32) {
            bail!("JWT_SECRET must have at least 32 bytes");
        }
        let currency_code = v.text("DEFAULT_CURRENCY").unwrap_or_else(|| "USD".into());
        let default_currency = Currency::parse(&currency_code).map_err(|e| anyhow!("DEFAULT_CURRENCY: {e}"))?;
        let stripe = stripe_config(&v)?;
        let monnify = monnify_config(&v)?;
        let paystack = paystack_config(&v)?;
        let real_gateway_configured = stripe.is_some() || monnify.is_some() || paystack.is_some();
        let demo = matches!(storage, Storage::Memory);
        let cors_origins = v
            .text("CORS_ALLOWED_ORIGINS")
            .map(|list| list.split(',').map(|o| o.trim().to_owned()).filter(|o| !o.is_empty()).collect());
        Ok(Settings {
            bind,
            public_base_url: v.text("PUBLIC_BASE_URL").map(|u| u.trim_end_matches('/').to_owned()),
            storage,
            redis: redis_settings(&v)?,
            jwt_secret,
            jwt_issuer: v.text("JWT_ISSUER").unwrap_or_else(|| "payments".into()),
            jwt_audience: v.text("JWT_AUDIENCE").unwrap_or_else(|| "payments-api".into()),
            access_token_ttl: time_seconds(v.seconds("ACCESS_TOKEN_TTL_SECS", 900)?),
            refresh_token_ttl: time_seconds(v.seconds("REFRESH_TOKEN_TTL_SECS", 30 * 24 * 3600)?),
            bcrypt_cost: v.parse("BCRYPT_COST", 12)?,
            default_currency,
            checkout_ttl: time_seconds(v.seconds("CHECKOUT_TTL_SECS", 1800)?),
            call_minutes_max: v.parse("CALL_MINUTES_MAX", 120)?,
            idempotency_lease: time_seconds(v.seconds("IDEMPOTENCY_LEASE_SECS", 60)?),
            catalog_cache_ttl: catalog_cache_ttl(&v)?,
            catalog_cache: v.flag("CATALOG_CACHE", true)?,
            stripe,
            monnify,
            paystack,
            provider_routes: provider_routes(&v)?,
            // Its checkout page pays without a card: only demo mode offers it unless asked to.
            simulated_gateway: v.flag("SIMULATED_GATEWAY", demo && !real_gateway_configured)?,
            simulator_secret: v.text("SIMULATOR_WEBHOOK_SECRET").map(String::into_bytes),
            cors_origins: cors_origins.unwrap_or_default(),
            metrics_token: v.text("METRICS_TOKEN"),
            body_limit_bytes: v.parse("BODY_LIMIT_BYTES", 64 * 1024)?,
            rate_limit_enabled: v.flag("RATE_LIMIT_ENABLED", true)?,
            rate_limit_auth: v.per_minute("RATE_LIMIT_AUTH_PER_MINUTE", 10)?,
            rate_limit_money: v.per_minute("RATE_LIMIT_MONEY_PER_MINUTE", 120)?,
            rate_limit_general: v.per_minute("RATE_LIMIT_GENERAL_PER_MINUTE", 1200)?,
            trust_forwarded_for: v.flag("TRUST_FORWARDED_FOR", false)?,
            job_interval: v.millis("JOB_INTERVAL_MS", 10_000)?,
            job_batch: v.parse("JOB_BATCH", 100)?,
            ledger_verify_interval: v.seconds("LEDGER_VERIFY_INTERVAL_SECS", 3600)?,
            hold_ttl: hold_ttl(&v)?,
            withdrawal_approval: withdrawal_approval(&v)?,
            follow_up_retry: follow_up_retry(&v)?,
            webhooks: webhook_config(&v, demo)?,
            workers: v
                .text("WORKERS")
                .map(|w| w.parse())
                .transpose()
                .map_err(|e| anyhow!("WORKERS is invalid: {e}"))?,
            shutdown_timeout: v.seconds("SHUTDOWN_TIMEOUT_SECS", 30)?,
            log_json: v.text("LOG_FORMAT").is_none_or(|f| f != "pretty"),
            traces: trace_settings(&v)?,
            bootstrap_admin: bootstrap_admin(&v)?,
            demo_seed: v.flag("DEMO_SEED", true)?,
        })
    }

    /// Tokens must survive restarts and be shared by every instance of a persistent deployment;
    /// only demo mode may sign them with a random key. (`migrate` and the other operator
    /// commands sign nothing, so they do not need the secret.)
    pub fn require_jwt_secret_for_serving(&self) -> anyhow::Result<()> {
        if self.jwt_secret.is_none() && !self.is_demo() {
            bail!("JWT_SECRET is required when DATABASE_URL is set (tokens must survive restarts and be shared by every instance)");
        }
        Ok(())
    }

    pub fn is_demo(&self) -> bool {
        matches!(self.storage, Storage::Memory)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn no_configuration_is_demo_mode_on_port_8080() -> anyhow::Result<()> {
        let settings = Settings::from_vars(&HashMap::new())?;
        assert!(settings.is_demo());
        assert_eq!(settings.bind.port(), 8080);
        assert!(settings.simulated_gateway);
        assert!(settings.jwt_secret.is_none());
        Ok(())
    }

    #[test]
    fn a_database_without_gateway_settings_offers_no_simulator() -> anyhow::Result<()> {
        let persistent = Settings::from_vars(&vars(&[("DATABASE_URL", "postgres://x@localhost/db")]))?;
        assert!(
            !persistent.simulated_gateway,
            "a payment page that needs no card is never on by accident"
        );
        let asked = Settings::from_vars(&vars(&[
            ("DATABASE_URL", "postgres://x@localhost/db"),
            ("SIMULATED_GATEWAY", "true"),
        ]))?;
        assert!(asked.simulated_gateway);
        match persistent.storage {
            Storage::Postgres(postgres) => assert_eq!(postgres.idle_in_transaction_timeout, Duration::from_secs(5)),
            Storage::Memory => panic!("DATABASE_URL selects PostgreSQL"),
        }
        Ok(())
    }

    #[test]
    fn serving_a_database_requires_a_jwt_secret() -> anyhow::Result<()> {
        let settings = Settings::from_vars(&vars(&[("DATABASE_URL", "postgres://x@localhost/db")]))?;
        let error = settings.require_jwt_secret_for_serving();
        assert!(error.is_err_and(|e| e.to_string().contains("JWT_SECRET")));
        Ok(())
    }

    #[test]
    fn invalid_values_name_their_variable() {
        for (name, value) in [
            ("PORT", "eighty"),
            ("BCRYPT_COST", "-1"),
            ("RATE_LIMIT_ENABLED", "maybe"),
            ("DEFAULT_CURRENCY", "XXX"),
            ("JWT_SECRET", "short"),
        ] {
            let error = Settings::from_vars(&vars(&[(name, value)]))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(error.contains(name), "{name}: {error}");
        }
    }

    #[test]
    fn a_half_configured_provider_stops_start_up() {
        for pairs in [
            vec![("STRIPE_SECRET_KEY", "sk_test_1")],
            vec![("STRIPE_WEBHOOK_SECRET", "whsec_1")],
            vec![("MONNIFY_API_KEY", "MK_TEST_1"), ("MONNIFY_SECRET_KEY", "s")],
        ] {
            assert!(Settings::from_vars(&vars(&pairs)).is_err(), "{pairs:?}");
        }
        let stripe = Settings::from_vars(&vars(&[
            ("STRIPE_SECRET_KEY", "sk_test_1"),
            ("STRIPE_WEBHOOK_SECRET", "whsec_a, whsec_b"),
        ]));
        let stripe = stripe.ok().and_then(|s| s.stripe);
        assert_eq!(
            stripe.map(|s| s.webhook_secrets),
            Some(vec!["whsec_a".to_owned(), "whsec_b".to_owned()])
        );
        let monnify = Settings::from_vars(&vars(&[
            ("MONNIFY_API_KEY", "MK_TEST_1"),
            ("MONNIFY_SECRET_KEY", "s"),
            ("MONNIFY_CONTRACT_CODE", "c"),
        ]));
        let monnify = monnify.ok();
        assert_eq!(
            monnify.as_ref().and_then(|s| s.monnify.as_ref()).map(|m| m.base_url.as_str()),
            Some("https://sandbox.monnify.com")
        );
        assert_eq!(
            monnify.map(|s| s.simulated_gateway),
            Some(false),
            "a real gateway replaces the simulator"
        );
    }

    #[test]
    fn paystack_needs_a_secret_key_and_defaults_to_its_api() -> anyhow::Result<()> {
        let settings = Settings::from_vars(&vars(&[("PAYSTACK_SECRET_KEY", "sk_test_abc")]))?;
        let paystack = settings.paystack.as_ref().map(|p| (p.base_url.as_str(), p.timeout));
        assert_eq!(paystack, Some(("https://api.paystack.co", Duration::from_secs(20))));
        assert!(!settings.simulated_gateway, "a real gateway replaces the simulator");
        for pairs in [
            vec![("PAYSTACK_SECRET_KEY", "pk_test_public")],
            vec![("PAYSTACK_BASE_URL", "http://localhost:1")],
            vec![("PAYSTACK_SECRET_KEY", "sk_test_abc"), ("PAYSTACK_TIMEOUT_MS", "soon")],
        ] {
            let error = Settings::from_vars(&vars(&pairs)).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(error.contains("PAYSTACK_"), "{pairs:?}: {error}");
        }
        Ok(())
    }

    #[test]
    fn provider_routes_default_to_the_documented_table_and_are_overridden_per_currency() -> anyhow::Result<()> {
        let route = |settings: &Settings, currency: Currency| {
            settings
                .provider_routes
                .iter()
                .find(|(c, _)| *c == currency)
                .map(|(_, providers)| providers.join(","))
        };
        let defaults = Settings::from_vars(&HashMap::new())?;
        assert_eq!(route(&defaults, Currency::Ngn).as_deref(), Some("paystack,monnify"));
        assert_eq!(route(&defaults, Currency::Usd).as_deref(), Some("stripe,paystack"));
        assert_eq!(route(&defaults, Currency::Ghs).as_deref(), Some("paystack"));
        let custom = Settings::from_vars(&vars(&[("PROVIDER_ROUTES", "NGN=monnify,paystack; usd=stripe")]))?;
        assert_eq!(route(&custom, Currency::Ngn).as_deref(), Some("monnify,paystack"));
        assert_eq!(route(&custom, Currency::Usd).as_deref(), Some("stripe"));
        assert_eq!(
            route(&custom, Currency::Zar).as_deref(),
            Some("paystack"),
            "unnamed currencies keep the default"
        );
        for bad in ["NGN", "XXX=paystack", "NGN=paypal", "NGN="] {
            let error = Settings::from_vars(&vars(&[("PROVIDER_ROUTES", bad)]))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(error.contains("PROVIDER_ROUTES"), "{bad}: {error}");
        }
        Ok(())
    }

    #[test]
    fn traces_are_off_unless_an_otlp_endpoint_is_set() -> anyhow::Result<()> {
        assert_eq!(Settings::from_vars(&HashMap::new())?.traces, None);
        let base = Settings::from_vars(&vars(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
            ("OTEL_SERVICE_NAME", "payments-eu"),
        ]))?;
        assert_eq!(
            base.traces,
            Some(TraceSettings {
                endpoint: "http://collector:4318/v1/traces".into(),
                service_name: "payments-eu".into(),
            }),
            "the base endpoint gains the signal's path"
        );
        let exact = Settings::from_vars(&vars(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://traces.example.com/in"),
        ]))?;
        let exact = exact.traces.map(|t| t.endpoint);
        assert_eq!(
            exact.as_deref(),
            Some("https://traces.example.com/in"),
            "the traces endpoint is used as it is"
        );
        let disabled = Settings::from_vars(&vars(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_SDK_DISABLED", "true"),
        ]))?;
        assert_eq!(disabled.traces, None);
        for pairs in [
            vec![("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318")],
            vec![
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ],
        ] {
            let error = Settings::from_vars(&vars(&pairs)).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(error.contains("OTLP") || error.contains("OTEL_"), "{pairs:?}: {error}");
        }
        Ok(())
    }

    #[test]
    fn passwords_are_hidden_in_logged_urls() {
        assert_eq!(redact_url("postgres://app:s3cret@db:5432/pay"), "postgres://app:***@db:5432/pay");
        assert_eq!(redact_url("postgres://postgres@127.0.0.1/x"), "postgres://postgres@127.0.0.1/x");
    }
}
