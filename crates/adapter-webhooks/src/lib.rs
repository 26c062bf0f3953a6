//! Outbound webhooks over HTTP: the `WebhookSender` port, one signed POST per call.
//!
//! # The SSRF defence
//!
//! Webhook URLs are typed in by merchants, so the server must not become their way into its own
//! network (a database's port, an admin service, the cloud metadata address 169.254.169.254 and
//! the credentials behind it). Unless `allow_private_addresses` is set, a request only ever goes
//! to a public unicast address ([`address::refusal`] names everything else: loopback, private,
//! link-local, CGNAT, documentation, multicast, unique-local, and IPv6 forms of those):
//!
//! * only `http` and `https` URLs are sent;
//! * a host that is an IP literal is checked before sending (reqwest resolves no IP literal);
//! * a host name is resolved by the client's own resolver, which refuses the name if any of its
//!   addresses is refused, and the connection is made to exactly the addresses it checked, so a
//!   name that answers with a public address to a check and a private one to the connection
//!   (DNS rebinding) cannot get through;
//! * redirects are never followed (a 3xx is the answer), so a public endpoint cannot bounce the
//!   request to a private one;
//! * proxies from the environment are ignored, since a proxy would resolve the host itself.
//!
//! The body is rendered deterministically (see `payload`), so a retry sends identical bytes.
//!
//! # Traces
//!
//! Each request runs in a client span (`webhook_send`). Given a `TraceHeaders` function
//! (`with_trace_headers`, which the server supplies when it exports traces), the request carries
//! that span's trace context (W3C `traceparent`, `tracestate`), so a receiver that traces joins
//! the delivery to its own work. This crate knows no tracing system.

pub mod address;
mod answer;
mod payload;
mod resolver;

use std::time::{Duration, Instant, SystemTime};

use application::ports::webhooks::{EVENT_ID_HEADER, OutgoingWebhook, SIGNATURE_HEADER, SendError, WebhookAnswer, WebhookSender};
use async_trait::async_trait;
use reqwest::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use tracing::Instrument;
use tracing::field::Empty;
use url::{Host, Url};

pub use answer::RETRY_AFTER_MAX;
pub use payload::{render, signature};

use crate::resolver::{CheckedResolver, NotAllowed};

/// The header that carries the event's public type (`order.paid`).
pub const EVENT_TYPE_HEADER: &str = "payments-event-type";
/// The header that carries the delivery's id, the same on every attempt of one delivery.
pub const DELIVERY_ID_HEADER: &str = "payments-delivery-id";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSenderSettings {
    /// The whole attempt: resolving, connecting, sending and reading the start of the answer.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Lets webhooks reach loopback, private and link-local addresses: for tests and demo mode.
    pub allow_private_addresses: bool,
    pub user_agent: String,
}

impl Default for WebhookSenderSettings {
    fn default() -> Self {
        WebhookSenderSettings {
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            allow_private_addresses: false,
            user_agent: "payments-webhooks/1".into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("the webhooks' user agent is not a valid header value")]
    UserAgent,
    #[error("the webhooks' HTTP client cannot be built: {0}")]
    Client(String),
}

/// The headers that carry `span`'s trace context to the receiver (`traceparent`, `tracestate`).
pub type TraceHeaders = fn(&tracing::Span) -> Vec<(String, String)>;

#[derive(Debug, Clone)]
pub struct HttpWebhookSender {
    client: reqwest::Client,
    settings: WebhookSenderSettings,
    trace_headers: Option<TraceHeaders>,
}

impl HttpWebhookSender {
    /// # Errors
    /// An invalid user agent, or a client the TLS stack cannot build.
    pub fn new(settings: WebhookSenderSettings) -> Result<HttpWebhookSender, SetupError> {
        let user_agent = HeaderValue::from_str(&settings.user_agent).map_err(|_| SetupError::UserAgent)?;
        ensure_crypto_provider();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(settings.connect_timeout)
            .user_agent(user_agent)
            .dns_resolver(CheckedResolver {
                allow_private_addresses: settings.allow_private_addresses,
            })
            .build()
            .map_err(|e| SetupError::Client(error_chain(&e)))?;
        Ok(HttpWebhookSender {
            client,
            settings,
            trace_headers: None,
        })
    }

    /// Sends each request with the trace context `trace_headers` gives for its span.
    #[must_use]
    pub fn with_trace_headers(self, trace_headers: TraceHeaders) -> HttpWebhookSender {
        HttpWebhookSender {
            trace_headers: Some(trace_headers),
            ..self
        }
    }

