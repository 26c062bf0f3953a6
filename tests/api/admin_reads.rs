//! Admins' reads over HTTP on every backend: each listing filtered and paginated newest first,
//! each item by id, bad filters refused as 400 `invalid_query` naming the field, and customers
//! and merchants refused (403).

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, User};
use crate::on_every_backend;

on_every_backend!(
    admins_list_and_look_up_every_payment_with_filters,
    admins_list_and_look_up_every_refund_with_filters,
    admins_see_every_products_stock_with_filters,
    admins_list_and_look_up_every_wallet_system_accounts_too,
    the_admins_user_list_shows_each_users_wallets,
    the_journal_shows_every_transaction_with_its_postings,
    admins_list_and_look_up_every_transfer_and_call,
    admins_read_every_provider_webhook_received_with_its_outcome,
    admins_find_users_by_status_email_and_period_and_look_one_up,
    admins_filter_orders_by_buyer_merchant_currency_and_period,
);

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item["id"].as_str().expect("id").to_owned())
        .collect()
}

/// Everything a listing holds under `query`, page by page of `limit`; each page but the last says
/// where the next starts.
async fn every_page(app: &TestApp, path: &str, query: &str, limit: usize) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut cursor = String::new();
    loop {
        let url = format!("{path}?{query}&limit={limit}&cursor={cursor}");
        let page = app.get(&url, Some(&app.admin.token)).await.assert_status(200).clone();
        pages.push(ids(&page));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => return pages,
        }
        assert!(pages.len() < 50, "pagination ends");
    }
}

async fn admin_get(app: &TestApp, url: &str) -> Value {
    app.get(url, Some(&app.admin.token)).await.assert_status(200).clone()
}

/// Customers and merchants are refused, and bad filters are 400 naming the field.
async fn assert_admins_only_and_filters_checked(app: &TestApp, path: &str, bad: &[(&str, &str)]) {
    let (customer, merchant) = (app.user("customer").await, app.user("merchant").await);
    for outsider in [&customer, &merchant] {
        app.get(path, Some(&outsider.token)).await.assert_problem(403, "forbidden");
    }
    for (field, value) in bad {
        let reply = app.get(&format!("{path}?{field}={value}"), Some(&app.admin.token)).await;
        reply.assert_problem(400, "invalid_query");
        assert_eq!(reply.body["errors"][0]["field"], json!(field), "{}", reply.text);
    }
    let foreign = app.get(&format!("{path}?cursor=bm90LWEtY3Vyc29y"), Some(&app.admin.token)).await;
    foreign.assert_status(400);
}

async fn top_up(app: &TestApp, user: &User, amount: &str) -> Value {
    let reply = app
        .post("/api/v1/wallets/USD/top-ups", Some(&user.token), &json!({"amount": amount}))
        .await;
    reply.assert_status(201).clone()
}

