//! Stripe and Monnify end to end: the server talks to local doubles of their APIs over HTTP, and
//! the tests deliver the signed webhooks the providers would send.

use adapter_monnify::testing::MonnifyDouble;
use adapter_stripe::testing::{StripeDouble, event, paid_session, signature};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Backend, Reply, ServerClock, TestApp, eventually};
use crate::on_every_backend;

on_every_backend!(
    a_stripe_checkout_is_paid_once_and_refunded_through_stripe,
    an_expired_stripe_session_cancels_the_order_and_a_late_payment_is_refunded,
    stripe_events_out_of_order_apply_once,
    stripe_failures_reach_the_client_as_clear_problems,
    a_monnify_top_up_credits_the_naira_wallet_once_it_is_confirmed,
    a_monnify_order_is_refunded_through_monnify,
    a_stripe_top_up_credits_the_wallet_once,
    a_key_still_in_use_is_refused_until_its_request_ends,
    an_abandoned_monnify_top_up_expires_and_a_late_payment_still_credits,
);

pub(crate) const STRIPE_SECRETS: &str = "whsec_retiring,whsec_current";

pub(crate) async fn with_stripe(backend: Backend, extra: &[(&str, &str)]) -> (TestApp, StripeDouble) {
    with_stripe_on(backend, extra, ServerClock::System).await
}

pub(crate) async fn with_stripe_on(backend: Backend, extra: &[(&str, &str)], clock: ServerClock) -> (TestApp, StripeDouble) {
    let double = StripeDouble::start().await.expect("the Stripe double starts");
    let base = double.url();
    let mut vars = vec![
        ("STRIPE_SECRET_KEY", "sk_test_e2e"),
        ("STRIPE_WEBHOOK_SECRET", STRIPE_SECRETS),
        ("STRIPE_API_BASE", base.as_str()),
    ];
    vars.extend_from_slice(extra);
    (TestApp::spawn_on(backend, &vars, clock).await, double)
}

pub(crate) async fn deliver_stripe(app: &TestApp, body: &str, secret: &str) -> Reply {
    app.send_raw(
        Method::POST,
        "/api/v1/webhooks/stripe",
        None,
        "application/json",
        body.as_bytes().to_vec(),
        &[("stripe-signature", &signature(secret, body))],
    )
    .await
}

/// Delivers the same signed event `times` times at once; the outcome of each delivery.
async fn deliver_stripe_concurrently(app: &TestApp, body: &str, times: usize) -> Vec<Value> {
    let deliveries = (0..times).map(|_| deliver_stripe(app, body, "whsec_current"));
    futures::future::join_all(deliveries)
        .await
        .iter()
        .map(|r| r.assert_status(200)["outcome"].clone())
        .collect()
}

/// Starts a card top-up of `amount` into the user's `currency` wallet; the payment as answered.
async fn top_up(app: &TestApp, user: &crate::helpers::User, currency: &str, amount: &str) -> Value {
    app.post(
        &format!("/api/v1/wallets/{currency}/top-ups"),
        Some(&user.token),
        &json!({"amount": amount}),
    )
    .await
    .assert_status(201)
    .clone()
}

/// The Stripe Checkout Session id at the end of a payment's checkout URL.
pub(crate) fn session_id(payment: &Value) -> String {
    payment["checkout_url"]
        .as_str()
        .and_then(|u| u.rsplit('/').next())
        .expect("a session url")
        .to_owned()
}

/// A buyer, a merchant's 10.00 mug (5 in stock), and a card cart for one of them.
async fn card_cart_for_one_mug(app: &TestApp) -> (crate::helpers::User, String, Value) {
    let merchant = app.user("merchant").await;
    let buyer = app.user("customer").await;
    let mug = app.product(&merchant, "Mug", "10.00", 5).await;
    let cart = json!({"items": [{"product_id": mug, "quantity": 1}], "payment_method": "card"});
    (buyer, mug, cart)
}

