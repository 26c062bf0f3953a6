//! Multi-step money flows end exactly once, are finished by the job, or are visibly stuck; and a
//! lost database never turns into a double effect or a key that refuses retries.

use adapter_postgres::testing::CommitFault;
use adapter_stripe::testing::{StripeDouble, event};
use serde_json::{Value, json};

use crate::gateways::{card_order, deliver_stripe, session_id, with_stripe, with_stripe_on};
use crate::helpers::{Backend, ServerClock, TestApp, User};
use crate::on_every_backend;

on_every_backend!(
    a_refund_retried_after_a_failure_past_the_provider_call_refunds_once,
    a_refund_the_provider_answered_503_is_completed_by_the_job,
    a_cancelled_card_order_cannot_be_paid_on_the_simulator,
    a_cancelled_stripe_order_has_its_session_expired_and_a_paid_one_cannot_be_cancelled,
    a_success_for_a_session_we_did_not_create_is_refused,
    a_simulator_checkout_paid_twice_or_after_it_expired_is_refused_clearly,
    a_refund_made_in_the_stripe_dashboard_reaches_the_books,
    a_deleted_product_is_gone_but_its_orders_keep_it,
);

/// Pays a pending Stripe card order by delivering the session's completion.
async fn pay_stripe_order(app: &TestApp, double: &StripeDouble, order: &Value) {
    let session = double
        .complete_session(&session_id(&order["payment"]), "pi_flows")
        .expect("the double holds the session");
    let body = event(
        &format!("evt_paid_{}", order["id"].as_str().unwrap_or_default()),
        "checkout.session.completed",
        session,
    );
    let reply = deliver_stripe(app, &body, "whsec_current").await;
    assert_eq!(reply.assert_status(200)["outcome"], "applied");
}

fn refund_requests(double: &StripeDouble) -> Vec<Option<String>> {
    double
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == "/v1/refunds")
        .map(|r| r.idempotency_key)
        .collect()
}

async fn a_refund_retried_after_a_failure_past_the_provider_call_refunds_once(app: TestApp) {
    let (app, double) = with_stripe(app.backend, &[("JOB_INTERVAL_MS", "3600000")]).await;
    let (merchant, buyer, _, order, _) = card_order(&app, &double).await;
    pay_stripe_order(&app, &double, &order).await;
    let refunds = format!("/api/v1/orders/{}/refunds", order["id"].as_str().unwrap_or_default());
    let body = json!({"reason": "damaged in transit"});
    // Stripe refunds; then recording its answer fails.
    app.fail_updates_of("refunds", 1).await;
    let failed = app.post_idempotent(&refunds, &merchant.token, &body, "refund-1").await;
    failed.assert_problem(503, "temporarily_unavailable");
    let retried = app.post_idempotent(&refunds, &merchant.token, &body, "refund-1").await;
    let refunded = retried.assert_status(201);
    assert_eq!(refunded["refunds"][0]["status"], "succeeded", "{refunded}");
    let keys = refund_requests(&double);
    assert_eq!(keys.len(), 2, "Stripe was asked again...");
    assert_eq!(keys[0], keys[1], "...under the same idempotency key, so it refunded once");
    let replay = app.post_idempotent(&refunds, &merchant.token, &body, "refund-1").await;
    assert_eq!((replay.status, replay.header("idempotent-replayed")), (201, Some("true")));
    assert_eq!(refund_requests(&double).len(), 2);
    assert_eq!(app.balance(&merchant).await, "0.00");
    let order_path = format!("/api/v1/orders/{}", order["id"].as_str().unwrap_or_default());
    let details = app.get(&order_path, Some(&buyer.token)).await;
    let details = details.assert_status(200);
    assert_eq!(
        (details["status"].as_str(), details["refunded"].as_str()),
        (Some("refunded"), Some("20.00"))
    );
    app.assert_ledger_ok().await;
}

