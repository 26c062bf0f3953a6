//! What every handler can reach.

use std::sync::Arc;

use application::App;
use application::ports::gateway::HostedCheckout;
use application::ports::rate_limit::RateLimiter;
use application::ports::store::UnitOfWork;

use crate::middleware::RateLimits;
use crate::readiness::DependencyStates;
use crate::standing::StandingCheck;

#[derive(Debug)]
pub struct ApiState<U> {
    pub app: Arc<App<U>>,
    pub limiter: Arc<dyn RateLimiter>,
    pub limits: RateLimits,
    /// The gateway whose hosted pages this server renders (the simulator), if configured.
    pub hosted_checkout: Option<Arc<dyn HostedCheckout>>,
    /// Whether catalog reads are served from the cache.
    pub catalog_cache: bool,
    /// Renders the metrics in Prometheus' text format, when a recorder is installed.
    pub metrics: Option<MetricsRenderer>,
    /// When set, `GET /metrics` requires `Authorization: Bearer <token>`.
    pub metrics_token: Option<String>,
    /// Readiness reports the simulated gateway when it is on: a payment page that needs no card.
    pub simulated_gateway: Option<&'static str>,
    /// Whether a signed-in user may still act (suspended users may not), shared by the workers.
    pub standing: StandingCheck,
    /// Each dependency's last readiness answer, so that its failures are logged once per change.
    pub dependencies: DependencyStates,
    /// The requests being served now, shared with the background work that yields to them.
    pub in_flight: InFlight,
}

/// How many requests this process is serving now: counted by `middleware::request_context`,
/// read by work that should give way when the API is busy (the webhook relay). Clones share it.
#[derive(Debug, Clone, Default)]
pub struct InFlight(Arc<std::sync::atomic::AtomicUsize>);

impl InFlight {
    pub fn now(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Counts a request until the guard is dropped (however the request ends).
    pub fn enter(&self) -> InFlightGuard {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        InFlightGuard(self.clone())
    }
}

/// A request being served; dropping it ends it.
#[derive(Debug)]
pub struct InFlightGuard(InFlight);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        (self.0).0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Renders the process's metrics for `GET /metrics`.
#[derive(Clone)]
pub struct MetricsRenderer(pub Arc<dyn Fn() -> String + Send + Sync>);

impl std::fmt::Debug for MetricsRenderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsRenderer")
    }
}

impl<U: UnitOfWork + 'static> ApiState<U> {
    pub fn new(app: Arc<App<U>>, limiter: Arc<dyn RateLimiter>, limits: RateLimits) -> ApiState<U> {
        ApiState {
            standing: StandingCheck::new(app.clone()),
            app,
            limiter,
            limits,
            hosted_checkout: None,
            simulated_gateway: None,
            catalog_cache: true,
            metrics: None,
            metrics_token: None,
            dependencies: DependencyStates::default(),
            in_flight: InFlight::default(),
        }
    }
}
