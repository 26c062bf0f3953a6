//! The withdrawal lifecycle over HTTP on every backend: held, then paid through the simulator's
//! payouts, or waiting for an admin who approves or rejects it (audited), or failed by the
//! "bank"; and admins only on the admin routes.

use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::on_every_backend;

on_every_backend!(
    a_small_withdrawal_is_paid_out_at_once_and_a_replay_returns_it,
    a_large_withdrawal_waits_for_an_admin_who_approves_it,
    an_admin_rejects_a_withdrawal_with_a_reason_and_the_money_comes_back,
    a_refused_payout_fails_the_withdrawal_and_releases_the_money,
    only_admins_decide_withdrawals,
    admins_filter_withdrawals_by_user_currency_and_period,
);

fn body(amount: &str, destination: &str) -> Value {
    json!({"amount": amount, "destination": destination})
}

async fn held(app: &TestApp, user: &crate::helpers::User) -> (String, String) {
    let wallet = app.wallet(user).await;
    (
        wallet["balance"].as_str().unwrap_or_default().to_owned(),
        wallet["held"].as_str().unwrap_or_default().to_owned(),
    )
}

async fn a_small_withdrawal_is_paid_out_at_once_and_a_replay_returns_it(app: TestApp) {
    let alice = app.customer_with("50.00").await;
    let path = "/api/v1/wallets/USD/withdrawals";
    let first = app.post_idempotent(path, &alice.token, &body("20.00", "IBAN DE00 1"), "wd-1").await;
    let paid = first.assert_status(201).clone();
    assert_eq!(paid["status"], json!("paid"));
    assert_eq!(
        (paid["settlement"].clone(), paid["provider"].clone()),
        (json!("payout"), json!("simulated"))
    );
    assert!(paid["transaction_id"].is_string() && paid["provider_reference"].is_string());
    assert_eq!(paid["decided_by"], json!(null), "approved by the threshold");
    let replay = app.post_idempotent(path, &alice.token, &body("20.00", "IBAN DE00 1"), "wd-1").await;
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.assert_status(201), &paid);
    assert_eq!(held(&app, &alice).await, ("30.00".into(), "0.00".into()), "paid once");
    let shown = app
        .get(
            &format!("/api/v1/withdrawals/{}", paid["id"].as_str().unwrap_or_default()),
            Some(&alice.token),
        )
        .await;
    assert_eq!(shown.assert_status(200), &paid);
    app.assert_ledger_ok().await;
}

