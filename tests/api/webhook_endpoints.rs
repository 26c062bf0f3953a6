//! Outbound webhooks, end to end: the real server delivers to a receiver listening in the test.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::helpers::{Backend, ServerClock, TestApp, User, eventually};

/// What the receiver got: the headers that matter and the raw body.
#[derive(Debug, Clone)]
struct Received {
    signature: String,
    event_id: String,
    event_type: String,
    body: Vec<u8>,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    /// Whether the signature verifies with `secret`.
    fn verifies_with(&self, secret: &str) -> bool {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        stripe_signature::verify(&[secret.as_bytes().to_vec()], &self.signature, &self.body, now, 600).is_ok()
    }
}

/// An HTTP receiver on 127.0.0.1: records every request, answers with the statuses it is told
/// (200 once they run out), and counts the requests in flight.
#[derive(Default)]
struct Receiver {
    received: Mutex<Vec<Received>>,
    statuses: Mutex<VecDeque<u16>>,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
    /// While set, requests wait to be answered until it is notified.
    hold: Mutex<Option<Arc<Notify>>>,
}

impl Receiver {
    async fn start() -> (Arc<Receiver>, String) {
        let receiver = Arc::new(Receiver::default());
        let state = web::Data::from(receiver.clone());
        let server = HttpServer::new(move || App::new().app_data(state.clone()).route("/hooks", web::post().to(receive)))
            .workers(1)
            .bind(("127.0.0.1", 0))
            .expect("bind");
        let port = server.addrs()[0].port();
        tokio::spawn(server.run());
        (receiver, format!("http://127.0.0.1:{port}/hooks"))
    }

    fn answer(&self, statuses: &[u16]) {
        self.statuses.lock().expect("lock").extend(statuses);
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }

    fn of_type(&self, event_type: &str) -> Vec<Received> {
        self.received().into_iter().filter(|r| r.event_type == event_type).collect()
    }
}

async fn receive(receiver: web::Data<Receiver>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let now = receiver.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    receiver.most_in_flight.fetch_max(now, Ordering::SeqCst);
    receiver.received.lock().expect("lock").push(Received {
        signature: header("payments-signature"),
        event_id: header("payments-event-id"),
        event_type: header("payments-event-type"),
        body: body.to_vec(),
    });
    let hold = receiver.hold.lock().expect("lock").clone();
    if let Some(hold) = hold {
        hold.notified().await;
    }
    // Work on the receiver's side, so that two deliveries to it could overlap if they were sent
    // together.
    tokio::task::yield_now().await;
    receiver.in_flight.fetch_sub(1, Ordering::SeqCst);
    let status = receiver.statuses.lock().expect("lock").pop_front().unwrap_or(200);
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).expect("status")).finish()
}

/// Webhooks to local receivers over plain http, relayed only when the test runs the job.
const LOCAL: &[(&str, &str)] = &[
    ("WEBHOOK_ALLOW_HTTP", "true"),
    ("WEBHOOK_ALLOW_PRIVATE_ADDRESSES", "true"),
    ("WEBHOOK_INTERVAL_MS", "3600000"),
    ("JOB_INTERVAL_MS", "3600000"),
];

async fn register(app: &TestApp, owner: &User, url: &str, events: Value) -> Value {
    let body = json!({"url": url, "events": events, "description": "test receiver"});
    app.post("/api/v1/webhook-endpoints", Some(&owner.token), &body)
        .await
        .assert_status(201)
        .clone()
}

