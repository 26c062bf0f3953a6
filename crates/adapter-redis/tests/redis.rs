//! The Redis adapters against the real Redis on localhost (`REDIS_URL`, default
//! `redis://127.0.0.1:6379`), each test under a key prefix of its own.

use std::net::SocketAddr;
use std::time::Duration;

use std::sync::Arc;

use adapter_redis::testing::ToggleProxy;
use adapter_redis::{RedisCache, RedisRateLimiter, RedisSettings, connect};
use application::ports::cache::Cache;
use application::ports::rate_limit::{Quota, RateCheck, RateLimiter};
use application::ports::system::{Clock, ManualClock, SystemClock};

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

fn settings(url: &str) -> RedisSettings {
    RedisSettings {
        key_prefix: format!("test:{}:", uuid::Uuid::now_v7().simple()),
        retry_after: Duration::from_millis(50),
        ..RedisSettings::new(url)
    }
}

async fn cache(settings: &RedisSettings) -> RedisCache {
    let pool = connect(settings)
        .await
        .unwrap_or_else(|e| panic!("{e}; start Redis with scripts/services.sh"));
    RedisCache::new(pool, settings)
}

/// A clock for the in-process fallback that moves only when a test says so.
fn still_clock() -> Arc<dyn Clock> {
    Arc::new(ManualClock::new(SystemClock.now()))
}

async fn limiter(settings: &RedisSettings) -> Result<RedisRateLimiter, Box<dyn std::error::Error>> {
    Ok(RedisRateLimiter::new(connect(settings).await?, settings, still_clock()))
}

fn redis_address() -> SocketAddr {
    let url = redis_url();
    let host_port = url
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap_or("127.0.0.1:6379")
        .to_owned();
    host_port.parse().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 6379)))
}

#[tokio::test]
async fn values_are_cached_with_their_ttl() -> Result<(), Box<dyn std::error::Error>> {
    let settings = settings(&redis_url());
    let cache = cache(&settings).await;
    cache.set("k", b"value", Duration::from_millis(300)).await?;
    assert_eq!(cache.get("k").await?, Some(b"value".to_vec()));
    // Redis expires the entry itself; what the adapter owes is the TTL it sets.
    let mut raw = connect(&settings).await?.get().await?;
    let ttl: i64 = deadpool_redis::redis::cmd("PTTL")
        .arg(format!("{}k", settings.key_prefix))
        .query_async(&mut raw)
        .await?;
    assert!((1..=300).contains(&ttl), "the entry expires within its TTL: {ttl} ms left");
    cache.set("d", b"x", Duration::from_secs(60)).await?;
    cache.delete(&["d".to_owned()]).await?;
    assert_eq!(cache.get("d").await?, None);
    Ok(())
}

#[tokio::test]
async fn a_bumped_version_hides_what_was_cached_before() -> Result<(), Box<dyn std::error::Error>> {
    let settings = settings(&redis_url());
    let (reader, writer) = (cache(&settings).await, cache(&settings).await);
    let (version, missing) = reader.get_versioned("product:1:version", "product:1:v").await?;
    assert_eq!(missing, None);
    reader
        .set(&format!("product:1:v{version}"), b"old price", Duration::from_secs(60))
        .await?;
    assert_eq!(
        reader.get_versioned("product:1:version", "product:1:v").await?.1,
        Some(b"old price".to_vec())
    );
    // Another instance changes the product and bumps its version.
    writer
        .increment_all(&["product:1:version".to_owned(), "catalog:list:version".to_owned()])
        .await?;
    assert_eq!(writer.get("catalog:list:version").await?, Some(b"1".to_vec()));
    let mut raw = connect(&settings).await?.get().await?;
    for key in ["product:1:version", "catalog:list:version"] {
        let ttl: i64 = deadpool_redis::redis::cmd("PTTL")
            .arg(format!("{}{key}", settings.key_prefix))
            .query_async(&mut raw)
            .await?;
        let most = i64::try_from(adapter_redis::VERSION_TTL.as_millis())?;
        assert!((1..=most).contains(&ttl), "{key} expires once nobody bumps it: {ttl} ms left");
    }
    let (newer, value) = reader.get_versioned("product:1:version", "product:1:v").await?;
    assert_ne!(newer, version);
    assert_eq!(value, None);
    Ok(())
}

