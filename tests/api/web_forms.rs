//! The web UI's forms that move money, through the real app: each carries an idempotency key, so
//! that a double submit or a browser's retry acts once; and a call started by the receiver's
//! e-mail address.

use serde_json::Value;

use crate::helpers::{Backend, PASSWORD, TestApp, User};
use crate::on_every_backend;
use crate::web_client::Browser;

on_every_backend!(wallet_forms_sent_twice_act_once, a_checkout_and_a_refund_sent_twice_act_once);

async fn items(app: &TestApp, path: &str, user: &User) -> Vec<Value> {
    let reply = app.get(path, Some(&user.token)).await;
    reply.assert_status(200)["items"].as_array().expect("items").clone()
}

async fn wallet_forms_sent_twice_act_once(app: TestApp) {
    let alice = app.customer_with("100.00").await;
    let bob = app.user("customer").await;
    let mut browser = Browser::new(&app);
    browser.sign_in(&alice.email, PASSWORD).await;

    // A double click sends the form twice at once: one transfer, and both answers go where the
    // first one went.
    let key = browser.get("/wallet").await.key("/wallet/transfer");
    let fields = [
        ("currency", "USD"),
        ("to", bob.email.as_str()),
        ("amount", "10.00"),
        ("note", "lunch"),
        ("idempotency_key", key.as_str()),
    ];
    let mut twin = browser.clone();
    let (first, second) = tokio::join!(browser.post("/wallet/transfer", &fields), twin.post("/wallet/transfer", &fields));
    for page in [&first, &second] {
        assert_eq!(page.status, 303, "{}", page.body);
        assert_eq!(page.location(), "/wallet?currency=USD&notice=transferred");
    }
    assert_eq!(app.balance(&bob).await, "10.00", "sent once");
    // The browser retries it later (its answer was lost): still once.
    let retried = browser.post("/wallet/transfer", &fields).await;
    assert_eq!(
        (retried.status, retried.location()),
        (303, "/wallet?currency=USD&notice=transferred")
    );
    assert_eq!(app.balance(&bob).await, "10.00");
    // The key with other values is refused, not taken for the first request.
    let mut altered = fields;
    altered[2] = ("amount", "11.00");
    let conflict = browser.post("/wallet/transfer", &altered).await;
    assert_eq!(conflict.status, 409, "{}", conflict.body);
    // The same payment again, from a form rendered again, is another payment.
    let again = browser.get("/wallet").await.key("/wallet/transfer");
    assert_ne!(again, key, "every rendering has its own key");
    let mut fresh = fields;
    fresh[4] = ("idempotency_key", again.as_str());
    assert_eq!(browser.post("/wallet/transfer", &fresh).await.status, 303);
    assert_eq!(app.balance(&bob).await, "20.00");
    // A refusal shows the form again with a fresh key, so the corrected form is a new request.
    let refused_key = browser.get("/wallet").await.key("/wallet/transfer");
    let too_much = [
        ("currency", "USD"),
        ("to", bob.email.as_str()),
        ("amount", "1000.00"),
        ("idempotency_key", refused_key.as_str()),
    ];
    let refused = browser.post("/wallet/transfer", &too_much).await;
    assert_eq!(refused.status, 422);
    assert!(refused.body.contains("id=\"f-send-amount-error\""), "{}", refused.body);
    assert_ne!(refused.key("/wallet/transfer"), refused_key);

    let key = browser.get("/wallet").await.key("/wallet/withdraw");
    let withdrawal = [
        ("currency", "USD"),
        ("amount", "20.00"),
        ("destination", "IBAN DE00 1"),
        ("idempotency_key", key.as_str()),
    ];
    for _ in 0..2 {
        let page = browser.post("/wallet/withdraw", &withdrawal).await;
        assert_eq!((page.status, page.location()), (303, "/wallet?currency=USD&notice=withdrawal"));
    }
    assert_eq!(items(&app, "/api/v1/withdrawals", &alice).await.len(), 1);
    assert_eq!(app.balance(&alice).await, "60.00");

    let key = browser.get("/wallet").await.key("/wallet/top-up");
    let top_up = [("currency", "USD"), ("amount", "30.00"), ("idempotency_key", key.as_str())];
    let first = browser.post("/wallet/top-up", &top_up).await;
    assert_eq!(first.status, 303, "{}", first.body);
    assert!(first.location().contains("/simulator/checkout/"), "{}", first.location());
    let second = browser.post("/wallet/top-up", &top_up).await;
    assert_eq!(second.location(), first.location(), "the same checkout, not a second one");
    assert!(second.set_cookie("pb_return").is_some_and(|c| c.contains("/wallet")));
    assert_eq!(items(&app, "/api/v1/payments", &alice).await.len(), 1);
    app.press(first.location(), "pay").await;
    app.eventually("/api/v1/wallets/USD", &alice.token, |w| w["balance"] == "90.00")
        .await;
    app.assert_ledger_ok().await;
}