#[tokio::test]
async fn a_purchase_a_refund_and_a_transfer_arrive_signed_and_verifiable() {
    let app = TestApp::spawn_with(Backend::Postgres, LOCAL).await;
    let (receiver, url) = Receiver::start().await;
    let merchant = app.user("merchant").await;
    let buyer = app.customer_with("100.00").await;
    let hook = register(
        &app,
        &merchant,
        &url,
        json!(["order.paid", "order.refunded", "refund.succeeded", "transfer.completed"]),
    )
    .await;
    let secret = hook["secret"].as_str().expect("the secret, shown once").to_owned();
    let listed = app.get("/api/v1/webhook-endpoints", Some(&merchant.token)).await;
    assert!(listed.assert_status(200)["items"][0]["secret"].is_null(), "never shown again");
    let product = app.product(&merchant, "Mug", "12.50", 5).await;
    let order = app
        .post(
            "/api/v1/orders",
            Some(&buyer.token),
            &json!({"items": [{"product_id": product, "quantity": 2}], "payment_method": "wallet"}),
        )
        .await;
    let order_id = order.assert_status(201)["id"].as_str().expect("order id").to_owned();
    app.post(
        &format!("/api/v1/orders/{order_id}/refunds"),
        Some(&merchant.token),
        &json!({"amount": "5.00", "reason": "chipped"}),
    )
    .await
    .assert_status(201);
    app.post(
        "/api/v1/transfers",
        Some(&buyer.token),
        &json!({"to_user_id": merchant.id, "amount": "1.00", "currency": "USD", "note": ""}),
    )
    .await
    .assert_status(201);
    app.run_jobs().await;
    for event_type in ["order.paid", "order.refunded", "refund.succeeded", "transfer.completed"] {
        let got = receiver.of_type(event_type);
        assert_eq!(got.len(), 1, "{event_type} once: {got:?}");
        assert!(got[0].verifies_with(&secret), "{event_type} verifies with the endpoint's secret");
        let body = got[0].json();
        assert_eq!(
            (body["type"].as_str(), body["id"].as_str()),
            (Some(event_type), Some(got[0].event_id.as_str()))
        );
        assert!(body["api_version"].is_string() && body["created"].is_string() && body["data"]["object"].is_object());
    }
    assert_eq!(
        receiver.of_type("order.paid")[0].json()["data"]["object"]["order_id"],
        json!(order_id)
    );
    assert!(receiver.received().iter().all(|r| !r.verifies_with("whsec_not_the_secret")));
    let deliveries = app
        .get(
            &format!("/api/v1/webhook-endpoints/{}/deliveries", hook["id"].as_str().expect("id")),
            Some(&merchant.token),
        )
        .await;
    let items = deliveries.assert_status(200)["items"].as_array().expect("items").clone();
    assert_eq!(items.len(), 4);
    assert!(
        items
            .iter()
            .all(|d| d["status"] == json!("succeeded") && d["last_attempt"]["status_code"] == json!(200))
    );
}

#[tokio::test]
async fn a_receiver_failing_n_times_gets_the_event_once_more_after_each_failure_then_never_again() {
    let app = TestApp::spawn_on(Backend::Memory, LOCAL, ServerClock::Manual).await;
    let (receiver, url) = Receiver::start().await;
    register(&app, &app.admin, &url, json!(["wallet.credited"])).await;
    receiver.answer(&[500, 503, 429]);
    let customer = app.user("customer").await;
    app.fund(&customer, "10.00", "USD").await;
    let mut seen = Vec::new();
    for _ in 0..6 {
        app.run_jobs().await;
        seen.push(receiver.of_type("wallet.credited").len());
        app.advance(Duration::from_secs(3600));
    }
    assert_eq!(seen, vec![1, 2, 3, 4, 4, 4]);
    let ids: Vec<String> = receiver.received().iter().map(|r| r.event_id.clone()).collect();
    assert!(ids.windows(2).all(|pair| pair[0] == pair[1]), "the same event every time");
}

#[tokio::test]
async fn two_instances_never_deliver_to_one_endpoint_at_once_nor_one_event_twice() {
    let first = TestApp::spawn_with(Backend::Postgres, LOCAL).await;
    let second = first.alongside(LOCAL).await;
    let (receiver, url) = Receiver::start().await;
    register(&first, &first.admin, &url, json!(["wallet.credited"])).await;
    let customer = first.user("customer").await;
    for _ in 0..30 {
        first.fund(&customer, "1.00", "USD").await;
    }
    for _ in 0..3 {
        tokio::join!(first.run_jobs(), second.run_jobs());
    }
    let ids: Vec<String> = receiver.of_type("wallet.credited").iter().map(|r| r.event_id.clone()).collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((ids.len(), unique.len()), (30, 30), "every event once");
    assert_eq!(
        receiver.most_in_flight.load(Ordering::SeqCst),
        1,
        "never two requests at once to one endpoint"
    );
}

