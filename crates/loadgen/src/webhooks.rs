//! `--webhooks`: a receiver for the server's outbound webhooks, so that a run measures the
//! purchase rate with the relay busy and how long events take to arrive. Every merchant
//! subscribes to `order.paid` and the platform to everything; each delivery is verified with its
//! endpoint's secret, and its lag is the time from the event to its arrival here.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use anyhow::Context;
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::api::{Account, Api, expect, parse};
use crate::world::World;

/// The path segment of the platform's endpoint; merchants' are their index.
const PLATFORM: &str = "platform";

/// What arrived: deliveries by endpoint and event, and their lag in milliseconds.
struct Arrivals {
    /// Each endpoint's secret, by its path segment.
    secrets: HashMap<String, Vec<u8>>,
    /// (endpoint, event id) of every delivery that verified.
    seen: HashSet<(String, String)>,
    /// `order.paid` events that reached a merchant's endpoint.
    merchant_orders_paid: HashSet<String>,
    lag_ms: Histogram<u64>,
    last_arrival: Option<Instant>,
}

struct Shared {
    arrivals: Mutex<Arrivals>,
    deliveries: AtomicU64,
    unverified: AtomicU64,
}

impl Shared {
    fn arrivals(&self) -> std::sync::MutexGuard<'_, Arrivals> {
        self.arrivals.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The receiver, listening on 127.0.0.1, and the endpoints registered to it.
pub struct Receiver {
    shared: Arc<Shared>,
    base: String,
    server: actix_web::dev::ServerHandle,
    /// (owner, endpoint id) of what `subscribe` registered, to delete afterwards.
    endpoints: Vec<(Account, uuid::Uuid)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct WebhookReport {
    pub endpoints: usize,
    /// Requests received.
    pub deliveries: u64,
    /// Deliveries of an (endpoint, event) pair seen before: at-least-once at work.
    pub duplicates: u64,
    /// Deliveries whose signature did not verify with the endpoint's secret.
    pub unverified: u64,
    /// From the event's time to its arrival.
    pub lag_p50_ms: f64,
    pub lag_p99_ms: f64,
    pub lag_max_ms: f64,
    /// From the end of the load to the last arrival.
    pub drain_seconds: f64,
    /// `order.paid` events merchants received, to compare with the purchases made.
    pub merchant_orders_paid: usize,
}

async fn receive(shared: web::Data<Shared>, request: HttpRequest, path: web::Path<String>, body: web::Bytes) -> HttpResponse {
    let arrived = OffsetDateTime::now_utc();
    shared.deliveries.fetch_add(1, Ordering::Relaxed);
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let endpoint = path.into_inner();
    let mut arrivals = shared.arrivals();
    let verified = arrivals.secrets.get(&endpoint).is_some_and(|secret| {
        stripe_signature::verify(
            std::slice::from_ref(secret),
            header("payments-signature"),
            &body,
            arrived.unix_timestamp(),
            300,
        )
        .is_ok()
    });
    let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let (Some(event_id), true) = (event["id"].as_str(), verified) else {
        shared.unverified.fetch_add(1, Ordering::Relaxed);
        return HttpResponse::BadRequest().finish();
    };
    if let Some(created) = event["created"].as_str().and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok()) {
        let lag = u64::try_from((arrived - created).whole_milliseconds()).unwrap_or(0);
        let _ = arrivals.lag_ms.record(lag.max(1));
    }
    if endpoint != PLATFORM && event["type"] == json!("order.paid") {
        arrivals.merchant_orders_paid.insert(event_id.to_owned());
    }
    arrivals.seen.insert((endpoint, event_id.to_owned()));
    arrivals.last_arrival = Some(Instant::now());
    HttpResponse::Ok().finish()
}

impl Receiver {
    pub async fn start() -> anyhow::Result<Receiver> {
        let shared = Arc::new(Shared {
            arrivals: Mutex::new(Arrivals {
                secrets: HashMap::new(),
                seen: HashSet::new(),
                merchant_orders_paid: HashSet::new(),
                lag_ms: Histogram::new_with_bounds(1, 3_600_000, 3).context("a histogram")?,
                last_arrival: None,
            }),
            deliveries: AtomicU64::new(0),
            unverified: AtomicU64::new(0),
        });
        let data = web::Data::from(Arc::clone(&shared));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/hooks/{endpoint}", web::post().to(receive))
        })
        .workers(1)
        .bind(("127.0.0.1", 0))
        .context("the webhook receiver binds")?;
        let port = server.addrs().first().context("the receiver's address")?.port();
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        Ok(Receiver {
            shared,
            base: format!("http://127.0.0.1:{port}/hooks"),
            server: handle,
            endpoints: Vec::new(),
        })
    }

    /// Registers the platform's endpoint and one per merchant (the server must allow plain http
    /// to loopback: `WEBHOOK_ALLOW_HTTP` and `WEBHOOK_ALLOW_PRIVATE_ADDRESSES`).
    pub async fn subscribe(&mut self, api: &Api, world: &World) -> anyhow::Result<()> {
        let base = world.bases.first().context("no base URL")?;
        use api_client::types::WebhookEndpointRequestEventsItem as Event;
        // `Event::X` is `*`: every event type.
        let owners = std::iter::once((PLATFORM.to_owned(), &world.admin, vec![Event::X])).chain(
            world
                .merchants
                .iter()
                .enumerate()
                .map(|(n, m)| (n.to_string(), m, vec![Event::OrderPaid])),
        );
        for (segment, owner, events) in owners {
            let request = api_client::types::WebhookEndpointRequest {
                url: parse(&format!("{}/{segment}", self.base))?,
                events,
                description: Some(parse("loadgen")?),
            };
            let endpoint = expect(
                api.client(base, owner).webhook_endpoints_create(&request),
                "webhook endpoint registration (is the server started with WEBHOOK_ALLOW_HTTP and WEBHOOK_ALLOW_PRIVATE_ADDRESSES?)",
            )
            .await?;
            let secret = endpoint.secret.context("the endpoint's secret")?;
            self.shared.arrivals().secrets.insert(segment, secret.into_bytes());
            self.endpoints.push((owner.clone(), endpoint.id));
        }
        Ok(())
    }

    /// Waits until nothing has arrived for `quiet` (or `limit` has passed), then reports.
    pub async fn drain(&self, load_ended: Instant, quiet: Duration, limit: Duration) -> WebhookReport {
        loop {
            let last = self.shared.arrivals().last_arrival;
            let idle = last.map_or(load_ended.elapsed(), |at| at.elapsed());
            if idle >= quiet || load_ended.elapsed() >= limit {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let arrivals = self.shared.arrivals();
        let deliveries = self.shared.deliveries.load(Ordering::Relaxed);
        let unverified = self.shared.unverified.load(Ordering::Relaxed);
        let ms = |q: f64| arrivals.lag_ms.value_at_quantile(q) as f64;
        WebhookReport {
            endpoints: self.endpoints.len(),
            deliveries,
            duplicates: (deliveries - unverified).saturating_sub(arrivals.seen.len() as u64),
            unverified,
            lag_p50_ms: ms(0.5),
            lag_p99_ms: ms(0.99),
            lag_max_ms: arrivals.lag_ms.max() as f64,
            drain_seconds: arrivals
                .last_arrival
                .map_or(0.0, |at| at.saturating_duration_since(load_ended).as_secs_f64()),
            merchant_orders_paid: arrivals.merchant_orders_paid.len(),
        }
    }

    /// Deletes the endpoints registered, so that later runs on the same server are not affected,
    /// and stops listening.
    pub async fn close(self, api: &Api, world: &World) -> anyhow::Result<()> {
        let base = world.bases.first().context("no base URL")?;
        for (owner, id) in &self.endpoints {
            expect(api.client(base, owner).webhook_endpoints_delete(id), "webhook endpoint deletion").await?;
        }
        self.server.stop(true).await;
        Ok(())
    }
}

impl WebhookReport {
    pub fn print(&self) {
        println!(
            "  webhooks: {} deliveries to {} endpoints ({} duplicates, {} unverified), lag ms p50 {:.0}, p99 {:.0}, max {:.0}; drained {:.1} s after the load",
            self.deliveries,
            self.endpoints,
            self.duplicates,
            self.unverified,
            self.lag_p50_ms,
            self.lag_p99_ms,
            self.lag_max_ms,
            self.drain_seconds
        );
    }
}