/// A merchant with a 10.00 mug (5 in stock), a buyer, and the buyer's pending card order for two.
pub(crate) async fn card_order(app: &TestApp, double: &StripeDouble) -> (crate::helpers::User, crate::helpers::User, String, Value, Value) {
    let merchant = app.user("merchant").await;
    let buyer = app.user("customer").await;
    let mug = app.product(&merchant, "Mug", "10.00", 5).await;
    let cart = json!({"items": [{"product_id": mug, "quantity": 2}], "payment_method": "card"});
    let order = app
        .post("/api/v1/orders", Some(&buyer.token), &cart)
        .await
        .assert_status(201)
        .clone();
    assert_eq!(order["payment"]["provider"], "stripe");
    let session = double
        .session(&session_id(&order["payment"]))
        .expect("the double holds the session");
    assert_eq!(session["amount_total"], 2000);
    (merchant, buyer, mug, order, session)
}

async fn a_stripe_checkout_is_paid_once_and_refunded_through_stripe(app: TestApp) {
    let (app, double) = with_stripe(app.backend, &[]).await;
    let (merchant, buyer, mug, order, session) = card_order(&app, &double).await;
    let body = event("evt_paid", "checkout.session.completed", paid_session(&session, "pi_e2e"));
    let outcomes = deliver_stripe_concurrently(&app, &body, 5).await;
    assert_eq!(outcomes.iter().filter(|o| **o == "applied").count(), 1, "{outcomes:?}");
    assert_eq!(outcomes.iter().filter(|o| **o == "duplicate").count(), 4, "{outcomes:?}");
    let order_path = format!("/api/v1/orders/{}", order["id"].as_str().unwrap_or_default());
    assert_eq!(app.get(&order_path, Some(&buyer.token)).await.body["status"], "paid");
    assert_eq!(app.balance(&merchant).await, "20.00");
    assert_eq!(app.stock(&mug).await, (3, 0));

    double.set_refund_status("pending");
    let refund = app
        .post(
            &format!("{order_path}/refunds"),
            Some(&merchant.token),
            &json!({"amount": "5.00", "reason": "late"}),
        )
        .await;
    let refund = refund.assert_status(201)["refunds"][0].clone();
    assert_eq!(refund["status"], "pending");
    assert_eq!(app.balance(&merchant).await, "15.00", "the merchant's share is set aside at once");
    let sent = double
        .requests()
        .into_iter()
        .find(|r| r.path == "/v1/refunds")
        .expect("a refund at Stripe");
    assert_eq!(
        (
            sent.form.get("payment_intent").map(String::as_str),
            sent.form.get("amount").map(String::as_str)
        ),
        (Some("pi_e2e"), Some("500"))
    );
    assert!(sent.idempotency_key.as_deref().is_some_and(|k| k.starts_with("refund-")));
    let refunded = json!({"id": "ch_1", "object": "charge", "payment_intent": "pi_e2e", "amount_refunded": 500, "refunded": false,
        "refunds": {"object": "list", "data": [{"id": refund["provider_refund_id"], "object": "refund", "amount": 500, "currency": "usd",
            "status": "succeeded", "metadata": {"refund_id": refund["id"]}}]}});
    let reply = deliver_stripe(&app, &event("evt_refunded", "charge.refunded", refunded), "whsec_retiring").await;
    assert_eq!(reply.assert_status(200)["outcome"], "applied");
    let details = app.get(&order_path, Some(&buyer.token)).await;
    assert_eq!(
        (details.body["status"].as_str(), details.body["refunded"].as_str()),
        (Some("partially_refunded"), Some("5.00"))
    );
    assert_eq!(details.body["refunds"][0]["status"], "succeeded");

    // The rest, answered at once by Stripe: the order is fully refunded.
    double.set_refund_status("succeeded");
    let rest = app
        .post(
            &format!("{order_path}/refunds"),
            Some(&merchant.token),
            &json!({"reason": "returned"}),
        )
        .await;
    assert_eq!(rest.assert_status(201)["refunds"][0]["amount"], "15.00");
    let details = app.get(&order_path, Some(&buyer.token)).await;
    assert_eq!(
        (details.body["status"].as_str(), details.body["refunded"].as_str()),
        (Some("refunded"), Some("20.00"))
    );
    assert_eq!(app.balance(&merchant).await, "0.00");
    let refunds_at_stripe = double.requests().into_iter().filter(|r| r.path == "/v1/refunds").count();
    assert_eq!(refunds_at_stripe, 2);
    app.assert_ledger_ok().await;
}

