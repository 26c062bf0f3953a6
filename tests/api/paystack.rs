//! Paystack end to end: the server talks to a local double of Paystack's API over HTTP, and the
//! double signs and sends the webhooks Paystack would send. Also the routing of card payments by
//! currency, and what readiness and `GET /api/v1/providers` say about providers.

use adapter_paystack::testing::{PaystackDouble, refusal};
use adapter_stripe::testing::StripeDouble;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, Backend, PASSWORD, Reply, ServerClock, TestApp, User};
use crate::on_every_backend;

on_every_backend!(
    a_paystack_top_up_credits_the_wallet_once_paystack_verifies_it,
    a_paystack_order_is_paid_then_refunded_in_part_and_in_full,
    a_paystack_payment_after_the_order_expired_is_refunded,
    a_pending_paystack_refund_is_asked_about_again_and_never_made_twice,
    card_payments_are_routed_by_currency_and_a_named_provider_is_checked,
    readiness_reports_paystack_from_real_calls_only,
);

const PAYSTACK_SECRET: &str = "sk_test_e2e_paystack";

async fn with_paystack(backend: Backend, extra: &[(&str, &str)], clock: ServerClock) -> (TestApp, PaystackDouble) {
    let double = PaystackDouble::start(PAYSTACK_SECRET).await.expect("the Paystack double starts");
    let base = double.url();
    let mut vars = vec![("PAYSTACK_SECRET_KEY", PAYSTACK_SECRET), ("PAYSTACK_BASE_URL", base.as_str())];
    vars.extend_from_slice(extra);
    (TestApp::spawn_on(backend, &vars, clock).await, double)
}

/// The double signs `body` as Paystack does and POSTs it to the server's webhook route.
async fn deliver(app: &TestApp, double: &PaystackDouble, body: &str) -> (u16, Value) {
    let url = format!("{}/api/v1/webhooks/paystack", app.base);
    let (status, text) = double.send_webhook(&url, body).await.expect("the server answers");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Delivers and asserts the outcome the server reports.
async fn delivered(app: &TestApp, double: &PaystackDouble, body: &str, outcome: &str) {
    let (status, answer) = deliver(app, double, body).await;
    assert_eq!((status, answer["outcome"].as_str()), (200, Some(outcome)), "{answer}");
}

async fn send_signed(app: &TestApp, body: &[u8], signature: Option<&str>) -> Reply {
    let headers: Vec<(&str, &str)> = signature.map(|s| ("x-paystack-signature", s)).into_iter().collect();
    app.send_raw(
        Method::POST,
        "/api/v1/webhooks/paystack",
        None,
        "application/json",
        body.to_vec(),
        &headers,
    )
    .await
}

async fn naira_balance(app: &TestApp, user: &User) -> String {
    let wallet = app.get("/api/v1/wallets/NGN", Some(&user.token)).await;
    wallet.body["balance"].as_str().unwrap_or("none").to_owned()
}

async fn top_up(app: &TestApp, user: &User, currency: &str, body: Value) -> Reply {
    app.post(&format!("/api/v1/wallets/{currency}/top-ups"), Some(&user.token), &body)
        .await
}

async fn a_paystack_top_up_credits_the_wallet_once_paystack_verifies_it(app: TestApp) {
    let (app, double) = with_paystack(app.backend, &[], ServerClock::System).await;
    let ada = app.user("customer").await;
    let payment = top_up(&app, &ada, "NGN", json!({"amount": "2500.00"}))
        .await
        .assert_status(201)
        .clone();
    assert_eq!(
        (payment["provider"].as_str(), payment["status"].as_str()),
        (Some("paystack"), Some("pending"))
    );
    let reference = payment["id"].as_str().expect("id").to_owned();
    let transaction = double.transaction(&reference).expect("initialised at Paystack under our reference");
    assert_eq!((transaction.amount, transaction.currency.as_str()), (250_000, "NGN"));
    assert_eq!(transaction.callback_url, format!("{}/checkout/complete", app.base));
    assert!(
        payment["checkout_url"]
            .as_str()
            .is_some_and(|u| u.starts_with("https://checkout.paystack.com/"))
    );

    // A correctly signed success that the verify API does not confirm credits nothing.
    let premature = double.pay(&reference).expect("body");
    double.set_status(&reference, "abandoned");
    let (status, problem) = deliver(&app, &double, &premature).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (422, Some("payment_not_confirmed")),
        "{problem}"
    );
    assert_eq!(naira_balance(&app, &ada).await, "0.00");

    let paid = double.pay(&reference).expect("body");
    delivered(&app, &double, &paid, "applied").await;
    delivered(&app, &double, &paid, "duplicate").await;
    assert_eq!(naira_balance(&app, &ada).await, "2500.00");
    let path = format!("/api/v1/payments/{reference}");
    assert_eq!(app.get(&path, Some(&ada.token)).await.assert_status(200)["status"], "succeeded");
    let verified = double
        .requests()
        .iter()
        .filter(|r| r.path == format!("/transaction/verify/{reference}"))
        .count();
    assert_eq!(verified, 3, "every delivery of a success is verified before it is applied");

    // Signatures: another key, a tampered body, none, garbage.
    let other_key = adapter_paystack::sign("sk_test_someone_else", paid.as_bytes());
    send_signed(&app, paid.as_bytes(), Some(&other_key))
        .await
        .assert_problem(400, "invalid_signature");
    let tampered = paid.replace("250000", "2500000");
    send_signed(&app, tampered.as_bytes(), Some(&double.sign(&paid)))
        .await
        .assert_problem(400, "invalid_signature");
    send_signed(&app, paid.as_bytes(), None)
        .await
        .assert_problem(400, "invalid_signature");
    send_signed(&app, paid.as_bytes(), Some("zz"))
        .await
        .assert_problem(400, "invalid_signature");
    // Signed but not an event, or not one we act on: never a 500.
    let (status, problem) = deliver(&app, &double, "{\"event\": 5}").await;
    assert_eq!((status, problem["code"].as_str()), (400, Some("malformed_event")), "{problem}");
    let transfer = json!({"event": "transfer.success", "data": {"reference": "trf_1", "amount": 100}}).to_string();
    delivered(&app, &double, &transfer, "ignored").await;
    assert_eq!(naira_balance(&app, &ada).await, "2500.00");
    app.assert_ledger_ok().await;
}