async fn admins_list_and_look_up_every_payment_with_filters(app: TestApp) {
    let (alice, bob, ann) = (
        app.user("customer").await,
        app.customer_with("5.00").await,
        app.user("merchant").await,
    );
    let first = top_up(&app, &alice, "10.00").await;
    let second = top_up(&app, &alice, "20.00").await;
    app.press(second["checkout_url"].as_str().expect("checkout url"), "pay").await;
    let third = top_up(&app, &alice, "30.00").await;
    let mug = app.product(&ann, "Mug", "4.00", 5).await;
    let cart = json!({"items": [{"product_id": mug, "quantity": 1}], "payment_method": "card"});
    app.post("/api/v1/orders", Some(&bob.token), &cart).await.assert_status(201);
    let bobs_top_up = top_up(&app, &bob, "1.00").await;
    let id = |payment: &Value| payment["id"].as_str().expect("id").to_owned();
    let path = "/api/v1/admin/payments";

    let alices = format!("user={}", alice.id);
    assert_eq!(
        every_page(&app, path, &alices, 2).await,
        vec![vec![id(&third), id(&second)], vec![id(&first)]],
        "newest first, across pages"
    );
    let succeeded = admin_get(&app, &format!("{path}?{alices}&status=succeeded")).await;
    assert_eq!(ids(&succeeded), vec![id(&second)]);
    assert_eq!(succeeded["items"][0]["payer_id"], json!(alice.id));
    let bobs = format!("user={}", bob.id);
    let orders = admin_get(&app, &format!("{path}?{bobs}&kind=order")).await;
    assert_eq!(orders["items"][0]["purpose"], json!("order"));
    assert_eq!(orders["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        ids(&admin_get(&app, &format!("{path}?{bobs}&kind=top_up")).await),
        vec![id(&bobs_top_up)]
    );
    assert_eq!(
        ids(&admin_get(&app, &format!("{path}?{alices}&provider=simulated&currency=USD")).await).len(),
        3
    );
    assert!(ids(&admin_get(&app, &format!("{path}?{alices}&provider=stripe")).await).is_empty());
    assert!(ids(&admin_get(&app, &format!("{path}?{alices}&currency=EUR")).await).is_empty());
    let at = second["created_at"].as_str().expect("created_at");
    let since = admin_get(&app, &format!("{path}?{alices}&from={at}")).await;
    assert_eq!(ids(&since), vec![id(&third), id(&second)], "from is included");
    let before = admin_get(&app, &format!("{path}?{alices}&to={at}")).await;
    assert_eq!(ids(&before), vec![id(&first)], "to is excluded");
    let everyone = every_page(&app, path, "kind=top_up", 3).await.concat();
    assert_eq!(everyone.len(), 4, "every payer's top-ups (funding by adjustment makes no payment)");

    let shown = admin_get(&app, &format!("{path}/{}", id(&second))).await;
    assert_eq!(
        (shown["status"].clone(), shown["amount"].clone()),
        (json!("succeeded"), json!("20.00"))
    );
    app.get(&format!("{path}/{}", uuid::Uuid::now_v7()), Some(&app.admin.token))
        .await
        .assert_problem(404, "not_found");
    app.get(&format!("{path}/{}", id(&first)), Some(&alice.token))
        .await
        .assert_problem(403, "forbidden");
    let bad = [
        ("status", "lost"),
        ("kind", "gift"),
        ("user", "alice"),
        ("provider", "Not%20One"),
        ("currency", "XXX"),
        ("from", "yesterday"),
        ("to", "2026-13-01T00:00:00Z"),
    ];
    assert_admins_only_and_filters_checked(&app, path, &bad).await;
    let backwards = app
        .get(
            &format!("{path}?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z"),
            Some(&app.admin.token),
        )
        .await;
    backwards.assert_problem(400, "invalid_query");
}

/// Refunds every merchant's share of an order, as an admin; the refunds.
async fn refund_order(app: &TestApp, order_id: &str, reason: &str) -> Vec<Value> {
    let reply = app
        .post(
            &format!("/api/v1/orders/{order_id}/refunds"),
            Some(&app.admin.token),
            &json!({"reason": reason}),
        )
        .await;
    reply.assert_status(201)["refunds"].as_array().expect("refunds").clone()
}

async fn admins_list_and_look_up_every_refund_with_filters(app: TestApp) {
    let (ann, bob) = (app.user("merchant").await, app.user("merchant").await);
    let buyer = app.customer_with("100.00").await;
    let (mug, pen) = (
        app.product(&ann, "Mug", "10.00", 5).await,
        app.product(&bob, "Pen", "2.00", 5).await,
    );
    let cart = json!({"items": [{"product_id": mug, "quantity": 1}, {"product_id": pen, "quantity": 1}], "payment_method": "wallet"});
    let order = app
        .post("/api/v1/orders", Some(&buyer.token), &cart)
        .await
        .assert_status(201)
        .clone();
    let by_wallet = refund_order(&app, order["id"].as_str().expect("id"), "returned").await;
    assert_eq!(by_wallet.len(), 2);
    let card_cart = json!({"items": [{"product_id": mug, "quantity": 1}], "payment_method": "card"});
    let card = app
        .post("/api/v1/orders", Some(&buyer.token), &card_cart)
        .await
        .assert_status(201)
        .clone();
    app.press(card["payment"]["checkout_url"].as_str().expect("checkout url"), "pay")
        .await;
    let paid = app
        .eventually(&format!("/api/v1/orders/{}", card["id"].as_str().expect("id")), &buyer.token, |o| {
            o["status"] == "paid"
        })
        .await;
    let by_card = refund_order(&app, paid["id"].as_str().expect("id"), "broken").await;
    assert_eq!(by_card.len(), 1);
    let id = |refund: &Value| refund["id"].as_str().expect("id").to_owned();
    let anns_wallet_refund = by_wallet.iter().find(|r| r["merchant_id"] == json!(ann.id)).expect("ann's");
    let path = "/api/v1/admin/refunds";

    let anns = format!("merchant={}", ann.id);
    assert_eq!(
        every_page(&app, path, &anns, 1).await,
        vec![vec![id(&by_card[0])], vec![id(anns_wallet_refund)]],
        "newest first, across pages"
    );
    let bobs = admin_get(&app, &format!("{path}?merchant={}&status=succeeded&currency=USD", bob.id)).await;
    assert_eq!(bobs["items"][0]["reason"], json!("returned"));
    assert_eq!(bobs["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        ids(&admin_get(&app, &format!("{path}?{anns}&provider=simulated")).await),
        vec![id(&by_card[0])]
    );
    assert!(ids(&admin_get(&app, &format!("{path}?{anns}&currency=EUR")).await).is_empty());
    let at = by_card[0]["created_at"].as_str().expect("created_at");
    assert_eq!(
        ids(&admin_get(&app, &format!("{path}?{anns}&from={at}")).await),
        vec![id(&by_card[0])]
    );
    assert_eq!(
        ids(&admin_get(&app, &format!("{path}?{anns}&to={at}")).await),
        vec![id(anns_wallet_refund)]
    );
    assert_eq!(every_page(&app, path, "", 2).await.concat().len(), 3, "every merchant's");

    let shown = admin_get(&app, &format!("{path}/{}", id(anns_wallet_refund))).await;
    assert_eq!(&shown, anns_wallet_refund);
    app.get(&format!("{path}/{}", uuid::Uuid::now_v7()), Some(&app.admin.token))
        .await
        .assert_problem(404, "not_found");
    app.get(&format!("{path}/{}", id(anns_wallet_refund)), Some(&ann.token))
        .await
        .assert_problem(403, "forbidden");
    let bad = [
        ("status", "lost"),
        ("merchant", "ann"),
        ("provider", "-%2F-"),
        ("currency", "usd1"),
        ("from", "2026-01-01"),
    ];
    assert_admins_only_and_filters_checked(&app, path, &bad).await;
}

async fn admins_see_every_products_stock_with_filters(app: TestApp) {
    let (ann, bob, buyer) = (app.user("merchant").await, app.user("merchant").await, app.user("customer").await);
    let mug = app.product(&ann, "Mug", "4.00", 5).await;
    let pen = app.product(&ann, "Pen", "1.00", 1).await;
    let cup = app.product(&bob, "Cup", "2.00", 10).await;
    let cart = json!({"items": [{"product_id": mug, "quantity": 2}], "payment_method": "card"});
    app.post("/api/v1/orders", Some(&buyer.token), &cart).await.assert_status(201);
    app.send(
        Method::PATCH,
        &format!("/api/v1/products/{pen}"),
        Some(&ann.token),
        Some(&json!({"active": false})),
        &[],
    )
    .await
    .assert_status(200);
    let path = "/api/v1/admin/inventory";
    let product_ids = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|item| item["product_id"].as_str().expect("product_id").to_owned())
            .collect()
    };
    let anns = format!("merchant={}", ann.id);
    let first = admin_get(&app, &format!("{path}?{anns}&limit=1")).await;
    assert_eq!(product_ids(&first), vec![pen.clone()], "newest first");
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let second = admin_get(&app, &format!("{path}?{anns}&limit=1&cursor={cursor}")).await;
    assert_eq!(product_ids(&second), vec![mug.clone()]);
    assert_eq!(second["next_cursor"], Value::Null);
    let stock = &second["items"][0];
    assert_eq!(
        (stock["available"].clone(), stock["reserved"].clone(), stock["active"].clone()),
        (json!(3), json!(2), json!(true)),
        "the card checkout reserved two"
    );
    assert_eq!(
        product_ids(&admin_get(&app, &format!("{path}?{anns}&below=2")).await),
        vec![pen.clone()]
    );
    assert_eq!(
        product_ids(&admin_get(&app, &format!("{path}?{anns}&active=false")).await),
        vec![pen.clone()]
    );
    assert_eq!(
        product_ids(&admin_get(&app, &format!("{path}?merchant={}&active=true", bob.id)).await),
        vec![cup]
    );
    assert!(product_ids(&admin_get(&app, &format!("{path}?below=0")).await).is_empty());
    app.send(Method::DELETE, &format!("/api/v1/products/{pen}"), Some(&ann.token), None, &[])
        .await;
    let archived = admin_get(&app, &format!("{path}?{anns}&below=2")).await;
    assert!(
        archived["items"][0]["archived_at"].is_string(),
        "deleted products stay in the inventory: {archived}"
    );
    assert_admins_only_and_filters_checked(&app, path, &[("merchant", "ann"), ("active", "yes"), ("below", "-1")]).await;
}