async fn an_expired_stripe_session_cancels_the_order_and_a_late_payment_is_refunded(app: TestApp) {
    let (app, double) = with_stripe(app.backend, &[]).await;
    let (merchant, buyer, mug, order, session) = card_order(&app, &double).await;
    let expired = event("evt_expired", "checkout.session.expired", session.clone());
    assert_eq!(
        deliver_stripe(&app, &expired, "whsec_current").await.assert_status(200)["outcome"],
        "applied"
    );
    let order_path = format!("/api/v1/orders/{}", order["id"].as_str().unwrap_or_default());
    assert_eq!(app.get(&order_path, Some(&buyer.token)).await.body["status"], "cancelled");
    assert_eq!(app.stock(&mug).await, (5, 0));
    let late = event("evt_late", "checkout.session.completed", paid_session(&session, "pi_late"));
    assert_eq!(
        deliver_stripe(&app, &late, "whsec_current").await.assert_status(200)["outcome"],
        "late_success"
    );
    let details = app.get(&order_path, Some(&buyer.token)).await;
    assert_eq!(
        (details.body["status"].as_str(), details.body["payment"]["late_success"].as_bool()),
        (Some("cancelled"), Some(true))
    );
    let refund = double
        .requests()
        .into_iter()
        .find(|r| r.path == "/v1/refunds")
        .expect("the late payment is refunded");
    assert_eq!(
        (
            refund.form.get("payment_intent").map(String::as_str),
            refund.form.get("amount").map(String::as_str)
        ),
        (Some("pi_late"), Some("2000"))
    );
    assert_eq!(app.balance(&merchant).await, "0.00");

    // The expiry job also closes abandoned sessions at Stripe.
    let backend = app.backend;
    drop(app);
    // The job runs when the test says, on a clock the test moves.
    let settings = [("CHECKOUT_TTL_SECS", "1"), ("JOB_INTERVAL_MS", "3600000")];
    let (app, double) = with_stripe_on(backend, &settings, ServerClock::Manual).await;
    let (_, buyer, mug, order, session) = card_order(&app, &double).await;
    let path = format!("/api/v1/orders/{}", order["id"].as_str().unwrap_or_default());
    app.advance(std::time::Duration::from_millis(1_100));
    app.run_jobs().await;
    let expired = app.get(&path, Some(&buyer.token)).await;
    assert_eq!(expired.assert_status(200)["status"], "cancelled", "{}", expired.text);
    assert_eq!(app.stock(&mug).await, (5, 0));
    let expire_path = format!("/v1/checkout/sessions/{}/expire", session["id"].as_str().unwrap_or_default());
    assert!(
        double.requests().iter().any(|r| r.path == expire_path),
        "the abandoned session was not expired at Stripe: {:?}",
        double.requests().iter().map(|r| r.path.clone()).collect::<Vec<_>>()
    );
}

