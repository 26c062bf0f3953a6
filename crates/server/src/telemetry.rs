//! Logging: JSON lines (or human-readable with `LOG_FORMAT=pretty`), filtered by `RUST_LOG`;
//! metrics: Prometheus text at `GET /metrics`; traces: OpenTelemetry over OTLP/HTTP, when an
//! endpoint is configured (`config::TraceSettings`).
//!
//! Traces are the `tracing` spans the code already makes (the request, the use case, each
//! transaction, each provider call, webhook delivery and job round), handed to OpenTelemetry by
//! `tracing-opentelemetry` and exported in batches from the SDK's own thread. Without an endpoint
//! no exporter exists and the subscriber is the logging one alone. `continue_trace` and
//! `trace_headers` carry the W3C trace context in and out of HTTP; the server gives them to the
//! HTTP API and the webhook sender only when traces are exported.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context as _;
use http_actix::MetricsRenderer;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use opentelemetry::propagation::Extractor;
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::{DefaultFields, Writer};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::config::TraceSettings;

/// Installs the global subscriber; a second call (as in tests) is a no-op.
pub fn init(json: bool) {
    let _ = tracing_subscriber::registry().with(log_layer(json)).try_init();
}

/// Installs the global subscriber, exporting traces when `traces` says where. The exporter must
/// be shut down (`Traces::shutdown`) before the process exits, or the spans of its last moments
/// are lost.
///
/// # Errors
/// The exporter cannot be built (an endpoint the HTTP client cannot use).
pub fn init_with_traces(json: bool, traces: Option<&TraceSettings>) -> anyhow::Result<Option<Traces>> {
    let Some(settings) = traces else {
        init(json);
        return Ok(None);
    };
    let provider = tracer_provider(settings)?;
    let layer = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("payments"))
        .with_threads(false)
        .with_filter(exported());
    if tracing_subscriber::registry().with(log_layer(json)).with(layer).try_init().is_err() {
        // Only a test installs a subscriber before this; its spans would go nowhere.
        tracing::warn!("a subscriber was installed already: traces are not exported");
    }
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    tracing::info!(endpoint = %crate::config::redact_url(&settings.endpoint), service = %settings.service_name, "exporting traces over OTLP");
    Ok(Some(Traces { provider }))
}

/// The log lines: every event `RUST_LOG` lets through (`info` by default), with its spans.
fn log_layer(json: bool) -> Box<dyn Layer<Registry> + Send + Sync> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,actix_server=warn"));
    let layer = tracing_subscriber::fmt::layer().with_target(false);
    if json {
        // JSON escapes control characters in every value by itself.
        layer.json().flatten_event(true).with_current_span(true).with_filter(filter).boxed()
    } else {
        layer.fmt_fields(EscapedFields).with_filter(filter).boxed()
    }
}

/// What becomes spans, whatever `RUST_LOG` says of logs: this service's spans are `info`, and
/// libraries' spans below it are noise. The SDK's own diagnostics are never traced: tracing the
/// exporter's work would export it again, without end.
fn exported() -> Targets {
    Targets::new()
        .with_default(LevelFilter::INFO)
        .with_target("opentelemetry", LevelFilter::OFF)
}

fn tracer_provider(settings: &TraceSettings) -> anyhow::Result<SdkTracerProvider> {
    // The exporter's client uses rustls, which needs the process's crypto provider.
    adapter_webhooks::ensure_crypto_provider();
    // The SDK reads the other standard variables itself: OTEL_EXPORTER_OTLP_HEADERS and
    // _TIMEOUT, OTEL_BSP_* (batching), OTEL_TRACES_SAMPLER and OTEL_RESOURCE_ATTRIBUTES.
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(settings.endpoint.clone())
        .build()
        .with_context(|| format!("the OTLP trace exporter for {}", crate::config::redact_url(&settings.endpoint)))?;
    let resource = Resource::builder().with_service_name(settings.service_name.clone()).build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// The trace exporter of a running process.
#[derive(Debug)]
pub struct Traces {
    provider: SdkTracerProvider,
}

impl Traces {
    /// Exports the spans still waiting and stops the exporter.
    pub async fn shutdown(self) {
        // A blocking call, which waits for the SDK's thread: off the async executor.
        let provider = self.provider;
        match tokio::task::spawn_blocking(move || provider.shutdown()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "the trace exporter did not shut down cleanly; the last spans may be lost"),
            Err(error) => tracing::warn!(%error, "the trace exporter's shutdown failed"),
        }
    }
}

/// What the HTTP API does with each request's span: it continues the caller's trace and is
/// renamed for its route.
pub fn request_tracing() -> http_actix::RequestTracing {
    http_actix::RequestTracing {
        continue_trace,
        rename: |span, name| span.context().span().update_name(name),
    }
}

/// Makes `span` (a request's) a child of the trace its caller began, if its headers carry one
/// (`traceparent`, `tracestate`).
pub fn continue_trace(headers: &actix_web::http::header::HeaderMap, span: &tracing::Span) {
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(&RequestHeaders(headers)));
    // Fails only without the OpenTelemetry layer, when nothing is traced anyway.
    let _ = span.set_parent(parent);
}

/// The headers that carry `span`'s trace context to a receiver: `adapter_webhooks::TraceHeaders`.
pub fn trace_headers(span: &tracing::Span) -> Vec<(String, String)> {
    let context = span.context();
    let mut headers = std::collections::HashMap::new();
    opentelemetry::global::get_text_map_propagator(|propagator| propagator.inject_context(&context, &mut headers));
    headers.into_iter().collect()
}

struct RequestHeaders<'a>(&'a actix_web::http::header::HeaderMap);

impl Extractor for RequestHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(actix_web::http::header::HeaderName::as_str).collect()
    }
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
