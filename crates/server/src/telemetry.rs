//! Logging: JSON lines (or human-readable with `LOG_FORMAT=pretty`), filtered by `RUST_LOG`;
//! metrics: Prometheus text at `GET /metrics`.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http_actix::MetricsRenderer;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::{DefaultFields, Writer};

/// Installs the global subscriber; a second call (as in tests) is a no-op.
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,actix_server=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    let _ = if json {
        // JSON escapes control characters in every value by itself.
        builder.json().flatten_event(true).with_current_span(true).try_init()
    } else {
        builder.fmt_fields(EscapedFields).try_init()
    };
}

/// Fields formatted as by default, with control characters escaped: a value that comes from a
/// request (a path, the detail of a refusal) can neither break a log line nor forge one.
#[derive(Debug, Clone, Copy, Default)]
pub struct EscapedFields;

impl<'writer> FormatFields<'writer> for EscapedFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'writer>, fields: R) -> std::fmt::Result {
        let mut plain = String::new();
        DefaultFields::new().format_fields(Writer::new(&mut plain), fields)?;
        writer.write_str(&escape_controls(&plain))
    }
}

/// `text` with every control character written as an escape (`\n`, `\u{1b}`).
pub fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            escaped.extend(c.escape_default());
        } else {
            escaped.push(c);
        }
    }
    std::borrow::Cow::Owned(escaped)
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

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_value_cannot_forge_a_log_line_in_the_pretty_format() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .fmt_fields(EscapedFields)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("http_request", path = %"/a\r\nINFO forged: admin logged in");
            span.in_scope(|| tracing::info!(detail = %"x\ny\u{1b}[31m", "request refused\nINFO forged"));
        });
        let output = String::from_utf8(buffer.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()).unwrap_or_default();
        assert_eq!(output.lines().count(), 1, "{output}");
        assert!(output.contains("\\r\\nINFO forged") && output.contains("\\u{1b}"), "{output}");
    }
}
