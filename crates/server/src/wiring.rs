//! Building the application from settings: adapters, use cases, HTTP server, jobs.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{HttpServer, web};
use adapter_auth::{BcryptHasher, JwtIssuer, JwtSettings};
use adapter_memory::{MemoryCache, MemoryStore};
use adapter_postgres::{PgSettings, PgStore};
use adapter_simulated_gateway::SimulatedGateway;
use anyhow::Context;
use application::ports::cache::Cache;
use application::ports::gateway::{Gateways, HostedCheckout, Routes};
use application::ports::rate_limit::{InProcessRateLimiter, RateLimiter};
use application::ports::store::UnitOfWork;
use application::ports::system::{Clock, SystemClock, UuidV7Generator};
use application::ports::webhooks::WebhookSender;
use application::{App, Settings as AppSettings, WebhookSettings};
use domain::payment::ProviderName;
use http_actix::{ApiState, HttpSettings, RateLimits};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{PostgresSettings, Settings, Storage};
use crate::jobs;

/// The storage the server runs on.
#[derive(Debug, Clone)]
pub enum Backend {
    Memory(MemoryStore),
    Postgres(PgStore),
}

pub(crate) fn pg_settings(postgres: &PostgresSettings) -> PgSettings {
    PgSettings {
        url: postgres.url.clone(),
        pool_max_size: postgres.pool_max_size,
        connect_timeout: postgres.connect_timeout,
        acquire_timeout: postgres.acquire_timeout,
        statement_timeout: postgres.statement_timeout,
        lock_timeout: postgres.lock_timeout,
        idle_in_transaction_timeout: postgres.idle_in_transaction_timeout,
        stock_row_waiters: postgres.stock_row_waiters,
    }
}

/// Applies the migrations to the configured database.
pub async fn migrate(postgres: &PostgresSettings) -> anyhow::Result<Vec<String>> {
    Ok(adapter_postgres::run_migrations(&pg_settings(postgres)).await?)
}

impl Backend {
    /// Connects to the configured storage (and migrates it first, if configured to). A database
    /// that cannot be reached is an error here, never a silent fall back to memory.
    pub async fn connect(settings: &Settings) -> anyhow::Result<Backend> {
        match &settings.storage {
            Storage::Memory => Ok(Backend::Memory(MemoryStore::new())),
            Storage::Postgres(postgres) => {
                if postgres.run_migrations {
                    let applied = migrate(postgres).await?;
                    tracing::info!(?applied, "migrations applied");
                }
                let mut store = PgStore::connect(&pg_settings(postgres))
                    .await?
                    .with_group_commit_members(postgres.group_commit_members)?;
                tracing::info!(url = %crate::config::redact_url(&postgres.url), pool = postgres.pool_max_size, "connected to PostgreSQL");
                if let Some(replica_url) = &postgres.replica_url {
                    let replica = PgSettings {
                        url: replica_url.clone(),
                        pool_max_size: postgres.replica_pool_max_size,
                        ..pg_settings(postgres)
                    };
                    store = store.with_replica(&replica).await?;
                }
                Ok(Backend::Postgres(store))
            }
        }
    }
}

/// The use cases with every adapter plugged in.
#[derive(Debug)]
pub struct Services<U> {
    pub app: Arc<App<U>>,
    pub simulator: Option<Arc<SimulatedGateway>>,
    pub limiter: Arc<dyn RateLimiter>,
    /// The Redis pool behind the cache and the rate limiter, when Redis is configured.
    pub redis: Option<adapter_redis::RedisPool>,
}

/// The cache and rate limiter: Redis when configured (it must answer at start-up), in process
/// otherwise.
type CacheAndLimiter = (Arc<dyn Cache>, Arc<dyn RateLimiter>, Option<adapter_redis::RedisPool>);

