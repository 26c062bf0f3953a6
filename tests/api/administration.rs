//! Admin actions on accounts, audited: suspending a user ends their sessions and keeps them out
//! until an admin reactivates them; every action (and every wallet adjustment) is recorded with
//! the acting admin, through the real server on every backend.

use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp};
use crate::on_every_backend;

on_every_backend!(
    a_suspended_user_is_shut_out_until_reactivated,
    suspension_is_for_admins_with_a_reason,
    an_adjustment_records_the_acting_admin_in_the_audit_trail,
    an_admin_cancels_an_unpaid_order_with_a_reason,
    an_admins_refund_is_in_the_audit_trail_and_a_merchants_is_not,
);

async fn actions_on(app: &TestApp, subject: &str) -> Vec<Value> {
    let reply = app
        .get(&format!("/api/v1/admin/actions?subject={subject}"), Some(&app.admin.token))
        .await;
    reply.assert_status(200)["items"].as_array().expect("items").clone()
}

async fn a_suspended_user_is_shut_out_until_reactivated(app: TestApp) {
    let buyer = app.customer_with("50.00").await;
    let friend = app.user("customer").await;
    let login = json!({"email": buyer.email, "password": PASSWORD});
    let session = app.post("/api/v1/auth/login", None, &login).await;
    let refresh_token = session.assert_status(200)["refresh_token"].as_str().expect("refresh").to_owned();

    let suspend = format!("/api/v1/admin/users/{}/suspend", buyer.id);
    let suspended = app
        .post(&suspend, Some(&app.admin.token), &json!({"reason": "chargeback fraud"}))
        .await;
    assert!(suspended.assert_status(200)["suspended_at"].is_string());

    // The access token still verifies, but the account may not act.
    app.get("/api/v1/wallets/USD", Some(&buyer.token))
        .await
        .assert_problem(403, "account_suspended");
    let transfer = json!({"to_user_id": friend.id, "amount": "10.00", "currency": "USD"});
    app.post("/api/v1/transfers", Some(&buyer.token), &transfer)
        .await
        .assert_problem(403, "account_suspended");
    app.post("/api/v1/auth/refresh", None, &json!({"refresh_token": refresh_token}))
        .await
        .assert_status(401);
    app.post("/api/v1/auth/login", None, &login)
        .await
        .assert_problem(403, "account_suspended");
    let wrong = json!({"email": buyer.email, "password": "not the password 1"});
    app.post("/api/v1/auth/login", None, &wrong).await.assert_status(401);
    app.post(&suspend, Some(&app.admin.token), &json!({"reason": "again"}))
        .await
        .assert_problem(409, "invalid_state");

    let reactivate = format!("/api/v1/admin/users/{}/reactivate", buyer.id);
    app.post(&reactivate, Some(&app.admin.token), &json!({"reason": "cleared by the bank"}))
        .await
        .assert_status(200);
    let back = app.login(&buyer.email, PASSWORD).await;
    assert_eq!(app.balance(&back).await, "50.00", "nothing moved while suspended");

    let trail = actions_on(&app, &format!("user:{}", buyer.id)).await;
    let kinds: Vec<_> = trail.iter().map(|action| action["action"].as_str().unwrap_or_default()).collect();
    assert_eq!(kinds, ["user.reactivated", "user.suspended", "wallet.adjusted"]);
    assert!(trail.iter().all(|action| action["admin_id"] == json!(app.admin.id)));
    assert_eq!(trail[1]["reason"], json!("chargeback fraud"));
    app.assert_ledger_ok().await;
}

async fn suspension_is_for_admins_with_a_reason(app: TestApp) {
    let (customer, merchant) = (app.user("customer").await, app.user("merchant").await);
    let suspend = format!("/api/v1/admin/users/{}/suspend", customer.id);
    app.post(&suspend, Some(&merchant.token), &json!({"reason": "spite"}))
        .await
        .assert_problem(403, "forbidden");
    app.post(&suspend, Some(&customer.token), &json!({"reason": "myself"}))
        .await
        .assert_problem(403, "forbidden");
    app.get("/api/v1/admin/actions", Some(&merchant.token))
        .await
        .assert_problem(403, "forbidden");
    app.post(&suspend, Some(&app.admin.token), &json!({"reason": "  "}))
        .await
        .assert_problem(422, "validation_failed");
    app.post(&suspend, Some(&app.admin.token), &json!({})).await.assert_status(422);
    app.post(&suspend, Some(&app.admin.token), &json!({"reason": "x".repeat(501)}))
        .await
        .assert_problem(422, "validation_failed");
    let nobody = format!("/api/v1/admin/users/{}/suspend", uuid::Uuid::now_v7());
    app.post(&nobody, Some(&app.admin.token), &json!({"reason": "who"}))
        .await
        .assert_problem(404, "not_found");
    let admin = format!("/api/v1/admin/users/{}/suspend", app.admin.id);
    app.post(&admin, Some(&app.admin.token), &json!({"reason": "locked out"}))
        .await
        .assert_problem(403, "forbidden");
    let reactivate = format!("/api/v1/admin/users/{}/reactivate", merchant.id);
    app.post(&reactivate, Some(&app.admin.token), &json!({"reason": "not suspended"}))
        .await
        .assert_problem(409, "invalid_state");
    assert!(
        actions_on(&app, &format!("user:{}", customer.id)).await.is_empty(),
        "refusals are not actions"
    );
    app.get("/api/v1/wallets/USD", Some(&customer.token)).await.assert_status(200);
}

