//! An in-process cache and rate limiter: what a single server uses when there is no Redis, and
//! what the Redis adapters fall back to while Redis is down.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use application::ports::cache::{Cache, CacheError};
use async_trait::async_trait;
use tokio::time::Instant;

/// Entries past this count are evicted (expired ones first, then arbitrary ones): a cache must
/// not grow without bound.
const ENTRIES_MAX: usize = 100_000;

/// A value and, for entries that expire, when.
type Entries = HashMap<String, (Vec<u8>, Option<Instant>)>;

#[derive(Debug, Default)]
pub struct MemoryCache {
    entries: Mutex<Entries>,
}

impl MemoryCache {
    pub fn new() -> MemoryCache {
        MemoryCache::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut Entries) -> T) -> T {
        let mut entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut entries)
    }
}

fn evict(entries: &mut Entries) {
    if entries.len() < ENTRIES_MAX {
        return;
    }
    let now = Instant::now();
    entries.retain(|_, (_, expires)| expires.is_none_or(|at| at > now));
    if entries.len() >= ENTRIES_MAX {
        let excess: Vec<String> = entries.keys().take(entries.len() - ENTRIES_MAX / 2).cloned().collect();
        for key in excess {
            entries.remove(&key);
        }
    }
}

#[async_trait]
impl Cache for MemoryCache {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let now = Instant::now();
        Ok(self.with(|entries| match entries.get(key) {
            Some((value, expires)) if expires.is_none_or(|at| at > now) => Some(value.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }))
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        let expires = Instant::now() + ttl;
        self.with(|entries| {
            evict(entries);
            entries.insert(key.to_owned(), (value.to_vec(), Some(expires)));
        });
        Ok(())
    }

    async fn delete(&self, keys: &[String]) -> Result<(), CacheError> {
        self.with(|entries| {
            for key in keys {
                entries.remove(key);
            }
        });
        Ok(())
    }

    async fn increment(&self, key: &str) -> Result<u64, CacheError> {
        Ok(self.with(|entries| {
            let current = entries
                .get(key)
                .and_then(|(value, _)| std::str::from_utf8(value).ok()?.parse::<u64>().ok())
                .unwrap_or(0);
            let next = current + 1;
            entries.insert(key.to_owned(), (next.to_string().into_bytes(), None));
            next
        }))
    }

    async fn ping(&self) -> Result<(), CacheError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn entries_expire_after_their_ttl() -> Result<(), CacheError> {
        let cache = MemoryCache::new();
        cache.set("k", b"v", Duration::from_secs(10)).await?;
        assert_eq!(cache.get("k").await?, Some(b"v".to_vec()));
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(cache.get("k").await?, None);
        Ok(())
    }

    #[tokio::test]
    async fn counters_start_at_zero_and_versioned_reads_follow_them() -> Result<(), CacheError> {
        let cache = MemoryCache::new();
        assert_eq!(cache.get_versioned("ver", "data:v").await?, ("0".to_owned(), None));
        cache.set("data:v0", b"old", Duration::from_secs(60)).await?;
        assert_eq!(cache.get_versioned("ver", "data:v").await?, ("0".to_owned(), Some(b"old".to_vec())));
        assert_eq!(cache.increment("ver").await?, 1);
        assert_eq!(cache.get_versioned("ver", "data:v").await?, ("1".to_owned(), None));
        Ok(())
    }
}