/// A merchant's NGN product at 4500.00, and a buyer's paid card order of two (9000.00).
async fn paid_naira_order(app: &TestApp, double: &PaystackDouble) -> (User, User, String, String) {
    let merchant = app.user("merchant").await;
    let buyer = app.user("customer").await;
    let product = json!({"name": "Ankara fabric", "price": "4500.00", "currency": "NGN", "stock": 3});
    let fabric = app
        .post("/api/v1/products", Some(&merchant.token), &product)
        .await
        .assert_status(201)["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let cart = json!({"items": [{"product_id": fabric, "quantity": 2}], "payment_method": "card"});
    let order = app
        .post("/api/v1/orders", Some(&buyer.token), &cart)
        .await
        .assert_status(201)
        .clone();
    assert_eq!(order["payment"]["provider"], "paystack");
    let reference = order["payment"]["id"].as_str().expect("payment id").to_owned();
    assert_eq!(double.transaction(&reference).map(|t| t.amount), Some(900_000));
    let paid = double.pay(&reference).expect("body");
    delivered(app, double, &paid, "applied").await;
    let path = format!("/api/v1/orders/{}", order["id"].as_str().expect("order id"));
    assert_eq!(app.get(&path, Some(&buyer.token)).await.body["status"], "paid");
    assert_eq!(naira_balance(app, &merchant).await, "9000.00");
    (merchant, buyer, path, reference)
}

async fn refund(app: &TestApp, merchant: &User, path: &str, body: Value) -> Value {
    app.post(&format!("{path}/refunds"), Some(&merchant.token), &body)
        .await
        .assert_status(201)["refunds"][0]
        .clone()
}

async fn a_paystack_order_is_paid_then_refunded_in_part_and_in_full(app: TestApp) {
    let (app, double) = with_paystack(app.backend, &[], ServerClock::System).await;
    let (merchant, buyer, path, reference) = paid_naira_order(&app, &double).await;

    // A partial refund, pending at Paystack, then processed.
    let first = refund(&app, &merchant, &path, json!({"amount": "1500.00", "reason": "one damaged"})).await;
    assert_eq!(first["status"], "pending");
    assert_eq!(
        naira_balance(&app, &merchant).await,
        "7500.00",
        "the merchant's share is set aside at once"
    );
    let at_paystack = double.refunds();
    assert_eq!((at_paystack.len(), at_paystack[0].amount), (1, 150_000));
    assert_eq!(at_paystack[0].transaction_reference, reference);
    let note = &at_paystack[0].merchant_note;
    assert!(
        note.starts_with(&format!("refund-{}", first["id"].as_str().unwrap_or_default())),
        "{note}"
    );
    let pending = double.refund_event(at_paystack[0].id, "pending").expect("event");
    delivered(&app, &double, &pending, "applied").await;
    assert_eq!(app.get(&path, Some(&buyer.token)).await.body["refunds"][0]["status"], "pending");
    let processed = double.refund_event(at_paystack[0].id, "processed").expect("event");
    delivered(&app, &double, &processed, "applied").await;
    delivered(&app, &double, &processed, "duplicate").await;
    let details = app.get(&path, Some(&buyer.token)).await;
    assert_eq!(
        (details.body["status"].as_str(), details.body["refunded"].as_str()),
        (Some("partially_refunded"), Some("1500.00"))
    );

    // A refund Paystack fails gives the merchant the money back.
    let second = refund(&app, &merchant, &path, json!({"amount": "1000.00", "reason": "late"})).await;
    assert_eq!(naira_balance(&app, &merchant).await, "6500.00");
    let second_id = double.refunds()[1].id;
    double.settle_refund(second_id, "failed");
    let failed = double.refund_event(second_id, "failed").expect("event");
    delivered(&app, &double, &failed, "applied").await;
    assert_eq!(naira_balance(&app, &merchant).await, "7500.00");
    let details = app.get(&path, Some(&buyer.token)).await;
    let statuses: Vec<_> = details.body["refunds"]
        .as_array()
        .map(|r| r.iter().map(|r| (r["id"].clone(), r["status"].clone())).collect())
        .unwrap_or_default();
    assert!(statuses.contains(&(second["id"].clone(), json!("failed"))), "{statuses:?}");

    // The rest, processed by Paystack at once: the order is refunded in full.
    double.set_refund_status("processed");
    let rest = refund(&app, &merchant, &path, json!({"reason": "returned"})).await;
    assert_eq!(
        (rest["amount"].as_str(), rest["status"].as_str()),
        (Some("7500.00"), Some("succeeded"))
    );
    let details = app.get(&path, Some(&buyer.token)).await;
    assert_eq!(
        (details.body["status"].as_str(), details.body["refunded"].as_str()),
        (Some("refunded"), Some("9000.00"))
    );
    assert_eq!(naira_balance(&app, &merchant).await, "0.00");
    assert_eq!(double.refunds().len(), 3, "each refund was made once");
    app.assert_ledger_ok().await;
}

async fn a_paystack_payment_after_the_order_expired_is_refunded(app: TestApp) {
    // The job runs when the test says, on a clock the test moves.
    let settings = [("CHECKOUT_TTL_SECS", "1"), ("JOB_INTERVAL_MS", "3600000")];
    let (app, double) = with_paystack(app.backend, &settings, ServerClock::Manual).await;
    let merchant = app.user("merchant").await;
    let buyer = app.user("customer").await;
    let product = json!({"name": "Kente", "price": "120.00", "currency": "GHS", "stock": 2});
    let kente = app
        .post("/api/v1/products", Some(&merchant.token), &product)
        .await
        .assert_status(201)["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let cart = json!({"items": [{"product_id": kente, "quantity": 1}], "payment_method": "card"});
    let order = app
        .post("/api/v1/orders", Some(&buyer.token), &cart)
        .await
        .assert_status(201)
        .clone();
    let path = format!("/api/v1/orders/{}", order["id"].as_str().expect("id"));
    let reference = order["payment"]["id"].as_str().expect("payment id").to_owned();
    assert_eq!(
        double.transaction(&reference).map(|t| (t.amount, t.currency)),
        Some((12_000, "GHS".to_owned()))
    );
    app.advance(std::time::Duration::from_millis(1_100));
    app.run_jobs().await;
    let expired = app.get(&path, Some(&buyer.token)).await;
    assert_eq!(expired.assert_status(200)["status"], "cancelled", "{}", expired.text);
    assert_eq!(app.stock(&kente).await, (2, 0));

    // The buyer paid on Paystack's page after all: the money goes back through Paystack.
    let paid = double.pay(&reference).expect("body");
    delivered(&app, &double, &paid, "late_success").await;
    delivered(&app, &double, &paid, "duplicate").await;
    let details = app.get(&path, Some(&buyer.token)).await;
    assert_eq!(
        (details.body["status"].as_str(), details.body["payment"]["late_success"].as_bool()),
        (Some("cancelled"), Some(true))
    );
    let refunds = double.refunds();
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(
        (refunds[0].transaction_reference.as_str(), refunds[0].amount),
        (reference.as_str(), 12_000)
    );
    assert!(
        refunds[0].merchant_note.starts_with(&format!("late-success-{reference}")),
        "{}",
        refunds[0].merchant_note
    );
    let ghs = app.get("/api/v1/wallets/GHS", Some(&merchant.token)).await;
    assert!(ghs.status == 404 || ghs.body["balance"] == "0.00", "{}", ghs.text);
    app.assert_ledger_ok().await;
    // The job asking again later makes no second refund.
    app.advance(std::time::Duration::from_secs(3_600));
    app.run_jobs().await;
    assert_eq!(double.refunds().len(), 1);
}

async fn a_pending_paystack_refund_is_asked_about_again_and_never_made_twice(app: TestApp) {
    // The job runs when the test says, on a clock the test moves.
    let settings = [("JOB_INTERVAL_MS", "3600000"), ("FOLLOW_UP_FIRST_DELAY_MS", "1000")];
    let (mut app, double) = with_paystack(app.backend, &settings, ServerClock::Manual).await;
    let (merchant, buyer, path, _) = paid_naira_order(&app, &double).await;
    let pending = refund(&app, &merchant, &path, json!({"reason": "never arrived"})).await;
    assert_eq!(pending["status"], "pending");
    assert_eq!(double.refunds().len(), 1);

    // The job asks again under the refund's key: Paystack's refund is found, not made again.
    // (Access tokens expire as the clock moves: log in again.)
    app.advance(std::time::Duration::from_secs(3_600));
    app.run_jobs().await;
    assert_eq!(double.refunds().len(), 1, "{:?}", double.refunds());
    let buyer = app.login(&buyer.email, PASSWORD).await;
    assert_eq!(app.get(&path, Some(&buyer.token)).await.body["refunds"][0]["status"], "pending");

    // Once Paystack has processed it, the next round learns so without any webhook.
    double.settle_refund(double.refunds()[0].id, "processed");
    app.advance(std::time::Duration::from_secs(7_200));
    app.run_jobs().await;
    let (buyer, merchant) = (app.login(&buyer.email, PASSWORD).await, app.login(&merchant.email, PASSWORD).await);
    let details = app.get(&path, Some(&buyer.token)).await;
    assert_eq!(
        (details.body["status"].as_str(), details.body["refunds"][0]["status"].as_str()),
        (Some("refunded"), Some("succeeded")),
        "{}",
        details.text
    );
    assert_eq!(double.refunds().len(), 1);
    let posts = double
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/refund")
        .count();
    assert_eq!(posts, 1, "one refund was ever asked for");
    assert_eq!(naira_balance(&app, &merchant).await, "0.00");
    app.admin = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    app.assert_ledger_ok().await;
}

async fn card_payments_are_routed_by_currency_and_a_named_provider_is_checked(app: TestApp) {
    let stripe = StripeDouble::start().await.expect("the Stripe double starts");
    let stripe_base = stripe.url();
    let extra = [
        ("STRIPE_SECRET_KEY", "sk_test_e2e"),
        ("STRIPE_WEBHOOK_SECRET", "whsec_e2e"),
        ("STRIPE_API_BASE", stripe_base.as_str()),
    ];
    let (app, double) = with_paystack(app.backend, &extra, ServerClock::System).await;
    let offered = app.get("/api/v1/providers", None).await.assert_status(200).clone();
    let providers: Vec<_> = offered["providers"].as_array().cloned().unwrap_or_default();
    let paystack = providers.iter().find(|p| p["name"] == "paystack").expect("paystack is offered");
    assert_eq!(paystack["currencies"], json!(["GHS", "KES", "NGN", "USD", "ZAR"]));
    assert!(providers.iter().any(|p| p["name"] == "stripe"));
    let route = |code: &str| {
        offered["routes"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["currency"] == code))
            .map(|r| r["providers"].clone())
    };
    assert_eq!(route("NGN"), Some(json!(["paystack", "stripe"])));
    assert_eq!(route("USD"), Some(json!(["stripe", "paystack"])));
    assert_eq!(route("EUR"), Some(json!(["stripe"])));

    let ada = app.user("customer").await;
    let dollars = top_up(&app, &ada, "USD", json!({"amount": "5.00"})).await;
    assert_eq!(dollars.assert_status(201)["provider"], "stripe");
    let named = top_up(&app, &ada, "USD", json!({"amount": "7.00", "provider": "paystack"})).await;
    let named = named.assert_status(201);
    assert_eq!(named["provider"], "paystack");
    let transaction = double.transaction(named["id"].as_str().unwrap_or_default()).expect("at Paystack");
    assert_eq!((transaction.amount, transaction.currency.as_str()), (700, "USD"));
    let rand = top_up(&app, &ada, "ZAR", json!({"amount": "30.00"})).await;
    assert_eq!(rand.assert_status(201)["provider"], "paystack");

    let euros = top_up(&app, &ada, "EUR", json!({"amount": "5.00", "provider": "paystack"})).await;
    euros.assert_problem(422, "provider_currency_not_supported");
    let missing = top_up(&app, &ada, "NGN", json!({"amount": "5.00", "provider": "monnify"})).await;
    missing.assert_problem(422, "provider_not_configured");
    let detail = missing.body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("monnify") && detail.contains("not configured") && !detail.contains("no card gateway"),
        "{detail}"
    );
    let merchant = app.user("merchant").await;
    let mug = app.product(&merchant, "Mug", "10.00", 5).await;
    let cart = json!({"items": [{"product_id": mug, "quantity": 1}], "payment_method": "card", "provider": "monnify"});
    app.post("/api/v1/orders", Some(&ada.token), &cart)
        .await
        .assert_problem(422, "provider_not_configured");
    assert_eq!(app.stock(&mug).await, (5, 0), "a refused order reserves nothing");
    let odd = top_up(&app, &ada, "NGN", json!({"amount": "5.00", "provider": "Pay Stack!"})).await;
    assert_eq!(odd.status, 422, "{}", odd.text);

    // The operator's table replaces the default for the currencies it names.
    let (rerouted, _) = with_paystack(
        Backend::Memory,
        &[extra[0], extra[1], extra[2], ("PROVIDER_ROUTES", "NGN=stripe,paystack")],
        ServerClock::System,
    )
    .await;
    let bola = rerouted.user("customer").await;
    let naira = top_up(&rerouted, &bola, "NGN", json!({"amount": "100.00"})).await;
    assert_eq!(naira.assert_status(201)["provider"], "stripe");
}