async fn cache_and_limiter(settings: &Settings, clock: &Arc<dyn Clock>) -> anyhow::Result<CacheAndLimiter> {
    match &settings.redis {
        Some(redis) => {
            let pool = adapter_redis::connect(redis).await?;
            tracing::info!("cache and rate limits shared through Redis");
            Ok((
                Arc::new(adapter_redis::RedisCache::new(pool.clone(), redis)),
                Arc::new(adapter_redis::RedisRateLimiter::new(pool.clone(), redis, clock.clone())),
                Some(pool),
            ))
        }
        None => {
            tracing::info!("no REDIS_URL: cache and rate limits are kept in this process");
            Ok((
                Arc::new(MemoryCache::new()),
                Arc::new(InProcessRateLimiter::new(clock.clone())),
                None,
            ))
        }
    }
}

impl<U: UnitOfWork> Services<U> {
    pub async fn new(store: U, settings: &Settings, base_url: &str) -> anyhow::Result<Services<U>> {
        Services::with_clock(store, settings, base_url, Arc::new(SystemClock)).await
    }

    /// The services timed by `clock`: every use case, token check, checkout page and in-process
    /// rate limit reads the time from it.
    pub async fn with_clock(store: U, settings: &Settings, base_url: &str, clock: Arc<dyn Clock>) -> anyhow::Result<Services<U>> {
        adapter_monnify::ensure_crypto_provider();
        let tokens = token_issuer(settings)?;
        let gateways = card_gateways(settings, base_url)?;
        let (gateways, simulator) = with_simulator(gateways, settings, base_url, &clock)?;
        let gateways = gateways.with_routes(provider_routes(settings)?).monitored(&clock);
        let (cache, limiter, redis) = cache_and_limiter(settings, &clock).await?;
        let webhooks = webhook_sender(settings)?;
        let app = App {
            store,
            clock,
            ids: Arc::new(UuidV7Generator),
            hasher: Arc::new(BcryptHasher::new(settings.bcrypt_cost)),
            tokens: Arc::new(tokens),
            gateways,
            cache,
            webhooks,
            settings: AppSettings {
                refresh_token_ttl: settings.refresh_token_ttl,
                checkout_ttl: settings.checkout_ttl,
                call_minutes_max: settings.call_minutes_max,
                hold_ttl: settings.hold_ttl,
                follow_up_retry: settings.follow_up_retry,
                idempotency_lease: settings.idempotency_lease,
                catalog_cache_ttl: settings.catalog_cache_ttl,
                default_currency: settings.default_currency,
                withdrawal_approval: settings.withdrawal_approval.clone(),
                webhooks: WebhookSettings {
                    allow_insecure_urls: settings.webhooks.allow_http,
                    // Longer than a turn can take: its time budget and one request's timeout.
                    lease: time::Duration::seconds(
                        i64::try_from(settings.webhooks.timeout.as_secs())
                            .unwrap_or(60)
                            .saturating_mul(3)
                            .max(60),
                    ),
                    ..WebhookSettings::default()
                },
            },
        };
        Ok(Services {
            app: Arc::new(app),
            simulator,
            limiter,
            redis,
        })
    }
}

fn webhook_sender(settings: &Settings) -> anyhow::Result<Arc<dyn WebhookSender>> {
    if settings.webhooks.allow_private_addresses && !settings.is_demo() {
        tracing::warn!("WEBHOOK_ALLOW_PRIVATE_ADDRESSES is on with a database: webhooks may reach this network's private addresses");
    }
    let sender = adapter_webhooks::HttpWebhookSender::new(adapter_webhooks::WebhookSenderSettings {
        timeout: settings.webhooks.timeout,
        allow_private_addresses: settings.webhooks.allow_private_addresses,
        ..adapter_webhooks::WebhookSenderSettings::default()
    })
    .context("webhook sender")?;
    // Deliveries carry their trace to receivers only when traces are exported.
    let sender = match settings.traces {
        Some(_) => sender.with_trace_headers(crate::telemetry::trace_headers),
        None => sender,
    };
    Ok(Arc::new(sender))
}

fn token_issuer(settings: &Settings) -> anyhow::Result<JwtIssuer> {
    let secret = match &settings.jwt_secret {
        Some(secret) => secret.clone(),
        None => {
            tracing::warn!("JWT_SECRET is not set: signing tokens with a random key; they die with this process");
            JwtIssuer::random_secret()
        }
    };
    let jwt = JwtSettings {
        secret,
        issuer: settings.jwt_issuer.clone(),
        audience: settings.jwt_audience.clone(),
        access_ttl: settings.access_token_ttl,
    };
    JwtIssuer::new(jwt).map_err(|e| anyhow::anyhow!("JWT_SECRET: {e}"))
}