#[tokio::test]
async fn an_invalidation_missed_while_redis_was_down_retires_everything_cached() -> Result<(), Box<dyn std::error::Error>> {
    let proxy = ToggleProxy::start(redis_address()).await?;
    let settings = settings(&proxy.url());
    let cache = cache(&settings).await;
    let (version, _) = cache.get_versioned("p:version", "p:v").await?;
    cache.set(&format!("p:v{version}"), b"cached", Duration::from_secs(60)).await?;
    proxy.stop();
    assert!(
        cache.increment("p:version").await.is_err(),
        "the write's invalidation cannot reach Redis"
    );
    assert!(cache.get("p:version").await.is_err());
    assert!(cache.ping().await.is_err());
    proxy.resume()?;
    // The probe reaches Redis again and closes the breaker: no waiting for it to time out.
    cache.ping().await?;
    let (_, value) = cache.get_versioned("p:version", "p:v").await?;
    assert_eq!(value, None, "the entry cached before the missed invalidation must not be served");
    Ok(())
}

#[tokio::test]
async fn two_instances_share_one_budget_under_concurrency() -> Result<(), Box<dyn std::error::Error>> {
    let settings = settings(&redis_url());
    let first = Arc::new(limiter(&settings).await?);
    let second = Arc::new(limiter(&settings).await?);
    let quota = Quota {
        burst: 20,
        period: Duration::from_secs(3600),
    };
    let tasks: Vec<_> = (0..60)
        .map(|n| {
            let limiter = if n % 2 == 0 { first.clone() } else { second.clone() };
            tokio::spawn(async move { limiter.check("client:1", quota).await })
        })
        .collect();
    let mut allowed = 0;
    for task in tasks {
        let decision = task.await??;
        if decision.allowed {
            allowed += 1;
        } else {
            assert!(decision.retry_after > Duration::ZERO);
            assert_eq!(decision.remaining, 0);
        }
    }
    assert_eq!(allowed, 20);
    assert!(first.check("client:2", quota).await?.allowed, "another key has its own budget");
    Ok(())
}

#[tokio::test]
async fn a_request_refused_by_one_quota_consumes_none_on_any_instance() -> Result<(), Box<dyn std::error::Error>> {
    let settings = settings(&redis_url());
    let first = limiter(&settings).await?;
    let second = limiter(&settings).await?;
    let money = RateCheck {
        key: "money:ada".into(),
        quota: Quota::per_minute(3),
    };
    let general = RateCheck {
        key: "general:ada".into(),
        quota: Quota::per_minute(1),
    };
    let both = [money.clone(), general.clone()];
    let passed = first.check_all(&both).await?.expect("a decision");
    assert_eq!(
        (passed.allowed, passed.limit, passed.remaining),
        (true, 1, 0),
        "the tightest is reported"
    );
    for limiter in [&first, &second, &first] {
        let refused = limiter.check_all(&both).await?.expect("a decision");
        assert_eq!((refused.allowed, refused.limit), (false, 1), "the refusing quota is reported");
        assert!(refused.retry_after > Duration::ZERO);
    }
    let alone = second.check(&money.key, money.quota).await?;
    assert_eq!(
        (alone.allowed, alone.remaining),
        (true, 1),
        "three refusals took nothing from the money quota"
    );
    assert_eq!(first.check_all(&[]).await?, None);
    Ok(())
}

#[tokio::test]
async fn without_redis_the_limiter_falls_back_to_in_process_limits() -> Result<(), Box<dyn std::error::Error>> {
    let proxy = ToggleProxy::start(redis_address()).await?;
    let settings = settings(&proxy.url());
    let limiter = limiter(&settings).await?;
    let quota = Quota {
        burst: 2,
        period: Duration::from_secs(3600),
    };
    assert!(limiter.check("k", quota).await?.allowed);
    proxy.stop();
    assert!(limiter.ping().await.is_err());
    // The in-process limiter starts its own count for this instance.
    assert!(limiter.check("k", quota).await?.allowed);
    assert!(limiter.check("k", quota).await?.allowed);
    assert!(!limiter.check("k", quota).await?.allowed);
    proxy.resume()?;
    limiter.ping().await?;
    let back = limiter.check("k", quota).await?;
    assert!(back.allowed, "Redis still holds one request of the budget");
    assert!(!limiter.check("k", quota).await?.allowed);
    Ok(())
}

#[tokio::test]
async fn an_unreachable_redis_is_a_start_up_error() {
    let error = connect(&settings("redis://127.0.0.1:1"))
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(error.contains("not reachable"), "{error}");
}