#[tokio::test]
async fn an_instance_that_dies_mid_delivery_leaves_the_event_to_another() {
    let first = TestApp::spawn_on(Backend::Postgres, LOCAL, ServerClock::Manual).await;
    let second = first.alongside_on(LOCAL, ServerClock::Manual).await;
    let (receiver, url) = Receiver::start().await;
    register(&first, &first.admin, &url, json!(["wallet.credited"])).await;
    let customer = first.user("customer").await;
    first.fund(&customer, "1.00", "USD").await;
    let hold = Arc::new(Notify::new());
    *receiver.hold.lock().expect("lock") = Some(hold.clone());
    let dying = tokio::spawn({
        let jobs = first.jobs();
        async move { jobs.run().await }
    });
    eventually("the first instance's attempt reaches the receiver", || async {
        !receiver.received().is_empty()
    })
    .await;
    // The instance dies with the attempt unanswered: its hold on the endpoint stays.
    dying.abort();
    *receiver.hold.lock().expect("lock") = None;
    hold.notify_waiters();
    second.run_jobs().await;
    assert_eq!(receiver.received().len(), 1, "not while the first instance's lease runs");
    second.advance(Duration::from_secs(3 * 60));
    second.run_jobs().await;
    let got = receiver.of_type("wallet.credited");
    assert_eq!(got.len(), 2, "the second instance delivers once the lease is over");
    assert_eq!(got[0].event_id, got[1].event_id);
}

#[tokio::test]
async fn private_addresses_are_refused_unless_allowed() {
    let strict = [
        ("WEBHOOK_ALLOW_HTTP", "true"),
        ("WEBHOOK_INTERVAL_MS", "3600000"),
        ("JOB_INTERVAL_MS", "3600000"),
    ];
    let app = TestApp::spawn_with(Backend::Postgres, &strict).await;
    let (receiver, url) = Receiver::start().await;
    let merchant = app.user("merchant").await;
    for target in [
        url.as_str(),
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.7/hooks",
        "http://[::1]:80/hooks",
    ] {
        let reply = app
            .post(
                "/api/v1/webhook-endpoints",
                Some(&merchant.token),
                &json!({"url": target, "events": ["*"]}),
            )
            .await;
        reply.assert_problem(422, "validation_failed");
    }
    // A host name is checked when it is resolved, at each delivery.
    let by_name = url.replace("127.0.0.1", "localhost");
    let hook = register(&app, &app.admin, &by_name, json!(["wallet.credited"])).await;
    app.fund(&merchant, "1.00", "USD").await;
    app.run_jobs().await;
    assert!(receiver.received().is_empty(), "nothing reached the private address");
    let deliveries = app
        .get(
            &format!("/api/v1/webhook-endpoints/{}/deliveries", hook["id"].as_str().expect("id")),
            Some(&app.admin.token),
        )
        .await;
    let last = deliveries.assert_status(200)["items"][0]["last_attempt"].clone();
    assert!(
        last["status_code"].is_null() && last["response"].as_str().is_some_and(|r| r.contains("not allowed")),
        "{last}"
    );
}

