//! Traces: the `server` binary, with `OTEL_EXPORTER_OTLP_ENDPOINT` set, exports its spans over
//! OTLP/HTTP to a receiver listening in the test, continues the trace a client's `traceparent`
//! names, and passes its own trace context on to the receivers of its webhooks.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use adapter_postgres::testing::TestDatabase;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use prost::Message;
use serde_json::json;

use crate::cli::{account, call, eventually, serve_with};

/// The client's trace, as in the W3C Trace Context specification's example.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN_ID: &str = "00f067aa0ba902b7";

/// A span as the receiver got it, ids in hex.
#[derive(Debug, Clone)]
struct Exported {
    service: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    name: String,
    kind: i32,
    status: i32,
    attributes: HashMap<String, String>,
}

impl Exported {
    fn attribute(&self, key: &str) -> &str {
        self.attributes.get(key).map_or("", String::as_str)
    }
}

/// A webhook as the receiver got it.
#[derive(Debug, Clone)]
struct Hook {
    event_type: String,
    traceparent: Option<String>,
}

/// An OTLP/HTTP receiver (`POST /v1/traces`, protobuf) and a webhook receiver (`POST /hooks`)
/// on 127.0.0.1.
#[derive(Default)]
struct Receiver {
    spans: Mutex<Vec<Exported>>,
    hooks: Mutex<Vec<Hook>>,
}

impl Receiver {
    async fn start() -> (Arc<Receiver>, String) {
        let receiver = Arc::new(Receiver::default());
        let state = web::Data::from(receiver.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(web::PayloadConfig::new(16 * 1024 * 1024))
                .route("/v1/traces", web::post().to(export))
                .route("/hooks", web::post().to(hook))
        })
        .workers(1)
        .bind(("127.0.0.1", 0))
        .expect("bind");
        let port = server.addrs()[0].port();
        tokio::spawn(server.run());
        (receiver, format!("http://127.0.0.1:{port}"))
    }

    fn spans(&self) -> Vec<Exported> {
        self.spans.lock().expect("lock").clone()
    }

    fn hooks(&self) -> Vec<Hook> {
        self.hooks.lock().expect("lock").clone()
    }
}

async fn export(receiver: web::Data<Receiver>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    // OTLP/HTTP with protobuf bodies, or nothing is recorded and the test fails for want of spans.
    let content_type = req.headers().get("content-type").and_then(|v| v.to_str().ok());
    let request = match ExportTraceServiceRequest::decode(body.as_ref()) {
        Ok(request) if content_type == Some("application/x-protobuf") => request,
        _ => return HttpResponse::UnsupportedMediaType().finish(),
    };
    let mut spans = receiver.spans.lock().expect("lock");
    for resource_spans in request.resource_spans {
        let resource = resource_spans.resource.map(|r| attributes(&r.attributes)).unwrap_or_default();
        let service = resource.get("service.name").cloned().unwrap_or_default();
        for span in resource_spans.scope_spans.into_iter().flat_map(|scope| scope.spans) {
            spans.push(Exported {
                service: service.clone(),
                trace_id: hex(&span.trace_id),
                span_id: hex(&span.span_id),
                parent_span_id: hex(&span.parent_span_id),
                name: span.name,
                kind: span.kind,
                status: span.status.map_or(0, |status| status.code),
                attributes: attributes(&span.attributes),
            });
        }
    }
    HttpResponse::Ok()
        .content_type("application/x-protobuf")
        .body(ExportTraceServiceResponse::default().encode_to_vec())
}

async fn hook(receiver: web::Data<Receiver>, req: HttpRequest) -> HttpResponse {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    receiver.hooks.lock().expect("lock").push(Hook {
        event_type: header("payments-event-type").unwrap_or_default(),
        traceparent: header("traceparent"),
    });
    HttpResponse::Ok().finish()
}

fn attributes(pairs: &[KeyValue]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|pair| (pair.key.clone(), pair.value.as_ref().map(text).unwrap_or_default()))
        .collect()
}

fn text(value: &AnyValue) -> String {
    match &value.value {
        Some(Value::StringValue(text)) => text.clone(),
        Some(Value::IntValue(number)) => number.to_string(),
        Some(Value::BoolValue(flag)) => flag.to_string(),
        Some(Value::DoubleValue(number)) => number.to_string(),
        other => format!("{other:?}"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The one span of `spans` that `pick` chooses.
#[track_caller]
fn one<'a>(spans: &'a [Exported], what: &str, pick: impl Fn(&Exported) -> bool) -> &'a Exported {
    let found: Vec<&Exported> = spans.iter().filter(|span| pick(span)).collect();
    assert_eq!(found.len(), 1, "{what}: {found:#?}");
    found[0]
}

/// The span's ancestors, nearest first, as far as they were exported.
fn ancestors<'a>(spans: &'a [Exported], span: &Exported) -> Vec<&'a Exported> {
    let mut chain = Vec::new();
    let mut parent = span.parent_span_id.clone();
    while let Some(next) = spans.iter().find(|s| s.trace_id == span.trace_id && s.span_id == parent) {
        chain.push(next);
        parent = next.parent_span_id.clone();
    }
    chain
}

