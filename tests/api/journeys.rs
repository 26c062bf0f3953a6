//! Whole journeys through the API: money in, purchases, fulfilment, refunds, transfers, calls.

use serde_json::{Value, json};

use crate::helpers::{SIMULATOR_SECRET, ServerClock, TestApp};
use crate::on_every_backend;

on_every_backend!(
    a_customer_tops_up_buys_from_two_merchants_and_is_refunded,
    a_card_order_is_paid_by_its_webhook_exactly_once,
    a_declined_card_keeps_the_stock_until_the_deadline_then_releases_it,
    an_abandoned_card_checkout_expires_and_releases_the_stock,
    a_transfer_moves_money_between_two_users,
    a_call_is_charged_per_started_minute,
);

async fn a_customer_tops_up_buys_from_two_merchants_and_is_refunded(app: TestApp) {
    let buyer = app.user("customer").await;
    let (ann, bob) = (app.user("merchant").await, app.user("merchant").await);

    let payment = app
        .post("/api/v1/wallets/USD/top-ups", Some(&buyer.token), &json!({"amount": "100.00"}))
        .await;
    let payment = payment.assert_status(201).clone();
    assert_eq!(payment["status"], "pending");
    assert_eq!(app.balance(&buyer).await, "0.00", "nothing is credited before the gateway confirms");
    app.press(payment["checkout_url"].as_str().expect("checkout url"), "pay").await;
    assert_eq!(app.balance(&buyer).await, "100.00");
    let settled = app
        .get(
            &format!("/api/v1/payments/{}", payment["id"].as_str().unwrap_or_default()),
            Some(&buyer.token),
        )
        .await;
    assert_eq!(settled.assert_status(200)["status"], "succeeded");

    let mug = app.product(&ann, "Mug", "12.50", 10).await;
    let pen = app.product(&bob, "Pen", "3.25", 10).await;
    let cart = json!({"items": [{"product_id": mug, "quantity": 2}, {"product_id": pen, "quantity": 4}], "payment_method": "wallet"});
    let order = app.post("/api/v1/orders", Some(&buyer.token), &cart).await;
    assert_eq!(order.status, 201, "{}", order.text);
    let order_id = order.body["id"].as_str().expect("order id").to_owned();
    assert_eq!(
        (order.body["status"].as_str(), order.body["total"].as_str()),
        (Some("paid"), Some("38.00"))
    );
    assert_eq!(order.header("location"), Some(format!("/api/v1/orders/{order_id}").as_str()));
    assert_eq!(
        (app.balance(&buyer).await, app.balance(&ann).await, app.balance(&bob).await),
        ("62.00".into(), "25.00".into(), "13.00".into())
    );
    assert_eq!(app.stock(&mug).await, (8, 0));

    let mine = app.get("/api/v1/orders", Some(&buyer.token)).await;
    assert_eq!(mine.assert_status(200)["items"][0]["id"], json!(order_id));
    for merchant in [&ann, &bob] {
        let sales = app.get("/api/v1/merchant/sales", Some(&merchant.token)).await;
        assert_eq!(sales.assert_status(200)["items"][0]["id"], json!(order_id));
    }
    let history = app.get("/api/v1/wallets/USD/transactions", Some(&buyer.token)).await;
    let latest = &history.assert_status(200)["items"][0];
    assert_eq!(
        (latest["kind"].as_str(), latest["amount"].as_str(), latest["balance_after"].as_str()),
        (Some("purchase"), Some("-38.00"), Some("62.00"))
    );
    assert_eq!(latest["reference"], json!(format!("order:{order_id}")));

    let fulfilled = app
        .post(&format!("/api/v1/orders/{order_id}/fulfill"), Some(&ann.token), &json!({}))
        .await;
    assert_eq!(fulfilled.assert_status(200)["status"], "fulfilled");
    let refund = app
        .post(
            &format!("/api/v1/orders/{order_id}/refunds"),
            Some(&app.admin.token),
            &json!({"reason": "returned"}),
        )
        .await;
    assert_eq!(refund.assert_status(201)["refunds"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        (app.balance(&buyer).await, app.balance(&ann).await, app.balance(&bob).await),
        ("100.00".into(), "0.00".into(), "0.00".into())
    );
    let details = app.get(&format!("/api/v1/orders/{order_id}"), Some(&buyer.token)).await;
    assert_eq!(details.assert_status(200)["status"], "refunded");
    app.assert_ledger_ok().await;
}

/// A `checkout.session.completed` event as the simulated gateway (and Stripe) sends it.
pub fn completed_event(event_id: &str, payment: &Value, amount_minor: i64) -> String {
    let url = payment["checkout_url"].as_str().unwrap_or_default();
    let session_id = url.rsplit('/').next().unwrap_or_default();
    json!({
        "id": event_id,
        "object": "event",
        "type": "checkout.session.completed",
        "created": time::OffsetDateTime::now_utc().unix_timestamp(),
        "data": {"object": {
            "id": session_id,
            "object": "checkout.session",
            "amount_total": amount_minor,
            "currency": "usd",
            "client_reference_id": payment["id"],
            "payment_intent": format!("pi_test_{event_id}"),
            "payment_status": "paid",
            "status": "complete"
        }}
    })
    .to_string()
}

pub fn signed(body: &str) -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    adapter_simulated_gateway::signature::sign(SIMULATOR_SECRET.as_bytes(), now, body.as_bytes())
}

