//! The shared cache.
//!
//! Versioned reads take one round trip (a Lua script reads the version counters and the value).
//! The version token combines the key's own counter with a global *epoch*: if an invalidation
//! could not reach Redis (it was down), the first successful call afterwards bumps the epoch, so
//! that everything cached before the outage becomes unreachable rather than stale.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use application::ports::cache::{Cache, CacheError};
use async_trait::async_trait;
use deadpool_redis::Pool;
use deadpool_redis::redis::{self, Script};

use crate::RedisSettings;
use crate::breaker::Breaker;

const EPOCH_KEY: &str = "cache:epoch";

/// How long a version counter outlives its last bump. Cached values live far shorter (the
/// configuration caps them at a day), so when a counter expires and reads as 0 again, nothing
/// cached under an earlier 0 is still there; and a product nobody changes stops costing a key.
pub const VERSION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// How long readiness waits for Redis to answer.
const PING_TIMEOUT: Duration = Duration::from_millis(500);

/// Returns {version token, value or false}.
const VERSIONED_GET: &str = r"
local version = redis.call('GET', KEYS[1]) or '0'
local epoch = redis.call('GET', KEYS[2]) or '0'
local token = epoch .. '.' .. version
return {token, redis.call('GET', ARGV[1] .. token)}
";

pub struct RedisCache {
    pool: Pool,
    prefix: String,
    breaker: Breaker,
    versioned_get: Script,
    /// An increment (an invalidation) failed: bump the epoch as soon as Redis answers again.
    missed_invalidation: AtomicBool,
}

impl std::fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCache")
            .field("prefix", &self.prefix)
            .field("breaker", &self.breaker)
            .finish_non_exhaustive()
    }
}

fn cache_error(error: impl std::fmt::Display) -> CacheError {
    CacheError(error.to_string())
}

impl RedisCache {
    pub fn new(pool: Pool, settings: &RedisSettings) -> RedisCache {
        RedisCache {
            pool,
            prefix: settings.key_prefix.clone(),
            breaker: Breaker::new(settings.retry_after, settings.command_timeout),
            versioned_get: Script::new(VERSIONED_GET),
            missed_invalidation: AtomicBool::new(false),
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    async fn connection(&self) -> Result<deadpool_redis::Connection, redis::RedisError> {
        self.pool
            .get()
            .await
            .map_err(|e| redis::RedisError::from((redis::ErrorKind::Io, "no connection", e.to_string())))
    }

    /// Runs a command through the breaker, first settling a missed invalidation.
    async fn run<T: redis::FromRedisValue>(&self, command: redis::Cmd) -> Result<T, CacheError> {
        self.settle_missed_invalidation().await?;
        self.breaker
            .call(async {
                let mut connection = self.connection().await?;
                command.query_async::<T>(&mut connection).await
            })
            .await
            .map_err(cache_error)
    }

    async fn settle_missed_invalidation(&self) -> Result<(), CacheError> {
        if !self.missed_invalidation.load(Ordering::SeqCst) {
            return Ok(());
        }
        let epoch_key = self.key(EPOCH_KEY);
        let bumped: Result<i64, _> = self
            .breaker
            .call(async {
                let mut connection = self.connection().await?;
                redis::cmd("INCR").arg(&epoch_key).query_async::<i64>(&mut connection).await
            })
            .await;
        match bumped {
            Ok(epoch) => {
                self.missed_invalidation.store(false, Ordering::SeqCst);
                tracing::info!(epoch, "cache epoch bumped after missed invalidations");
                Ok(())
            }
            Err(error) => Err(cache_error(error)),
        }
    }
}

#[async_trait]
impl Cache for RedisCache {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let mut command = redis::cmd("GET");
        command.arg(self.key(key));
        self.run(command).await
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut command = redis::cmd("SET");
        command.arg(self.key(key)).arg(value).arg("PX").arg(millis);
        self.run::<()>(command).await
    }

    async fn delete(&self, keys: &[String]) -> Result<(), CacheError> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut command = redis::cmd("DEL");
        for key in keys {
            command.arg(self.key(key));
        }
        self.run::<()>(command).await
    }

    async fn increment(&self, key: &str) -> Result<u64, CacheError> {
        let mut pipeline = redis::pipe();
        pipeline
            .cmd("INCR")
            .arg(self.key(key))
            .cmd("PEXPIRE")
            .arg(self.key(key))
            .arg(VERSION_TTL.as_millis() as u64)
            .ignore();
        let result = match self.settle_missed_invalidation().await {
            Ok(()) => self
                .breaker
                .call(async {
                    let mut connection = self.connection().await?;
                    pipeline.query_async::<(u64,)>(&mut connection).await
                })
                .await
                .map(|(version,)| version)
                .map_err(cache_error),
            Err(error) => Err(error),
        };
        if result.is_err() {
            self.missed_invalidation.store(true, Ordering::SeqCst);
        }
        result
    }

    async fn increment_all(&self, keys: &[String]) -> Result<(), CacheError> {
        if keys.is_empty() {
            return Ok(());
        }
        self.settle_missed_invalidation().await?;
        let mut pipeline = redis::pipe();
        for key in keys {
            pipeline.cmd("INCR").arg(self.key(key)).ignore();
            pipeline
                .cmd("PEXPIRE")
                .arg(self.key(key))
                .arg(VERSION_TTL.as_millis() as u64)
                .ignore();
        }
        let result = self
            .breaker
            .call(async {
                let mut connection = self.connection().await?;
                pipeline.query_async::<()>(&mut connection).await
            })
            .await
            .map_err(cache_error);
        if result.is_err() {
            self.missed_invalidation.store(true, Ordering::SeqCst);
        }
        result
    }

    async fn get_versioned(&self, version_key: &str, value_key_prefix: &str) -> Result<(String, Option<Vec<u8>>), CacheError> {
        self.settle_missed_invalidation().await?;
        let (version_key, epoch_key, prefix) = (self.key(version_key), self.key(EPOCH_KEY), self.key(value_key_prefix));
        self.breaker
            .call(async {
                let mut connection = self.connection().await?;
                self.versioned_get
                    .key(&version_key)
                    .key(&epoch_key)
                    .arg(&prefix)
                    .invoke_async::<(String, Option<Vec<u8>>)>(&mut connection)
                    .await
            })
            .await
            .map_err(cache_error)
    }

    async fn ping(&self) -> Result<(), CacheError> {
        // Probes Redis even while the breaker is open, so readiness sees recovery at once; an answer
        // closes the breaker.
        let probe = async {
            let mut connection = self.connection().await?;
            redis::cmd("PING").query_async::<String>(&mut connection).await
        };
        match tokio::time::timeout(PING_TIMEOUT, probe).await {
            Ok(Ok(_)) => {
                self.breaker.close();
                Ok(())
            }
            Ok(Err(error)) => Err(cache_error(error)),
            Err(_) => Err(CacheError("Redis did not answer PING in time".into())),
        }
    }
}
