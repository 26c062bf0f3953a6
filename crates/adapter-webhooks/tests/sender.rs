//! The sender over real HTTP, against receivers started here on 127.0.0.1.

use std::net::TcpListener;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use adapter_webhooks::{DELIVERY_ID_HEADER, EVENT_TYPE_HEADER, HttpWebhookSender, WebhookSenderSettings, render};
use application::ports::webhooks::{EVENT_ID_HEADER, OutgoingWebhook, SIGNATURE_HEADER, SendError, WebhookSender};
use domain::ids::{EventId, WebhookDeliveryId};
use time::OffsetDateTime;
use uuid::Uuid;

/// How a receiver answers every request.
#[derive(Debug, Clone)]
enum Reply {
    Status {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: String,
    },
    /// Takes the request and never answers.
    Never,
}

#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

#[derive(Debug)]
struct State {
    reply: Reply,
    received: Mutex<Vec<Received>>,
}

#[derive(Debug, Clone)]
struct Receiver {
    port: u16,
    state: Arc<State>,
}

impl Receiver {
    fn start(reply: Reply) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
        let port = listener.local_addr().expect("a bound address").port();
        let state = Arc::new(State {
            reply,
            received: Mutex::new(Vec::new()),
        });
        let shared = web::Data::from(Arc::clone(&state));
        let server = HttpServer::new(move || App::new().app_data(shared.clone()).default_service(web::to(receive)))
            .workers(1)
            .disable_signals()
            .listen(listener)
            .expect("the receiver listens")
            .run();
        tokio::spawn(server);
        Receiver { port, state }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

async fn receive(request: HttpRequest, body: web::Bytes, state: web::Data<State>) -> HttpResponse {
    let headers = request
        .headers()
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), value.to_str().unwrap_or_default().to_owned()))
        .collect();
    state.received.lock().unwrap_or_else(PoisonError::into_inner).push(Received {
        path: request.path().to_owned(),
        headers,
        body: body.to_vec(),
    });
    match &state.reply {
        Reply::Status { status, headers, body } => {
            let status = actix_web::http::StatusCode::from_u16(*status).expect("a valid status");
            let mut response = HttpResponse::build(status);
            for (name, value) in headers {
                response.insert_header((*name, value.as_str()));
            }
            response.body(body.clone())
        }
        Reply::Never => std::future::pending().await,
    }
}

fn answering(status: u16, body: &str) -> Reply {
    Reply::Status {
        status,
        headers: Vec::new(),
        body: body.to_owned(),
    }
}

fn sender(allow_private_addresses: bool, timeout: Duration) -> HttpWebhookSender {
    HttpWebhookSender::new(WebhookSenderSettings {
        timeout,
        allow_private_addresses,
        ..WebhookSenderSettings::default()
    })
    .expect("the sender is built")
}

fn webhook(url: String, secrets: &[&str]) -> OutgoingWebhook {
    let now = OffsetDateTime::now_utc();
    OutgoingWebhook {
        url,
        delivery_id: WebhookDeliveryId::from_uuid(Uuid::now_v7()),
        event_id: EventId::from_uuid(Uuid::now_v7()),
        event_type: "order.paid".into(),
        created_at: now - time::Duration::seconds(3),
        api_version: "2026-11-29",
        object: vec![
            ("order_id".into(), "ord_1".into()),
            ("amount".into(), "2500.00".into()),
            ("currency".into(), "NGN".into()),
        ],
        secrets: secrets.iter().map(|s| (*s).to_owned()).collect(),
        signed_at: now,
    }
}

fn verifies(webhook: &OutgoingWebhook, delivery: &Received, secret: &str) -> bool {
    let header = delivery.header(SIGNATURE_HEADER).unwrap_or_default();
    let now = webhook.signed_at.unix_timestamp();
    stripe_signature::verify(&[secret.as_bytes().to_vec()], header, &delivery.body, now, 300).is_ok()
}

#[tokio::test]
async fn a_delivery_arrives_signed_with_its_headers_and_json_body() {
    let receiver = Receiver::start(answering(200, "ok"));
    let webhook = webhook(receiver.url("/hooks?shop=1"), &["whsec_one"]);
    let answer = sender(true, Duration::from_secs(5)).send(&webhook).await.expect("an answer");
    assert_eq!((answer.status, answer.body.as_str(), answer.retry_after), (200, "ok", None));
    assert!(
        answer.latency > Duration::ZERO && answer.latency < Duration::from_secs(5),
        "{answer:?}"
    );

    let received = receiver.received();
    assert_eq!(received.len(), 1);
    let delivery = &received[0];
    assert_eq!(delivery.path, "/hooks");
    assert_eq!(Ok(delivery.body.clone()), render(&webhook));
    let json: serde_json::Value = serde_json::from_slice(&delivery.body).expect("a JSON body");
    assert_eq!(json["id"], webhook.event_id.to_string());
    assert_eq!(json["type"], "order.paid");
    assert_eq!(json["api_version"], "2026-11-29");
    assert_eq!(json["data"]["object"]["amount"], "2500.00");
    assert!(json["created"].as_str().is_some_and(|c| c.ends_with('Z')), "{json}");
    let event_id = webhook.event_id.to_string();
    let delivery_id = webhook.delivery_id.to_string();
    for (name, value) in [
        ("content-type", "application/json"),
        ("user-agent", "payments-webhooks/1"),
        (EVENT_ID_HEADER, event_id.as_str()),
        (EVENT_TYPE_HEADER, "order.paid"),
        (DELIVERY_ID_HEADER, delivery_id.as_str()),
    ] {
        assert_eq!(delivery.header(name), Some(value), "{name}");
    }
    assert!(verifies(&webhook, delivery, "whsec_one"));
    assert!(!verifies(&webhook, delivery, "whsec_other"));
}