async fn stripe_events_out_of_order_apply_once(app: TestApp) {
    let (app, double) = with_stripe(app.backend, &[]).await;
    let (merchant, buyer, _, order, session) = card_order(&app, &double).await;
    let intent = json!({"id": "pi_first", "object": "payment_intent", "amount": 2000, "amount_received": 2000, "currency": "usd",
        "status": "succeeded", "metadata": {"payment_id": order["payment"]["id"]}});
    assert_eq!(
        deliver_stripe(&app, &event("evt_pi", "payment_intent.succeeded", intent), "whsec_current")
            .await
            .body["outcome"],
        "applied"
    );
    let completed = event("evt_cs", "checkout.session.completed", paid_session(&session, "pi_first"));
    assert_eq!(deliver_stripe(&app, &completed, "whsec_current").await.body["outcome"], "ignored");
    let attempt =
        json!({"id": "pi_first", "metadata": {"payment_id": order["payment"]["id"]}, "last_payment_error": {"message": "declined"}});
    assert_eq!(
        deliver_stripe(&app, &event("evt_fail", "payment_intent.payment_failed", attempt), "whsec_current")
            .await
            .body["outcome"],
        "ignored"
    );
    let path = format!("/api/v1/orders/{}", order["id"].as_str().unwrap_or_default());
    assert_eq!(
        app.get(&path, Some(&buyer.token)).await.body["status"],
        "paid",
        "a late failure never moves the order back"
    );
    assert_eq!(app.balance(&merchant).await, "20.00");
    let dispute = json!({"id": "dp_1", "object": "dispute", "amount": 2000, "currency": "usd", "payment_intent": "pi_first", "reason": "fraudulent", "status": "needs_response"});
    assert_eq!(
        deliver_stripe(&app, &event("evt_dp", "charge.dispute.created", dispute), "whsec_current")
            .await
            .body["outcome"],
        "applied"
    );
    assert_eq!(app.get(&path, Some(&buyer.token)).await.body["payment"]["disputed"], true);
    let audit = app
        .get(
            &format!("/api/v1/admin/audit?order_id={}", order["id"].as_str().unwrap_or_default()),
            Some(&app.admin.token),
        )
        .await;
    assert_eq!(audit.body["items"][0]["reason"], "dispute opened: fraudulent");
    let wrong = event(
        "evt_wrong",
        "checkout.session.completed",
        json!({"id": session["id"], "amount_total": 1999, "currency": "usd",
        "client_reference_id": order["payment"]["id"], "payment_status": "paid", "payment_intent": "pi_first"}),
    );
    deliver_stripe(&app, &wrong, "whsec_current")
        .await
        .assert_problem(422, "amount_mismatch");
    app.assert_ledger_ok().await;
}

async fn stripe_failures_reach_the_client_as_clear_problems(app: TestApp) {
    let (app, double) = with_stripe(app.backend, &[]).await;
    let (buyer, mug, cart) = card_cart_for_one_mug(&app).await;
    double.fail_next(
        "/v1/checkout/sessions",
        vec![(402, StripeDouble::error("card_error", "card_declined", "Your card was declined."))],
    );
    app.post("/api/v1/orders", Some(&buyer.token), &cart)
        .await
        .assert_problem(402, "card_declined");
    let limited = StripeDouble::error("invalid_request_error", "rate_limit", "Too many requests");
    double.fail_next(
        "/v1/checkout/sessions",
        vec![(429, limited.clone()), (429, limited.clone()), (429, limited)],
    );
    let reply = app.post("/api/v1/orders", Some(&buyer.token), &cart).await;
    reply.assert_problem(503, "temporarily_unavailable");
    assert!(reply.header("retry-after").is_some());
    assert_eq!(
        app.stock(&mug).await,
        (5, 0),
        "orders whose checkout could not open give their stock back"
    );
    // A refusal is named as one; an answer that cannot be read is not a refusal.
    let invalid = StripeDouble::error("invalid_request_error", "parameter_invalid", "Invalid currency");
    double.fail_next("/v1/checkout/sessions", vec![(400, invalid)]);
    let refused = app.post("/api/v1/orders", Some(&buyer.token), &cart).await;
    refused.assert_problem(502, "gateway_refused");
    assert!(refused.body["detail"].as_str().is_some_and(|d| d.contains("refused")));
    double.fail_next("/v1/checkout/sessions", vec![(200, json!("not a checkout session"))]);
    let garbled = app.post("/api/v1/orders", Some(&buyer.token), &cart).await;
    garbled.assert_problem(502, "gateway_bad_response");
    assert!(
        garbled.body["detail"]
            .as_str()
            .is_some_and(|d| !d.contains("refused") && d.contains("Idempotency-Key")),
        "{}",
        garbled.text
    );
    double.fail_next(
        "/v1/checkout/sessions",
        vec![(
            401,
            StripeDouble::error("invalid_request_error", "api_key_expired", "Expired API Key provided"),
        )],
    );
    app.post("/api/v1/orders", Some(&buyer.token), &cart)
        .await
        .assert_problem(502, "gateway_misconfigured");
    assert_eq!(app.stock(&mug).await, (5, 0));
    let unsigned = app
        .send_raw(
            Method::POST,
            "/api/v1/webhooks/stripe",
            None,
            "application/json",
            b"{}".to_vec(),
            &[],
        )
        .await;
    unsigned.assert_problem(400, "invalid_signature");
    let body = event("evt_x", "checkout.session.completed", json!({"id": "cs_x"}));
    deliver_stripe(&app, &body, "whsec_not_ours")
        .await
        .assert_problem(400, "invalid_signature");
}

