//! The back office's records and tools and the merchant's product and webhook pages, through
//! the real app: each page authorised as its use case is (someone else's id is a 404, a
//! customer on an admin page a 403), refusals shown by their fields.

use serde_json::{Value, json};

use crate::helpers::{ADMIN_PASSWORD, Backend, PASSWORD, TestApp, User};
use crate::web_client::{Browser, Page};

async fn admin(app: &TestApp) -> Browser<'_> {
    let mut browser = Browser::new(app);
    browser.sign_in(&app.admin.email, ADMIN_PASSWORD).await;
    // Signing in renews the CSRF seed: the token of a page after it.
    browser.get("/cart").await;
    browser
}

async fn signed_in<'a>(app: &'a TestApp, user: &User) -> Browser<'a> {
    let mut browser = Browser::new(app);
    browser.sign_in(&user.email, PASSWORD).await;
    browser.get("/cart").await;
    browser
}

/// The id of the first link to `prefix<id>` on the page.
#[track_caller]
fn first_link(page: &Page, prefix: &str) -> String {
    let marker = format!("href=\"{prefix}");
    let at = page
        .body
        .find(&marker)
        .unwrap_or_else(|| panic!("a link to {prefix}: {}", page.body))
        + marker.len();
    page.body[at..at + page.body[at..].find('"').expect("the link's end")].to_owned()
}