async fn a_card_order_is_paid_by_its_webhook_exactly_once(app: TestApp) {
    let ann = app.user("merchant").await;
    let buyer = app.user("customer").await;
    let mug = app.product(&ann, "Mug", "12.50", 5).await;
    let cart = json!({"items": [{"product_id": mug, "quantity": 2}], "payment_method": "card"});
    let order = app.post("/api/v1/orders", Some(&buyer.token), &cart).await;
    let order = order.assert_status(201).clone();
    assert_eq!(order["status"], "payment_pending");
    assert_eq!(order["payment"]["status"], "pending");
    assert_eq!(app.stock(&mug).await, (3, 2));

    let body = completed_event("evt_test_paid", &order["payment"], 2500);
    let signature = signed(&body);
    for expected in ["applied", "duplicate"] {
        let reply = app
            .send_raw(
                reqwest::Method::POST,
                "/api/v1/webhooks/simulated",
                None,
                "application/json",
                body.clone().into_bytes(),
                &[("stripe-signature", &signature)],
            )
            .await;
        assert_eq!(reply.assert_status(200)["outcome"], json!(expected));
    }
    let order_id = order["id"].as_str().expect("id");
    let details = app.get(&format!("/api/v1/orders/{order_id}"), Some(&buyer.token)).await;
    assert_eq!(details.assert_status(200)["status"], "paid");
    assert_eq!(app.balance(&ann).await, "25.00");
    assert_eq!(app.stock(&mug).await, (3, 0));

    // The customer also presses Pay on the hosted page: a second success, for a paid payment.
    app.press(order["payment"]["checkout_url"].as_str().expect("url"), "pay").await;
    assert_eq!(app.balance(&ann).await, "25.00");
    app.assert_ledger_ok().await;
}

async fn a_declined_card_keeps_the_stock_until_the_deadline_then_releases_it(app: TestApp) {
    let backend = app.backend;
    drop(app);
    // The job runs when the test says, on a clock the test moves.
    let settings = [("CHECKOUT_TTL_SECS", "60"), ("JOB_INTERVAL_MS", "3600000")];
    let app = TestApp::spawn_on(backend, &settings, ServerClock::Manual).await;
    let ann = app.user("merchant").await;
    let buyer = app.user("customer").await;
    let mug = app.product(&ann, "Mug", "12.50", 5).await;
    let cart = json!({"items": [{"product_id": mug, "quantity": 5}], "payment_method": "card"});
    let order = app
        .post("/api/v1/orders", Some(&buyer.token), &cart)
        .await
        .assert_status(201)
        .clone();
    assert_eq!(app.stock(&mug).await, (0, 5));
    let sold_out = app.post("/api/v1/orders", Some(&buyer.token), &cart).await;
    sold_out.assert_problem(409, "out_of_stock");
    app.press(order["payment"]["checkout_url"].as_str().expect("url"), "decline").await;
    let path = format!("/api/v1/orders/{}", order["id"].as_str().unwrap_or_default());
    let details = app.get(&path, Some(&buyer.token)).await.assert_status(200).clone();
    assert_eq!(
        (details["status"].as_str(), details["payment"]["status"].as_str()),
        (Some("payment_pending"), Some("failed")),
        "kept for the buyer to pay again"
    );
    assert_eq!(app.stock(&mug).await, (0, 5));
    app.advance(std::time::Duration::from_secs(50));
    app.run_jobs().await;
    assert_eq!(
        app.get(&path, Some(&buyer.token)).await.assert_status(200)["status"],
        "payment_pending"
    );
    app.advance(std::time::Duration::from_secs(15));
    app.run_jobs().await;
    let details = app.get(&path, Some(&buyer.token)).await.assert_status(200).clone();
    assert_eq!(
        (details["status"].as_str(), details["payment"]["status"].as_str()),
        (Some("cancelled"), Some("failed")),
        "unpaid at the deadline"
    );
    assert_eq!(app.stock(&mug).await, (5, 0));
    assert_eq!(app.balance(&ann).await, "0.00");
    app.assert_ledger_ok().await;
}