async fn a_stripe_top_up_credits_the_wallet_once(app: TestApp) {
    let (app, double) = with_stripe(app.backend, &[]).await;
    let ada = app.user("customer").await;
    let payment = top_up(&app, &ada, "USD", "25.50").await;
    assert_eq!(
        (payment["provider"].as_str(), payment["status"].as_str()),
        (Some("stripe"), Some("pending"))
    );
    let session = double.session(&session_id(&payment)).expect("the double holds the session");
    assert_eq!(
        (session["amount_total"].as_i64(), session["currency"].as_str()),
        (Some(2550), Some("usd"))
    );
    let created = double
        .requests()
        .into_iter()
        .find(|r| r.path == "/v1/checkout/sessions")
        .expect("a Checkout Session at Stripe");
    assert!(created.idempotency_key.is_some(), "Stripe writes carry an idempotency key");
    assert_eq!(app.balance(&ada).await, "0.00", "nothing is credited before Stripe confirms");

    let body = event("evt_topup", "checkout.session.completed", paid_session(&session, "pi_topup"));
    let outcomes = deliver_stripe_concurrently(&app, &body, 3).await;
    assert_eq!(outcomes.iter().filter(|o| **o == "applied").count(), 1, "{outcomes:?}");
    assert_eq!(app.balance(&ada).await, "25.50");
    let path = format!("/api/v1/payments/{}", payment["id"].as_str().unwrap_or_default());
    assert_eq!(app.get(&path, Some(&ada.token)).await.assert_status(200)["status"], "succeeded");
    let stranger = app.user("customer").await;
    app.get(&path, Some(&stranger.token)).await.assert_problem(404, "not_found");
    app.assert_ledger_ok().await;
}

async fn a_key_still_in_use_is_refused_until_its_request_ends(app: TestApp) {
    let (app, double) = with_stripe(app.backend, &[]).await;
    let (buyer, mug, cart) = card_cart_for_one_mug(&app).await;
    // Stripe fails twice, so the first request waits in the adapter's back-off holding its key.
    let down = StripeDouble::error("api_error", "api_error", "Something went wrong");
    double.fail_next("/v1/checkout/sessions", vec![(500, down.clone()), (500, down)]);
    let first = app.post_idempotent("/api/v1/orders", &buyer.token, &cart, "card-order-1");
    let second = async {
        eventually("the first request to reach Stripe", || async {
            double.requests().iter().any(|r| r.path == "/v1/checkout/sessions")
        })
        .await;
        app.post_idempotent("/api/v1/orders", &buyer.token, &cart, "card-order-1").await
    };
    let (first, second) = tokio::join!(first, second);
    first.assert_status(201);
    second.assert_problem(409, "idempotency_key_in_use");
    assert!(second.header("retry-after").is_some(), "the client is told when to try again");
    let again = app.post_idempotent("/api/v1/orders", &buyer.token, &cart, "card-order-1").await;
    assert_eq!((again.status, again.text == first.text), (201, true), "once done, the key replays");
    let attempts: Vec<_> = double
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v1/checkout/sessions")
        .map(|r| r.idempotency_key)
        .collect();
    assert_eq!(attempts.len(), 3, "two failures and the success");
    assert!(
        attempts.iter().all(|k| k.is_some() && *k == attempts[0]),
        "Stripe retries reuse one key: {attempts:?}"
    );
    assert_eq!(app.stock(&mug).await, (4, 1), "one order holds one unit");
}