#[tokio::test]
async fn a_rolled_secret_keeps_deliveries_verifiable_with_either_secret() {
    let app = TestApp::spawn_with(Backend::Memory, LOCAL).await;
    let (receiver, url) = Receiver::start().await;
    let merchant = app.user("merchant").await;
    let hook = register(&app, &merchant, &url, json!(["*"])).await;
    let id = hook["id"].as_str().expect("id");
    let old = hook["secret"].as_str().expect("secret").to_owned();
    let rolled = app
        .post(
            &format!("/api/v1/webhook-endpoints/{id}/roll-secret"),
            Some(&merchant.token),
            &json!({"overlap_seconds": 3600}),
        )
        .await;
    let new = rolled.assert_status(200)["secret"].as_str().expect("new secret").to_owned();
    assert_ne!(new, old);
    app.post(&format!("/api/v1/webhook-endpoints/{id}/test"), Some(&merchant.token), &json!({}))
        .await
        .assert_status(202);
    app.run_jobs().await;
    let test = receiver.of_type("webhook_endpoint.test");
    assert_eq!(test.len(), 1);
    assert!(
        test[0].verifies_with(&old) && test[0].verifies_with(&new),
        "both secrets sign during the overlap"
    );
    let customer = app.user("customer").await;
    app.get("/api/v1/webhook-endpoints", Some(&customer.token))
        .await
        .assert_problem(403, "forbidden");
    let stranger = app.user("merchant").await;
    app.get(&format!("/api/v1/webhook-endpoints/{id}"), Some(&stranger.token))
        .await
        .assert_problem(404, "not_found");
    let types = app.get("/api/v1/webhook-event-types", None).await;
    assert!(
        types
            .assert_status(200)
            .as_array()
            .is_some_and(|all| all.iter().any(|t| t["type"] == json!("order.paid")))
    );
}

