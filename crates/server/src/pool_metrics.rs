//! The connection pools' saturation on `/metrics`, read when the metrics are scraped: open and
//! idle connections against the pool's size, and for PostgreSQL the checkouts that had to wait
//! or gave up since the pool opened (for Redis, the callers waiting now).

use adapter_postgres::PgStore;
use adapter_redis::RedisPool;
use http_actix::state::MetricsRenderer;
use std::sync::Arc;

/// The pools this process holds.
#[derive(Debug, Clone)]
pub struct Pools {
    pub postgres: Option<PgStore>,
    pub redis: Option<RedisPool>,
}

impl Pools {
    /// A renderer that records the pools' state, then renders as `renderer` does.
    pub fn recorded_before(self, renderer: MetricsRenderer) -> MetricsRenderer {
        MetricsRenderer(Arc::new(move || {
            self.record();
            (renderer.0)()
        }))
    }

    fn record(&self) {
        if let Some(store) = &self.postgres {
            let status = store.pool_status();
            metrics::gauge!("db_pool_connections", "pool" => "postgres", "state" => "busy")
                .set(f64::from(status.connections.saturating_sub(status.idle)));
            metrics::gauge!("db_pool_connections", "pool" => "postgres", "state" => "idle").set(f64::from(status.idle));
            metrics::gauge!("db_pool_max_connections", "pool" => "postgres").set(f64::from(status.max));
            metrics::counter!("db_pool_waits_total", "pool" => "postgres").absolute(status.waited);
            metrics::counter!("db_pool_timeouts_total", "pool" => "postgres").absolute(status.timed_out);
            let waited_ms = u64::try_from(status.wait_time.as_millis()).unwrap_or(u64::MAX);
            metrics::counter!("db_pool_wait_milliseconds_total", "pool" => "postgres").absolute(waited_ms);
            if let Some(replica) = store.replica_status() {
                let status = replica.pool;
                metrics::gauge!("db_pool_connections", "pool" => "postgres_replica", "state" => "busy")
                    .set(f64::from(status.connections.saturating_sub(status.idle)));
                metrics::gauge!("db_pool_connections", "pool" => "postgres_replica", "state" => "idle").set(f64::from(status.idle));
                metrics::gauge!("db_pool_max_connections", "pool" => "postgres_replica").set(f64::from(status.max));
                metrics::counter!("db_pool_waits_total", "pool" => "postgres_replica").absolute(status.waited);
                metrics::counter!("db_pool_timeouts_total", "pool" => "postgres_replica").absolute(status.timed_out);
                let waited_ms = u64::try_from(status.wait_time.as_millis()).unwrap_or(u64::MAX);
                metrics::counter!("db_pool_wait_milliseconds_total", "pool" => "postgres_replica").absolute(waited_ms);
                // Reads that may lag and went to the primary because the replica did not answer.
                metrics::counter!("db_replica_fallbacks_total").absolute(replica.fallbacks);
            }
        }
        if let Some(pool) = &self.redis {
            let status = adapter_redis::pool_status(pool);
            metrics::gauge!("db_pool_connections", "pool" => "redis", "state" => "busy")
                .set(status.connections.saturating_sub(status.idle) as f64);
            metrics::gauge!("db_pool_connections", "pool" => "redis", "state" => "idle").set(status.idle as f64);
            metrics::gauge!("db_pool_max_connections", "pool" => "redis").set(status.max as f64);
            metrics::gauge!("db_pool_waiting", "pool" => "redis").set(status.waiting as f64);
        }
    }
}