/// The configured card gateways. Which one a payment goes to is the routing table's choice
/// (`provider_routes`); the first added is the fallback for currencies the table does not name.
fn card_gateways(settings: &Settings, base_url: &str) -> anyhow::Result<Gateways> {
    let mut gateways = Gateways::new();
    if let Some(monnify) = &settings.monnify {
        let gateway = adapter_monnify::MonnifyGateway::new(adapter_monnify::MonnifySettings {
            api_key: monnify.api_key.clone(),
            secret_key: monnify.secret_key.clone(),
            contract_code: monnify.contract_code.clone(),
            base_url: monnify.base_url.clone(),
            redirect_url: monnify
                .redirect_url
                .clone()
                .unwrap_or_else(|| format!("{base_url}/checkout/complete")),
            request_timeout: monnify.timeout,
            attempts_max: 3,
        })
        .context("Monnify configuration")?;
        tracing::info!(base_url = %monnify.base_url, "Monnify gateway enabled");
        gateways = gateways.with(Arc::new(gateway));
    }
    if let Some(paystack) = &settings.paystack {
        let gateway = adapter_paystack::PaystackGateway::new(adapter_paystack::PaystackSettings {
            secret_key: paystack.secret_key.clone(),
            base_url: paystack.base_url.clone(),
            callback_url: paystack
                .callback_url
                .clone()
                .unwrap_or_else(|| format!("{base_url}/checkout/complete")),
            request_timeout: paystack.timeout,
            attempts_max: 3,
        })
        .context("Paystack configuration")?;
        tracing::info!(base_url = %paystack.base_url, live = paystack.secret_key.starts_with("sk_live_"), "Paystack gateway enabled");
        gateways = gateways.with(Arc::new(gateway));
    }
    #[cfg(feature = "stripe")]
    if let Some(stripe) = &settings.stripe {
        let gateway = adapter_stripe::StripeGateway::new(adapter_stripe::StripeSettings {
            secret_key: stripe.secret_key.clone(),
            webhook_secrets: stripe.webhook_secrets.clone(),
            api_base: stripe.api_base.clone(),
            success_url: stripe
                .success_url
                .clone()
                .unwrap_or_else(|| format!("{base_url}/checkout/complete")),
            cancel_url: stripe
                .cancel_url
                .clone()
                .unwrap_or_else(|| format!("{base_url}/checkout/cancelled")),
            webhook_tolerance_secs: stripe.webhook_tolerance_secs,
            request_timeout: stripe.timeout,
            attempts_max: 3,
        })
        .context("Stripe configuration")?;
        tracing::info!(api_base = %stripe.api_base, "Stripe gateway enabled");
        gateways = gateways.with(Arc::new(gateway));
    }
    Ok(gateways)
}

