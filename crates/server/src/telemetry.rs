//! Logging: JSON lines (or human-readable with `LOG_FORMAT=pretty`), filtered by `RUST_LOG`;
//! metrics: Prometheus text at `GET /metrics`.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http_actix::MetricsRenderer;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; a second call (as in tests) is a no-op.
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,actix_server=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    let _ = if json {
        builder.json().flatten_event(true).with_current_span(true).try_init()
    } else {
        builder.try_init()
    };
}

/// Installs the Prometheus recorder once per process and returns what renders it for
/// `GET /metrics`. Several applications in one process (as in tests) share it.
pub fn metrics_renderer() -> MetricsRenderer {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    let handle = HANDLE.get_or_init(|| {
        let installed = PrometheusBuilder::new()
            .set_buckets(LATENCY_BUCKETS_SECONDS)
            .and_then(PrometheusBuilder::install_recorder);
        match installed {
            Ok(handle) => {
                // Histograms keep their samples until upkeep drains them.
                let upkeep = handle.clone();
                std::thread::spawn(move || {
                    loop {
                        std::thread::sleep(Duration::from_secs(5));
                        upkeep.run_upkeep();
                    }
                });
                Some(handle)
            }
            Err(error) => {
                tracing::warn!(%error, "metrics recorder not installed");
                None
            }
        }
    });
    match handle.clone() {
        Some(handle) => MetricsRenderer(Arc::new(move || handle.render())),
        None => MetricsRenderer(Arc::new(String::new)),
    }
}

/// From 5 ms to 10 s, where payment API latencies live.
const LATENCY_BUCKETS_SECONDS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