#[track_caller]
fn error_of<'p>(page: &'p Page, id: &str) -> &'p str {
    let at = page
        .body
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("{id} on the page: {}", page.body));
    &page.body[at..page.body[at..].find("</p>").map_or(page.body.len(), |end| at + end)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_opens_a_payment_a_refund_and_a_journal_transaction() {
    let app = TestApp::spawn(Backend::Memory).await;
    let merchant = app.user("merchant").await;
    let buyer = app.customer_with("50.00").await;
    let mug = app.product(&merchant, "Mug", "12.50", 5).await;
    let by_card = json!({"items": [{"product_id": mug, "quantity": 1}], "payment_method": "card"});
    let card = app.post("/api/v1/orders", Some(&buyer.token), &by_card).await;
    let card = card.assert_status(201).clone();
    let payment = card["payment"]["id"].as_str().expect("a payment").to_owned();
    let by_wallet = json!({"items": [{"product_id": mug, "quantity": 1}], "payment_method": "wallet"});
    let paid = app.post("/api/v1/orders", Some(&buyer.token), &by_wallet).await;
    let order = paid.assert_status(201)["id"].as_str().expect("id").to_owned();
    app.post(
        &format!("/api/v1/orders/{order}/refunds"),
        Some(&merchant.token),
        &json!({"amount": "5.00", "reason": "chipped"}),
    )
    .await
    .assert_status(201);

    let mut back_office = admin(&app).await;
    let payments = back_office.get("/admin/payments").await;
    assert_eq!(first_link(&payments, "/admin/payments/"), payment);
    let shown = back_office.get(&format!("/admin/payments/{payment}")).await;
    assert_eq!(shown.status, 200, "{}", shown.body);
    for text in [
        "$12.50",
        &format!("/orders/{}", card["id"].as_str().expect("id")),
        &buyer.email,
        "simulated",
    ] {
        assert!(shown.body.contains(text), "{text}: {}", shown.body);
    }

    let refunds = back_office.get("/admin/refunds").await;
    let refund = first_link(&refunds, "/admin/refunds/");
    let shown = back_office.get(&format!("/admin/refunds/{refund}")).await;
    assert_eq!(shown.status, 200, "{}", shown.body);
    for text in [
        "$5.00",
        "chipped",
        &merchant.email,
        &format!("/orders/{order}"),
        "the buyer&#39;s wallet",
    ] {
        assert!(
            shown.body.contains(text) || shown.body.contains(&text.replace("&#39;", "'")),
            "{text}: {}",
            shown.body
        );
    }

    let ledger = back_office.get("/admin/ledger").await;
    assert!(ledger.body.contains("id=\"ledger-ok\""));
    let transaction = first_link(&ledger, "/admin/ledger/transactions/");
    let shown = back_office.get(&format!("/admin/ledger/transactions/{transaction}")).await;
    assert_eq!(shown.status, 200, "{}", shown.body);
    assert!(
        shown.body.contains("id=\"postings\"") && shown.body.contains("refund"),
        "{}",
        shown.body
    );
    assert!(
        shown.body.contains("−$5.00") && shown.body.contains(&merchant.email),
        "{}",
        shown.body
    );
    // A wallet's own journal, from a posting's link.
    let wallet = first_link(&shown, "/admin/ledger?wallet=");
    let journal = back_office.get(&format!("/admin/ledger?wallet={wallet}")).await;
    assert!(journal.body.contains(&transaction), "{}", journal.body);

    let nobody = uuid::Uuid::now_v7();
    for path in ["/admin/payments/", "/admin/refunds/", "/admin/ledger/transactions/"] {
        assert_eq!(back_office.get(&format!("{path}{nobody}")).await.status, 404, "{path}");
        assert_eq!(back_office.get(&format!("{path}not-an-id")).await.status, 404, "{path}");
    }
    assert_eq!(back_office.get("/admin/ledger?wallet=not-an-id").await.status, 404);
    let mut customer = signed_in(&app, &buyer).await;
    for path in [
        format!("/admin/payments/{payment}"),
        format!("/admin/refunds/{refund}"),
        format!("/admin/ledger/transactions/{transaction}"),
    ] {
        assert_eq!(customer.get(&path).await.status, 403, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_adjusts_a_wallet_with_a_reason_once_per_form() {
    let app = TestApp::spawn(Backend::Memory).await;
    let customer = app.user("customer").await;
    let mut back_office = admin(&app).await;
    let users = back_office.get("/admin/users").await;
    assert!(users.body.contains(&format!("href=\"/admin/users/{}\"", customer.id)));
    let user_page = format!("/admin/users/{}", customer.id);
    let action = format!("{user_page}/adjust");
    let page = back_office.get(&user_page).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(&customer.email));

    for (fields, error, says) in [
        (
            [("currency", "USD"), ("amount", "5.00"), ("reason", "  ")],
            "f-reason-error",
            "reason",
        ),
        (
            [("currency", "USD"), ("amount", "-5.00"), ("reason", "fee")],
            "f-amount-error",
            "below zero",
        ),
        (
            [("currency", "USD"), ("amount", "12.345"), ("reason", "fee")],
            "f-amount-error",
            "decimal places",
        ),
        ([("currency", "USD"), ("amount", "0"), ("reason", "fee")], "f-amount-error", "zero"),
        (
            [("currency", "XXX"), ("amount", "5.00"), ("reason", "fee")],
            "f-currency-error",
            "XXX",
        ),
    ] {
        let refused = back_office.post(&action, &fields).await;
        assert_eq!(refused.status, 422, "{fields:?}: {}", refused.body);
        assert!(
            error_of(&refused, error).contains(says),
            "{fields:?}: {}",
            error_of(&refused, error)
        );
    }
    let key = back_office.get(&user_page).await.key(&action);
    let fields = [
        ("currency", "USD"),
        ("amount", "25.00"),
        ("reason", "goodwill"),
        ("idempotency_key", key.as_str()),
    ];
    for _ in 0..2 {
        let posted = back_office.post(&action, &fields).await;
        assert_eq!(
            (posted.status, posted.location()),
            (303, format!("{user_page}?notice=adjusted").as_str())
        );
    }
    assert_eq!(app.balance(&customer).await, "25.00", "posted once");
    let shown = back_office.get(&format!("{user_page}?notice=adjusted")).await;
    assert!(shown.body.contains("$25.00") && shown.body.contains("The adjustment is posted."));
    let trail = app
        .get(
            &format!("/api/v1/admin/actions?subject=user:{}", customer.id),
            Some(&app.admin.token),
        )
        .await;
    let trail = trail.assert_status(200)["items"].as_array().expect("items").clone();
    assert_eq!(trail.len(), 1, "{trail:?}");
    assert_eq!(trail[0]["reason"], "goodwill");

    assert_eq!(back_office.get(&format!("/admin/users/{}", uuid::Uuid::now_v7())).await.status, 404);
    let mut other = signed_in(&app, &customer).await;
    assert_eq!(other.get(&user_page).await.status, 403);
    let refused = other
        .post(&action, &[("currency", "USD"), ("amount", "100.00"), ("reason", "mine")])
        .await;
    assert_eq!(refused.status, 403);
    assert_eq!(app.balance(&customer).await, "25.00");
    app.assert_ledger_ok().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_marks_manual_withdrawals_paid_or_failed() {
    // No gateway pays out: approved withdrawals wait for a person.
    let app = TestApp::spawn_with(Backend::Memory, &[("SIMULATED_GATEWAY", "false")]).await;
    let (ann, bob) = (app.customer_with("50.00").await, app.customer_with("50.00").await);
    let mut ids = Vec::new();
    for user in [&ann, &bob] {
        let body = json!({"amount": "20.00", "destination": "IBAN DE00 9"});
        let reply = app.post("/api/v1/wallets/USD/withdrawals", Some(&user.token), &body).await;
        let withdrawal = reply.assert_status(202);
        assert_eq!(withdrawal["settlement"], "manual", "{withdrawal}");
        ids.push(withdrawal["id"].as_str().expect("id").to_owned());
    }
    let mut back_office = admin(&app).await;
    let desk = back_office.get("/admin/withdrawals").await;
    let paid = format!("/admin/withdrawals/{}/mark-paid", ids[0]);
    let key = desk.key(&paid);
    let fields = [("reference", "SEPA 1"), ("idempotency_key", key.as_str())];
    for _ in 0..2 {
        let page = back_office.post(&paid, &fields).await;
        assert_eq!(
            (page.status, page.location()),
            (303, "/admin/withdrawals?notice=withdrawal-paid"),
            "{}",
            page.body
        );
    }
    let shown = app.get(&format!("/api/v1/withdrawals/{}", ids[0]), Some(&ann.token)).await;
    let shown = shown.assert_status(200);
    assert_eq!(
        (shown["status"].as_str(), shown["provider_reference"].as_str()),
        (Some("paid"), Some("SEPA 1")),
        "{shown}"
    );
    assert_eq!(app.wallet(&ann).await["balance"], "30.00");

    let failed = format!("/admin/withdrawals/{}/mark-failed", ids[1]);
    let refused = back_office.post(&failed, &[("reason", "   ")]).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(error_of(&refused, &format!("mark-failed-reason-{}-error", ids[1])).contains("reason is required"));
    let page = back_office.post(&failed, &[("reason", "account closed")]).await;
    assert_eq!((page.status, page.location()), (303, "/admin/withdrawals?notice=withdrawal-failed"));
    let wallet = app.wallet(&bob).await;
    assert_eq!((wallet["balance"].as_str(), wallet["held"].as_str()), (Some("50.00"), Some("0.00")));
    // Settled: no more forms for them. Marking the paid one paid again changes nothing; marking
    // the failed one paid is refused in its row, not with a 500.
    let again = back_office.post(&paid, &[("reference", "again")]).await;
    assert_eq!(again.status, 303, "{}", again.body);
    assert_eq!(app.wallet(&ann).await["balance"], "30.00");
    let stale = back_office
        .post(&format!("/admin/withdrawals/{}/mark-paid", ids[1]), &[("reference", "late")])
        .await;
    assert_eq!(stale.status, 422, "{}", stale.body);
    assert!(stale.body.contains("role=\"alert\""), "{}", stale.body);
    assert!(!back_office.get("/admin/withdrawals").await.body.contains("/mark-paid"));
    let mut customer = signed_in(&app, &ann).await;
    assert_eq!(customer.post(&failed, &[("reason", "mine")]).await.status, 403);
    app.assert_ledger_ok().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merchant_edits_takes_off_sale_and_deletes_a_product() {
    let app = TestApp::spawn(Backend::Memory).await;
    let merchant = app.user("merchant").await;
    let lamp = app.product(&merchant, "Lamp", "20.00", 3).await;
    let mut console = signed_in(&app, &merchant).await;
    assert!(
        console
            .get("/merchant")
            .await
            .body
            .contains(&format!("href=\"/merchant/products/{lamp}\""))
    );
    let path = format!("/merchant/products/{lamp}");
    let form = console.get(&path).await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert_eq!(form.field(&path, "name"), "Lamp");
    assert_eq!(form.field(&path, "price"), "20.00");

    let refused = console
        .post(&path, &[("name", ""), ("description", ""), ("price", "20.00"), ("active", "on")])
        .await;
    assert_eq!(refused.status, 422);
    assert!(error_of(&refused, "f-name-error").contains("name"));
    let refused = console
        .post(&path, &[("name", "Lamp"), ("description", ""), ("price", "-1"), ("active", "on")])
        .await;
    assert_eq!(refused.status, 422);
    error_of(&refused, "f-price-error");
    // Saved without "on sale" ticked: off sale.
    let saved = console
        .post(&path, &[("name", "Desk lamp"), ("description", "Bright"), ("price", "24.50")])
        .await;
    assert_eq!(
        (saved.status, saved.location()),
        (303, format!("{path}?notice=product-updated").as_str())
    );
    let product = app.get(&format!("/api/v1/products/{lamp}"), Some(&merchant.token)).await;
    let product = product.assert_status(200);
    assert_eq!(
        (product["name"].as_str(), product["price"].as_str(), product["active"].as_bool()),
        (Some("Desk lamp"), Some("24.50"), Some(false)),
        "{product}"
    );
    assert_eq!(app.get(&format!("/api/v1/products/{lamp}"), None).await.status, 404, "off sale");

    // Another merchant's product, or a customer asking for it: not found, as the use case says.
    let other = app.user("merchant").await;
    let mut stranger = signed_in(&app, &other).await;
    assert_eq!(stranger.get(&path).await.status, 404);
    let taken = stranger
        .post(&path, &[("name", "Mine"), ("description", ""), ("price", "1.00"), ("active", "on")])
        .await;
    assert_eq!(taken.status, 404);
    assert_eq!(stranger.post(&format!("{path}/delete"), &[]).await.status, 404);

    let deleted = console.post(&format!("{path}/delete"), &[]).await;
    assert_eq!((deleted.status, deleted.location()), (303, "/merchant?notice=product-deleted"));
    assert_eq!(
        app.get(&format!("/api/v1/products/{lamp}"), Some(&merchant.token)).await.status,
        404
    );
    assert_eq!(console.get(&path).await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merchant_rolls_a_secret_redelivers_disables_and_deletes_an_endpoint() {
    let app = TestApp::spawn_with(
        Backend::Memory,
        &[
            ("WEBHOOK_ALLOW_HTTP", "true"),
            ("WEBHOOK_ALLOW_PRIVATE_ADDRESSES", "true"),
            ("WEBHOOK_INTERVAL_MS", "3600000"),
            ("JOB_INTERVAL_MS", "3600000"),
        ],
    )
    .await;
    let merchant = app.user("merchant").await;
    let mut console = signed_in(&app, &merchant).await;
    console.get("/merchant/webhooks").await;
    // Nobody listens there: the delivery fails, and can be sent again.
    let added = console
        .post("/merchant/webhooks", &[("url", "http://127.0.0.1:9/hooks"), ("description", "")])
        .await;
    assert_eq!(added.status, 200, "{}", added.body);
    let first_secret = added.text_of("secret");
    let id = first_link(&added, "/merchant/webhooks/");
    let here = format!("/merchant/webhooks/{id}");
    console.get(&here).await;
    assert_eq!(console.post(&format!("{here}/test"), &[]).await.status, 303);
    app.run_jobs().await;
    let deliveries = app
        .get(&format!("/api/v1/webhook-endpoints/{id}/deliveries"), Some(&merchant.token))
        .await;
    let delivery: Value = deliveries.assert_status(200)["items"][0].clone();
    let delivery_id = delivery["id"].as_str().expect("a delivery").to_owned();

    let page = console.get(&here).await;
    let redeliver = format!("{here}/deliveries/{delivery_id}/redeliver");
    assert!(page.body.contains(&redeliver), "{}", page.body);
    let again = console.post(&redeliver, &[]).await;
    assert_eq!(
        (again.status, again.location()),
        (303, format!("{here}?notice=redelivered").as_str())
    );

    let bad = console.post(&format!("{here}/roll-secret"), &[("overlap", "9999999")]).await;
    assert_eq!(bad.status, 422);
    error_of(&bad, "f-overlap-error");
    let rolled = console.post(&format!("{here}/roll-secret"), &[("overlap", "3600")]).await;
    assert_eq!(rolled.status, 200, "{}", rolled.body);
    let second_secret = rolled.text_of("secret");
    assert!(second_secret.starts_with("whsec_") && second_secret != first_secret);
    assert!(rolled.body.contains("Old secret"));
    assert!(!console.get(&here).await.body.contains(&second_secret), "shown once");

    let disabled = console.post(&format!("{here}/disable"), &[]).await;
    assert_eq!(disabled.location(), format!("{here}?notice=endpoint-disabled"));
    let shown = app.get(&format!("/api/v1/webhook-endpoints/{id}"), Some(&merchant.token)).await;
    assert_eq!(shown.assert_status(200)["enabled"], false);
    assert!(console.get(&here).await.body.contains(&format!("action=\"{here}/enable\"")));
    console.post(&format!("{here}/enable"), &[]).await;
    let shown = app.get(&format!("/api/v1/webhook-endpoints/{id}"), Some(&merchant.token)).await;
    assert_eq!(shown.assert_status(200)["enabled"], true);

    let stranger = app.user("merchant").await;
    let mut other = signed_in(&app, &stranger).await;
    assert_eq!(other.get(&here).await.status, 404);
    assert_eq!(other.post(&redeliver, &[]).await.status, 404);
    assert_eq!(other.post(&format!("{here}/roll-secret"), &[("overlap", "0")]).await.status, 404);
    assert_eq!(other.post(&format!("{here}/delete"), &[]).await.status, 404);

    let deleted = console.post(&format!("{here}/delete"), &[]).await;
    assert_eq!(
        (deleted.status, deleted.location()),
        (303, "/merchant/webhooks?notice=endpoint-deleted")
    );
    assert_eq!(console.get(&here).await.status, 404);
}
