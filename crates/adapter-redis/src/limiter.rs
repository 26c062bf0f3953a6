//! GCRA rate limiting in one Lua script, so every server instance shares one budget per key.
//! Time comes from the Redis server (`TIME`), so instances with skewed clocks still agree. When
//! Redis is unavailable the in-process limiter takes over (per-instance limits).

use std::time::Duration;

use adapter_memory::MemoryRateLimiter;
use application::ports::rate_limit::{Quota, RateDecision, RateLimitError, RateLimiter};
use async_trait::async_trait;
use deadpool_redis::Pool;
use deadpool_redis::redis::{self, Script};

use crate::RedisSettings;
use crate::breaker::Breaker;

/// KEYS[1]: the key's theoretical arrival time (µs). ARGV: emission interval and period (µs).
/// Returns {allowed, remaining, reset_after_us, retry_after_us}.
const GCRA: &str = r"
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local interval = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - period
if now < allow_at then
  return {0, 0, tat - now, allow_at - now}
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil((new_tat - now) / 1000))
local remaining = math.floor((period - (new_tat - now)) / interval)
return {1, remaining, new_tat - now, 0}
";

pub struct RedisRateLimiter {
    pool: Pool,
    prefix: String,
    breaker: Breaker,
    script: Script,
    fallback: MemoryRateLimiter,
}

impl std::fmt::Debug for RedisRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRateLimiter")
            .field("prefix", &self.prefix)
            .field("breaker", &self.breaker)
            .finish_non_exhaustive()
    }
}

fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

fn duration(micros: i64) -> Duration {
    Duration::from_micros(u64::try_from(micros).unwrap_or(0))
}

impl RedisRateLimiter {
    pub fn new(pool: Pool, settings: &RedisSettings) -> RedisRateLimiter {
        RedisRateLimiter {
            pool,
            prefix: settings.key_prefix.clone(),
            breaker: Breaker::new(settings.retry_after, settings.command_timeout),
            script: Script::new(GCRA),
            fallback: MemoryRateLimiter::new(),
        }
    }

    async fn check_in_redis(&self, key: &str, quota: Quota) -> Result<RateDecision, redis::RedisError> {
        let mut connection = self
            .pool
            .get()
            .await
            .map_err(|e| redis::RedisError::from((redis::ErrorKind::Io, "no connection", e.to_string())))?;
        let (allowed, remaining, reset_after, retry_after): (i64, i64, i64, i64) = self
            .script
            .key(format!("{}ratelimit:{key}", self.prefix))
            .arg(micros(quota.emission_interval()))
            .arg(micros(quota.period))
            .invoke_async(&mut connection)
            .await?;
        Ok(RateDecision {
            allowed: allowed == 1,
            limit: quota.burst,
            remaining: u32::try_from(remaining).unwrap_or(0),
            reset_after: duration(reset_after),
            retry_after: duration(retry_after),
        })
    }
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn check(&self, key: &str, quota: Quota) -> Result<RateDecision, RateLimitError> {
        match self.breaker.call(self.check_in_redis(key, quota)).await {
            Ok(decision) => Ok(decision),
            Err(error) => {
                tracing::debug!(%error, "rate limiting in process while Redis is unavailable");
                self.fallback.check(key, quota).await
            }
        }
    }

    async fn ping(&self) -> Result<(), RateLimitError> {
        // Probes Redis even while the breaker is open, so readiness sees recovery at once.
        let probe = async {
            let mut connection = self
                .pool
                .get()
                .await
                .map_err(|e| redis::RedisError::from((redis::ErrorKind::Io, "no connection", e.to_string())))?;
            redis::cmd("PING").query_async::<String>(&mut connection).await
        };
        match tokio::time::timeout(Duration::from_millis(500), probe).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(RateLimitError(error.to_string())),
            Err(_) => Err(RateLimitError("Redis did not answer PING in time".into())),
        }
    }
}