async fn a_refund_the_provider_answered_503_is_completed_by_the_job(app: TestApp) {
    // The job runs when the test says, on a clock the test moves.
    let settings = [("JOB_INTERVAL_MS", "3600000"), ("FOLLOW_UP_FIRST_DELAY_MS", "100")];
    let (app, double) = with_stripe_on(app.backend, &settings, ServerClock::Manual).await;
    let (merchant, buyer, _, order, _) = card_order(&app, &double).await;
    pay_stripe_order(&app, &double, &order).await;
    let unavailable = StripeDouble::error("api_error", "unavailable", "Stripe is down");
    // The adapter itself tries three times; all three meet the outage.
    double.fail_next(
        "/v1/refunds",
        vec![(503, unavailable.clone()), (503, unavailable.clone()), (503, unavailable)],
    );
    let order_id = order["id"].as_str().unwrap_or_default().to_owned();
    let reply = app
        .post(&format!("/api/v1/orders/{order_id}/refunds"), Some(&merchant.token), &json!({}))
        .await;
    let pending = reply.assert_status(201);
    assert_eq!(pending["refunds"][0]["status"], "pending", "{pending}");
    // Past the first retry's delay (100 ms, and up to a fifth more of jitter): the job retries.
    app.advance(std::time::Duration::from_secs(1));
    app.run_jobs().await;
    let done = app.get(&format!("/api/v1/orders/{order_id}"), Some(&buyer.token)).await;
    let done = done.assert_status(200);
    assert_eq!(done["status"], "refunded", "{done}");
    assert_eq!(done["refunds"][0]["status"], "succeeded");
    let keys = refund_requests(&double);
    assert!(keys.len() >= 4, "{keys:?}");
    assert!(keys.iter().all(|k| *k == keys[0]), "every attempt under one key: {keys:?}");
    assert_eq!(app.balance(&merchant).await, "0.00");
    let stuck = app.get("/api/v1/admin/follow-ups", Some(&app.admin.token)).await;
    assert_eq!(stuck.assert_status(200)["items"], json!([]));
    let done = app.get("/api/v1/admin/follow-ups?state=done", Some(&app.admin.token)).await;
    assert_eq!(done.assert_status(200)["items"][0]["kind"], "refund");
    app.assert_ledger_ok().await;
}

/// A buyer's pending card order (on the simulator) for one 10.00 mug of 5.
async fn simulator_order(app: &TestApp) -> (User, String, Value) {
    let merchant = app.user("merchant").await;
    let buyer = app.user("customer").await;
    let mug = app.product(&merchant, "Mug", "10.00", 5).await;
    let cart = json!({"items": [{"product_id": mug, "quantity": 1}], "payment_method": "card"});
    let order = app
        .post("/api/v1/orders", Some(&buyer.token), &cart)
        .await
        .assert_status(201)
        .clone();
    (buyer, mug, order)
}

async fn a_cancelled_card_order_cannot_be_paid_on_the_simulator(app: TestApp) {
    let (buyer, mug, order) = simulator_order(&app).await;
    assert_eq!(app.stock(&mug).await, (4, 1));
    let order_id = order["id"].as_str().unwrap_or_default();
    let cancelled = app
        .post(&format!("/api/v1/orders/{order_id}/cancel"), Some(&buyer.token), &json!({}))
        .await;
    assert_eq!(cancelled.assert_status(200)["status"], "cancelled");
    let checkout_url = order["payment"]["checkout_url"].as_str().unwrap_or_default();
    let pay = app.http.post(format!("{checkout_url}/pay")).send().await.expect("the page answers");
    assert_eq!(pay.status().as_u16(), 410, "the page refuses the payment");
    assert_eq!(app.balance(&buyer).await, "0.00");
    assert_eq!(app.stock(&mug).await, (5, 0));
    app.assert_ledger_ok().await;
}

async fn a_cancelled_stripe_order_has_its_session_expired_and_a_paid_one_cannot_be_cancelled(app: TestApp) {
    let (app, double) = with_stripe(app.backend, &[]).await;
    let (_, buyer, mug, order, _) = card_order(&app, &double).await;
    let order_id = order["id"].as_str().unwrap_or_default().to_owned();
    app.post(&format!("/api/v1/orders/{order_id}/cancel"), Some(&buyer.token), &json!({}))
        .await
        .assert_status(200);
    let session = double.session(&session_id(&order["payment"])).expect("session");
    assert_eq!(session["status"], "expired", "the session is closed before the order is cancelled");
    assert_eq!(app.stock(&mug).await, (5, 0));

    // The payer completed the next one on Stripe's page; its webhook is on the way.
    let cart = json!({"items": [{"product_id": mug, "quantity": 1}], "payment_method": "card"});
    let second = app
        .post("/api/v1/orders", Some(&buyer.token), &cart)
        .await
        .assert_status(201)
        .clone();
    let second_id = second["id"].as_str().unwrap_or_default().to_owned();
    double.complete_session(&session_id(&second["payment"]), "pi_paid_meanwhile");
    app.post(&format!("/api/v1/orders/{second_id}/cancel"), Some(&buyer.token), &json!({}))
        .await
        .assert_problem(409, "checkout_completed");
    let still = app.get(&format!("/api/v1/orders/{second_id}"), Some(&buyer.token)).await;
    assert_eq!(still.assert_status(200)["status"], "payment_pending");
    pay_stripe_order(&app, &double, &second).await;
    let paid = app.get(&format!("/api/v1/orders/{second_id}"), Some(&buyer.token)).await;
    assert_eq!(paid.assert_status(200)["status"], "paid");
    app.assert_ledger_ok().await;
}

