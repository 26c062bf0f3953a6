//! Redis adapters: the catalog cache and the rate limiter shared by every server instance.
//!
//! Redis makes the service faster and fairer; it is never the source of truth. Both adapters sit
//! behind a circuit breaker: when Redis fails, the cache reports misses (readers go to the
//! database) and the limiter falls back to in-process limits, fast and without waiting on a dead
//! connection; every so often one call probes Redis, and the first success closes the breaker.
//! Readiness reports Redis as degraded meanwhile.

mod breaker;
mod cache;
mod limiter;
#[cfg(feature = "testing")]
pub mod testing;

use std::time::Duration;

use deadpool_redis::{Config, Pool, Runtime};

pub use crate::cache::{RedisCache, VERSION_TTL};
pub use crate::limiter::RedisRateLimiter;
/// The connection pool `connect` opens, shared by the cache and the rate limiter.
pub use deadpool_redis::Pool as RedisPool;

/// The pool's connections now: open, free, its size, and the callers waiting for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStatus {
    pub max: usize,
    pub connections: usize,
    pub idle: usize,
    pub waiting: usize,
}

/// What the pool holds and how many wait for it.
pub fn pool_status(pool: &Pool) -> PoolStatus {
    let status = pool.status();
    PoolStatus {
        max: status.max_size,
        connections: status.size,
        idle: status.available,
        waiting: status.waiting,
    }
}

#[derive(Debug, Clone)]
pub struct RedisSettings {
    pub url: String,
    /// Prepended to every key, so several deployments (or tests) can share one Redis.
    pub key_prefix: String,
    pub pool_max_size: usize,
    /// The longest any one Redis call may take before it counts as a failure.
    pub command_timeout: Duration,
    /// How long the breaker stays open before it lets a call probe Redis again.
    pub retry_after: Duration,
}

impl RedisSettings {
    pub fn new(url: &str) -> RedisSettings {
        RedisSettings {
            url: url.to_owned(),
            key_prefix: "payments:".to_owned(),
            pool_max_size: 16,
            command_timeout: Duration::from_millis(250),
            retry_after: Duration::from_secs(1),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RedisSetupError {
    #[error("invalid Redis configuration: {0}")]
    Config(String),
    #[error("Redis at {url} is not reachable: {reason}")]
    Unreachable { url: String, reason: String },
}

/// A connection pool; `connect` checks that Redis answers, since a configured service that is
/// down at start-up is an error, not a silent fallback.
pub async fn connect(settings: &RedisSettings) -> Result<Pool, RedisSetupError> {
    let pool = Config::from_url(settings.url.clone())
        .builder()
        .map_err(|e| RedisSetupError::Config(e.to_string()))?
        .max_size(settings.pool_max_size)
        .wait_timeout(Some(settings.command_timeout))
        .create_timeout(Some(settings.command_timeout * 4))
        .recycle_timeout(Some(settings.command_timeout))
        .runtime(Runtime::Tokio1)
        .build()
        .map_err(|e| RedisSetupError::Config(e.to_string()))?;
    let unreachable = |reason: String| RedisSetupError::Unreachable {
        url: redact(&settings.url),
        reason,
    };
    let mut connection = pool.get().await.map_err(|e| unreachable(e.to_string()))?;
    let pong: String = deadpool_redis::redis::cmd("PING")
        .query_async(&mut connection)
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    if pong != "PONG" {
        return Err(unreachable(format!("unexpected answer to PING: {pong}")));
    }
    Ok(pool)
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}***{}", &url[..scheme + 3], &url[at..]),
        _ => url.to_owned(),
    }
}
