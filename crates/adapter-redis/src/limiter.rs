//! GCRA rate limiting in one Lua script, so every server instance shares one budget per key.
//! Time comes from the Redis server (`TIME`), so instances with skewed clocks still agree. When
//! Redis is unavailable the in-process limiter of the port takes over (per-instance limits).

use std::sync::Arc;
use std::time::Duration;

use application::ports::rate_limit::{InProcessRateLimiter, RateCheck, RateDecision, RateLimitError, RateLimiter};
use application::ports::system::Clock;
use async_trait::async_trait;
use deadpool_redis::Pool;
use deadpool_redis::redis::{self, Script};

use crate::RedisSettings;
use crate::breaker::Breaker;

/// KEYS: each quota's theoretical arrival time (µs). ARGV: each quota's emission interval and
/// period (µs), in pairs. All or nothing: the new times are written only if every quota allows.
/// Returns {quota index (1-based), allowed, remaining, reset_after_us, retry_after_us} for the
/// refusing quota, or else the tightest. The keys of one call must share a Redis node (this runs
/// on a single Redis, not a cluster).
const GCRA: &str = r"
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local new_tats = {}
local tightest = nil
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local period = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  local new_tat = tat + interval
  local allow_at = new_tat - period
  if now < allow_at then
    return {i, 0, 0, tat - now, allow_at - now}
  end
  new_tats[i] = new_tat
  local remaining = math.floor((period - (new_tat - now)) / interval)
  if tightest == nil or remaining < tightest[3] then
    tightest = {i, 1, remaining, new_tat - now, 0}
  end
end
for i, key in ipairs(KEYS) do
  redis.call('SET', key, new_tats[i], 'PX', math.ceil((new_tats[i] - now) / 1000))
end
return tightest
";

pub struct RedisRateLimiter {
    pool: Pool,
    prefix: String,
    breaker: Breaker,
    script: Script,
    fallback: InProcessRateLimiter,
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
    /// A limiter on `pool`; `clock` times the in-process fallback.
    pub fn new(pool: Pool, settings: &RedisSettings, clock: Arc<dyn Clock>) -> RedisRateLimiter {
        RedisRateLimiter {
            pool,
            prefix: settings.key_prefix.clone(),
            breaker: Breaker::new(settings.retry_after, settings.command_timeout),
            script: Script::new(GCRA),
            fallback: InProcessRateLimiter::new(clock),
        }
    }

    async fn check_in_redis(&self, checks: &[RateCheck]) -> Result<Option<RateDecision>, redis::RedisError> {
        if checks.is_empty() {
            return Ok(None);
        }
        let mut connection = self
            .pool
            .get()
            .await
            .map_err(|e| redis::RedisError::from((redis::ErrorKind::Io, "no connection", e.to_string())))?;
        let mut invocation = self.script.prepare_invoke();
        for check in checks {
            invocation
                .key(format!("{}ratelimit:{}", self.prefix, check.key))
                .arg(micros(check.quota.emission_interval()))
                .arg(micros(check.quota.period));
        }
        let (index, allowed, remaining, reset_after, retry_after): (usize, i64, i64, i64, i64) =
            invocation.invoke_async(&mut connection).await?;
        let quota = checks
            .get(index.saturating_sub(1))
            .ok_or_else(|| redis::RedisError::from((redis::ErrorKind::UnexpectedReturnType, "quota index out of range")))?
            .quota;
        Ok(Some(RateDecision {
            allowed: allowed == 1,
            limit: quota.burst,
            remaining: u32::try_from(remaining).unwrap_or(0),
            reset_after: duration(reset_after),
            retry_after: duration(retry_after),
        }))
    }
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn check_all(&self, checks: &[RateCheck]) -> Result<Option<RateDecision>, RateLimitError> {
        match self.breaker.call(self.check_in_redis(checks)).await {
            Ok(decision) => Ok(decision),
            Err(error) => {
                tracing::debug!(%error, "rate limiting in process while Redis is unavailable");
                self.fallback.check_all(checks).await
            }
        }
    }

    async fn ping(&self) -> Result<(), RateLimitError> {
        // Probes Redis even while the breaker is open, so readiness sees recovery at once; an answer
        // closes the breaker.
        let probe = async {
            let mut connection = self
                .pool
                .get()
                .await
                .map_err(|e| redis::RedisError::from((redis::ErrorKind::Io, "no connection", e.to_string())))?;
            redis::cmd("PING").query_async::<String>(&mut connection).await
        };
        match tokio::time::timeout(Duration::from_millis(500), probe).await {
            Ok(Ok(_)) => {
                self.breaker.close();
                Ok(())
            }
            Ok(Err(error)) => Err(RateLimitError(error.to_string())),
            Err(_) => Err(RateLimitError("Redis did not answer PING in time".into())),
        }
    }
}
