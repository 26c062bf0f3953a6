//! Every class of bad input gets a clear problem with the right status, never a 500, and writes
//! nothing.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{Reply, TestApp};
use crate::on_every_backend;

on_every_backend!(
    malformed_bodies_are_refused_naming_the_problem,
    bad_amounts_are_refused_and_nothing_moves,
    bad_ids_and_queries_are_refused,
    control_characters_in_any_text_are_refused_naming_the_field,
    forged_cursors_are_refused_on_every_list_route,
    totals_beyond_the_largest_amount_are_refused_before_anything_is_written,
    a_body_that_is_not_a_json_object_is_refused_even_where_every_field_is_optional,
);

async fn malformed_bodies_are_refused_naming_the_problem(app: TestApp) {
    let alice = app.customer_with("50.00").await;
    let bob = app.user("customer").await;
    let path = "/api/v1/transfers";
    let token = Some(alice.token.as_str());
    let mut replies: Vec<Reply> = Vec::new();

    let malformed = app
        .send_raw(Method::POST, path, token, "application/json", b"{\"to_user_id\": ".to_vec(), &[])
        .await;
    malformed.assert_problem(400, "malformed_json");
    replies.push(malformed);

    let trailing = app
        .send_raw(Method::POST, path, token, "application/json", b"{} {}".to_vec(), &[])
        .await;
    trailing.assert_problem(400, "malformed_json");
    replies.push(trailing);

    let wrong_type = app
        .post(path, token, &json!({"to_user_id": bob.id, "amount": 10.5, "currency": "USD"}))
        .await;
    wrong_type.assert_problem(422, "validation_failed");
    assert_eq!(wrong_type.body["errors"][0]["field"], "amount");
    replies.push(wrong_type);

    let missing = app.post(path, token, &json!({"to_user_id": bob.id, "amount": "10.00"})).await;
    missing.assert_problem(422, "validation_failed");
    assert!(
        missing.body["detail"].as_str().is_some_and(|d| d.contains("currency")),
        "{}",
        missing.text
    );
    assert_eq!(missing.body["errors"][0]["field"], "currency", "the missing field, not `body`");
    replies.push(missing);
    let missing_nested = app
        .post(
            "/api/v1/orders",
            token,
            &json!({"items": [{"quantity": 1}], "payment_method": "wallet"}),
        )
        .await;
    missing_nested.assert_problem(422, "validation_failed");
    assert_eq!(missing_nested.body["errors"][0]["field"], "items[0].product_id");
    replies.push(missing_nested);

    let unknown = app
        .post(
            path,
            token,
            &json!({"to_user_id": bob.id, "amount": "10.00", "currency": "USD", "bonus": true}),
        )
        .await;
    unknown.assert_problem(422, "validation_failed");
    assert!(
        unknown.body["detail"].as_str().is_some_and(|d| d.contains("bonus")),
        "{}",
        unknown.text
    );
    replies.push(unknown);

    let not_json = app
        .send_raw(Method::POST, path, token, "text/plain", b"amount=10".to_vec(), &[])
        .await;
    not_json.assert_problem(415, "unsupported_media_type");
    replies.push(not_json);

    let huge = format!("{{\"note\": \"{}\"}}", "x".repeat(200 * 1024));
    let too_large = app
        .send_raw(Method::POST, path, token, "application/json", huge.into_bytes(), &[])
        .await;
    too_large.assert_problem(413, "body_too_large");
    replies.push(too_large);

    let nested = app
        .post(
            "/api/v1/orders",
            token,
            &json!({"items": [{"product_id": "nope", "quantity": 1}], "payment_method": "wallet"}),
        )
        .await;
    nested.assert_problem(422, "validation_failed");
    assert_eq!(nested.body["errors"][0]["field"], "items[0].product_id");
    replies.push(nested);

    let bad_method = app
        .post("/api/v1/orders", token, &json!({"items": [], "payment_method": "cash"}))
        .await;
    bad_method.assert_problem(422, "validation_failed");
    assert_eq!(bad_method.body["errors"][0]["field"], "payment_method");
    replies.push(bad_method);

    assert!(replies.iter().all(|r| r.status < 500));
    assert_eq!(
        (app.balance(&alice).await, app.balance(&bob).await),
        ("50.00".into(), "0.00".into())
    );
}

