//! Merchant statements over HTTP: the figures against the merchant's postings, as JSON and as
//! CSV, who may read whose, and the periods refused.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{ServerClock, TestApp, User};
use crate::on_every_backend;

on_every_backend!(
    a_merchants_statement_adds_up_to_its_postings_as_json_and_csv,
    statements_are_for_merchants_and_admins_and_bad_periods_are_refused,
);

/// A USD amount in cents, from its major-unit string ("-12.50" is -1250).
fn cents(text: &str) -> i64 {
    let (units, fraction) = text.split_once('.').unwrap_or_else(|| panic!("not a USD amount: {text}"));
    let negative = units.starts_with('-');
    let magnitude = units.trim_start_matches('-').parse::<i64>().expect("units") * 100 + fraction.parse::<i64>().expect("cents");
    if negative { -magnitude } else { magnitude }
}

fn statement_path(query: &str) -> String {
    format!("/api/v1/statements?{}", query.replace('+', "%2B"))
}

async fn buy(app: &TestApp, buyer: &User, product: &str, quantity: i64) -> String {
    let cart = json!({"items": [{"product_id": product, "quantity": quantity}], "payment_method": "wallet"});
    let order = app.post("/api/v1/orders", Some(&buyer.token), &cart).await;
    order.assert_status(201)["id"].as_str().expect("order id").to_owned()
}

async fn withdraw(app: &TestApp, merchant: &User, amount: &str) {
    let body = json!({"amount": amount, "destination": "bank"});
    app.post("/api/v1/wallets/USD/withdrawals", Some(&merchant.token), &body)
        .await
        .assert_status(201);
}

/// A merchant who sold and withdrew; a day later sold, refunded, transferred and withdrew; a day
/// later sold again. Returns the merchant, the buyer and the merchant's postings, oldest first.
async fn a_merchant_with_a_history(app: &TestApp) -> (User, User, Vec<Value>) {
    let merchant = app.user("merchant").await;
    let buyer = app.customer_with("1000.00").await;
    let mug = app.product(&merchant, "Mug", "10.00", 50).await;
    buy(app, &buyer, &mug, 1).await;
    withdraw(app, &merchant, "2.00").await;
    app.advance(Duration::from_secs(86_400));
    let order = buy(app, &buyer, &mug, 2).await;
    app.post(
        &format!("/api/v1/orders/{order}/refunds"),
        Some(&merchant.token),
        &json!({"amount": "10.00"}),
    )
    .await
    .assert_status(201);
    let transfer = json!({"to_user_id": buyer.id, "amount": "3.00", "currency": "USD"});
    app.post("/api/v1/transfers", Some(&merchant.token), &transfer)
        .await
        .assert_status(201);
    withdraw(app, &merchant, "1.00").await;
    app.advance(Duration::from_secs(86_400));
    buy(app, &buyer, &mug, 3).await;
    let history = app.get("/api/v1/wallets/USD/transactions?limit=100", Some(&merchant.token)).await;
    let mut postings = history.assert_status(200)["items"].as_array().expect("items").clone();
    postings.reverse();
    assert_eq!(postings.len(), 7, "the history built: {postings:?}");
    (merchant, buyer, postings)
}

fn text<'v>(value: &'v Value, field: &str) -> &'v str {
    value[field].as_str().unwrap_or_else(|| panic!("{field} in {value}"))
}