async fn a_success_for_a_session_we_did_not_create_is_refused(app: TestApp) {
    let (app, double) = with_stripe(app.backend, &[]).await;
    let (merchant, buyer, _, order, session) = card_order(&app, &double).await;
    let mut foreign = adapter_stripe::testing::paid_session(&session, "pi_foreign");
    foreign["id"] = json!("cs_someone_elses");
    let body = event("evt_foreign", "checkout.session.completed", foreign);
    let reply = deliver_stripe(&app, &body, "whsec_current").await;
    assert_eq!(reply.assert_status(200)["outcome"], "refused");
    let order_path = format!("/api/v1/orders/{}", order["id"].as_str().unwrap_or_default());
    let still = app.get(&order_path, Some(&buyer.token)).await;
    assert_eq!(still.assert_status(200)["status"], "payment_pending");
    assert_eq!(app.balance(&merchant).await, "0.00");
    app.assert_ledger_ok().await;
}

async fn a_simulator_checkout_paid_twice_or_after_it_expired_is_refused_clearly(app: TestApp) {
    let settings = [("CHECKOUT_TTL_SECS", "1"), ("JOB_INTERVAL_MS", "3600000")];
    let app = TestApp::spawn_on(app.backend, &settings, ServerClock::Manual).await;
    let (buyer, _, order) = simulator_order(&app).await;
    let checkout_url = order["payment"]["checkout_url"].as_str().unwrap_or_default().to_owned();
    app.press(&checkout_url, "pay").await;
    let again = app.http.post(format!("{checkout_url}/pay")).send().await.expect("answer");
    assert_eq!(again.status().as_u16(), 409);
    let problem: Value = again.json().await.expect("a problem document");
    assert_eq!(problem["code"], "checkout_closed");
    let order_path = format!("/api/v1/orders/{}", order["id"].as_str().unwrap_or_default());
    assert_eq!(app.get(&order_path, Some(&buyer.token)).await.body["status"], "paid");

    let (_, _, late) = simulator_order(&app).await;
    app.advance(std::time::Duration::from_millis(1_100));
    let late_url = late["payment"]["checkout_url"].as_str().unwrap_or_default();
    let expired = app.http.post(format!("{late_url}/pay")).send().await.expect("answer");
    assert_eq!(expired.status().as_u16(), 410);
    let problem: Value = expired.json().await.expect("a problem document");
    assert_eq!(problem["code"], "checkout_expired");
}

/// A merchant's 5.00 mug (10 in stock) and a buyer with 50.00: a wallet purchase's cart.
async fn wallet_cart(app: &TestApp) -> (User, User, String, Value) {
    let merchant = app.user("merchant").await;
    let buyer = app.customer_with("50.00").await;
    let mug = app.product(&merchant, "Mug", "5.00", 10).await;
    let cart = json!({"items": [{"product_id": mug, "quantity": 1}], "payment_method": "wallet"});
    (merchant, buyer, mug, cart)
}

async fn orders_of(app: &TestApp, buyer: &User) -> usize {
    let orders = app.get("/api/v1/orders", Some(&buyer.token)).await;
    orders.assert_status(200)["items"].as_array().map_or(0, Vec::len)
}

