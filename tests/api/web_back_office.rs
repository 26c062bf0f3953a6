//! The back office's records and tools and the merchant's product and webhook pages, through
//! the real app: each page authorised as its use case is (someone else's id is a 404, a
//! customer on an admin page a 403), refusals shown by their fields.

use serde_json::json;

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