    pub fn settings(&self) -> &WebhookSenderSettings {
        &self.settings
    }

    /// The URL, if it may be sent to: http(s), and an IP-literal host must be allowed (host names
    /// are checked as they are resolved).
    fn checked_url(&self, text: &str) -> Result<Url, SendError> {
        let url = Url::parse(text).map_err(|e| SendError::AddressNotAllowed(format!("the URL is not valid: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(SendError::AddressNotAllowed(format!(
                "only http and https URLs are allowed, not {}",
                url.scheme()
            )));
        }
        let ip = match url.host() {
            None => return Err(SendError::AddressNotAllowed("the URL has no host".into())),
            Some(Host::Domain(_)) => return Ok(url),
            Some(Host::Ipv4(ip)) => ip.into(),
            Some(Host::Ipv6(ip)) => ip.into(),
        };
        match address::refusal(ip) {
            Some(reason) if !self.settings.allow_private_addresses => Err(SendError::AddressNotAllowed(format!("{ip} is {reason}"))),
            _ => Ok(url),
        }
    }

    async fn attempt(&self, request: reqwest::RequestBuilder) -> Result<WebhookAnswer, SendError> {
        let started = Instant::now();
        let mut response = request.send().await.map_err(|e| self.failure(e))?;
        let latency = started.elapsed();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| answer::retry_after(value, SystemTime::now()));
        Ok(WebhookAnswer {
            status: response.status().as_u16(),
            body: answer::read_start(&mut response).await,
            retry_after,
            latency,
        })
    }

    fn failure(&self, error: reqwest::Error) -> SendError {
        // The URL may carry the merchant's credentials; the reason is stored and shown.
        let error = error.without_url();
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
        while let Some(cause) = source {
            if let Some(refused) = cause.downcast_ref::<NotAllowed>() {
                return SendError::AddressNotAllowed(refused.0.clone());
            }
            source = cause.source();
        }
        match (error.is_timeout(), error.is_connect()) {
            (true, true) => SendError::Timeout(self.settings.connect_timeout),
            (true, false) => SendError::Timeout(self.settings.timeout),
            (false, _) => SendError::Unreachable(error_chain(&error)),
        }
    }
}

#[async_trait]
impl WebhookSender for HttpWebhookSender {
    fn refusal(&self, url: &str) -> Option<String> {
        self.checked_url(url).err().map(|error| error.to_string())
    }

    async fn send(&self, webhook: &OutgoingWebhook) -> Result<WebhookAnswer, SendError> {
        let url = self.checked_url(&webhook.url)?;
        // Not a network failure, but nothing else fits, and it cannot happen to a real event.
        let body = render(webhook).map_err(SendError::Unreachable)?;
        // The host only: a URL may carry the merchant's credentials.
        let span = tracing::info_span!(
            "webhook_send",
            otel.name = "POST",
            otel.kind = "client",
            otel.status_code = Empty,
            http.request.method = "POST",
            server.address = url.host_str().unwrap_or_default(),
            http.response.status_code = Empty,
        );
        let mut request = self
            .client
            .post(url)
            .header(CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature(webhook, &body))
            .header(EVENT_ID_HEADER, webhook.event_id.to_string())
            .header(EVENT_TYPE_HEADER, webhook.event_type.as_str())
            .header(DELIVERY_ID_HEADER, webhook.delivery_id.to_string())
            .body(body);
        for (name, value) in self.trace_headers.map(|headers| headers(&span)).unwrap_or_default() {
            request = request.header(name, value);
        }
        // One deadline over everything, the start of the body included.
        let answer = tokio::time::timeout(self.settings.timeout, self.attempt(request))
            .instrument(span.clone())
            .await
            .unwrap_or(Err(SendError::Timeout(self.settings.timeout)));
        match &answer {
            Ok(answer) => {
                span.record("http.response.status_code", answer.status);
                if answer.status >= 400 {
                    span.record("otel.status_code", "ERROR");
                }
            }
            Err(_) => {
                span.record("otel.status_code", "ERROR");
            }
        }
        answer
    }
}

/// Installs ring as the process's rustls crypto provider, unless one is installed already.
/// reqwest is built without a provider of its own (the workspace shares ring rather than compile
/// aws-lc), so one must be installed before any client is built; `HttpWebhookSender::new` does.
pub fn ensure_crypto_provider() {
    // Err only means a provider is installed already, which is what is wanted.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The error and its causes, `: `-separated, without repeating a cause its parent already quotes.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}