async fn bad_amounts_are_refused_and_nothing_moves(app: TestApp) {
    let alice = app.customer_with("50.00").await;
    let bob = app.user("customer").await;
    for amount in ["-5.00", "0", "0.00", "1.001", "99999999999999999999", "1e3", "12,50", " 5", ""] {
        let reply = app
            .post(
                "/api/v1/transfers",
                Some(&alice.token),
                &json!({"to_user_id": bob.id, "amount": amount, "currency": "USD"}),
            )
            .await;
        reply.assert_problem(422, "validation_failed");
        assert_eq!(reply.body["errors"][0]["field"], "amount", "{amount}");
    }
    let jpy = app
        .post(
            "/api/v1/transfers",
            Some(&alice.token),
            &json!({"to_user_id": bob.id, "amount": "5.5", "currency": "JPY"}),
        )
        .await;
    jpy.assert_problem(422, "validation_failed");
    let currency = app
        .post(
            "/api/v1/transfers",
            Some(&alice.token),
            &json!({"to_user_id": bob.id, "amount": "5.00", "currency": "XYZ"}),
        )
        .await;
    currency.assert_problem(422, "validation_failed");
    assert_eq!(currency.body["errors"][0]["field"], "currency");
    let both = app
        .post(
            "/api/v1/transfers",
            Some(&alice.token),
            &json!({"amount": "5.00", "currency": "USD"}),
        )
        .await;
    both.assert_problem(422, "validation_failed");
    app.post(
        "/api/v1/wallets/USD/withdrawals",
        Some(&alice.token),
        &json!({"amount": "-1", "destination": "bank"}),
    )
    .await
    .assert_problem(422, "validation_failed");
    app.post("/api/v1/wallets/USD/top-ups", Some(&alice.token), &json!({"amount": "0"}))
        .await
        .assert_problem(422, "validation_failed");
    app.post("/api/v1/wallets/ABC/top-ups", Some(&alice.token), &json!({"amount": "1.00"}))
        .await
        .assert_problem(422, "validation_failed");

    let merchant = app.user("merchant").await;
    let product = |price: &str, stock: i64| json!({"name": "Mug", "price": price, "currency": "USD", "stock": stock});
    for (price, stock) in [("0", 1), ("-1.00", 1), ("1.234", 1), ("5.00", -1)] {
        app.post("/api/v1/products", Some(&merchant.token), &product(price, stock))
            .await
            .assert_problem(422, "validation_failed");
    }
    let mug = app.product(&merchant, "Mug", "5.00", 2).await;
    let cart = |quantity: i64| json!({"items": [{"product_id": mug, "quantity": quantity}], "payment_method": "wallet"});
    for quantity in [0, -1, 10_001] {
        let reply = app.post("/api/v1/orders", Some(&alice.token), &cart(quantity)).await;
        reply.assert_problem(422, "validation_failed");
        assert_eq!(reply.body["errors"][0]["field"], "items[0].quantity");
    }
    app.post("/api/v1/orders", Some(&alice.token), &cart(3))
        .await
        .assert_problem(409, "out_of_stock");
    let unknown = json!({"items": [{"product_id": uuid::Uuid::now_v7(), "quantity": 1}], "payment_method": "wallet"});
    app.post("/api/v1/orders", Some(&alice.token), &unknown)
        .await
        .assert_problem(422, "product_not_found");
    app.post(
        "/api/v1/orders",
        Some(&alice.token),
        &json!({"items": [], "payment_method": "wallet"}),
    )
    .await
    .assert_problem(422, "validation_failed");

    assert_eq!(
        (app.balance(&alice).await, app.balance(&bob).await),
        ("50.00".into(), "0.00".into())
    );
    assert_eq!(app.stock(&mug).await, (2, 0));
    let orders = app.get("/api/v1/orders", Some(&alice.token)).await;
    assert_eq!(orders.assert_status(200)["items"], json!([]));
    app.assert_ledger_ok().await;
}

