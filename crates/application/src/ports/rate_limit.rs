//! The rate-limiter port, and the in-process limiter that demo mode uses and that the Redis
//! limiter falls back to when Redis is unavailable.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::ports::system::Clock;

/// At most `burst` requests at once, refilled evenly to `burst` per `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// How many requests may come at once, and the number the budget refills to each period.
    pub burst: u32,
    /// How long the budget takes to refill from empty.
    pub period: Duration,
}

impl Quota {
    /// `burst` requests a minute.
    pub fn per_minute(burst: u32) -> Quota {
        Quota {
            burst,
            period: Duration::from_secs(60),
        }
    }

    /// The time between two requests at the sustained rate.
    pub fn emission_interval(&self) -> Duration {
        self.period / self.burst.max(1)
    }
}

/// A limiter's answer, with what the `RateLimit-*` and `Retry-After` headers report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    /// Whether the request may go on.
    pub allowed: bool,
    /// The quota's burst.
    pub limit: u32,
    /// Requests that may still come at once.
    pub remaining: u32,
    /// Until the bucket is full again.
    pub reset_after: Duration,
    /// When refused: how long to wait before the next request can pass.
    pub retry_after: Duration,
}

/// One quota a request is counted against, under its own key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateCheck {
    /// What the request is counted under (a client address, a user...).
    pub key: String,
    /// The quota of that key.
    pub quota: Quota,
}

/// The limiter's store did not answer; the HTTP layer then falls back to the in-process limiter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rate limiter unavailable: {0}")]
pub struct RateLimitError(pub String);

/// Counts requests against quotas (GCRA), shared by all instances when it is Redis.
#[async_trait]
pub trait RateLimiter: Send + Sync + std::fmt::Debug + 'static {
    /// Counts one request against every quota in `checks`, all or nothing: when one refuses,
    /// none is consumed, so a refused request costs the client no other budget. The answer is
    /// the refusal, or else the tightest decision (fewest remaining); `None` for no quotas.
    async fn check_all(&self, checks: &[RateCheck]) -> Result<Option<RateDecision>, RateLimitError>;

    /// Counts one request against `key` alone.
    async fn check(&self, key: &str, quota: Quota) -> Result<RateDecision, RateLimitError> {
        let check = RateCheck {
            key: key.to_owned(),
            quota,
        };
        self.check_all(std::slice::from_ref(&check))
            .await?
            .ok_or_else(|| RateLimitError("no decision for a quota".into()))
    }

    /// Whether the limiter's store answers, for the readiness probe.
    async fn ping(&self) -> Result<(), RateLimitError>;
}

/// The Generic Cell Rate Algorithm, for limiters that keep their state in process. Times are
/// offsets from any fixed origin. Returns the decision and, if the request passes, the new
/// theoretical arrival time to store.
pub fn gcra(stored_tat: Option<Duration>, now: Duration, quota: Quota) -> (RateDecision, Option<Duration>) {
    let interval = quota.emission_interval();
    let tat = stored_tat.map_or(now, |tat| tat.max(now));
    let new_tat = tat + interval;
    let allow_at = new_tat.saturating_sub(quota.period);
    if now < allow_at {
        let decision = RateDecision {
            allowed: false,
            limit: quota.burst,
            remaining: 0,
            reset_after: tat.saturating_sub(now),
            retry_after: allow_at - now,
        };
        return (decision, None);
    }
    let used = new_tat - now;
    let remaining = quota.period.saturating_sub(used).as_nanos() / interval.as_nanos().max(1);
    let decision = RateDecision {
        allowed: true,
        limit: quota.burst,
        remaining: u32::try_from(remaining).unwrap_or(u32::MAX),
        reset_after: used,
        retry_after: Duration::ZERO,
    };
    (decision, Some(new_tat))
}

/// GCRA over several quotas at once, all or nothing. `stored` holds each quota's stored
/// theoretical arrival time. Returns the decision (the refusal, or the tightest; `None` for no
/// quotas) and, if the request passes, the new arrival time of each quota, in order.
pub fn gcra_all(stored: &[(Option<Duration>, Quota)], now: Duration) -> (Option<RateDecision>, Option<Vec<Duration>>) {
    let mut tightest: Option<RateDecision> = None;
    let mut new_tats = Vec::with_capacity(stored.len());
    for &(tat, quota) in stored {
        let (decision, new_tat) = gcra(tat, now, quota);
        let Some(new_tat) = new_tat else {
            return (Some(decision), None);
        };
        new_tats.push(new_tat);
        if tightest.is_none_or(|t| decision.remaining < t.remaining) {
            tightest = Some(decision);
        }
    }
    (tightest, Some(new_tats))
}