async fn admins_list_and_look_up_every_wallet_system_accounts_too(app: TestApp) {
    let bob = app.user("customer").await;
    app.fund(&bob, "12.00", "USD").await;
    app.fund(&bob, "7.00", "EUR").await;
    let path = "/api/v1/admin/wallets";
    let bobs = format!("user={}", bob.id);
    let pages = every_page(&app, path, &bobs, 1).await;
    assert_eq!(pages.len(), 2, "one wallet a page: {pages:?}");
    let euros = admin_get(&app, &format!("{path}?{bobs}&currency=EUR")).await;
    let wallet = &euros["items"][0];
    assert_eq!(vec![wallet["id"].as_str().expect("id").to_owned()], pages[0], "the newest first");
    assert_eq!(
        (wallet["owner"].clone(), wallet["owner_user_id"].clone(), wallet["balance"].clone()),
        (json!("user"), json!(bob.id), json!("7.00"))
    );
    assert_eq!(
        (wallet["held"].clone(), wallet["available"].clone()),
        (json!("0.00"), json!("7.00"))
    );
    let all_euros = admin_get(&app, &format!("{path}?currency=EUR&limit=100")).await;
    let system = all_euros["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|w| w["owner"] == "system")
        .expect("the adjustments account is listed")
        .clone();
    assert_eq!(
        (system["system_account"].clone(), system["balance"].clone()),
        (json!("adjustments"), json!("-7.00"))
    );
    assert_eq!(system["owner_user_id"], Value::Null);

    let id = wallet["id"].as_str().expect("id");
    assert_eq!(&admin_get(&app, &format!("{path}/{id}")).await, wallet);
    let shown = admin_get(&app, &format!("{path}/{}", system["id"].as_str().expect("id"))).await;
    assert_eq!(shown, system);
    app.get(&format!("{path}/{}", uuid::Uuid::now_v7()), Some(&app.admin.token))
        .await
        .assert_problem(404, "not_found");
    app.get(&format!("{path}/{id}"), Some(&bob.token))
        .await
        .assert_problem(403, "forbidden");
    assert_admins_only_and_filters_checked(&app, path, &[("user", "bob"), ("currency", "EURO")]).await;
}

async fn the_admins_user_list_shows_each_users_wallets(app: TestApp) {
    let (bob, carol) = (app.user("customer").await, app.user("customer").await);
    app.fund(&bob, "12.00", "USD").await;
    app.fund(&bob, "7.00", "EUR").await;
    let users = admin_get(&app, "/api/v1/admin/users?role=customer&limit=100").await;
    let of = |user: &User| -> Value {
        users["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|u| u["id"] == json!(user.id))
            .expect("listed")["wallets"]
            .clone()
    };
    let balances: Vec<(Value, Value)> = of(&bob)
        .as_array()
        .expect("wallets")
        .iter()
        .map(|w| (w["currency"].clone(), w["balance"].clone()))
        .collect();
    assert_eq!(balances, vec![(json!("EUR"), json!("7.00")), (json!("USD"), json!("12.00"))]);
    let carols = of(&carol);
    assert!(
        carols.as_array().expect("wallets").iter().all(|w| w["balance"] == "0.00"),
        "each user has only their own: {carols}"
    );
    let me = app.get("/api/v1/auth/me", Some(&bob.token)).await;
    assert!(
        me.assert_status(200).get("wallets").is_none(),
        "only the admins' list carries wallets"
    );
}

async fn the_journal_shows_every_transaction_with_its_postings(app: TestApp) {
    let (alice, bob) = (app.customer_with("10.00").await, app.user("customer").await);
    let transfer = json!({"to_user_id": bob.id, "amount": "3.00", "currency": "USD"});
    app.post("/api/v1/transfers", Some(&alice.token), &transfer)
        .await
        .assert_status(201);
    let wallet = app.wallet(&alice).await["id"].as_str().expect("wallet id").to_owned();
    let path = "/api/v1/admin/journal";
    let alices = format!("wallet={wallet}");
    let pages = every_page(&app, path, &alices, 1).await;
    assert_eq!(pages.len(), 2, "the adjustment and the transfer, one a page");
    let transfers = admin_get(&app, &format!("{path}?{alices}&kind=transfer")).await;
    let moved = &transfers["items"][0];
    assert_eq!(vec![moved["id"].as_str().expect("id").to_owned()], pages[0], "newest first");
    let postings: Vec<(Value, Value, Value)> = moved["postings"]
        .as_array()
        .expect("postings")
        .iter()
        .map(|p| (p["wallet_id"].clone(), p["amount"].clone(), p["balance_after"].clone()))
        .collect();
    assert_eq!(postings.len(), 2);
    assert!(postings.contains(&(json!(wallet), json!("-3.00"), json!("7.00"))), "{postings:?}");
    let adjustments = admin_get(&app, &format!("{path}?{alices}&kind=adjustment")).await;
    assert_eq!(vec![adjustments["items"][0]["id"].as_str().expect("id").to_owned()], pages[1]);
    let at = moved["created_at"].as_str().expect("created_at");
    assert_eq!(ids(&admin_get(&app, &format!("{path}?{alices}&from={at}")).await), pages[0]);
    assert_eq!(ids(&admin_get(&app, &format!("{path}?{alices}&to={at}")).await), pages[1]);

    let id = moved["id"].as_str().expect("id");
    assert_eq!(&admin_get(&app, &format!("{path}/{id}")).await, moved);
    app.get(&format!("{path}/{}", uuid::Uuid::now_v7()), Some(&app.admin.token))
        .await
        .assert_problem(404, "not_found");
    app.get(&format!("{path}/{id}"), Some(&alice.token))
        .await
        .assert_problem(403, "forbidden");
    let bad = [("kind", "gift"), ("wallet", "mine"), ("from", "soon")];
    assert_admins_only_and_filters_checked(&app, path, &bad).await;
}

async fn admins_list_and_look_up_every_transfer_and_call(app: TestApp) {
    let (alice, bob, carol) = (
        app.customer_with("20.00").await,
        app.user("customer").await,
        app.user("merchant").await,
    );
    let send = |to: &User, amount: &str| json!({"to_user_id": to.id, "amount": amount, "currency": "USD"});
    let first = app
        .post("/api/v1/transfers", Some(&alice.token), &send(&bob, "1.00"))
        .await
        .assert_status(201)
        .clone();
    let second = app
        .post("/api/v1/transfers", Some(&bob.token), &send(&alice, "0.50"))
        .await
        .assert_status(201)
        .clone();
    let third = app
        .post("/api/v1/transfers", Some(&alice.token), &send(&carol, "2.00"))
        .await
        .assert_status(201)
        .clone();
    let id = |item: &Value| item["id"].as_str().expect("id").to_owned();
    let path = "/api/v1/admin/transfers";
    let bobs = format!("user={}", bob.id);
    assert_eq!(
        every_page(&app, path, &bobs, 1).await,
        vec![vec![id(&second)], vec![id(&first)]],
        "sent and received, newest first"
    );
    let alices = format!("user={}", alice.id);
    assert_eq!(
        every_page(&app, path, &alices, 2).await.concat(),
        vec![id(&third), id(&second), id(&first)]
    );
    assert!(ids(&admin_get(&app, &format!("{path}?{alices}&currency=EUR")).await).is_empty());
    let at = second["created_at"].as_str().expect("created_at");
    assert_eq!(
        ids(&admin_get(&app, &format!("{path}?{alices}&from={at}")).await),
        vec![id(&third), id(&second)]
    );
    assert_eq!(
        ids(&admin_get(&app, &format!("{path}?{alices}&to={at}&currency=USD")).await),
        vec![id(&first)]
    );
    assert_eq!(&admin_get(&app, &format!("{path}/{}", id(&first))).await, &first);
    app.get(&format!("{path}/{}", uuid::Uuid::now_v7()), Some(&app.admin.token))
        .await
        .assert_problem(404, "not_found");
    app.get(&format!("{path}/{}", id(&first)), Some(&alice.token))
        .await
        .assert_problem(403, "forbidden");
    assert_admins_only_and_filters_checked(&app, path, &[("user", "me"), ("currency", "dollars"), ("to", "later")]).await;

    let call = |receiver: &User| json!({"receiver_id": receiver.id, "rate_per_minute": "0.10", "currency": "USD"});
    let ended = app
        .post("/api/v1/calls", Some(&alice.token), &call(&carol))
        .await
        .assert_status(201)
        .clone();
    app.post(&format!("/api/v1/calls/{}/end", id(&ended)), Some(&carol.token), &json!({}))
        .await
        .assert_status(200);
    let active = app
        .post("/api/v1/calls", Some(&bob.token), &call(&alice))
        .await
        .assert_status(201)
        .clone();
    let path = "/api/v1/admin/calls";
    assert_eq!(
        every_page(&app, path, &alices, 1).await,
        vec![vec![id(&active)], vec![id(&ended)]],
        "made and received, newest first"
    );
    assert_eq!(
        ids(&admin_get(&app, &format!("{path}?{alices}&status=ended")).await),
        vec![id(&ended)]
    );
    assert_eq!(
        ids(&admin_get(&app, &format!("{path}?{bobs}&status=active")).await),
        vec![id(&active)]
    );
    let started = active["started_at"].as_str().expect("started_at");
    assert_eq!(
        ids(&admin_get(&app, &format!("{path}?{alices}&to={started}")).await),
        vec![id(&ended)]
    );
    let shown = admin_get(&app, &format!("{path}/{}", id(&ended))).await;
    assert_eq!(shown["status"], json!("ended"));
    app.get(&format!("{path}/{}", uuid::Uuid::now_v7()), Some(&app.admin.token))
        .await
        .assert_problem(404, "not_found");
    app.get(&format!("{path}/{}", id(&active)), Some(&bob.token))
        .await
        .assert_problem(403, "forbidden");
    assert_admins_only_and_filters_checked(&app, path, &[("status", "ringing"), ("user", "bob"), ("from", "now")]).await;
}

/// Posts a signed simulator event; its outcome.
async fn deliver(app: &TestApp, body: &str) -> String {
    let signature = crate::journeys::signed(body);
    let reply = app
        .send_raw(
            Method::POST,
            "/api/v1/webhooks/simulated",
            None,
            "application/json",
            body.as_bytes().to_vec(),
            &[("stripe-signature", &signature)],
        )
        .await;
    reply.assert_status(200)["outcome"].as_str().expect("outcome").to_owned()
}

async fn admins_read_every_provider_webhook_received_with_its_outcome(app: TestApp) {
    let ann = app.user("merchant").await;
    let buyer = app.user("customer").await;
    let mug = app.product(&ann, "Mug", "10.00", 5).await;
    let cart = json!({"items": [{"product_id": mug, "quantity": 1}], "payment_method": "card"});
    let order = app
        .post("/api/v1/orders", Some(&buyer.token), &cart)
        .await
        .assert_status(201)
        .clone();
    let paid = crate::journeys::completed_event("evt_inbox_paid", &order["payment"], 1000);
    assert_eq!(deliver(&app, &paid).await, "applied");
    assert_eq!(deliver(&app, &paid).await, "duplicate");
    let other = json!({"id": "evt_inbox_other", "type": "customer.created", "data": {"object": {}}}).to_string();
    assert_eq!(deliver(&app, &other).await, "ignored");
    let path = "/api/v1/admin/webhook-events";
    let payment_id = order["payment"]["id"].as_str().expect("payment id");

    let all = admin_get(&app, &format!("{path}?provider=simulated")).await;
    let events: Vec<(&str, &str)> = all["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|event| {
            (
                event["event_id"].as_str().expect("event id"),
                event["outcome"].as_str().expect("outcome"),
            )
        })
        .collect();
    assert_eq!(
        events,
        vec![("evt_inbox_other", "ignored"), ("evt_inbox_paid", "applied")],
        "newest first, a redelivery listed once"
    );
    let of_payment = admin_get(&app, &format!("{path}?payment={payment_id}")).await;
    assert_eq!(of_payment["items"].as_array().map(Vec::len), Some(1));
    let received = &of_payment["items"][0];
    assert_eq!(received["event_type"], json!("checkout.session.completed"));
    assert_eq!(received["payment_id"], json!(payment_id));
    assert_eq!(received["provider_reference"], json!("pi_test_evt_inbox_paid"));
    let ignored = admin_get(&app, &format!("{path}?outcome=ignored&event_type=customer.created")).await;
    assert_eq!(ignored["items"][0]["outcome_detail"], json!("event type not handled"));
    assert!(ids(&admin_get(&app, &format!("{path}?provider=stripe")).await).is_empty());
    let at = received["received_at"].as_str().expect("received_at");
    let before = admin_get(&app, &format!("{path}?provider=simulated&to={at}")).await;
    assert!(ids(&before).is_empty(), "to is excluded");
    assert_eq!(every_page(&app, path, "provider=simulated", 1).await.len(), 2, "one per page");

    let id = received["id"].as_str().expect("id");
    let shown = admin_get(&app, &format!("{path}/{id}")).await;
    assert_eq!(shown["event_id"], json!("evt_inbox_paid"));
    app.get(&format!("{path}/{}", uuid::Uuid::now_v7()), Some(&app.admin.token))
        .await
        .assert_problem(404, "not_found");
    app.get(&format!("{path}/{id}"), Some(&buyer.token))
        .await
        .assert_problem(403, "forbidden");
    let bad = [
        ("provider", "Not%20One"),
        ("outcome", "lost"),
        ("payment", "p1"),
        ("event_type", "%07bell"),
        ("from", "yesterday"),
    ];
    assert_admins_only_and_filters_checked(&app, path, &bad).await;
}

async fn admins_find_users_by_status_email_and_period_and_look_one_up(app: TestApp) {
    let (bob, carol) = (app.user("customer").await, app.user("customer").await);
    app.fund(&bob, "12.00", "USD").await;
    let suspend = format!("/api/v1/admin/users/{}/suspend", carol.id);
    app.post(&suspend, Some(&app.admin.token), &json!({"reason": "chargebacks"}))
        .await
        .assert_status(200);
    let path = "/api/v1/admin/users";
    let customers = |query: &str| format!("{path}?role=customer&{query}");
    assert_eq!(ids(&admin_get(&app, &customers("status=suspended")).await), vec![carol.id.clone()]);
    assert!(!ids(&admin_get(&app, &customers("status=active")).await).contains(&carol.id));
    let by_email = admin_get(&app, &format!("{path}?email={}", bob.email.to_uppercase())).await;
    assert_eq!(ids(&by_email), vec![bob.id.clone()], "the address, whatever its case");
    let shown = admin_get(&app, &format!("{path}/{}", bob.id)).await;
    assert_eq!(
        (shown["email"].clone(), shown["wallets"][0]["balance"].clone()),
        (json!(bob.email), json!("12.00"))
    );
    let at = shown["created_at"].as_str().expect("created_at");
    assert!(
        !ids(&admin_get(&app, &customers(&format!("to={at}"))).await).contains(&bob.id),
        "to is excluded"
    );
    assert!(
        ids(&admin_get(&app, &customers(&format!("from={at}"))).await).contains(&bob.id),
        "from is included"
    );
    app.get(&format!("{path}/{}", uuid::Uuid::now_v7()), Some(&app.admin.token))
        .await
        .assert_problem(404, "not_found");
    app.get(&format!("{path}/{}", bob.id), Some(&bob.token))
        .await
        .assert_problem(403, "forbidden");
    let bad = [
        ("role", "boss"),
        ("status", "asleep"),
        ("email", "not-an-address"),
        ("from", "yesterday"),
    ];
    assert_admins_only_and_filters_checked(&app, path, &bad).await;
}

async fn admins_filter_orders_by_buyer_merchant_currency_and_period(app: TestApp) {
    let (ann, bob) = (app.user("merchant").await, app.user("merchant").await);
    let (carol, dave) = (app.customer_with("100.00").await, app.customer_with("100.00").await);
    let mug = app.product(&ann, "Mug", "4.00", 10).await;
    let pen = app.product(&bob, "Pen", "1.00", 10).await;
    let buy = |buyer: &User, product: &str| {
        let (app, token) = (&app, buyer.token.clone());
        let cart = json!({"items": [{"product_id": product, "quantity": 1}], "payment_method": "wallet"});
        async move {
            let order = app.post("/api/v1/orders", Some(&token), &cart).await;
            order.assert_status(201)["id"].as_str().expect("id").to_owned()
        }
    };
    let first = buy(&carol, &mug).await;
    let second = buy(&carol, &pen).await;
    let third = buy(&dave, &mug).await;
    let path = "/api/v1/admin/orders";
    assert_eq!(
        ids(&admin_get(&app, &format!("{path}?buyer={}", carol.id)).await),
        vec![second.clone(), first.clone()]
    );
    assert_eq!(
        ids(&admin_get(&app, &format!("{path}?merchant={}", ann.id)).await),
        vec![third.clone(), first.clone()]
    );
    let both = format!("{path}?merchant={}&buyer={}&status=paid&currency=USD", ann.id, dave.id);
    assert_eq!(ids(&admin_get(&app, &both).await), vec![third.clone()]);
    assert!(ids(&admin_get(&app, &format!("{path}?buyer={}&currency=EUR", carol.id)).await).is_empty());
    let shown = app.get(&format!("/api/v1/orders/{second}"), Some(&app.admin.token)).await;
    let at = shown.assert_status(200)["created_at"].as_str().expect("created_at").to_owned();
    let since = admin_get(&app, &format!("{path}?buyer={}&from={at}", carol.id)).await;
    assert_eq!(ids(&since), vec![second.clone()], "from is included");
    let before = admin_get(&app, &format!("{path}?buyer={}&to={at}", carol.id)).await;
    assert_eq!(ids(&before), vec![first], "to is excluded");
    let bad = [
        ("status", "lost"),
        ("buyer", "carol"),
        ("merchant", "ann"),
        ("currency", "XXX"),
        ("to", "2026-13-01T00:00:00Z"),
    ];
    assert_admins_only_and_filters_checked(&app, path, &bad).await;
}
