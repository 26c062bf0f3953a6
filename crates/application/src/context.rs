//! `App<U>`: the use cases, with everything they depend on.

use std::sync::Arc;

use time::Duration;

use crate::ports::cache::Cache;
use crate::ports::gateway::Gateways;
use crate::ports::security::{PasswordHasher, TokenIssuer};
use crate::ports::store::UnitOfWork;
use crate::ports::system::{Clock, IdGenerator};
use crate::ports::webhooks::WebhookSender;

/// Tunables of the use cases. Every limit is explicit.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long a refresh token may be used.
    pub refresh_token_ttl: Duration,
    /// How long a card checkout stays open before the expiry job cancels it.
    pub checkout_ttl: Duration,
    /// The longest call a single authorisation covers.
    pub call_minutes_max: u32,
    /// How long a hold reserves funds unless captured or released first.
    pub hold_ttl: Duration,
    /// How often and how far apart the job retries a follow-up's provider call.
    pub follow_up_retry: domain::follow_up::RetryPolicy,
    /// How long an idempotency claim protects a running request before another may take the key
    /// over.
    pub idempotency_lease: Duration,
    /// How long catalog entries stay in the cache.
    pub catalog_cache_ttl: std::time::Duration,
    /// The wallet every new user gets.
    pub default_currency: domain::money::Currency,
    /// Per currency, the amount above which a withdrawal waits for an admin's approval.
    pub withdrawal_approval: crate::withdrawals::ApprovalThresholds,
    /// Tunables of outbound webhooks.
    pub webhooks: WebhookSettings,
}

/// Tunables of outbound webhooks.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Whether endpoint URLs may use plain `http` (demo mode and tests); `https` otherwise.
    pub allow_insecure_urls: bool,
    /// How long a deliverer holds an endpoint before another instance may take it over: longer
    /// than a turn can take (`endpoint_budget` and one request's timeout).
    pub lease: Duration,
    /// Endpoints a round serves at once.
    pub endpoints_per_round: usize,
    /// Deliveries a round makes to one endpoint, one after another.
    pub deliveries_per_endpoint: usize,
    /// How long a round keeps serving one endpoint before it moves on: a slow receiver delays the
    /// others by at most this and one request's timeout, and its own backlog waits its turn.
    pub endpoint_budget: Duration,
    /// Events a round fans out.
    pub events_per_round: usize,
}

impl Default for WebhookSettings {
    fn default() -> WebhookSettings {
        WebhookSettings {
            allow_insecure_urls: false,
            lease: Duration::seconds(60),
            endpoints_per_round: 32,
            deliveries_per_endpoint: 200,
            endpoint_budget: Duration::seconds(5),
            events_per_round: 500,
        }
    }
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            refresh_token_ttl: Duration::days(30),
            checkout_ttl: Duration::minutes(30),
            call_minutes_max: 120,
            hold_ttl: Duration::days(7),
            follow_up_retry: domain::follow_up::RetryPolicy::DEFAULT,
            idempotency_lease: Duration::seconds(60),
            catalog_cache_ttl: std::time::Duration::from_secs(60),
            default_currency: domain::money::Currency::Usd,
            withdrawal_approval: crate::withdrawals::ApprovalThresholds::every_currency(1000),
            webhooks: WebhookSettings::default(),
        }
    }
}

/// The application: every use case is a method of this struct, in the module of its area.
#[derive(Debug)]
pub struct App<U> {
    /// Storage: every use case's transactions are begun here.
    pub store: U,
    /// The time; nothing in the use cases reads the system clock.
    pub clock: Arc<dyn Clock>,
    /// Ids for everything the use cases create.
    pub ids: Arc<dyn IdGenerator>,
    /// Hashes and checks passwords.
    pub hasher: Arc<dyn PasswordHasher>,
    /// Issues and verifies access tokens and refresh secrets.
    pub tokens: Arc<dyn TokenIssuer>,
    /// The card gateways and how payments are routed to them.
    pub gateways: Gateways,
    /// The catalog's cache; never the source of truth.
    pub cache: Arc<dyn Cache>,
    /// Sends outbound webhooks.
    pub webhooks: Arc<dyn WebhookSender>,
    /// The use cases' tunables.
    pub settings: Settings,
}

impl<U: UnitOfWork> App<U> {
    /// The store's own upkeep (see `UnitOfWork::upkeep`), for the job.
    pub async fn store_upkeep(&self) -> Result<(), crate::ports::store::StoreError> {
        self.store.upkeep(self.clock.now()).await
    }

    pub(crate) fn next_id<T: domain::ids::Id>(&self) -> T {
        crate::ports::system::next_id(self.ids.as_ref())
    }
}