const MONNIFY_KEY: &str = "MK_TEST_E2E";
const MONNIFY_SECRET: &str = "monnify-client-secret";

async fn with_monnify(backend: Backend) -> (TestApp, MonnifyDouble) {
    with_monnify_and(backend, &[], ServerClock::System).await
}

async fn with_monnify_and(backend: Backend, extra: &[(&str, &str)], clock: ServerClock) -> (TestApp, MonnifyDouble) {
    let double = MonnifyDouble::start(MONNIFY_KEY, MONNIFY_SECRET)
        .await
        .expect("the Monnify double starts");
    let base = double.url();
    let mut vars = vec![
        ("MONNIFY_API_KEY", MONNIFY_KEY),
        ("MONNIFY_SECRET_KEY", MONNIFY_SECRET),
        ("MONNIFY_CONTRACT_CODE", "C1"),
        ("MONNIFY_BASE_URL", base.as_str()),
    ];
    vars.extend_from_slice(extra);
    (TestApp::spawn_on(backend, &vars, clock).await, double)
}

async fn deliver_monnify(app: &TestApp, body: &str) -> Reply {
    let signature = adapter_monnify::sign(MONNIFY_SECRET, body.as_bytes());
    app.send_raw(
        Method::POST,
        "/api/v1/webhooks/monnify",
        None,
        "application/json",
        body.as_bytes().to_vec(),
        &[("monnify-signature", &signature)],
    )
    .await
}

async fn a_monnify_top_up_credits_the_naira_wallet_once_it_is_confirmed(app: TestApp) {
    let (app, double) = with_monnify(app.backend).await;
    let ada = app.user("customer").await;
    let payment = top_up(&app, &ada, "NGN", "2500.00").await;
    assert_eq!(
        (payment["provider"].as_str(), payment["currency"].as_str()),
        (Some("monnify"), Some("NGN"))
    );
    let transaction = double
        .transaction_for(payment["id"].as_str().unwrap_or_default())
        .expect("initialised at Monnify");
    assert_eq!(transaction.amount, "2500.00");
    // A correctly signed success that Monnify's status API does not confirm is refused.
    let premature = double.pay(&transaction.transaction_reference, "PAID").expect("body");
    double.pay(&transaction.transaction_reference, "PENDING");
    deliver_monnify(&app, &premature).await.assert_problem(422, "payment_not_confirmed");
    assert_eq!(app.get("/api/v1/wallets/NGN", Some(&ada.token)).await.body["balance"], "0.00");
    let paid = double.pay(&transaction.transaction_reference, "PAID").expect("body");
    assert_eq!(deliver_monnify(&app, &paid).await.assert_status(200)["outcome"], "applied");
    assert_eq!(deliver_monnify(&app, &paid).await.assert_status(200)["outcome"], "duplicate");
    assert_eq!(app.get("/api/v1/wallets/NGN", Some(&ada.token)).await.body["balance"], "2500.00");
    let forged = app
        .send_raw(
            Method::POST,
            "/api/v1/webhooks/monnify",
            None,
            "application/json",
            paid.clone().into_bytes(),
            &[("monnify-signature", "00")],
        )
        .await;
    forged.assert_problem(400, "invalid_signature");
    // Dollars are not Monnify's: without another gateway they cannot be topped up.
    app.post("/api/v1/wallets/USD/top-ups", Some(&ada.token), &json!({"amount": "5.00"}))
        .await
        .assert_problem(422, "no_gateway");
    app.assert_ledger_ok().await;
}