#[tokio::test]
async fn an_endpoint_is_managed_filtered_and_redelivered_by_its_owner_and_admins_only() {
    let app = TestApp::spawn_with(Backend::Postgres, LOCAL).await;
    let (receiver, url) = Receiver::start().await;
    let merchant = app.user("merchant").await;
    for (body, field) in [
        (json!({"url": url, "events": ["order.shipped"]}), "events"),
        (json!({"url": url, "events": ["*", "order.paid"]}), "events"),
        (json!({"url": url, "events": []}), "events"),
        (json!({"url": "ftp://merchant.example/hooks"}), "url"),
        (json!({"url": "not a url"}), "url"),
        (json!({"url": url, "description": "x".repeat(5000)}), "description"),
        (json!({"url": 7}), "url"),
    ] {
        let reply = app.post("/api/v1/webhook-endpoints", Some(&merchant.token), &body).await;
        reply.assert_problem(422, "validation_failed");
        assert!(reply.text.contains(field), "{field}: {}", reply.text);
    }
    app.send_raw(
        Method::POST,
        "/api/v1/webhook-endpoints",
        Some(&merchant.token),
        "application/json",
        b"{\"url\": ".to_vec(),
        &[],
    )
    .await
    .assert_problem(400, "malformed_json");

    let hook = register(&app, &merchant, &url, json!(["transfer.completed"])).await;
    let id = hook["id"].as_str().expect("id").to_owned();
    app.get(&format!("/api/v1/webhook-endpoints/{id}"), Some(&app.admin.token))
        .await
        .assert_status(200);
    let stranger = app.user("merchant").await;
    let patch = json!({"events": ["wallet.credited"]});
    app.send(
        Method::PATCH,
        &format!("/api/v1/webhook-endpoints/{id}"),
        Some(&stranger.token),
        Some(&patch),
        &[],
    )
    .await
    .assert_problem(404, "not_found");
    let patched = app
        .send(
            Method::PATCH,
            &format!("/api/v1/webhook-endpoints/{id}"),
            Some(&merchant.token),
            Some(&patch),
            &[],
        )
        .await;
    assert_eq!(patched.assert_status(200)["events"], json!(["wallet.credited"]));

    app.fund(&merchant, "1.00", "USD").await;
    app.fund(&merchant, "2.00", "USD").await;
    app.run_jobs().await;
    assert_eq!(receiver.of_type("wallet.credited").len(), 2);
    let deliveries = |query: &'static str| {
        let (app, id, token) = (&app, id.clone(), merchant.token.clone());
        async move {
            app.get(&format!("/api/v1/webhook-endpoints/{id}/deliveries{query}"), Some(&token))
                .await
        }
    };
    let succeeded = deliveries("?status=succeeded&event_type=wallet.credited").await;
    let items = succeeded.assert_status(200)["items"].as_array().expect("items").clone();
    assert_eq!(items.len(), 2);
    let none = deliveries("?status=pending").await;
    assert_eq!(none.assert_status(200)["items"], json!([]));
    let none = deliveries("?event_type=order.paid").await;
    assert_eq!(none.assert_status(200)["items"], json!([]));
    deliveries("?status=sent").await.assert_problem(400, "invalid_query");
    deliveries("?event_type=order.shipped").await.assert_problem(400, "invalid_query");

    // One delivery again, then every delivery of a range: the same events, signed afresh.
    let first = items[0]["id"].as_str().expect("delivery id");
    app.post(
        &format!("/api/v1/webhook-deliveries/{first}/redeliver"),
        Some(&stranger.token),
        &json!({}),
    )
    .await
    .assert_problem(404, "not_found");
    app.post(
        &format!("/api/v1/webhook-deliveries/{first}/redeliver"),
        Some(&merchant.token),
        &json!({}),
    )
    .await
    .assert_status(202);
    app.run_jobs().await;
    assert_eq!(receiver.of_type("wallet.credited").len(), 3);
    let now = time::OffsetDateTime::now_utc();
    let rfc3339 = |at: time::OffsetDateTime| at.format(&time::format_description::well_known::Rfc3339).expect("format");
    let range = json!({"from": rfc3339(now - time::Duration::hours(1)), "to": rfc3339(now + time::Duration::hours(1))});
    let requeued = app
        .post(&format!("/api/v1/webhook-endpoints/{id}/redeliver"), Some(&merchant.token), &range)
        .await;
    assert_eq!(requeued.assert_status(202)["requeued"], json!(2));
    let too_long = json!({"from": rfc3339(now - time::Duration::days(40)), "to": rfc3339(now)});
    app.post(
        &format!("/api/v1/webhook-endpoints/{id}/redeliver"),
        Some(&merchant.token),
        &too_long,
    )
    .await
    .assert_problem(422, "validation_failed");
    app.run_jobs().await;
    let got = receiver.of_type("wallet.credited");
    assert_eq!(got.len(), 5);
    let mut ids: Vec<&str> = got.iter().map(|r| r.event_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 2, "redeliveries carry the events' own ids, for receivers to dedupe");

    // Disabled, it receives nothing; deleted, it is gone.
    let off = json!({"enabled": false});
    app.send(
        Method::PATCH,
        &format!("/api/v1/webhook-endpoints/{id}"),
        Some(&merchant.token),
        Some(&off),
        &[],
    )
    .await
    .assert_status(200);
    app.fund(&merchant, "3.00", "USD").await;
    app.run_jobs().await;
    assert_eq!(receiver.of_type("wallet.credited").len(), 5);
    app.send(
        Method::DELETE,
        &format!("/api/v1/webhook-endpoints/{id}"),
        Some(&merchant.token),
        None,
        &[],
    )
    .await
    .assert_status(204);
    app.get(&format!("/api/v1/webhook-endpoints/{id}"), Some(&merchant.token))
        .await
        .assert_problem(404, "not_found");
}

#[tokio::test]
async fn an_instance_told_not_to_relay_leaves_the_deliveries_to_those_that_do() {
    let quiet: Vec<(&str, &str)> = LOCAL.iter().copied().chain([("WEBHOOK_RELAY", "false")]).collect();
    let api_only = TestApp::spawn_with(Backend::Postgres, &quiet).await;
    let relaying = api_only.alongside(LOCAL).await;
    let (receiver, url) = Receiver::start().await;
    register(&api_only, &api_only.admin, &url, json!(["wallet.credited"])).await;
    let customer = api_only.user("customer").await;
    api_only.fund(&customer, "1.00", "USD").await;
    api_only.run_jobs().await;
    assert!(receiver.received().is_empty(), "the API-only instance relays nothing");
    relaying.run_jobs().await;
    assert_eq!(receiver.of_type("wallet.credited").len(), 1);
}