async fn an_adjustment_records_the_acting_admin_in_the_audit_trail(app: TestApp) {
    let customer = app.user("customer").await;
    let body = json!({"amount": "-0.00", "currency": "USD", "reason": "nothing"});
    app.post(
        &format!("/api/v1/admin/wallets/{}/adjustments", customer.id),
        Some(&app.admin.token),
        &body,
    )
    .await
    .assert_status(422);
    let body = json!({"amount": "12.50", "currency": "USD", "reason": "goodwill credit"});
    let adjusted = app
        .post(
            &format!("/api/v1/admin/wallets/{}/adjustments", customer.id),
            Some(&app.admin.token),
            &body,
        )
        .await;
    let transaction = adjusted.assert_status(201)["transaction_id"]
        .as_str()
        .expect("transaction")
        .to_owned();

    let trail = actions_on(&app, &format!("user:{}", customer.id)).await;
    assert_eq!(trail.len(), 1, "only the adjustment that happened: {trail:?}");
    let action = &trail[0];
    assert_eq!(
        (action["action"].as_str(), action["reason"].as_str()),
        (Some("wallet.adjusted"), Some("goodwill credit"))
    );
    assert_eq!(action["admin_id"], json!(app.admin.id));
    let details = action["details"].as_str().expect("details");
    assert!(details.contains("12.50 USD") && details.contains(&transaction), "{details}");
    // The customer's own history does not name the admin.
    let history = app.get("/api/v1/wallets/USD/transactions", Some(&customer.token)).await;
    let history = history.assert_status(200).to_string();
    assert!(!history.contains(&app.admin.id), "{history}");
}

async fn an_admin_cancels_an_unpaid_order_with_a_reason(app: TestApp) {
    let ann = app.user("merchant").await;
    let buyer = app.customer_with("50.00").await;
    let mug = app.product(&ann, "Mug", "12.50", 5).await;
    let cart = json!({"items": [{"product_id": mug, "quantity": 2}], "payment_method": "card"});
    let order = app
        .post("/api/v1/orders", Some(&buyer.token), &cart)
        .await
        .assert_status(201)
        .clone();
    let id = order["id"].as_str().expect("id");
    let cancel = format!("/api/v1/admin/orders/{id}/cancel");
    app.post(&cancel, Some(&ann.token), &json!({"reason": "mine"}))
        .await
        .assert_problem(403, "forbidden");
    app.post(&cancel, Some(&buyer.token), &json!({"reason": "mine"}))
        .await
        .assert_problem(403, "forbidden");
    app.post(&cancel, Some(&app.admin.token), &json!({"reason": ""}))
        .await
        .assert_problem(422, "validation_failed");
    assert_eq!(app.stock(&mug).await, (3, 2));

    let cancelled = app
        .post(&cancel, Some(&app.admin.token), &json!({"reason": "suspected card testing"}))
        .await;
    assert_eq!(cancelled.assert_status(200)["status"], json!("cancelled"));
    assert_eq!(app.stock(&mug).await, (5, 0), "the reserved stock is back on sale");
    let shown = app.get(&format!("/api/v1/orders/{id}"), Some(&buyer.token)).await;
    assert_eq!(shown.assert_status(200)["payment"]["status"], json!("cancelled"));
    app.post(&cancel, Some(&app.admin.token), &json!({"reason": "again"}))
        .await
        .assert_problem(409, "invalid_state");

    let paid = json!({"items": [{"product_id": mug, "quantity": 1}], "payment_method": "wallet"});
    let paid = app
        .post("/api/v1/orders", Some(&buyer.token), &paid)
        .await
        .assert_status(201)
        .clone();
    let paid_id = paid["id"].as_str().expect("id");
    app.post(
        &format!("/api/v1/admin/orders/{paid_id}/cancel"),
        Some(&app.admin.token),
        &json!({"reason": "no"}),
    )
    .await
    .assert_problem(409, "invalid_state");

    let trail = actions_on(&app, &format!("order:{id}")).await;
    assert_eq!(trail.len(), 1, "{trail:?}");
    assert_eq!(
        (trail[0]["action"].as_str(), trail[0]["reason"].as_str()),
        (Some("order.cancelled"), Some("suspected card testing"))
    );
    assert!(actions_on(&app, &format!("order:{paid_id}")).await.is_empty());
    app.assert_ledger_ok().await;
}

async fn an_admins_refund_is_in_the_audit_trail_and_a_merchants_is_not(app: TestApp) {
    let ann = app.user("merchant").await;
    let buyer = app.customer_with("50.00").await;
    let mug = app.product(&ann, "Mug", "10.00", 5).await;
    let cart = json!({"items": [{"product_id": mug, "quantity": 3}], "payment_method": "wallet"});
    let order = app
        .post("/api/v1/orders", Some(&buyer.token), &cart)
        .await
        .assert_status(201)
        .clone();
    let refunds = format!("/api/v1/orders/{}/refunds", order["id"].as_str().expect("id"));
    app.post(&refunds, Some(&ann.token), &json!({"amount": "5.00", "reason": "chipped"}))
        .await
        .assert_status(201);
    app.post(&refunds, Some(&app.admin.token), &json!({"amount": "7.50", "reason": "goodwill"}))
        .await
        .assert_status(201);
    let trail = actions_on(&app, &format!("order:{}", order["id"].as_str().expect("id"))).await;
    assert_eq!(trail.len(), 1, "only the admin's refund: {trail:?}");
    assert_eq!(
        (
            trail[0]["action"].as_str(),
            trail[0]["reason"].as_str(),
            trail[0]["admin_id"].as_str()
        ),
        (Some("order.refunded"), Some("goodwill"), Some(app.admin.id.as_str()))
    );
    assert!(trail[0]["details"].as_str().expect("details").contains("7.50 USD"));
    assert_eq!(app.balance(&buyer).await, "32.50");
    app.assert_ledger_ok().await;
}