async fn readiness_reports_paystack_from_real_calls_only(app: TestApp) {
    let (app, double) = with_paystack(app.backend, &[], ServerClock::System).await;
    for _ in 0..3 {
        let ready = app.get("/health/ready", None).await;
        let paystack = &ready.assert_status(200)["providers"]["paystack"];
        assert_eq!(
            (paystack["configured"].as_bool(), paystack["state"].as_str()),
            (Some(true), Some("unknown")),
            "{}",
            ready.text
        );
        assert!(paystack["last_success_at"].is_null());
    }
    assert!(double.requests().is_empty(), "a probe calls no provider");

    let ada = app.user("customer").await;
    top_up(&app, &ada, "NGN", json!({"amount": "10.00"})).await.assert_status(201);
    let ready = app.get("/health/ready", None).await;
    let paystack = ready.body["providers"]["paystack"].clone();
    assert_eq!(paystack["state"], "ok", "{paystack}");
    assert!(
        paystack["last_success_at"].as_str().is_some_and(|at| at.ends_with('Z')),
        "{paystack}"
    );

    double.fail_next("/transaction/initialize", vec![(500, refusal("Internal server error")); 3]);
    let down = top_up(&app, &ada, "NGN", json!({"amount": "10.00"})).await;
    down.assert_problem(503, "temporarily_unavailable");
    let ready = app.get("/health/ready", None).await;
    assert_eq!(
        ready.assert_status(200)["status"],
        "ok",
        "a failing provider does not make the server unready"
    );
    let paystack = &ready.body["providers"]["paystack"];
    assert_eq!(paystack["state"], "failing", "{paystack}");
    assert!(
        paystack["last_error"].as_str().is_some_and(|e| e.contains("Paystack answered 500")),
        "{paystack}"
    );
    assert!(paystack["last_success_at"].is_string(), "the last success is still reported");
    let calls = double.requests().len();
    app.get("/health/ready", None).await.assert_status(200);
    assert_eq!(double.requests().len(), calls);
}