/// GCRA rate limiting in process (per instance), timed by the injected clock.
#[derive(Debug)]
pub struct InProcessRateLimiter {
    clock: Arc<dyn Clock>,
    origin: OffsetDateTime,
    arrivals: Mutex<HashMap<String, Duration>>,
}

impl InProcessRateLimiter {
    /// At most this many keys are kept; past it, the keys whose budget is full again are dropped.
    const KEYS_MAX: usize = 100_000;

    /// A limiter whose time starts now.
    pub fn new(clock: Arc<dyn Clock>) -> InProcessRateLimiter {
        InProcessRateLimiter {
            origin: clock.now(),
            clock,
            arrivals: Mutex::new(HashMap::new()),
        }
    }

    /// The time since the limiter started; a clock that went back counts as no time.
    fn elapsed(&self) -> Duration {
        Duration::try_from(self.clock.now() - self.origin).unwrap_or(Duration::ZERO)
    }
}

#[async_trait]
impl RateLimiter for InProcessRateLimiter {
    async fn check_all(&self, checks: &[RateCheck]) -> Result<Option<RateDecision>, RateLimitError> {
        let now = self.elapsed();
        let mut arrivals = self.arrivals.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if arrivals.len() >= InProcessRateLimiter::KEYS_MAX {
            arrivals.retain(|_, tat| *tat > now);
        }
        let stored: Vec<_> = checks
            .iter()
            .map(|check| (arrivals.get(&check.key).copied(), check.quota))
            .collect();
        let (decision, new_tats) = gcra_all(&stored, now);
        for (check, tat) in checks.iter().zip(new_tats.unwrap_or_default()) {
            arrivals.insert(check.key.clone(), tat);
        }
        Ok(decision)
    }

    async fn ping(&self) -> Result<(), RateLimitError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_requests_wait_for_the_emission_interval() {
        let quota = Quota {
            burst: 3,
            period: Duration::from_secs(3),
        };
        let now = Duration::from_secs(100);
        let mut tat = None;
        for expected_remaining in [2, 1, 0] {
            let (decision, new_tat) = gcra(tat, now, quota);
            assert!(decision.allowed);
            assert_eq!(decision.remaining, expected_remaining);
            tat = new_tat;
        }
        let (refused, unchanged) = gcra(tat, now, quota);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after, Duration::from_secs(1));
        assert_eq!(unchanged, None);
        let (later, _) = gcra(tat, now + Duration::from_secs(1), quota);
        assert!(later.allowed);
    }

    fn limiter() -> (Arc<crate::ports::system::ManualClock>, InProcessRateLimiter) {
        let clock = Arc::new(crate::ports::system::ManualClock::new(OffsetDateTime::UNIX_EPOCH));
        (clock.clone(), InProcessRateLimiter::new(clock))
    }

    #[tokio::test]
    async fn the_in_process_limiter_refuses_past_the_burst_and_refills_as_its_clock_moves() -> Result<(), RateLimitError> {
        let (clock, limiter) = limiter();
        let quota = Quota {
            burst: 2,
            period: Duration::from_secs(2),
        };
        assert!(limiter.check("ip", quota).await?.allowed);
        assert!(limiter.check("ip", quota).await?.allowed);
        let refused = limiter.check("ip", quota).await?;
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after, Duration::from_secs(1));
        assert!(limiter.check("other", quota).await?.allowed);
        clock.advance(time::Duration::milliseconds(999));
        assert!(!limiter.check("ip", quota).await?.allowed, "not refilled yet");
        clock.advance(time::Duration::milliseconds(1));
        assert!(limiter.check("ip", quota).await?.allowed);
        Ok(())
    }

    #[tokio::test]
    async fn a_request_refused_by_one_quota_consumes_none() -> Result<(), RateLimitError> {
        let (_, limiter) = limiter();
        let roomy = RateCheck {
            key: "money:ada".into(),
            quota: Quota::per_minute(3),
        };
        let tight = RateCheck {
            key: "general:ada".into(),
            quota: Quota::per_minute(1),
        };
        let both = [roomy.clone(), tight.clone()];
        let first = limiter.check_all(&both).await?.expect("a decision");
        assert_eq!(
            (first.allowed, first.limit, first.remaining),
            (true, 1, 0),
            "the tightest is reported"
        );
        let refused = limiter.check_all(&both).await?.expect("a decision");
        assert_eq!((refused.allowed, refused.limit), (false, 1), "the refusing quota is reported");
        let alone = limiter.check(&roomy.key, roomy.quota).await?;
        assert_eq!(
            (alone.allowed, alone.remaining),
            (true, 1),
            "the refusal took nothing from the roomy quota"
        );
        assert_eq!(limiter.check_all(&[]).await?, None);
        Ok(())
    }
}