async fn a_large_withdrawal_waits_for_an_admin_who_approves_it(app: TestApp) {
    let alice = app.customer_with("3000.00").await;
    let reply = app
        .post(
            "/api/v1/wallets/USD/withdrawals",
            Some(&alice.token),
            &body("1500.00", "IBAN DE00 2"),
        )
        .await;
    let requested = reply.assert_status(202).clone();
    assert_eq!(requested["status"], json!("requested"));
    assert_eq!(
        held(&app, &alice).await,
        ("3000.00".into(), "1500.00".into()),
        "held, still on the books"
    );
    let id = requested["id"].as_str().expect("id").to_owned();
    let waiting = app.get("/api/v1/admin/withdrawals?status=requested", Some(&app.admin.token)).await;
    let ids: Vec<Value> = waiting.assert_status(200)["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|w| w["id"].clone())
        .collect();
    assert!(ids.contains(&json!(id)));
    let approve = format!("/api/v1/admin/withdrawals/{id}/approve");
    let paid = app
        .post(&approve, Some(&app.admin.token), &json!({"reason": "verified by phone"}))
        .await;
    let paid = paid.assert_status(200).clone();
    assert_eq!(paid["status"], json!("paid"));
    assert_eq!(
        (paid["decided_by"].clone(), paid["reason"].clone()),
        (json!(app.admin.id), json!("verified by phone"))
    );
    assert_eq!(held(&app, &alice).await, ("1500.00".into(), "0.00".into()));
    let again = app.post(&approve, Some(&app.admin.token), &json!({})).await;
    assert_eq!(again.assert_status(200)["status"], json!("paid"), "approving again changes nothing");
    app.post(
        &format!("/api/v1/admin/withdrawals/{id}/reject"),
        Some(&app.admin.token),
        &json!({"reason": "late"}),
    )
    .await
    .assert_problem(409, "invalid_transition");
    // The admins' trail has the approval once: neither the repeat nor the refused rejection.
    let trail = app
        .get(&format!("/api/v1/admin/actions?subject=withdrawal:{id}"), Some(&app.admin.token))
        .await;
    let trail = trail.assert_status(200)["items"].as_array().expect("items").clone();
    assert_eq!(trail.len(), 1, "{trail:?}");
    assert_eq!(
        (
            trail[0]["action"].as_str(),
            trail[0]["reason"].as_str(),
            trail[0]["admin_id"].as_str()
        ),
        (Some("withdrawal.approved"), Some("verified by phone"), Some(app.admin.id.as_str()))
    );
    app.assert_ledger_ok().await;
}

async fn an_admin_rejects_a_withdrawal_with_a_reason_and_the_money_comes_back(app: TestApp) {
    let alice = app.customer_with("2000.00").await;
    let reply = app
        .post(
            "/api/v1/wallets/USD/withdrawals",
            Some(&alice.token),
            &body("1200.00", "IBAN DE00 3"),
        )
        .await;
    let id = reply.assert_status(202)["id"].as_str().expect("id").to_owned();
    let reject = format!("/api/v1/admin/withdrawals/{id}/reject");
    app.post(&reject, Some(&app.admin.token), &json!({}))
        .await
        .assert_problem(422, "validation_failed");
    let rejected = app
        .post(&reject, Some(&app.admin.token), &json!({"reason": "name does not match"}))
        .await;
    let rejected = rejected.assert_status(200).clone();
    assert_eq!(rejected["status"], json!("rejected"));
    assert_eq!(
        (rejected["decided_by"].clone(), rejected["reason"].clone()),
        (json!(app.admin.id), json!("name does not match"))
    );
    assert!(rejected["decided_at"].is_string());
    assert_eq!(rejected["transaction_id"], json!(null), "nothing left the books");
    assert_eq!(held(&app, &alice).await, ("2000.00".into(), "0.00".into()));
    let mine = app.get("/api/v1/withdrawals", Some(&alice.token)).await;
    assert_eq!(mine.assert_status(200)["items"][0]["status"], json!("rejected"));
    app.post(
        &format!("/api/v1/admin/withdrawals/{id}/approve"),
        Some(&app.admin.token),
        &json!({}),
    )
    .await
    .assert_problem(409, "invalid_transition");
    app.post(
        &format!("/api/v1/admin/withdrawals/{}/approve", uuid::Uuid::now_v7()),
        Some(&app.admin.token),
        &json!({}),
    )
    .await
    .assert_problem(404, "not_found");
    app.assert_ledger_ok().await;
}

async fn a_refused_payout_fails_the_withdrawal_and_releases_the_money(app: TestApp) {
    let alice = app.customer_with("40.00").await;
    let reply = app
        .post(
            "/api/v1/wallets/USD/withdrawals",
            Some(&alice.token),
            &body("25.00", "please fail this"),
        )
        .await;
    let failed = reply.assert_status(201).clone();
    assert_eq!(failed["status"], json!("failed"));
    assert!(failed["failure_reason"].as_str().is_some_and(|r| r.contains("refused")));
    assert_eq!(failed["transaction_id"], json!(null));
    assert_eq!(held(&app, &alice).await, ("40.00".into(), "0.00".into()));
    let history = app.get("/api/v1/wallets/USD/transactions", Some(&alice.token)).await;
    let entries = history.assert_status(200)["items"].as_array().expect("items").len();
    assert_eq!(entries, 1, "only the funding: the failed withdrawal posted nothing");
    app.assert_ledger_ok().await;
}

async fn only_admins_decide_withdrawals(app: TestApp) {
    let alice = app.customer_with("2000.00").await;
    let merchant = app.user("merchant").await;
    let reply = app
        .post(
            "/api/v1/wallets/USD/withdrawals",
            Some(&alice.token),
            &body("1100.00", "IBAN DE00 4"),
        )
        .await;
    let id = reply.assert_status(202)["id"].as_str().expect("id").to_owned();
    for user in [&alice, &merchant] {
        app.get("/api/v1/admin/withdrawals", Some(&user.token))
            .await
            .assert_problem(403, "forbidden");
        for action in ["approve", "reject", "mark-paid", "mark-failed"] {
            app.post(
                &format!("/api/v1/admin/withdrawals/{id}/{action}"),
                Some(&user.token),
                &json!({"reason": "mine"}),
            )
            .await
            .assert_problem(403, "forbidden");
        }
    }
    app.get("/api/v1/admin/withdrawals?status=lost", Some(&app.admin.token))
        .await
        .assert_problem(400, "invalid_query");
    assert_eq!(held(&app, &alice).await, ("2000.00".into(), "1100.00".into()), "still waiting");
}

async fn admins_filter_withdrawals_by_user_currency_and_period(app: TestApp) {
    let (alice, bob) = (app.customer_with("100.00").await, app.customer_with("100.00").await);
    let path = "/api/v1/wallets/USD/withdrawals";
    let mut made = Vec::new();
    for (user, amount) in [(&alice, "10.00"), (&bob, "20.00"), (&alice, "30.00")] {
        let reply = app.post(path, Some(&user.token), &body(amount, "IBAN DE00 5")).await;
        made.push(reply.assert_status(201).clone());
    }
    let id = |withdrawal: &Value| withdrawal["id"].clone();
    let list = |query: String| {
        let app = &app;
        async move {
            let page = app.get(&format!("/api/v1/admin/withdrawals?{query}"), Some(&app.admin.token)).await;
            page.assert_status(200)["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|w| w["id"].clone())
                .collect::<Vec<Value>>()
        }
    };
    assert_eq!(
        list(format!("user={}", alice.id)).await,
        vec![id(&made[2]), id(&made[0])],
        "alice's, newest first"
    );
    assert_eq!(list(format!("user={}&status=paid&currency=USD", bob.id)).await, vec![id(&made[1])]);
    assert!(list(format!("user={}&currency=EUR", bob.id)).await.is_empty());
    let at = made[1]["created_at"].as_str().expect("created_at");
    assert_eq!(
        list(format!("from={at}")).await,
        vec![id(&made[2]), id(&made[1])],
        "from is included"
    );
    assert_eq!(list(format!("to={at}")).await, vec![id(&made[0])], "to is excluded");
    for (field, value) in [("user", "alice"), ("currency", "XXX"), ("from", "yesterday"), ("status", "lost")] {
        let reply = app
            .get(&format!("/api/v1/admin/withdrawals?{field}={value}"), Some(&app.admin.token))
            .await;
        reply.assert_problem(400, "invalid_query");
        assert_eq!(reply.body["errors"][0]["field"], json!(field), "{}", reply.text);
    }
}