async fn bad_ids_and_queries_are_refused(app: TestApp) {
    let alice = app.user("customer").await;
    let token = Some(alice.token.as_str());
    app.get("/api/v1/orders/not-a-uuid", token).await.assert_problem(404, "not_found");
    app.get(&format!("/api/v1/orders/{}", uuid::Uuid::now_v7()), token)
        .await
        .assert_problem(404, "not_found");
    app.get(&format!("/api/v1/transfers/{}", uuid::Uuid::now_v7()), token)
        .await
        .assert_problem(404, "not_found");
    app.get(&format!("/api/v1/products/{}", uuid::Uuid::now_v7()), None)
        .await
        .assert_problem(404, "not_found");
    app.get("/api/v1/wallets/EUR", token).await.assert_problem(404, "wallet_not_found");
    app.get("/api/v1/wallets/EURO", token)
        .await
        .assert_problem(422, "validation_failed");
    for query in ["limit=0", "limit=101", "limit=abc", "cursor=garbage"] {
        app.get(&format!("/api/v1/orders?{query}"), token)
            .await
            .assert_problem(400, "invalid_query");
    }
    app.get("/api/v1/admin/orders?status=lost", Some(&app.admin.token))
        .await
        .assert_problem(400, "invalid_query");
    app.get("/api/v1/products?merchant_id=nope", None)
        .await
        .assert_problem(400, "invalid_query");
}

/// A cursor of the form this API hands out, at a moment no store can hold.
fn cursor_at_year_minus_4714() -> String {
    use base64::Engine as _;
    let nanos: i128 = -211_000_000_000 * 1_000_000_000;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("p.{nanos}.{}", uuid::Uuid::nil().simple()))
}

async fn forged_cursors_are_refused_on_every_list_route(app: TestApp) {
    let alice = app.user("merchant").await;
    let cursor = cursor_at_year_minus_4714();
    let admin = Some(app.admin.token.as_str());
    let mine = Some(alice.token.as_str());
    for (path, token) in [
        ("/api/v1/products", None),
        ("/api/v1/merchant/products", mine),
        ("/api/v1/orders", mine),
        ("/api/v1/merchant/sales", mine),
        ("/api/v1/calls", mine),
        ("/api/v1/wallets/USD/transactions", mine),
        ("/api/v1/admin/orders", admin),
        ("/api/v1/admin/audit", admin),
        ("/api/v1/admin/follow-ups", admin),
        ("/api/v1/admin/payments", admin),
        ("/api/v1/admin/refunds", admin),
        ("/api/v1/admin/inventory", admin),
        ("/api/v1/admin/wallets", admin),
        ("/api/v1/admin/journal", admin),
        ("/api/v1/admin/transfers", admin),
        ("/api/v1/admin/calls", admin),
        ("/api/v1/admin/webhook-events", admin),
    ] {
        let reply = app.get(&format!("{path}?cursor={cursor}"), token).await;
        assert_eq!(reply.status, 400, "{path}: {}", reply.text);
        reply.assert_problem(400, "invalid_query");
    }
}

async fn control_characters_in_any_text_are_refused_naming_the_field(app: TestApp) {
    let merchant = app.user("merchant").await;
    let alice = app.customer_with("50.00").await;
    let bob = app.user("customer").await;
    let admin = app.admin.token.clone();
    let mug = app.product(&merchant, "Mug", "5.00", 3).await;
    let cart = json!({"items": [{"product_id": mug, "quantity": 1}], "payment_method": "wallet"});
    let order = app
        .post("/api/v1/orders", Some(&alice.token), &cart)
        .await
        .assert_status(201)
        .clone();
    let order_id = order["id"].as_str().unwrap_or_default().to_owned();
    let (product_path, refund_path) = (format!("/api/v1/products/{mug}"), format!("/api/v1/orders/{order_id}/refunds"));
    let adjust_path = format!("/api/v1/admin/wallets/{}/adjustments", alice.id);
    for hostile in ["nul\u{0}", "escape\u{1b}[2J", "bell\u{7}", "del\u{7f}", "c1\u{85}"] {
        let cases: Vec<(&str, &str, String, serde_json::Value, &str)> = vec![
            (
                "POST",
                "/api/v1/products",
                merchant.token.clone(),
                json!({"name": hostile, "description": "", "price": "1.00", "currency": "USD", "stock": 1}),
                "name",
            ),
            (
                "POST",
                "/api/v1/products",
                merchant.token.clone(),
                json!({"name": "Cup", "description": hostile, "price": "1.00", "currency": "USD", "stock": 1}),
                "description",
            ),
            (
                "PATCH",
                &product_path,
                merchant.token.clone(),
                json!({"description": hostile}),
                "description",
            ),
            (
                "POST",
                "/api/v1/wallets/USD/withdrawals",
                alice.token.clone(),
                json!({"amount": "1.00", "destination": hostile}),
                "destination",
            ),
            (
                "POST",
                "/api/v1/transfers",
                alice.token.clone(),
                json!({"to_user_id": bob.id, "amount": "1.00", "currency": "USD", "note": hostile}),
                "note",
            ),
            ("POST", &refund_path, merchant.token.clone(), json!({"reason": hostile}), "reason"),
            (
                "POST",
                &adjust_path,
                admin.clone(),
                json!({"amount": "1.00", "currency": "USD", "reason": hostile}),
                "reason",
            ),
        ];
        for (method, path, token, body, field) in cases {
            let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
            let reply = app.send(method, path, Some(&token), Some(&body), &[]).await;
            reply.assert_problem(422, "validation_failed");
            assert_eq!(reply.body["errors"][0]["field"], field, "{path}: {}", reply.text);
        }
    }
    // Webhook event ids and types are text too, even when signed.
    let event = json!({"id": "evt_\u{0}", "type": "checkout.session.completed", "data": {"object": {"id": "cs_x"}}}).to_string();
    let reply = app
        .send_raw(
            Method::POST,
            "/api/v1/webhooks/simulated",
            None,
            "application/json",
            event.clone().into_bytes(),
            &[("stripe-signature", &crate::journeys::signed(&event))],
        )
        .await;
    reply.assert_problem(400, "malformed_event");
    // Nothing was written by any of it.
    assert_eq!(
        (app.balance(&alice).await, app.balance(&bob).await),
        ("45.00".into(), "0.00".into())
    );
    assert_eq!(app.balance(&merchant).await, "5.00");
    let products = app.get("/api/v1/merchant/products", Some(&merchant.token)).await;
    assert_eq!(products.assert_status(200)["items"].as_array().map(Vec::len), Some(1));
    app.assert_ledger_ok().await;
}