const PROXIED: [(&str, &str); 3] = [
    ("JOB_INTERVAL_MS", "3600000"),
    ("DATABASE_ACQUIRE_TIMEOUT_MS", "1000"),
    ("DATABASE_CONNECT_TIMEOUT_MS", "1000"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purchase_retried_with_its_key_right_after_the_database_comes_back_is_answered() {
    let (app, proxy) = TestApp::behind_proxy(&PROXIED).await;
    let (merchant, buyer, _, cart) = wallet_cart(&app).await;
    // The database goes away as the purchase commits: the COMMIT never arrives.
    proxy.on_commit_after("INSERT INTO orders", CommitFault::Drop, true);
    let lost = app.post_idempotent("/api/v1/orders", &buyer.token, &cart, "buy-1").await;
    assert_eq!(lost.status, 500, "{}", lost.text);
    lost.assert_problem(500, "outcome_unknown");
    assert_eq!(lost.header("retry-after"), None, "a blind retry could buy twice");
    proxy.restore();
    let retried = app.post_idempotent("/api/v1/orders", &buyer.token, &cart, "buy-1").await;
    assert_eq!(retried.assert_status(201)["status"], "paid", "answered at once, not 409");
    assert_eq!(
        (app.balance(&buyer).await, app.balance(&merchant).await),
        ("45.00".into(), "5.00".into())
    );

    // Now the COMMIT does arrive and commits, but the answer is lost with the database.
    proxy.on_commit_after("INSERT INTO orders", CommitFault::LoseAnswer, true);
    let lost = app.post_idempotent("/api/v1/orders", &buyer.token, &cart, "buy-2").await;
    lost.assert_problem(500, "outcome_unknown");
    proxy.restore();
    let retried = app.post_idempotent("/api/v1/orders", &buyer.token, &cart, "buy-2").await;
    assert_eq!((retried.status, retried.header("idempotent-replayed")), (201, Some("true")));
    assert_eq!(app.balance(&buyer).await, "40.00", "bought once");
    assert_eq!(orders_of(&app, &buyer).await, 2);
    app.assert_ledger_ok().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_whose_answer_was_lost_is_resolved_before_the_client_is_answered() {
    let (app, proxy) = TestApp::behind_proxy(&PROXIED).await;
    let (_, buyer, mug, cart) = wallet_cart(&app).await;
    // The purchase commits and the answer is lost; the server asks again and answers 201.
    proxy.on_commit_after("INSERT INTO orders", CommitFault::LoseAnswer, false);
    let bought = app.post("/api/v1/orders", Some(&buyer.token), &cart).await;
    assert_eq!(bought.assert_status(201)["status"], "paid");
    assert_eq!((app.balance(&buyer).await, orders_of(&app, &buyer).await), ("45.00".into(), 1));
    // The COMMIT is lost on the way: nothing happened, which the commit marker proves, and the
    // wallet checkout (grouped, see ARCHITECTURE.md) is run again on its own: bought once.
    proxy.on_commit_after("INSERT INTO orders", CommitFault::Drop, false);
    let dropped = app.post("/api/v1/orders", Some(&buyer.token), &cart).await;
    assert_eq!(dropped.assert_status(201)["status"], "paid");
    assert_eq!((app.balance(&buyer).await, orders_of(&app, &buyer).await), ("40.00".into(), 2));
    assert_eq!(app.stock(&mug).await, (8, 0));
    app.assert_ledger_ok().await;
    assert_eq!(app.backend, Backend::Postgres);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_lost_on_the_way_of_a_transaction_of_its_own_answers_503_and_nothing_happened() {
    let alone = [PROXIED.as_slice(), &[("DATABASE_GROUP_COMMIT_MEMBERS", "1")]].concat();
    let (app, proxy) = TestApp::behind_proxy(&alone).await;
    let (_, buyer, mug, cart) = wallet_cart(&app).await;
    // Not grouped, the checkout is not run again by the server: the client may simply retry.
    proxy.on_commit_after("INSERT INTO orders", CommitFault::Drop, false);
    let dropped = app.post("/api/v1/orders", Some(&buyer.token), &cart).await;
    dropped.assert_problem(503, "temporarily_unavailable");
    assert_eq!((app.balance(&buyer).await, orders_of(&app, &buyer).await), ("50.00".into(), 0));
    assert_eq!(app.stock(&mug).await, (10, 0));
    app.assert_ledger_ok().await;
}

/// Stripe's `charge.refunded` in the current API version: the refunded total, no list.
fn charge_refunded(event_id: &str, refunded_minor: i64) -> String {
    let charge = json!({"id": "ch_flows", "object": "charge", "payment_intent": "pi_flows", "amount": 2000,
                        "amount_refunded": refunded_minor, "currency": "usd", "refunded": refunded_minor == 2000});
    event(event_id, "charge.refunded", charge)
}

async fn a_refund_made_in_the_stripe_dashboard_reaches_the_books(app: TestApp) {
    let (app, double) = with_stripe(app.backend, &[]).await;
    let (merchant, buyer, _, order, _) = card_order(&app, &double).await;
    pay_stripe_order(&app, &double, &order).await;
    let order_path = format!("/api/v1/orders/{}", order["id"].as_str().unwrap_or_default());
    let reply = deliver_stripe(&app, &charge_refunded("evt_dash_1", 700), "whsec_current").await;
    assert_eq!(reply.assert_status(200)["outcome"], "applied");
    assert_eq!(app.balance(&merchant).await, "13.00");
    let details = app.get(&order_path, Some(&buyer.token)).await.assert_status(200).clone();
    assert_eq!(
        (details["status"].as_str(), details["refunded"].as_str()),
        (Some("partially_refunded"), Some("7.00"))
    );
    assert_eq!(details["refunds"][0]["status"], "succeeded");
    assert!(
        details["refunds"][0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("outside the API"))
    );
    // The same total again (a later event, or a redelivery) records nothing more.
    let again = deliver_stripe(&app, &charge_refunded("evt_dash_2", 700), "whsec_current").await;
    assert_eq!(again.assert_status(200)["outcome"], "ignored");
    assert_eq!(app.balance(&merchant).await, "13.00");

    // The merchant has paid their balance out (Stripe pays out nothing here: an admin settles the
    // withdrawal by hand); the rest is refunded in the dashboard.
    let withdrawal = json!({"amount": "13.00", "destination": "IBAN DE00 1234"});
    let manual = app
        .post("/api/v1/wallets/USD/withdrawals", Some(&merchant.token), &withdrawal)
        .await;
    let manual = manual.assert_status(202).clone();
    assert_eq!(
        (manual["status"].as_str(), manual["settlement"].as_str()),
        (Some("approved"), Some("manual"))
    );
    let mark_paid = format!("/api/v1/admin/withdrawals/{}/mark-paid", manual["id"].as_str().unwrap_or_default());
    let paid = app.post(&mark_paid, Some(&app.admin.token), &json!({"reference": "SEPA 1"})).await;
    assert_eq!(paid.assert_status(200)["settled_by"], json!(app.admin.id));
    let reply = deliver_stripe(&app, &charge_refunded("evt_dash_3", 2000), "whsec_current").await;
    assert_eq!(reply.assert_status(200)["outcome"], "applied");
    assert_eq!(app.balance(&merchant).await, "0.00", "a wallet never goes below zero");
    let details = app.get(&order_path, Some(&buyer.token)).await.assert_status(200).clone();
    assert_eq!(
        (details["status"].as_str(), details["refunded"].as_str()),
        (Some("refunded"), Some("20.00"))
    );
    let flagged = app.get("/api/v1/admin/follow-ups", Some(&app.admin.token)).await;
    let flagged = flagged.assert_status(200);
    assert_eq!(flagged["items"][0]["kind"], "recover_shortfall", "{flagged}");
    assert!(
        flagged["items"][0]["last_error"].as_str().is_some_and(|e| e.contains("13.00")),
        "{flagged}"
    );
    app.assert_ledger_ok().await;
}

async fn a_deleted_product_is_gone_but_its_orders_keep_it(app: TestApp) {
    let (merchant, buyer, mug, cart) = wallet_cart(&app).await;
    let order = app
        .post("/api/v1/orders", Some(&buyer.token), &cart)
        .await
        .assert_status(201)
        .clone();
    let path = format!("/api/v1/products/{mug}");
    app.send(reqwest::Method::DELETE, &path, Some(&merchant.token), None, &[])
        .await
        .assert_status(204);
    app.get(&path, Some(&merchant.token)).await.assert_problem(404, "not_found");
    app.send(
        reqwest::Method::PATCH,
        &path,
        Some(&merchant.token),
        Some(&json!({"active": true})),
        &[],
    )
    .await
    .assert_problem(404, "not_found");
    app.send(
        reqwest::Method::PATCH,
        &format!("{path}/stock"),
        Some(&merchant.token),
        Some(&json!({"available": 5})),
        &[],
    )
    .await
    .assert_problem(404, "not_found");
    app.send(reqwest::Method::DELETE, &path, Some(&merchant.token), None, &[])
        .await
        .assert_problem(404, "not_found");
    let mine = app.get("/api/v1/merchant/products", Some(&merchant.token)).await;
    assert_eq!(mine.assert_status(200)["items"], json!([]));
    app.post("/api/v1/orders", Some(&buyer.token), &cart)
        .await
        .assert_problem(422, "product_unavailable");
    let kept = app
        .get(
            &format!("/api/v1/orders/{}", order["id"].as_str().unwrap_or_default()),
            Some(&buyer.token),
        )
        .await;
    assert_eq!(kept.assert_status(200)["items"][0]["name"], "Mug");
    app.assert_ledger_ok().await;
}