async fn a_monnify_order_is_refunded_through_monnify(app: TestApp) {
    let (app, double) = with_monnify(app.backend).await;
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
    let order = app
        .post(
            "/api/v1/orders",
            Some(&buyer.token),
            &json!({"items": [{"product_id": fabric, "quantity": 1}], "payment_method": "card"}),
        )
        .await;
    let order = order.assert_status(201).clone();
    let transaction = double
        .transaction_for(order["payment"]["id"].as_str().unwrap_or_default())
        .expect("initialised");
    let paid = double.pay(&transaction.transaction_reference, "PAID").expect("body");
    assert_eq!(deliver_monnify(&app, &paid).await.assert_status(200)["outcome"], "applied");
    let path = format!("/api/v1/orders/{}", order["id"].as_str().unwrap_or_default());
    assert_eq!(app.get(&path, Some(&buyer.token)).await.body["status"], "paid");
    assert_eq!(
        app.get("/api/v1/wallets/NGN", Some(&merchant.token)).await.body["balance"],
        "4500.00"
    );

    let refund = app
        .post(&format!("{path}/refunds"), Some(&merchant.token), &json!({}))
        .await
        .assert_status(201)["refunds"][0]
        .clone();
    assert_eq!(refund["status"], "pending");
    let sent = double.refunds();
    assert_eq!(
        (sent[0]["transactionReference"].as_str(), sent[0]["refundAmount"].as_str()),
        (Some(transaction.transaction_reference.as_str()), Some("4500.00"))
    );
    let completed = MonnifyDouble::refund_event(
        refund["id"].as_str().unwrap_or_default(),
        &transaction.transaction_reference,
        "4500.00",
        true,
    );
    assert_eq!(deliver_monnify(&app, &completed).await.assert_status(200)["outcome"], "applied");
    assert_eq!(deliver_monnify(&app, &completed).await.assert_status(200)["outcome"], "duplicate");
    let details = app.get(&path, Some(&buyer.token)).await;
    assert_eq!(
        (details.body["status"].as_str(), details.body["refunds"][0]["status"].as_str()),
        (Some("refunded"), Some("succeeded"))
    );
    assert_eq!(app.get("/api/v1/wallets/NGN", Some(&merchant.token)).await.body["balance"], "0.00");
    app.assert_ledger_ok().await;
}

async fn an_abandoned_monnify_top_up_expires_and_a_late_payment_still_credits(app: TestApp) {
    // The job runs when the test says, on a clock the test moves.
    let settings = [("CHECKOUT_TTL_SECS", "1"), ("JOB_INTERVAL_MS", "3600000")];
    let (app, double) = with_monnify_and(app.backend, &settings, ServerClock::Manual).await;
    let ada = app.user("customer").await;
    let payment = top_up(&app, &ada, "NGN", "1500.00").await;
    let path = format!("/api/v1/payments/{}", payment["id"].as_str().unwrap_or_default());
    app.advance(std::time::Duration::from_millis(1_100));
    app.run_jobs().await;
    let expired = app.get(&path, Some(&ada.token)).await;
    assert_eq!(expired.assert_status(200)["status"], "expired", "{}", expired.text);
    assert_eq!(app.get("/api/v1/wallets/NGN", Some(&ada.token)).await.body["balance"], "0.00");

    // The payer finished on Monnify's page after all: the money is theirs, so it is credited.
    let transaction = double
        .transaction_for(payment["id"].as_str().unwrap_or_default())
        .expect("initialised at Monnify");
    let paid = double.pay(&transaction.transaction_reference, "PAID").expect("body");
    assert_eq!(deliver_monnify(&app, &paid).await.assert_status(200)["outcome"], "late_success");
    assert_eq!(deliver_monnify(&app, &paid).await.assert_status(200)["outcome"], "duplicate");
    assert_eq!(app.get("/api/v1/wallets/NGN", Some(&ada.token)).await.body["balance"], "1500.00");
    app.assert_ledger_ok().await;
}
