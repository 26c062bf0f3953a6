//! Properties of the HTTP edge: for every free-text and amount field of every money-moving or
//! creating request, hostile values (NUL and other control characters, text past its bound, huge,
//! negative, zero, malformed and over-precise amounts) get a 4xx problem document and write
//! nothing.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, User};

/// Text with at least one character the API refuses, somewhere in ordinary text.
fn hostile_text() -> impl Strategy<Value = String> {
    let refused = prop::sample::select(vec![
        '\u{0}', '\u{1}', '\u{7}', '\u{8}', '\u{b}', '\u{c}', '\u{1b}', '\u{1f}', '\u{7f}', '\u{85}', '\u{9f}',
    ]);
    ("[a-zA-Z0-9 é€]{0,20}", refused, "[a-zA-Z0-9 ]{0,20}").prop_map(|(before, bad, after)| format!("{before}{bad}{after}"))
}

/// Text past the longest any free-text field takes (2,000 characters, a product description).
fn overlong_text() -> impl Strategy<Value = String> {
    (2_001usize..3_000).prop_map(|length| "x".repeat(length))
}

/// Amounts no money-moving request accepts: malformed, signed, zero, over-precise or too large.
fn hostile_amount() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("0".to_owned()),
        Just("0.00".to_owned()),
        Just("-0.01".to_owned()),
        Just("+1.00".to_owned()),
        Just("1e3".to_owned()),
        Just(" 1.00".to_owned()),
        Just("1.001".to_owned()),
        Just("10000000000000.01".to_owned()),
        Just("99999999999999999999999999".to_owned()),
        Just("١٢٣".to_owned()),
        Just("NaN".to_owned()),
        "-[1-9][0-9]{0,5}\\\\.[0-9]{2}",
        "[1-9][0-9]{0,3}\\\\.[0-9]{3,6}",
        "[1-9][0-9]{16,30}",
        "[a-z]{1,10}",
    ]
}

/// A well-formed negative USD amount within bounds: a valid debit for an adjustment.
fn is_debit(value: &str) -> bool {
    let Some(magnitude) = value.strip_prefix('-') else {
        return false;
    };
    let (whole, cents) = magnitude.split_once('.').unwrap_or((magnitude, "00"));
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    digits(whole) && digits(cents) && cents.len() <= 2 && whole.len() <= 13 && magnitude != "0.00" && magnitude != "0"
}

/// A request with one field set to a hostile value.
struct Probe {
    method: Method,
    path: String,
    token: String,
    body: Value,
}

/// Every money-moving or creating request, with `field` of it set to `value`.
fn probes(world: &World, value: &str) -> Vec<(&'static str, Probe)> {
    let probe = |method: Method, path: String, token: &User, body: Value| Probe {
        method,
        path,
        token: token.token.clone(),
        body,
    };
    let (alice, merchant, bob) = (&world.alice, &world.merchant, &world.bob);
    let refund = format!("/api/v1/orders/{}/refunds", world.order);
    let adjust = format!("/api/v1/admin/wallets/{}/adjustments", alice.id);
    vec![
        (
            "name",
            probe(
                Method::POST,
                "/api/v1/products".into(),
                merchant,
                json!({"name": value, "price": "1.00", "currency": "USD", "stock": 1}),
            ),
        ),
        (
            "description",
            probe(
                Method::POST,
                "/api/v1/products".into(),
                merchant,
                json!({"name": "Cup", "description": value, "price": "1.00", "currency": "USD", "stock": 1}),
            ),
        ),
        (
            "price",
            probe(
                Method::POST,
                "/api/v1/products".into(),
                merchant,
                json!({"name": "Cup", "price": value, "currency": "USD", "stock": 1}),
            ),
        ),
        (
            "destination",
            probe(
                Method::POST,
                "/api/v1/wallets/USD/withdrawals".into(),
                alice,
                json!({"amount": "1.00", "destination": value}),
            ),
        ),
        (
            "amount",
            probe(
                Method::POST,
                "/api/v1/wallets/USD/withdrawals".into(),
                alice,
                json!({"amount": value, "destination": "IBAN"}),
            ),
        ),
        (
            "note",
            probe(
                Method::POST,
                "/api/v1/transfers".into(),
                alice,
                json!({"to_user_id": bob.id, "amount": "1.00", "currency": "USD", "note": value}),
            ),
        ),
        (
            "amount",
            probe(
                Method::POST,
                "/api/v1/transfers".into(),
                alice,
                json!({"to_user_id": bob.id, "amount": value, "currency": "USD"}),
            ),
        ),
        ("reason", probe(Method::POST, refund.clone(), merchant, json!({"reason": value}))),
        ("amount", probe(Method::POST, refund, merchant, json!({"amount": value}))),
        (
            "reason",
            probe(
                Method::POST,
                adjust.clone(),
                &world.admin,
                json!({"amount": "1.00", "currency": "USD", "reason": value}),
            ),
        ),
        (
            "signed_amount",
            probe(
                Method::POST,
                adjust,
                &world.admin,
                json!({"amount": value, "currency": "USD", "reason": "probe"}),
            ),
        ),
        (
            "amount",
            probe(Method::POST, "/api/v1/wallets/USD/top-ups".into(), alice, json!({"amount": value})),
        ),
        (
            "rate_per_minute",
            probe(
                Method::POST,
                "/api/v1/calls".into(),
                alice,
                json!({"receiver_id": bob.id, "rate_per_minute": value, "currency": "USD"}),
            ),
        ),
    ]
}

