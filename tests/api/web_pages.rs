//! The web UI's security, through the real app: cookies, CSRF, the content security policy, and
//! pages that answer with the use cases' refusals.

use reqwest::header;
use serde_json::json;

use crate::helpers::{Backend, PASSWORD, ServerClock, TestApp};
use crate::on_every_backend;
use crate::web_client::Browser;

on_every_backend!(signing_in_sets_a_session_cookie_and_signing_out_revokes_its_refresh_token);

async fn signing_in_sets_a_session_cookie_and_signing_out_revokes_its_refresh_token(app: TestApp) {
    let user = app.user("customer").await;
    let mut browser = Browser::new(&app);
    let signed_in = browser.sign_in(&user.email, PASSWORD).await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    assert_eq!(signed_in.location(), "/wallet");
    let cookie = signed_in.set_cookie("pb_session").expect("a session cookie");
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    // Secure outside demo mode; demo mode serves plain HTTP on a developer's machine.
    assert_eq!(cookie.contains("; Secure"), matches!(app.backend, Backend::Postgres), "{cookie}");
    let wallet = browser.get("/wallet").await;
    assert_eq!(wallet.status, 200);
    assert!(wallet.body.contains(&user.email), "the page shows who is signed in");

    let refresh = browser.cookies["pb_session"].split_once('~').expect("a token pair").1.to_owned();
    let out = browser.post("/sign-out", &[]).await;
    assert_eq!(out.status, 303);
    assert!(out.set_cookie("pb_session").is_some_and(|c| c.contains("Max-Age=0")));
    app.post("/api/v1/auth/refresh", None, &json!({"refresh_token": refresh}))
        .await
        .assert_problem(401, "invalid_refresh_token");
    let after = browser.get("/wallet").await;
    assert_eq!(after.status, 303);
    assert_eq!(after.location(), "/sign-in?next=/wallet");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_without_its_csrf_token_or_from_another_site_is_refused() {
    let app = TestApp::spawn(Backend::Memory).await;
    let user = app.user("customer").await;
    let mut browser = Browser::new(&app);
    browser.get("/sign-in").await;
    let fields = [("email", user.email.as_str()), ("password", PASSWORD)];

    let without = browser.post("/sign-in", &[fields[0], fields[1], ("csrf", "")]).await;
    assert_eq!(without.status, 403);
    assert!(without.set_cookie("pb_session").is_none());
    let forged = browser.post("/sign-in", &[fields[0], fields[1], ("csrf", "forged-token")]).await;
    assert_eq!(forged.status, 403);
    let elsewhere = browser.post_from("/sign-in", &fields, "https://evil.example").await;
    assert_eq!(elsewhere.status, 403);
    // Another browser's token does not fit this browser's seed.
    let mut other = Browser::new(&app);
    other.get("/sign-in").await;
    let stolen = other.csrf.clone();
    let mismatched = browser.post("/sign-in", &[fields[0], fields[1], ("csrf", stolen.as_str())]).await;
    assert_eq!(mismatched.status, 403);

    let accepted = browser.post("/sign-in", &fields).await;
    assert_eq!(accepted.status, 303, "{}", accepted.body);
    // Signed-in forms are checked the same way.
    let transfer = browser
        .post("/wallet/transfer", &[("to", "x@example.com"), ("amount", "1.00"), ("csrf", "")])
        .await;
    assert_eq!(transfer.status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_have_a_strict_content_security_policy_and_cached_assets() {
    let app = TestApp::spawn(Backend::Memory).await;
    let mut browser = Browser::new(&app);
    let catalog = browser.get("/catalog").await;
    assert_eq!(catalog.status, 200);
    let policy = catalog.headers[header::CONTENT_SECURITY_POLICY].to_str().expect("text");
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(policy.contains(directive), "{policy}");
    }
    assert!(!policy.contains("unsafe-inline") && !policy.contains("unsafe-eval"), "{policy}");
    assert_eq!(catalog.headers[header::CACHE_CONTROL], "no-store");
    assert!(
        !catalog.body.contains("<script>") && !catalog.body.contains(" style="),
        "no inline script or style"
    );
    let seed = catalog.set_cookie("pb_seed").expect("a CSRF seed cookie");
    assert!(seed.contains("HttpOnly") && seed.contains("SameSite=Lax"), "{seed}");

    let start = catalog.body.find("/assets/app.").expect("the stylesheet's link");
    let path = &catalog.body[start..start + catalog.body[start..].find('"').expect("its end")];
    let asset = browser.get(path).await;
    assert_eq!(asset.status, 200);
    assert!(asset.headers[header::CACHE_CONTROL].to_str().expect("text").contains("immutable"));
    assert_eq!(browser.get("/assets/app.0000.css").await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_gets_the_use_cases_refusal_on_admin_pages() {
    let app = TestApp::spawn(Backend::Memory).await;
    let mut anonymous = Browser::new(&app);
    let page = anonymous.get("/admin/users").await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location(), "/sign-in?next=/admin/users");

    let customer = app.user("customer").await;
    let mut browser = Browser::new(&app);
    browser.sign_in(&customer.email, PASSWORD).await;
    for path in [
        "/admin",
        "/admin/users",
        "/admin/orders",
        "/admin/ledger",
        "/admin/audit",
        "/admin/withdrawals",
        "/merchant",
    ] {
        let page = browser.get(path).await;
        assert_eq!(page.status, 403, "{path}");
        assert!(page.body.contains("403"), "{path}: an error page, not a bare status");
    }
    // A page with a form first: signing in renewed the CSRF seed, and error pages carry no token.
    browser.get("/orders").await;
    let refund = browser
        .post(&format!("/orders/{}/refund", uuid::Uuid::now_v7()), &[("reason", "mine")])
        .await;
    assert_eq!(refund.status, 404, "the use case's answer, not the CSRF check's");

    let mut admin = Browser::new(&app);
    admin.sign_in(&app.admin.email, crate::helpers::ADMIN_PASSWORD).await;
    let users = admin.get("/admin/users").await;
    assert_eq!(users.status, 200);
    assert!(users.body.contains(&customer.email));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_shown_next_to_its_field() {
    let app = TestApp::spawn(Backend::Memory).await;
    let mut browser = Browser::new(&app);
    browser.get("/sign-up").await;
    let taken = browser
        .post(
            "/sign-up",
            &[
                ("email", app.admin.email.as_str()),
                ("password", "long enough 123"),
                ("role", "customer"),
            ],
        )
        .await;
    assert_eq!(taken.status, 422);
    assert!(taken.body.contains("id=\"f-email-error\""), "{}", taken.body);
    assert!(taken.body.contains("already registered"));

    let customer = app.user("customer").await;
    browser.sign_in(&customer.email, PASSWORD).await;
    browser.get("/wallet").await;
    let page = browser.post("/wallet/top-up", &[("currency", "USD"), ("amount", "12.345")]).await;
    assert_eq!(page.status, 422);
    let error = page.body.find("id=\"f-amount-error\"").expect("the amount's error");
    assert!(page.body[error..].contains("at most 2 decimal places"), "{}", page.body);
    let page = browser
        .post(
            "/wallet/transfer",
            &[("currency", "USD"), ("to", "nobody@example.com"), ("amount", "1.00")],
        )
        .await;
    assert_eq!(page.status, 422);
    assert!(page.body.contains("id=\"f-send-to-error\""));
    assert_eq!(browser.get("/orders/not-an-id").await.status, 404);
    assert_eq!(browser.get("/products/not-an-id").await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_is_answered_as_before_beside_the_pages() {
    let app = TestApp::spawn(Backend::Memory).await;
    let products = app.get("/api/v1/products", None).await;
    products.assert_status(200);
    app.get("/api/v1/no-such-thing", None).await.assert_problem(404, "not_found");
    let mut browser = Browser::new(&app);
    let missing = browser.get("/catalog/no/such/page").await;
    assert_eq!(missing.status, 404);
    assert!(
        missing.headers[header::CONTENT_TYPE]
            .to_str()
            .expect("text")
            .starts_with("text/html")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merchant_adds_a_webhook_endpoint_and_sees_its_secret_once() {
    let app = TestApp::spawn(Backend::Memory).await;
    let merchant = app.user("merchant").await;
    let mut browser = Browser::new(&app);
    browser.sign_in(&merchant.email, PASSWORD).await;
    assert_eq!(browser.get("/merchant/webhooks").await.status, 200);
    let refused = browser
        .post("/merchant/webhooks", &[("url", "not a url"), ("description", "")])
        .await;
    assert_eq!(refused.status, 422);
    assert!(refused.body.contains("id=\"f-url-error\""), "{}", refused.body);
    let added = browser
        .post(
            "/merchant/webhooks",
            &[("url", "https://hooks.example.com/paybox"), ("description", "orders")],
        )
        .await;
    assert_eq!(added.status, 200, "{}", added.body);
    assert!(
        added.body.contains("id=\"secret\">whsec_"),
        "the secret is shown once: {}",
        added.body
    );
    let list = browser.get("/merchant/webhooks").await;
    assert!(list.body.contains("https://hooks.example.com/paybox"));
    assert!(!list.body.contains("whsec_"), "and not again");

    let customer = app.user("customer").await;
    let mut other = Browser::new(&app);
    other.sign_in(&customer.email, PASSWORD).await;
    assert_eq!(other.get("/merchant/webhooks").await.status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_access_token_is_refreshed_once_and_a_suspended_user_is_signed_out() {
    let app = TestApp::spawn_on(Backend::Memory, &[("ACCESS_TOKEN_TTL_SECS", "60")], ServerClock::Manual).await;
    let user = app.user("customer").await;
    let mut browser = Browser::new(&app);
    browser.sign_in(&user.email, PASSWORD).await;
    let first = browser.cookies["pb_session"].clone();
    app.advance(std::time::Duration::from_secs(120));

    // Two requests of the page at once present the same expired pair: one refresh, one new pair.
    let stale = browser.cookie_header();
    let mut renewed = Vec::new();
    for _ in 0..2 {
        let response = app
            .http
            .get(format!("{}/wallet", app.base))
            .header(header::COOKIE, stale.clone())
            .send()
            .await
            .expect("the page answers");
        assert_eq!(response.status(), 200);
        let cookie = response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("pb_session="))
            .expect("a renewed session cookie")
            .to_owned();
        renewed.push(cookie);
    }
    assert_eq!(renewed[0], renewed[1], "the second request gets the pair the first one got");
    assert!(!renewed[0].contains(&first));
    browser.get("/wallet").await;
    let value = renewed[0].split(';').next().and_then(|p| p.split_once('=')).expect("a value").1;
    browser.cookies.insert("pb_session".to_owned(), value.to_owned());
    assert_eq!(browser.get("/wallet").await.status, 200, "the new pair works");

    // The admin's token of the app's start has expired with the clock's move: a fresh one.
    let admin = app.login(&app.admin.email, crate::helpers::ADMIN_PASSWORD).await;
    let suspended = app
        .post(
            &format!("/api/v1/admin/users/{}/suspend", user.id),
            Some(&admin.token),
            &json!({"reason": "test"}),
        )
        .await;
    assert_eq!(suspended.status, 200, "{}", suspended.text);
    let page = browser.get("/wallet").await;
    assert_eq!(page.status, 303, "a suspended user's session ends at once");
    assert!(page.set_cookie("pb_session").is_some_and(|c| c.contains("Max-Age=0")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buyer_whose_card_was_declined_pays_again_from_the_order_page() {
    let app = TestApp::spawn(Backend::Memory).await;
    let (ann, buyer) = (app.user("merchant").await, app.user("customer").await);
    let mug = app.product(&ann, "Mug", "12.50", 5).await;
    let cart = json!({"items": [{"product_id": mug, "quantity": 1}], "payment_method": "card"});
    let order = app
        .post("/api/v1/orders", Some(&buyer.token), &cart)
        .await
        .assert_status(201)
        .clone();
    let id = order["id"].as_str().expect("id");
    let mut browser = Browser::new(&app);
    browser.sign_in(&buyer.email, PASSWORD).await;
    let pending = browser.get(&format!("/orders/{id}")).await;
    assert!(!pending.body.contains("Pay again"), "not while the first payment is open");

    app.press(order["payment"]["checkout_url"].as_str().expect("url"), "decline").await;
    let declined = browser.get(&format!("/orders/{id}")).await;
    assert!(declined.body.contains("Pay again"), "{}", declined.body);
    assert!(declined.body.contains("by gateway:simulated"), "the history, for the buyer too");
    let again = browser.post(&format!("/orders/{id}/pay"), &[]).await;
    assert_eq!(again.status, 303, "{}", again.body);
    assert!(
        again.location().contains("/simulator/checkout/"),
        "to the provider's page: {}",
        again.location()
    );
    assert!(again.set_cookie("pb_return").is_some_and(|c| c.contains(&format!("/orders/{id}"))));
    app.press(again.location(), "pay").await;
    let paid = app.get(&format!("/api/v1/orders/{id}"), Some(&buyer.token)).await;
    assert_eq!(paid.assert_status(200)["status"], "paid");

    let forged = Browser::new(&app).post(&format!("/orders/{id}/pay"), &[("csrf", "forged")]).await;
    assert_ne!(forged.status, 303, "no pay again without the session and its token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_page_searches_through_the_use_case_page_by_page() {
    let app = TestApp::spawn(Backend::Memory).await;
    let ann = app.user("merchant").await;
    for n in 0..30 {
        app.product(&ann, &format!("Mug {n:02}"), "4.00", 2).await;
    }
    app.product(&ann, "Kettle", "20.00", 2).await;
    let mut browser = Browser::new(&app);
    let first = browser.get("/catalog?q=MUG").await;
    assert_eq!(first.status, 200);
    assert!(first.body.contains("Mug 29") && !first.body.contains("Kettle"), "{}", first.body);
    let next = first
        .body
        .split("href=\"/catalog?q=MUG&amp;cursor=")
        .nth(1)
        .expect("a next page keeping the search");
    let cursor = &next[..next.find('"').expect("the link's end")];
    let second = browser.get(&format!("/catalog?q=MUG&cursor={cursor}")).await;
    assert!(second.body.contains("Mug 00") && !second.body.contains("Mug 29"), "{}", second.body);
    let refused = browser.get(&format!("/catalog?q={}", "x".repeat(101))).await;
    assert!(refused.body.contains("id=\"q-error\""), "the refusal is shown by the search field");
}