async fn an_abandoned_card_checkout_expires_and_releases_the_stock(app: TestApp) {
    // This test needs a server with a short checkout lifetime.
    let backend = app.backend;
    drop(app);
    // The job runs when the test says, on a clock the test moves.
    let settings = [("CHECKOUT_TTL_SECS", "1"), ("JOB_INTERVAL_MS", "3600000")];
    let app = TestApp::spawn_on(backend, &settings, ServerClock::Manual).await;
    let ann = app.user("merchant").await;
    let buyer = app.user("customer").await;
    let mug = app.product(&ann, "Mug", "12.50", 5).await;
    let cart = json!({"items": [{"product_id": mug, "quantity": 3}], "payment_method": "card"});
    let order = app
        .post("/api/v1/orders", Some(&buyer.token), &cart)
        .await
        .assert_status(201)
        .clone();
    let path = format!("/api/v1/orders/{}", order["id"].as_str().unwrap_or_default());
    app.advance(std::time::Duration::from_millis(1_100));
    app.run_jobs().await;
    let expired = app.get(&path, Some(&buyer.token)).await;
    let expired = expired.assert_status(200);
    assert_eq!(expired["status"], "cancelled", "{expired}");
    assert_eq!(expired["payment"]["status"], "expired");
    assert_eq!(app.stock(&mug).await, (5, 0));
}

async fn a_transfer_moves_money_between_two_users(app: TestApp) {
    let alice = app.customer_with("50.00").await;
    let bob = app.user("customer").await;
    let carol = app.user("customer").await;
    let reply = app
        .post(
            "/api/v1/transfers",
            Some(&alice.token),
            &json!({"to_email": bob.email.to_uppercase(), "amount": "20.00", "currency": "USD", "note": "rent"}),
        )
        .await;
    let transfer = reply.assert_status(201).clone();
    assert_eq!(
        (transfer["amount"].as_str(), transfer["to_user_id"].as_str()),
        (Some("20.00"), Some(bob.id.as_str()))
    );
    let path = format!("/api/v1/transfers/{}", transfer["id"].as_str().unwrap_or_default());
    app.get(&path, Some(&bob.token)).await.assert_status(200);
    app.get(&path, Some(&carol.token)).await.assert_problem(404, "not_found");
    assert_eq!(
        (app.balance(&alice).await, app.balance(&bob).await),
        ("30.00".into(), "20.00".into())
    );
    let too_much = app
        .post(
            "/api/v1/transfers",
            Some(&alice.token),
            &json!({"to_user_id": bob.id, "amount": "30.01", "currency": "USD"}),
        )
        .await;
    too_much.assert_problem(422, "insufficient_funds");
    app.assert_ledger_ok().await;
}

async fn a_call_is_charged_per_started_minute(app: TestApp) {
    let caller = app.customer_with("10.00").await;
    let receiver = app.user("merchant").await;
    let call = app
        .post(
            "/api/v1/calls",
            Some(&caller.token),
            &json!({"receiver_id": receiver.id, "rate_per_minute": "0.75", "currency": "USD"}),
        )
        .await;
    let call = call.assert_status(201).clone();
    assert_eq!(
        (call["authorized_minutes"].as_u64(), call["status"].as_str()),
        (Some(13), Some("active"))
    );
    assert_eq!(app.wallet(&caller).await["held"], "9.75");
    let path = format!("/api/v1/calls/{}/end", call["id"].as_str().unwrap_or_default());
    let ended = app.post(&path, Some(&receiver.token), &json!({})).await;
    let ended = ended.assert_status(200);
    assert_eq!(
        (ended["billed_minutes"].as_u64(), ended["charged"].as_str()),
        (Some(1), Some("0.75"))
    );
    let wallet = app.wallet(&caller).await;
    assert_eq!((wallet["balance"].as_str(), wallet["held"].as_str()), (Some("9.25"), Some("0.00")));
    assert_eq!(app.balance(&receiver).await, "0.75");
    app.post(&path, Some(&caller.token), &json!({}))
        .await
        .assert_problem(409, "call_already_ended");
    let broke = app.user("customer").await;
    let refused = app
        .post(
            "/api/v1/calls",
            Some(&broke.token),
            &json!({"receiver_id": receiver.id, "rate_per_minute": "0.75", "currency": "USD"}),
        )
        .await;
    refused.assert_problem(422, "insufficient_funds");
    let calls = app.get("/api/v1/calls", Some(&receiver.token)).await;
    assert_eq!(calls.assert_status(200)["items"].as_array().map(Vec::len), Some(1));
    app.assert_ledger_ok().await;
}