struct World {
    admin: User,
    alice: User,
    bob: User,
    merchant: User,
    order: String,
}

/// The books as the test sees them: what no refused request may change.
async fn books(app: &TestApp, world: &World) -> Vec<Value> {
    let mut state = Vec::new();
    for user in [&world.alice, &world.bob, &world.merchant] {
        state.push(app.wallet(user).await);
    }
    state.push(app.get("/api/v1/merchant/products", Some(&world.merchant.token)).await.body);
    state.push(
        app.get(&format!("/api/v1/orders/{}", world.order), Some(&world.alice.token))
            .await
            .body,
    );
    state.push(app.get("/api/v1/calls", Some(&world.alice.token)).await.body["items"].clone());
    state
}

fn refuses_every_hostile_value(backend: Backend, cases: u32) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let (app, world) = runtime.block_on(async {
        let app = TestApp::spawn(backend).await;
        let merchant = app.user("merchant").await;
        let alice = app.customer_with("50.00").await;
        let bob = app.user("customer").await;
        let mug = app.product(&merchant, "Mug", "5.00", 10).await;
        let cart = json!({"items": [{"product_id": mug, "quantity": 2}], "payment_method": "wallet"});
        let order = app.post("/api/v1/orders", Some(&alice.token), &cart).await.assert_status(201)["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let world = World {
            admin: app.admin.clone(),
            alice,
            bob,
            merchant,
            order,
        };
        (app, world)
    });
    let before = runtime.block_on(books(&app, &world));
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let text_fields = ["name", "description", "destination", "note", "reason"];
    let amount_fields = ["price", "amount", "rate_per_minute", "signed_amount"];
    let values = prop_oneof![
        hostile_text().prop_map(|v| (v, &text_fields[..])),
        overlong_text().prop_map(|v| (v, &text_fields[..])),
        hostile_amount().prop_map(|v| (v, &amount_fields[..])),
    ];
    let outcome = runner.run(&values, |(value, fields)| {
        // An adjustment debits with a negative amount: only the rest is hostile to it.
        let applies = |field: &str| fields.contains(&field) && !(field == "signed_amount" && is_debit(&value));
        for (field, probe) in probes(&world, &value).into_iter().filter(|(field, _)| applies(field)) {
            let reply = runtime.block_on(app.send(probe.method.clone(), &probe.path, Some(&probe.token), Some(&probe.body), &[]));
            let problem = reply.header("content-type") == Some("application/problem+json");
            prop_assert!(
                (400..500).contains(&reply.status) && problem,
                "{} {} with {field} = {value:?}: {} {}",
                probe.method,
                probe.path,
                reply.status,
                reply.text
            );
        }
        Ok(())
    });
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
    let after = runtime.block_on(books(&app, &world));
    assert_eq!(before, after, "a refused request wrote something");
    runtime.block_on(app.assert_ledger_ok());
}

#[test]
fn hostile_text_and_amounts_are_refused_without_a_write_on_memory() {
    refuses_every_hostile_value(Backend::Memory, 96);
}

#[test]
fn hostile_text_and_amounts_are_refused_without_a_write_on_postgres() {
    refuses_every_hostile_value(Backend::Postgres, 24);
}