/// The routing table of card payments by currency (`PROVIDER_ROUTES`).
fn provider_routes(settings: &Settings) -> anyhow::Result<Routes> {
    let mut routes = Routes::new();
    for (currency, providers) in &settings.provider_routes {
        let names = providers
            .iter()
            .map(|p| ProviderName::parse(p).map_err(|e| anyhow::anyhow!("PROVIDER_ROUTES: {p}: {e}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        routes = routes.route(*currency, names);
    }
    Ok(routes)
}

/// Adds the simulated gateway, when it is on.
fn with_simulator(
    gateways: Gateways,
    settings: &Settings,
    base_url: &str,
    clock: &Arc<dyn Clock>,
) -> anyhow::Result<(Gateways, Option<Arc<SimulatedGateway>>)> {
    if !settings.simulated_gateway {
        return Ok((gateways, None));
    }
    if !settings.is_demo() {
        tracing::warn!(
            "SIMULATED_GATEWAY is on with a database: its checkout page pays without a card, so anyone can fund a wallet; never in production"
        );
    }
    let secret = settings.simulator_secret.clone().unwrap_or_else(JwtIssuer::random_secret);
    let simulator = Arc::new(SimulatedGateway::new(secret, base_url, clock.clone()).map_err(|e| anyhow::anyhow!("{e}"))?);
    Ok((gateways.with(simulator.clone()), Some(simulator)))
}

/// What the HTTP handlers reach: the use cases, the rate limits and the optional pages.
fn api_state<U: UnitOfWork>(services: &Services<U>, settings: &Settings) -> ApiState<U> {
    let limits = RateLimits {
        enabled: settings.rate_limit_enabled,
        auth: settings.rate_limit_auth,
        money: settings.rate_limit_money,
        general: settings.rate_limit_general,
        trust_forwarded_for: settings.trust_forwarded_for,
    };
    let mut state = ApiState::new(services.app.clone(), services.limiter.clone(), limits);
    state.hosted_checkout = services.simulator.clone().map(|s| s as Arc<dyn HostedCheckout>);
    state.simulated_gateway = match (&services.simulator, settings.is_demo()) {
        (None, _) => None,
        (Some(_), true) => Some("demo"),
        (Some(_), false) => Some("enabled: pays without a card, not for production"),
    };
    state.catalog_cache = settings.catalog_cache;
    state.metrics = Some(crate::telemetry::metrics_renderer());
    state.metrics_token = settings.metrics_token.clone();
    state
}

/// What the web UI's pages reach: the same use cases and rate limiter as the API.
fn web_state<U: UnitOfWork>(services: &Services<U>, settings: &Settings) -> ::web::WebState<U> {
    let web = ::web::WebSettings {
        // Demo mode serves plain HTTP on a developer's machine; everywhere else cookies need TLS.
        secure_cookies: !settings.is_demo(),
        csrf_key: ::web::WebSettings::csrf_key_from(settings.jwt_secret.as_deref()),
        auth_quota: settings.rate_limit_enabled.then_some(settings.rate_limit_auth),
    };
    ::web::WebState::new(services.app.clone(), services.limiter.clone(), web)
}

/// A running server.
pub struct Application {
    backend: Backend,
    port: u16,
    base_url: String,
    server: Server,
    stop: watch::Sender<bool>,
    jobs: Vec<JoinHandle<()>>,
    #[cfg(feature = "testing")]
    job_round: crate::jobs::JobRound,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Binds the listener, connects the adapters and starts serving in the background.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        Application::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    /// As `build`, timed by `clock` instead of the system's (tests move a `ManualClock`).
    pub async fn build_with_clock(settings: Settings, clock: Arc<dyn Clock>) -> anyhow::Result<Application> {
        settings.require_jwt_secret_for_serving()?;
        let listener = TcpListener::bind(settings.bind).with_context(|| format!("cannot listen on {}", settings.bind))?;
        let port = listener.local_addr()?.port();
        let base_url = settings
            .public_base_url
            .clone()
            .unwrap_or_else(|| format!("http://{}:{port}", settings.bind.ip()));
        let backend = Backend::connect(&settings).await?;
        if settings.is_demo() {
            tracing::warn!("DEMO MODE: data lives in memory and is lost when the server stops; set DATABASE_URL to persist it");
        }
        match backend.clone() {
            Backend::Memory(store) => Application::start(store, backend, &settings, listener, base_url, clock).await,
            Backend::Postgres(store) => Application::start(store, backend, &settings, listener, base_url, clock).await,
        }
    }

    /// The storage the server runs on (tests inject faults into it).
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    async fn start<U: UnitOfWork>(
        store: U,
        backend: Backend,
        settings: &Settings,
        listener: TcpListener,
        base_url: String,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Application> {
        let services = Services::with_clock(store, settings, &base_url, clock).await?;
        if let Some((email, password)) = &settings.bootstrap_admin {
            crate::seed::ensure_admin(&services.app, email, password)
                .await
                .map_err(|e| anyhow::anyhow!("the admin of ADMIN_EMAIL: {e:#}"))?;
        }
        if settings.is_demo() && settings.demo_seed {
            let report = crate::seed::run(&services.app).await?;
            tracing::warn!(
                users = report.users_created,
                products = report.products_created,
                "DEMO MODE: seeded a shop; sign in as admin@example.com, merchant1@example.com or customer1@example.com \
                 with the password {:?} (DEMO_SEED=false starts empty)",
                crate::seed::SEED_PASSWORD
            );
        }
        let port = listener.local_addr()?.port();
        let mut api = api_state(&services, settings);
        let pools = crate::pool_metrics::Pools {
            postgres: match &backend {
                Backend::Postgres(store) => Some(store.clone()),
                Backend::Memory(_) => None,
            },
            redis: services.redis.clone(),
        };
        api.metrics = api.metrics.map(|renderer| pools.recorded_before(renderer));
        let in_flight = api.in_flight.clone();
        let state = web::Data::new(api);
        let http = HttpSettings {
            body_limit_bytes: settings.body_limit_bytes,
            cors_origins: settings.cors_origins.clone(),
            tracing: settings.traces.as_ref().map(|_| crate::telemetry::request_tracing()),
        };
        let pages = web::Data::new(web_state(&services, settings));
        let mut server = HttpServer::new(move || http_actix::app_with_pages(state.clone(), http.clone(), ::web::configure(pages.clone())))
            .listen(listener)?;
        if let Some(workers) = settings.workers {
            server = server.workers(workers);
        }
        let server = server.shutdown_timeout(settings.shutdown_timeout.as_secs()).run();
        let (stop, stopped) = watch::channel(false);
        let jobs = spawn_jobs(&services.app, settings, in_flight, &stopped);
        #[cfg(feature = "testing")]
        let job_round = test_job_round(&services.app, settings, stopped);
        tracing::info!(%base_url, "serving");
        Ok(Application {
            backend,
            port,
            base_url,
            server,
            stop,
            jobs,
            #[cfg(feature = "testing")]
            job_round,
        })
    }

    /// Runs a round of the background job whenever a test says, as the job's timer would: the
    /// test moves a manual clock past a deadline and runs a round instead of waiting.
    #[cfg(feature = "testing")]
    pub fn job_round(&self) -> jobs::JobRound {
        self.job_round.clone()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Serves until the server stops (SIGTERM or SIGINT: in-flight requests are allowed to finish
    /// within the shutdown timeout), then stops the background jobs.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let served = self.server.await;
        let _ = self.stop.send(true);
        for job in self.jobs {
            let _ = job.await;
        }
        served.context("the HTTP server failed")
    }
}

/// The background loops: the flows job, the webhook relay (when this instance relays, giving way
/// to the API as configured) and the ledger verification.
fn spawn_jobs<U: UnitOfWork>(
    app: &Arc<App<U>>,
    settings: &Settings,
    in_flight: http_actix::state::InFlight,
    stopped: &watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let yielding = settings.webhooks.yield_in_flight.map(|busy_at| jobs::RelayYield {
        in_flight,
        busy_at,
        lag_max: settings.webhooks.yield_lag_max,
    });
    let round = jobs::Round {
        batch: settings.job_batch,
        relay: settings.webhooks.relay,
        yielding: yielding.clone(),
    };
    let mut spawned = vec![jobs::spawn_flows(app.clone(), settings.job_interval, round, stopped.clone())];
    if settings.webhooks.relay {
        spawned.push(jobs::spawn_webhook_relay(
            app.clone(),
            settings.webhooks.interval,
            yielding,
            stopped.clone(),
        ));
    }
    if !settings.ledger_verify_interval.is_zero() {
        spawned.push(jobs::spawn_ledger_verification(
            app.clone(),
            settings.ledger_verify_interval,
            stopped.clone(),
        ));
    }
    spawned
}

/// A round of the job a test asks for: it relays whatever the load, since the test waits for its
/// deliveries.
#[cfg(feature = "testing")]
fn test_job_round<U: UnitOfWork>(app: &Arc<App<U>>, settings: &Settings, stopped: watch::Receiver<bool>) -> jobs::JobRound {
    let round = jobs::Round {
        batch: settings.job_batch,
        relay: settings.webhooks.relay,
        yielding: None,
    };
    jobs::JobRound::new(app.clone(), round, stopped)
}