#[tokio::test]
async fn a_purchase_is_traced_to_an_otlp_receiver_and_its_webhook_carries_the_trace_on() {
    let database = TestDatabase::create().await;
    let (receiver, base) = Receiver::start().await;
    let mut server = serve_with(
        &database,
        "traced",
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", base.as_str()),
            ("OTEL_SERVICE_NAME", "payments-under-test"),
            // Nothing is exported on a timer during the test: the spans reach the receiver when
            // the stopping server flushes them (or when a batch fills).
            ("OTEL_BSP_SCHEDULE_DELAY", "3600000"),
            ("WEBHOOK_ALLOW_HTTP", "true"),
            ("WEBHOOK_ALLOW_PRIVATE_ADDRESSES", "true"),
            ("WEBHOOK_INTERVAL_MS", "50"),
        ],
    );
    server.listening().await;
    adapter_monnify::ensure_crypto_provider();
    let http = reqwest::Client::new();
    let site = server.base.clone();

    let admin = json!({"email": "ops@example.com", "password": "operator secret 42"});
    let (status, admin) = call(&http, &site, "/api/v1/auth/login", None, admin).await;
    assert_eq!(status, 200, "{admin}");
    let admin = admin["access_token"].as_str().unwrap_or_default().to_owned();
    let merchant = account(&http, &site, "merchant@example.com", "merchant").await;
    let hooks = json!({"url": format!("{base}/hooks"), "events": ["order.paid"]});
    assert_eq!(call(&http, &site, "/api/v1/webhook-endpoints", Some(&merchant), hooks).await.0, 201);
    let product = json!({"name": "Mug", "price": "12.50", "currency": "USD", "stock": 5});
    let (status, product) = call(&http, &site, "/api/v1/products", Some(&merchant), product).await;
    assert_eq!(status, 201, "{product}");
    let buyer = account(&http, &site, "buyer@example.com", "customer").await;
    let me = http
        .get(format!("{site}/api/v1/auth/me"))
        .bearer_auth(&buyer)
        .send()
        .await
        .expect("me");
    let buyer_id = me.json::<serde_json::Value>().await.unwrap_or_default()["id"].clone();
    let funds = json!({"amount": "100.00", "currency": "USD", "reason": "test funds"});
    let adjustment = format!("/api/v1/admin/wallets/{}/adjustments", buyer_id.as_str().unwrap_or_default());
    assert_eq!(call(&http, &site, &adjustment, Some(&admin), funds).await.0, 201);

    // The purchase, made by a client that traces: the server's spans join its trace.
    let cart = json!({"items": [{"product_id": product["id"], "quantity": 2}], "payment_method": "wallet"});
    let purchase = http
        .post(format!("{site}/api/v1/orders"))
        .bearer_auth(&buyer)
        .header("traceparent", format!("00-{TRACE_ID}-{CLIENT_SPAN_ID}-01"))
        .json(&cart)
        .send()
        .await
        .expect("the purchase");
    assert_eq!(purchase.status().as_u16(), 201);
    let order = purchase.json::<serde_json::Value>().await.unwrap_or_default();
    let order_id = order["id"].as_str().unwrap_or_default().to_owned();

    eventually("the order.paid webhook", || {
        let receiver = receiver.clone();
        async move { receiver.hooks().iter().any(|hook| hook.event_type == "order.paid") }
    })
    .await;
    // A graceful stop flushes the spans still waiting.
    server.signal("-TERM");
    let exit = server.child.wait().expect("the server exits");
    assert!(exit.success(), "{exit:?}");

    let spans = receiver.spans();
    assert!(spans.iter().all(|span| span.service == "payments-under-test"), "service.name");
    let purchase = |span: &Exported| span.trace_id == TRACE_ID;
    let request = one(&spans, "the request's span", |s| purchase(s) && s.parent_span_id == CLIENT_SPAN_ID);
    assert_eq!(request.name, "POST /api/v1/orders");
    assert_eq!(request.kind, SpanKind::Server as i32);
    assert_eq!(request.attribute("http.route"), "/api/v1/orders");
    assert_eq!(request.attribute("http.response.status_code"), "201");
    let checkout = one(&spans, "the checkout use case's span", |s| purchase(s) && s.name == "checkout");
    assert_eq!(checkout.parent_span_id, request.span_id, "the use case runs in the request");
    assert_eq!(checkout.attribute("order_id"), order_id);
    assert_eq!(checkout.attribute("payment_method"), "Wallet");
    let transactions: Vec<&Exported> = spans
        .iter()
        .filter(|s| purchase(s) && s.name == "transaction" && s.parent_span_id == checkout.span_id)
        .collect();
    // One transaction pays by wallet (a conflict would add a retried attempt before it).
    assert!(transactions.iter().any(|t| t.attribute("outcome") == "commit"), "{transactions:#?}");
    assert!(
        transactions.iter().all(|t| t.attribute("caller").contains("checkout.rs")),
        "{transactions:#?}"
    );

    // The delivery carried the context of the span that sent it: a client span, in the relay's
    // trace, under the delivery of the order's event.
    let hook = receiver
        .hooks()
        .into_iter()
        .find(|hook| hook.event_type == "order.paid")
        .expect("the order.paid webhook");
    let traceparent = hook.traceparent.expect("the delivery carries a traceparent");
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!((parts.len(), parts[0], parts[3]), (4, "00", "01"), "{traceparent}");
    let send = one(&spans, "the delivery's client span", |s| {
        s.trace_id == parts[1] && s.span_id == parts[2]
    });
    assert_eq!((send.name.as_str(), send.kind), ("POST", SpanKind::Client as i32));
    assert_eq!(send.attribute("http.response.status_code"), "200");
    assert_ne!(send.status, StatusCode::Error as i32);
    let chain: Vec<&str> = ancestors(&spans, send).iter().map(|s| s.name.as_str()).collect();
    assert_eq!(chain.first(), Some(&"webhook_delivery"), "{chain:?}");
    assert!(chain.contains(&"relay_webhooks"), "{chain:?}");
    let delivery = ancestors(&spans, send)[0];
    assert_eq!(delivery.attribute("event_type"), "order.paid");
    assert_eq!(delivery.attribute("status"), "200");
}