#[tokio::test]
async fn two_secrets_give_two_signatures_each_verifiable() {
    let receiver = Receiver::start(answering(204, ""));
    let webhook = webhook(receiver.url("/"), &["whsec_old", "whsec_new"]);
    let answer = sender(true, Duration::from_secs(5)).send(&webhook).await.expect("an answer");
    assert_eq!(answer.status, 204);
    let delivery = &receiver.received()[0];
    let header = delivery.header(SIGNATURE_HEADER).unwrap_or_default();
    assert_eq!(header.matches("v1=").count(), 2, "{header}");
    assert!(verifies(&webhook, delivery, "whsec_old"));
    assert!(verifies(&webhook, delivery, "whsec_new"));
}

#[tokio::test]
async fn a_host_name_is_resolved_and_sent_to_when_private_addresses_are_allowed() {
    let receiver = Receiver::start(answering(200, "ok"));
    let url = format!("http://localhost:{}/", receiver.port);
    let answer = sender(true, Duration::from_secs(5)).send(&webhook(url, &["s"])).await;
    assert_eq!(answer.map(|a| a.status), Ok(200));
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test]
async fn a_503_brings_its_retry_after_and_a_long_body_is_cut() {
    let receiver = Receiver::start(Reply::Status {
        status: 503,
        headers: vec![("retry-after", "120".to_owned())],
        body: "é".repeat(50_000),
    });
    let answer = sender(true, Duration::from_secs(5))
        .send(&webhook(receiver.url("/"), &["s"]))
        .await
        .expect("an answer");
    assert_eq!(answer.status, 503);
    assert_eq!(answer.retry_after, Some(Duration::from_secs(120)));
    assert_eq!(answer.body, "é".repeat(1_000));
}

#[tokio::test]
async fn a_redirect_is_the_answer_and_is_not_followed() {
    let target = Receiver::start(answering(200, "moved here"));
    let origin = Receiver::start(Reply::Status {
        status: 302,
        headers: vec![("location", target.url("/landing"))],
        body: String::new(),
    });
    let answer = sender(true, Duration::from_secs(5))
        .send(&webhook(origin.url("/"), &["s"]))
        .await
        .expect("an answer");
    assert_eq!(answer.status, 302);
    assert_eq!(origin.received().len(), 1);
    assert_eq!(target.received().len(), 0);
}

#[tokio::test]
async fn a_receiver_that_never_answers_times_out() {
    let receiver = Receiver::start(Reply::Never);
    let timeout = Duration::from_millis(300);
    let started = Instant::now();
    let result = sender(true, timeout).send(&webhook(receiver.url("/"), &["s"])).await;
    let elapsed = started.elapsed();
    assert_eq!(result, Err(SendError::Timeout(timeout)));
    assert!(elapsed >= timeout, "{elapsed:?}");
    // Generous: two loaded cores may be slow to wake the timer, never by seconds.
    assert!(elapsed < timeout + Duration::from_secs(2), "{elapsed:?}");
}

#[tokio::test]
async fn a_closed_port_is_unreachable() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
        listener.local_addr().expect("a bound address").port()
    };
    let result = sender(true, Duration::from_secs(5))
        .send(&webhook(format!("http://127.0.0.1:{port}/"), &["s"]))
        .await;
    assert!(matches!(&result, Err(SendError::Unreachable(_))), "{result:?}");
}

#[tokio::test]
async fn private_addresses_are_refused_and_receive_nothing() {
    let receiver = Receiver::start(answering(200, "ok"));
    let port = receiver.port;
    let sender = sender(false, Duration::from_secs(5));
    for url in [
        format!("http://127.0.0.1:{port}/"),
        format!("http://[::1]:{port}/"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://10.1.2.3/".to_owned(),
        format!("http://localhost:{port}/"),
        // The same addresses in disguise: decimal IPv4, IPv4-mapped IPv6, "this host".
        format!("http://2130706433:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        format!("http://0.0.0.0:{port}/"),
        format!("https://[fd00:ec2::254]:{port}/"),
    ] {
        let result = sender.send(&webhook(url.clone(), &["s"])).await;
        assert!(matches!(&result, Err(SendError::AddressNotAllowed(_))), "{url}: {result:?}");
    }
    assert_eq!(receiver.received().len(), 0);
}

#[tokio::test]
async fn only_http_and_https_urls_are_sent() {
    let sender = sender(true, Duration::from_secs(5));
    for url in ["ftp://files.example/", "file:///etc/passwd", "not a url", "http://"] {
        let result = sender.send(&webhook(url.to_owned(), &["s"])).await;
        assert!(matches!(&result, Err(SendError::AddressNotAllowed(_))), "{url}: {result:?}");
    }
}

#[tokio::test]
async fn a_refusal_names_the_address_and_why() {
    let sender = sender(false, Duration::from_secs(5));
    let metadata = sender.send(&webhook("http://169.254.169.254/".into(), &["s"])).await;
    assert_eq!(
        metadata,
        Err(SendError::AddressNotAllowed("169.254.169.254 is the cloud metadata address".into()))
    );
    let named = sender.send(&webhook("http://localhost:9/".into(), &["s"])).await;
    let reason = match named {
        Err(SendError::AddressNotAllowed(reason)) => reason,
        other => panic!("{other:?}"),
    };
    assert!(reason.starts_with("localhost resolves to "), "{reason}");
    assert!(reason.ends_with("(loopback)"), "{reason}");
}
