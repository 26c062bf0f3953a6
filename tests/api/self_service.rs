//! A buyer looks after their own money: their payments and top-ups with status, and a history
//! that shows each movement's balance before and after.

use serde_json::json;

use crate::helpers::TestApp;
use crate::on_every_backend;

on_every_backend!(
    a_buyer_lists_their_payments_by_status_and_kind_and_reads_balances_before_and_after,
    a_user_lists_their_own_withdrawals_newest_first,
    an_admin_lists_users_by_role_and_nobody_else_can,
);

async fn a_buyer_lists_their_payments_by_status_and_kind_and_reads_balances_before_and_after(app: TestApp) {
    let buyer = app.user("customer").await;
    let stranger = app.user("customer").await;
    let paid = app
        .post("/api/v1/wallets/USD/top-ups", Some(&buyer.token), &json!({"amount": "30.00"}))
        .await;
    let paid = paid.assert_status(201).clone();
    app.press(paid["checkout_url"].as_str().expect("checkout url"), "pay").await;
    let open = app
        .post("/api/v1/wallets/USD/top-ups", Some(&buyer.token), &json!({"amount": "5.00"}))
        .await;
    let open = open.assert_status(201).clone();

    let listed = app.get("/api/v1/payments", Some(&buyer.token)).await;
    let items = listed.assert_status(200)["items"].as_array().expect("items").clone();
    let summary: Vec<(String, String, String)> = items
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap_or_default().to_owned(),
                p["status"].to_string(),
                p["purpose"].to_string(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                open["id"].as_str().unwrap_or_default().to_owned(),
                "\"pending\"".into(),
                "\"top_up\"".into()
            ),
            (
                paid["id"].as_str().unwrap_or_default().to_owned(),
                "\"succeeded\"".into(),
                "\"top_up\"".into()
            ),
        ],
        "newest first, with their status"
    );
    let pending = app.get("/api/v1/payments?status=pending&kind=top_up", Some(&buyer.token)).await;
    assert_eq!(pending.assert_status(200)["items"].as_array().map(Vec::len), Some(1));
    let orders = app.get("/api/v1/payments?kind=order", Some(&buyer.token)).await;
    assert_eq!(orders.assert_status(200)["items"], json!([]));
    let page = app.get("/api/v1/payments?limit=1", Some(&buyer.token)).await;
    let cursor = page.assert_status(200)["next_cursor"].as_str().expect("a second page").to_owned();
    let rest = app
        .get(&format!("/api/v1/payments?limit=1&cursor={cursor}"), Some(&buyer.token))
        .await;
    assert_eq!(rest.assert_status(200)["items"][0]["id"], paid["id"]);
    let theirs = app.get("/api/v1/payments", Some(&stranger.token)).await;
    assert_eq!(theirs.assert_status(200)["items"], json!([]), "nobody else's payments");
    app.get("/api/v1/payments?status=paid", Some(&buyer.token))
        .await
        .assert_problem(400, "invalid_query");
    app.get("/api/v1/payments?kind=refund", Some(&buyer.token))
        .await
        .assert_problem(400, "invalid_query");
    app.get("/api/v1/payments", None).await.assert_problem(401, "unauthorized");

    app.post(
        "/api/v1/transfers",
        Some(&buyer.token),
        &json!({"to_user_id": stranger.id, "amount": "12.50", "currency": "USD"}),
    )
    .await
    .assert_status(201);
    let history = app.get("/api/v1/wallets/USD/transactions", Some(&buyer.token)).await;
    let entries = history.assert_status(200)["items"].clone();
    assert_eq!(
        (&entries[0]["balance_before"], &entries[0]["amount"], &entries[0]["balance_after"]),
        (&json!("30.00"), &json!("-12.50"), &json!("17.50"))
    );
    assert_eq!(
        (&entries[1]["balance_before"], &entries[1]["balance_after"]),
        (&json!("0.00"), &json!("30.00"))
    );
}

async fn a_user_lists_their_own_withdrawals_newest_first(app: TestApp) {
    let saver = app.customer_with("50.00").await;
    let stranger = app.customer_with("5.00").await;
    let mut made = Vec::new();
    for amount in ["10.00", "2.50", "1.00"] {
        let body = json!({"amount": amount, "destination": "IBAN DE89 3704 0044 0532 0130 00"});
        let reply = app.post("/api/v1/wallets/USD/withdrawals", Some(&saver.token), &body).await;
        made.push(reply.assert_status(201)["id"].clone());
    }
    app.post(
        "/api/v1/wallets/USD/withdrawals",
        Some(&stranger.token),
        &json!({"amount": "1.00", "destination": "elsewhere"}),
    )
    .await
    .assert_status(201);
    let first = app.get("/api/v1/withdrawals?limit=2", Some(&saver.token)).await;
    let body = first.assert_status(200).clone();
    let ids: Vec<_> = body["items"].as_array().expect("items").iter().map(|w| w["id"].clone()).collect();
    assert_eq!(ids, vec![made[2].clone(), made[1].clone()], "newest first, hers only");
    let cursor = body["next_cursor"].as_str().expect("a second page");
    let rest = app
        .get(&format!("/api/v1/withdrawals?limit=2&cursor={cursor}"), Some(&saver.token))
        .await;
    let rest = rest.assert_status(200).clone();
    assert_eq!(
        (rest["items"][0]["id"].clone(), rest["next_cursor"].clone()),
        (made[0].clone(), json!(null))
    );
    app.get("/api/v1/withdrawals?cursor=forged", Some(&saver.token))
        .await
        .assert_problem(400, "invalid_query");
    app.get("/api/v1/withdrawals", None).await.assert_problem(401, "unauthorized");
}

async fn an_admin_lists_users_by_role_and_nobody_else_can(app: TestApp) {
    let merchant = app.user("merchant").await;
    let customer = app.user("customer").await;
    let newest = app.get("/api/v1/admin/users?limit=2", Some(&app.admin.token)).await;
    let ids: Vec<_> = newest.assert_status(200)["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|u| u["id"].clone())
        .collect();
    assert_eq!(ids, vec![json!(customer.id), json!(merchant.id)], "newest first");
    let merchants = app.get("/api/v1/admin/users?role=merchant", Some(&app.admin.token)).await;
    let items = merchants.assert_status(200)["items"].as_array().expect("items").clone();
    assert!(items.iter().all(|u| u["role"] == json!("merchant")) && items.iter().any(|u| u["id"] == json!(merchant.id)));
    assert!(items.iter().all(|u| u.get("password_hash").is_none()));
    app.get("/api/v1/admin/users?role=root", Some(&app.admin.token))
        .await
        .assert_problem(400, "invalid_query");
    for user in [&merchant, &customer] {
        app.get("/api/v1/admin/users", Some(&user.token))
            .await
            .assert_problem(403, "forbidden");
    }
}