async fn a_merchants_statement_adds_up_to_its_postings_as_json_and_csv(app: TestApp) {
    // Tokens outlive the two days the clock moves.
    let app = TestApp::spawn_on(app.backend, &[("ACCESS_TOKEN_TTL_SECS", "604800")], ServerClock::Manual).await;
    let (merchant, _, postings) = a_merchant_with_a_history(&app).await;
    // The period starts at the first posting of the second day (included) and ends at the first
    // of the third (excluded).
    let (from, to) = (text(&postings[2], "created_at"), text(&postings[6], "created_at"));
    let before = &postings[..2];
    let during = &postings[2..6];
    let sum = |items: &[Value], kind: Option<&str>| -> i64 {
        items
            .iter()
            .filter(|p| kind.is_none_or(|kind| p["kind"] == kind))
            .map(|p| cents(text(p, "amount")))
            .sum()
    };
    let query = format!("currency=USD&from={from}&to={to}");
    let reply = app.get(&statement_path(&query), Some(&merchant.token)).await;
    let statement = reply.assert_status(200).clone();
    assert_eq!(reply.header("content-type"), Some("application/json"));

    assert_eq!(
        (text(&statement, "merchant_id"), text(&statement, "currency")),
        (merchant.id.as_str(), "USD")
    );
    assert_eq!((text(&statement, "from"), text(&statement, "to")), (from, to));
    assert_eq!(cents(text(&statement, "opening_balance")), sum(before, None));
    assert_eq!(text(&statement, "opening_balance"), "8.00");
    assert_eq!(cents(text(&statement, "gross_sales")), sum(during, Some("purchase")));
    assert_eq!(text(&statement, "gross_sales"), "20.00");
    assert_eq!(cents(text(&statement, "refunds")), sum(during, Some("refund")));
    assert_eq!(text(&statement, "refunds"), "-10.00");
    assert_eq!(text(&statement, "net_sales"), "10.00");
    assert_eq!(cents(text(&statement, "net_change")), sum(during, None));
    assert_eq!(text(&statement, "closing_balance"), text(&postings[5], "balance_after"));
    assert_eq!(text(&statement, "closing_balance"), "14.00");
    let lines: Vec<(String, String, u64)> = statement["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| {
            (
                text(l, "line").to_owned(),
                text(l, "amount").to_owned(),
                l["postings"].as_u64().expect("postings"),
            )
        })
        .collect();
    let line = |name: &str| {
        lines
            .iter()
            .find(|l| l.0 == name)
            .cloned()
            .unwrap_or_else(|| panic!("no line {name}"))
    };
    assert_eq!(line("transfers_out"), ("transfers_out".into(), "-3.00".into(), 1));
    assert_eq!(line("withdrawals"), ("withdrawals".into(), "-1.00".into(), 1));
    assert_eq!(line("gross_sales").2, 1);
    assert_eq!(
        lines.iter().map(|l| l.2).sum::<u64>(),
        during.len() as u64,
        "every posting in one line"
    );
    assert_eq!(lines.len(), 12);

    for (path, headers) in [
        (statement_path(&format!("{query}&format=csv")), vec![]),
        (statement_path(&query), vec![("accept", "text/csv")]),
    ] {
        let reply = app.get_with(&path, Some(&merchant.token), &headers).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.header("content-type"), Some("text/csv; charset=utf-8"));
        let rows: Vec<Vec<&str>> = reply.text.lines().map(|row| row.split(',').collect()).collect();
        assert_eq!(rows[0], ["merchant_id", "currency", "from", "to", "line", "amount", "postings"]);
        assert_eq!(rows.len(), 1 + 1 + 12 + 1, "header, opening, the lines, closing");
        assert!(
            rows[1..].iter().all(|row| row[..4] == [merchant.id.as_str(), "USD", from, to]),
            "{rows:?}"
        );
        assert_eq!((rows[1][4], rows[1][5]), ("opening_balance", "8.00"));
        let last = rows.last().expect("closing row");
        assert_eq!((last[4], last[5]), ("closing_balance", "14.00"));
        let csv_lines: Vec<(String, String, u64)> = rows[2..rows.len() - 1]
            .iter()
            .map(|row| (row[4].to_owned(), row[5].to_owned(), row[6].parse().expect("postings")))
            .collect();
        assert_eq!(csv_lines, lines, "the CSV lines are the JSON lines");
        let opening_and_lines: i64 = rows[1..rows.len() - 1].iter().map(|row| cents(row[5])).sum();
        assert_eq!(opening_and_lines, cents(last[5]), "opening plus lines is closing");
    }

    let admin_query = format!("{query}&merchant_id={}", merchant.id);
    let by_admin = app.get(&statement_path(&admin_query), Some(&app.admin.token)).await;
    assert_eq!(by_admin.assert_status(200), &statement, "an admin reads the same statement");
    let verified = app.get("/api/v1/admin/ledger/verify", Some(&app.admin.token)).await;
    let verified = verified.assert_status(200);
    assert_eq!(verified["ok"], json!(true), "{verified}");
    assert!(verified["statements_checked"].as_u64() >= Some(1), "{verified}");
}

async fn statements_are_for_merchants_and_admins_and_bad_periods_are_refused(app: TestApp) {
    let merchant = app.user("merchant").await;
    let other = app.user("merchant").await;
    let customer = app.user("customer").await;
    let period = "currency=USD&from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z";
    let own = app.get(&statement_path(period), Some(&merchant.token)).await;
    assert_eq!(text(own.assert_status(200), "closing_balance"), "0.00");

    let for_merchant = format!("{period}&merchant_id={}", merchant.id);
    app.get(&statement_path(period), Some(&customer.token))
        .await
        .assert_problem(403, "forbidden");
    app.get(&statement_path(&for_merchant), Some(&customer.token))
        .await
        .assert_problem(403, "forbidden");
    app.get(&statement_path(&for_merchant), Some(&other.token))
        .await
        .assert_problem(404, "not_found");
    app.get(&statement_path(period), Some(&app.admin.token))
        .await
        .assert_problem(422, "validation_failed");
    let of_customer = format!("{period}&merchant_id={}", customer.id);
    app.get(&statement_path(&of_customer), Some(&app.admin.token))
        .await
        .assert_problem(404, "not_found");
    let by_admin = app.get(&statement_path(&for_merchant), Some(&app.admin.token)).await;
    assert_eq!(text(by_admin.assert_status(200), "merchant_id"), merchant.id);
    app.get(&statement_path(period), None).await.assert_problem(401, "unauthorized");

    let invalid = [
        ("currency=USD&from=2026-02-01T00:00:00Z&to=2026-02-01T00:00:00Z", "to"),
        ("currency=USD&from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", "to"),
        ("currency=USD&from=2024-01-01T00:00:00Z&to=2025-01-02T00:00:00Z", "to"),
        ("currency=USD&from=yesterday&to=2026-01-01T00:00:00Z", "from"),
        ("currency=USD&from=2026-01-01&to=2026-01-02", "from"),
        ("currency=XXX&from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z", "currency"),
    ];
    for (query, field) in invalid {
        let reply = app.get(&statement_path(query), Some(&merchant.token)).await;
        reply.assert_problem(422, "validation_failed");
        assert_eq!(reply.body["errors"][0]["field"], field, "{query}: {}", reply.text);
    }
    let a_leap_year = "currency=USD&from=2024-01-01T00:00:00Z&to=2025-01-01T00:00:00Z";
    app.get(&statement_path(a_leap_year), Some(&merchant.token))
        .await
        .assert_status(200);
    for malformed in [
        "currency=USD&to=2026-01-01T00:00:00Z",
        &format!("{period}&format=xml"),
        &format!("{period}&merchant_id=42"),
    ] {
        app.get(&statement_path(malformed), Some(&merchant.token))
            .await
            .assert_problem(400, "invalid_query");
    }
}
