//! The cache port. A cache makes reads faster; it is never the source of truth, and every caller
//! treats a `CacheError` as a miss.

use std::time::Duration;

use async_trait::async_trait;

/// Why the cache did not answer; callers treat it as a miss and carry on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cache unavailable: {0}")]
pub struct CacheError(pub String);

/// A shared cache of bytes by key, with expiry (Redis, or in process).
#[async_trait]
pub trait Cache: Send + Sync + std::fmt::Debug + 'static {
    /// The value under `key`, if any.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError>;

    /// Stores `value` under `key` for `ttl`.
    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError>;

    /// Removes these keys; missing ones are ignored.
    async fn delete(&self, keys: &[String]) -> Result<(), CacheError>;

    /// Atomically adds one to a counter (missing counts as zero) and returns the new value.
    async fn increment(&self, key: &str) -> Result<u64, CacheError>;

    /// Increments several counters; adapters do it in one round trip.
    async fn increment_all(&self, keys: &[String]) -> Result<(), CacheError> {
        for key in keys {
            self.increment(key).await?;
        }
        Ok(())
    }

    /// Reads the version of `version_key` and the value stored under
    /// `format!("{value_key_prefix}{version}")`, where the version is an opaque token (the counter,
    /// zero if missing, possibly combined with other counters by the adapter). Writers bump the
    /// counter after they commit, so a reader that raced a writer stores its stale value under a
    /// version nobody reads again.
    async fn get_versioned(&self, version_key: &str, value_key_prefix: &str) -> Result<(String, Option<Vec<u8>>), CacheError> {
        let version = match self.get(version_key).await? {
            Some(bytes) => std::str::from_utf8(&bytes)
                .ok()
                .and_then(|text| text.parse::<u64>().ok())
                .unwrap_or(0),
            None => 0,
        };
        let version = version.to_string();
        let value = self.get(&format!("{value_key_prefix}{version}")).await?;
        Ok((version, value))
    }

    /// Whether the cache answers, for the readiness probe.
    async fn ping(&self) -> Result<(), CacheError>;
}