async fn a_checkout_and_a_refund_sent_twice_act_once(app: TestApp) {
    let merchant = app.user("merchant").await;
    let buyer = app.customer_with("50.00").await;
    let mug = app.product(&merchant, "Mug", "12.50", 5).await;
    let mut browser = Browser::new(&app);
    browser.sign_in(&buyer.email, PASSWORD).await;
    browser.get("/catalog").await;
    browser.post("/cart/add", &[("product_id", mug.as_str()), ("quantity", "1")]).await;
    let key = browser.get("/cart").await.key("/cart/checkout");
    let fields = [("method", "wallet"), ("idempotency_key", key.as_str())];
    // The retry carries the cart the first submission carried: the browser never saw the answer
    // that emptied it.
    let cookies = browser.cookies.clone();
    let first = browser.post("/cart/checkout", &fields).await;
    assert_eq!(first.status, 303, "{}", first.body);
    assert!(first.location().starts_with("/orders/") && first.location().ends_with("?notice=paid"));
    browser.cookies = cookies;
    let second = browser.post("/cart/checkout", &fields).await;
    assert_eq!((second.status, second.location()), (303, first.location()));
    assert!(
        second.set_cookie("pb_cart").is_some_and(|c| c.contains("Max-Age=0")),
        "the cart emptied again"
    );
    assert_eq!(items(&app, "/api/v1/orders", &buyer).await.len(), 1, "one order");
    assert_eq!(app.balance(&buyer).await, "37.50", "paid once");
    assert_eq!(app.stock(&mug).await, (4, 0));

    let order = first.location().trim_end_matches("?notice=paid").to_owned();
    let mut seller = Browser::new(&app);
    seller.sign_in(&merchant.email, PASSWORD).await;
    let action = format!("{order}/refund");
    let key = seller.get(&order).await.key(&action);
    let refund = [("amount", "5.00"), ("reason", "chipped"), ("idempotency_key", key.as_str())];
    for _ in 0..2 {
        let page = seller.post(&action, &refund).await;
        assert_eq!((page.status, page.location()), (303, format!("{order}?notice=refunded").as_str()));
    }
    let details = app.get(&format!("/api/v1{order}"), Some(&buyer.token)).await;
    let details = details.assert_status(200);
    assert_eq!(details["refunds"].as_array().map(Vec::len), Some(1), "{details}");
    assert_eq!(details["refunded"], "5.00");
    assert_eq!(app.balance(&buyer).await, "42.50", "refunded once");
    app.assert_ledger_ok().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_is_started_by_the_receivers_e_mail_address_and_ended_once() {
    let app = TestApp::spawn(Backend::Memory).await;
    let caller = app.customer_with("10.00").await;
    let receiver = app.user("merchant").await;
    let mut browser = Browser::new(&app);
    browser.sign_in(&caller.email, PASSWORD).await;
    let page = browser.get("/calls").await;
    assert!(page.body.contains("Receiver&#39;s e-mail address") || page.body.contains("Receiver's e-mail address"));
    for (email, error) in [
        ("nobody@example.com", "no user has this e-mail address"),
        ("not an address", "no user has this e-mail address"),
        (caller.email.as_str(), "cannot call themselves"),
    ] {
        let key = browser.get("/calls").await.key("/calls/start");
        let refused = browser
            .post(
                "/calls/start",
                &[("receiver", email), ("rate", "0.50"), ("idempotency_key", key.as_str())],
            )
            .await;
        assert_eq!(refused.status, 422, "{email}: {}", refused.body);
        let at = refused.body.find("id=\"f-receiver-error\"").expect("the receiver's error");
        assert!(refused.body[at..].contains(error), "{email}: {}", &refused.body[at..]);
    }
    let key = browser.get("/calls").await.key("/calls/start");
    let upper = receiver.email.to_uppercase();
    let start = [("receiver", upper.as_str()), ("rate", "0.50"), ("idempotency_key", key.as_str())];
    for _ in 0..2 {
        let started = browser.post("/calls/start", &start).await;
        assert_eq!(
            (started.status, started.location()),
            (303, "/calls?notice=call-started"),
            "{}",
            started.body
        );
    }
    let calls = items(&app, "/api/v1/calls", &caller).await;
    assert_eq!(calls.len(), 1, "started once: {calls:?}");
    assert_eq!(calls[0]["receiver_id"], receiver.id.as_str());

    let action = format!("/calls/{}/end", calls[0]["id"].as_str().expect("id"));
    let key = browser.get("/calls").await.key(&action);
    for _ in 0..2 {
        let ended = browser.post(&action, &[("idempotency_key", key.as_str())]).await;
        assert_eq!((ended.status, ended.location()), (303, "/calls?notice=call-ended"));
    }
    // Ending it again from another form says so, rather than failing.
    let late = browser.post(&action, &[]).await;
    assert_eq!((late.status, late.location()), (303, "/calls?notice=call-already-ended"));
    assert_eq!(app.balance(&caller).await, "9.50", "one started minute, billed once");
    app.assert_ledger_ok().await;
}