async fn totals_beyond_the_largest_amount_are_refused_before_anything_is_written(app: TestApp) {
    let merchant = app.user("merchant").await;
    let buyer = app.customer_with("50.00").await;
    let dearest = app.product(&merchant, "Yacht", "10000000000000.00", 10_000).await;
    for method in ["wallet", "card"] {
        for quantity in [2, 10_000] {
            let cart = json!({"items": [{"product_id": dearest, "quantity": quantity}], "payment_method": method});
            let reply = app.post("/api/v1/orders", Some(&buyer.token), &cart).await;
            reply.assert_problem(422, "amount_too_large");
        }
    }
    let too_dear = json!({"name": "More", "description": "", "price": "10000000000000.01", "currency": "USD", "stock": 1});
    app.post("/api/v1/products", Some(&merchant.token), &too_dear)
        .await
        .assert_problem(422, "validation_failed");
    assert_eq!(app.stock(&dearest).await, (10_000, 0));
    let orders = app.get("/api/v1/orders", Some(&buyer.token)).await;
    assert_eq!(orders.assert_status(200)["items"], json!([]));
    app.assert_ledger_ok().await;
}

/// Serde fills a struct whose fields all have defaults from `[]`: schemathesis found
/// `POST /webhook-endpoints/{id}/roll-secret` answering 200 to a `[]` body.
async fn a_body_that_is_not_a_json_object_is_refused_even_where_every_field_is_optional(app: TestApp) {
    let ann = app.user("merchant").await;
    let buyer = app.user("customer").await;
    let mug = app.product(&ann, "Mug", "12.50", 5).await;
    let cart = json!({"items": [{"product_id": mug, "quantity": 1}], "payment_method": "card"});
    let order = app
        .post("/api/v1/orders", Some(&buyer.token), &cart)
        .await
        .assert_status(201)
        .clone();
    let pay = format!("/api/v1/orders/{}/pay", order["id"].as_str().expect("id"));
    for body in ["[]", "[null]", "7", "\"text\"", "null"] {
        let reply = app
            .send_raw(
                Method::POST,
                &pay,
                Some(&buyer.token),
                "application/json",
                body.as_bytes().to_vec(),
                &[],
            )
            .await;
        reply.assert_status(422);
        assert_eq!(reply.body["errors"][0]["field"], json!("body"), "{body}: {}", reply.text);
    }
    let first_url = order["payment"]["checkout_url"].clone();
    let shown = app
        .get(&format!("/api/v1/orders/{}", order["id"].as_str().expect("id")), Some(&buyer.token))
        .await;
    assert_eq!(
        shown.assert_status(200)["payment"]["checkout_url"],
        first_url,
        "no new checkout was opened"
    );
}
