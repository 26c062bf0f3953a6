//! The Paystack adapter over real HTTP against a local double of Paystack's API.

use std::time::Duration;

use adapter_paystack::testing::{PaystackDouble, refusal, validation_error};
use adapter_paystack::{PaystackGateway, PaystackSettings, SIGNATURE_HEADER, sign};
use application::ports::gateway::{
    CheckoutLine, CheckoutRequest, GatewayError, GatewayEventKind, GatewayRefundStatus, PaymentGateway, PaymentReference, RefundRequest,
    WebhookError, WebhookHeaders,
};
use domain::ids::{PaymentId, RefundId};
use domain::money::{Currency, Money};
use serde_json::json;
use time::OffsetDateTime;

const SECRET: &str = "sk_test_paystack_double";

async fn gateway() -> (PaystackGateway, PaystackDouble) {
    gateway_with_secret(SECRET).await
}

/// The adapter, configured with `secret_key`, against a double that knows only `SECRET`.
async fn gateway_with_secret(secret_key: &str) -> (PaystackGateway, PaystackDouble) {
    let double = PaystackDouble::start(SECRET).await.expect("the double starts");
    (
        PaystackGateway::new(settings(secret_key, &double.url())).expect("valid settings"),
        double,
    )
}

fn settings(secret_key: &str, base_url: &str) -> PaystackSettings {
    PaystackSettings {
        secret_key: secret_key.into(),
        base_url: base_url.into(),
        callback_url: "https://shop.example/checkout/complete".into(),
        request_timeout: Duration::from_secs(5),
        attempts_max: 3,
    }
}

fn ngn(minor: i64) -> Money {
    Money::from_minor(minor, Currency::Ngn)
}

fn checkout(amount: Money) -> CheckoutRequest {
    CheckoutRequest {
        payment_id: PaymentId::from_uuid(uuid::Uuid::now_v7()),
        amount,
        description: "Wallet top-up".into(),
        lines: vec![CheckoutLine {
            name: "Top-up".into(),
            unit_amount: amount,
            quantity: 1,
        }],
        customer_email: "ada@example.com".into(),
        expires_at: OffsetDateTime::now_utc() + time::Duration::minutes(30),
        idempotency_key: "k".into(),
    }
}

/// A paid transaction of `amount` at the double; its reference.
async fn paid(gateway: &PaystackGateway, double: &PaystackDouble, amount: Money) -> String {
    let session = gateway.create_checkout(checkout(amount)).await.expect("initialised");
    double.pay(&session.session_id).expect("a transaction");
    session.session_id
}

fn refund_of(reference: &str, amount: Money, key: &str) -> RefundRequest {
    RefundRequest {
        refund_id: RefundId::from_uuid(uuid::Uuid::now_v7()),
        payment_id: PaymentId::from_uuid(uuid::Uuid::now_v7()),
        provider_payment_id: reference.into(),
        amount,
        reason: "customer request".into(),
        idempotency_key: key.into(),
    }
}

fn reference_of(session_id: &str) -> PaymentReference {
    PaymentReference {
        payment_id: PaymentId::parse(session_id).ok(),
        session_id: Some(session_id.to_owned()),
        provider_payment_id: None,
    }
}

#[tokio::test]
async fn a_transaction_is_initialised_under_our_reference_in_subunits() -> Result<(), GatewayError> {
    let (gateway, double) = gateway().await;
    let request = checkout(ngn(250_050));
    let session = gateway.create_checkout(request.clone()).await?;
    assert_eq!(
        session.session_id,
        request.payment_id.to_string(),
        "the reference is our payment id"
    );
    assert!(
        session.checkout_url.starts_with("https://checkout.paystack.com/"),
        "{}",
        session.checkout_url
    );
    let transaction = double.transaction(&session.session_id).expect("recorded");
    assert_eq!(
        (transaction.amount, transaction.currency.as_str()),
        (250_050, "NGN"),
        "kobo, never a float"
    );
    assert_eq!(transaction.email, "ada@example.com");
    assert_eq!(transaction.callback_url, "https://shop.example/checkout/complete");
    assert_eq!(transaction.metadata["payment_id"], json!(request.payment_id.to_string()));
    let cedis = gateway.create_checkout(checkout(Money::from_minor(1_000, Currency::Ghs))).await?;
    assert_eq!(double.transaction(&cedis.session_id).map(|t| t.currency), Some("GHS".to_owned()));

    let euros = gateway.create_checkout(checkout(Money::from_minor(100, Currency::Eur))).await;
    assert!(matches!(euros, Err(GatewayError::InvalidRequest(_))), "{euros:?}");
    assert_eq!(
        double.transactions().len(),
        2,
        "nothing is sent for a currency Paystack does not take"
    );
    for currency in [Currency::Ngn, Currency::Ghs, Currency::Kes, Currency::Zar, Currency::Usd] {
        assert!(gateway.supports_currency(currency), "{currency}");
    }
    assert!(!gateway.supports_currency(Currency::Eur) && !gateway.supports_currency(Currency::Jpy));
    Ok(())
}

#[tokio::test]
async fn a_payment_is_confirmed_only_once_paystack_verifies_it() -> Result<(), GatewayError> {
    let (gateway, double) = gateway().await;
    let session = gateway.create_checkout(checkout(ngn(500_000))).await?;
    let reference = reference_of(&session.session_id);
    let abandoned = gateway.confirm_payment(&reference).await?.expect("Paystack answers");
    assert!(!abandoned.paid);
    double.set_status(&session.session_id, "failed");
    assert!(!gateway.confirm_payment(&reference).await?.expect("answers").paid);
    double.pay(&session.session_id);
    let paid = gateway.confirm_payment(&reference).await?.expect("answers");
    assert!(paid.paid);
    assert_eq!(paid.amount, Some(ngn(500_000)));
    let verified = double
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/transaction/verify/"))
        .count();
    assert_eq!(verified, 3);

    // A rate limit is waited out; an answer about another transaction is not believed.
    double.fail_next("/transaction/verify/", vec![(429, refusal("Too many requests"))]);
    assert!(gateway.confirm_payment(&reference).await?.expect("answers").paid);
    let other = json!({"status": true, "message": "Verification successful",
        "data": {"status": "success", "reference": "someone-else", "amount": 500_000, "currency": "NGN"}});
    double.fail_next("/transaction/verify/", vec![(200, other)]);
    let confused = gateway.confirm_payment(&reference).await;
    assert!(matches!(confused, Err(GatewayError::Unexpected(_))), "{confused:?}");

    let unknown = gateway.confirm_payment(&reference_of("no-such-reference")).await;
    assert!(
        matches!(unknown, Err(GatewayError::InvalidRequest(ref m)) if m.contains("reference not found")),
        "{unknown:?}"
    );
    Ok(())
}

#[tokio::test]
async fn refunds_full_and_partial_carry_our_key_and_report_their_status() -> Result<(), GatewayError> {
    let (gateway, double) = gateway().await;
    let reference = paid(&gateway, &double, ngn(120_000)).await;
    let partial = gateway.refund(refund_of(&reference, ngn(20_000), "refund-1")).await?;
    assert_eq!(partial.status, GatewayRefundStatus::Pending);
    let sent = double.refunds();
    assert_eq!(
        (sent[0].amount, sent[0].transaction_reference.as_str()),
        (20_000, reference.as_str())
    );
    assert_eq!(partial.provider_refund_id, sent[0].id.to_string());
    assert!(sent[0].merchant_note.starts_with("refund-1: "), "{}", sent[0].merchant_note);

    double.set_refund_status("processed");
    let rest = gateway.refund(refund_of(&reference, ngn(100_000), "refund-2")).await?;
    assert_eq!(rest.status, GatewayRefundStatus::Succeeded);
    let too_much = gateway.refund(refund_of(&reference, ngn(1), "refund-3")).await;
    assert!(
        matches!(too_much, Err(GatewayError::InvalidRequest(ref m)) if m.contains("cannot be more")),
        "{too_much:?}"
    );
    assert_eq!(double.refunds().len(), 2);

    // Asked again under its key (the follow-up job), a refund is looked up, never made twice,
    // and its current status is reported.
    double.settle_refund(sent[0].id, "processing");
    let again = gateway.refund(refund_of(&reference, ngn(20_000), "refund-1")).await?;
    assert_eq!(
        (again.provider_refund_id.as_str(), again.status),
        (partial.provider_refund_id.as_str(), GatewayRefundStatus::Pending)
    );
    double.settle_refund(sent[0].id, "failed");
    assert_eq!(
        gateway.refund(refund_of(&reference, ngn(20_000), "refund-1")).await?.status,
        GatewayRefundStatus::Failed
    );
    double.settle_refund(sent[0].id, "processed");
    assert_eq!(
        gateway.refund(refund_of(&reference, ngn(20_000), "refund-1")).await?.status,
        GatewayRefundStatus::Succeeded
    );
    assert_eq!(double.refunds().len(), 2, "no refund is made twice");
    Ok(())
}

#[tokio::test]
async fn a_refund_is_looked_up_before_it_is_retried() -> Result<(), GatewayError> {
    let (gateway, double) = gateway().await;
    let reference = paid(&gateway, &double, ngn(50_000)).await;
    double.fail_next("POST /refund", vec![(502, refusal("Bad gateway")), (500, refusal("Server error"))]);
    let refund = gateway.refund(refund_of(&reference, ngn(50_000), "refund-r")).await?;
    assert_eq!(refund.status, GatewayRefundStatus::Pending);
    assert_eq!(double.refunds().len(), 1, "one refund after two failures");
    let methods: Vec<String> = double
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/refund"))
        .map(|r| r.method.clone())
        .collect();
    assert_eq!(methods, ["GET", "POST", "GET", "POST", "GET", "POST"], "each attempt looks first");

    double.fail_next("POST /refund", vec![(503, refusal("down")); 3]);
    let down = gateway.refund(refund_of(&reference, ngn(10), "refund-d")).await;
    assert!(matches!(down, Err(GatewayError::Unavailable(_))), "{down:?}");
    Ok(())
}

#[tokio::test]
async fn each_error_shape_is_named() -> Result<(), GatewayError> {
    let (gateway, double) = gateway().await;
    double.fail_next(
        "/transaction/initialize",
        vec![(400, validation_error("Invalid Email Address Passed"))],
    );
    let invalid = gateway.create_checkout(checkout(ngn(10_000))).await;
    assert!(
        matches!(invalid, Err(GatewayError::InvalidRequest(ref m)) if m.contains("Invalid Email")),
        "{invalid:?}"
    );
    double.fail_next(
        "/transaction/initialize",
        vec![(404, refusal("The requested resource was not found"))],
    );
    let missing = gateway.create_checkout(checkout(ngn(10_000))).await;
    assert!(
        matches!(missing, Err(GatewayError::InvalidRequest(ref m)) if m.contains("404")),
        "{missing:?}"
    );
    double.fail_next("/transaction/initialize", vec![(200, refusal("Something is not right"))]);
    let refused = gateway.create_checkout(checkout(ngn(10_000))).await;
    assert!(
        matches!(refused, Err(GatewayError::InvalidRequest(ref m)) if m.contains("not right")),
        "{refused:?}"
    );
    double.fail_next("/transaction/initialize", vec![(200, json!("<html>maintenance</html>"))]);
    let garbled = gateway.create_checkout(checkout(ngn(10_000))).await;
    assert!(matches!(garbled, Err(GatewayError::Unexpected(_))), "{garbled:?}");
    assert!(double.transactions().is_empty());
    Ok(())
}

#[tokio::test]
async fn a_wrong_secret_key_is_named_and_not_retried() {
    let (gateway, double) = gateway_with_secret("sk_test_not_ours").await;
    let refused = gateway.create_checkout(checkout(ngn(10_000))).await;
    assert!(matches!(refused, Err(GatewayError::Authentication)), "{refused:?}");
    assert_eq!((double.requests().len(), double.transactions().len()), (1, 0));
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retried_under_the_same_reference() -> Result<(), GatewayError> {
    let (gateway, double) = gateway().await;
    double.fail_next(
        "/transaction/initialize",
        vec![(429, refusal("Too many requests")), (502, refusal("Bad gateway"))],
    );
    let request = checkout(ngn(10_000));
    gateway.create_checkout(request.clone()).await?;
    let references: Vec<_> = double
        .requests()
        .iter()
        .filter(|r| r.path == "/transaction/initialize")
        .map(|r| r.body["reference"].clone())
        .collect();
    assert_eq!(
        references,
        vec![json!(request.payment_id.to_string()); 3],
        "every attempt carries our reference"
    );
    assert_eq!(double.transactions().len(), 1);

    double.fail_next("/transaction/initialize", vec![(429, refusal("Too many requests")); 3]);
    let limited = gateway.create_checkout(checkout(ngn(10_000))).await;
    assert!(matches!(limited, Err(GatewayError::RateLimited)), "{limited:?}");
    double.fail_next("/transaction/initialize", vec![(500, refusal("Server error")); 3]);
    let down = gateway.create_checkout(checkout(ngn(10_000))).await;
    assert!(matches!(down, Err(GatewayError::Unavailable(_))), "{down:?}");
    assert_eq!(double.transactions().len(), 1, "nothing was initialised while it failed");

    // An attempt whose answer was lost took the reference: a retry cannot open a second
    // transaction, and says why the checkout cannot be offered.
    let again = gateway.create_checkout(request.clone()).await;
    assert!(
        matches!(again, Err(GatewayError::InvalidRequest(ref m)) if m.contains("Duplicate") && m.contains("lost")),
        "{again:?}"
    );
    assert_eq!(double.transactions().len(), 1);
    Ok(())
}

#[tokio::test]
async fn webhooks_must_carry_paystacks_signature() -> Result<(), WebhookError> {
    let (gateway, double) = gateway().await;
    let request = checkout(ngn(300_000));
    let session = gateway
        .create_checkout(request.clone())
        .await
        .map_err(|e| WebhookError::MalformedPayload(e.to_string()))?;
    let body = double.pay(&session.session_id).expect("a transaction");
    let now = OffsetDateTime::now_utc();
    let signed = WebhookHeaders::new([(SIGNATURE_HEADER.to_owned(), double.sign(&body))]);
    let event = gateway.verify_webhook(&signed, body.as_bytes(), now)?;
    assert_eq!(event.event_id, format!("charge.success:{}", session.session_id));
    assert_eq!(event.event_type, "charge.success");
    assert!(
        matches!(event.kind, GatewayEventKind::PaymentSucceeded { ref reference, amount: Some(amount) } if reference.payment_id == Some(request.payment_id) && amount == ngn(300_000))
    );
    let upper = WebhookHeaders::new([("X-Paystack-Signature".to_owned(), sign(SECRET, body.as_bytes()).to_uppercase())]);
    assert!(
        gateway.verify_webhook(&upper, body.as_bytes(), now).is_ok(),
        "header names and hex case do not matter"
    );

    let other_key = WebhookHeaders::new([(SIGNATURE_HEADER.to_owned(), sign("sk_test_someone_else", body.as_bytes()))]);
    assert_eq!(
        gateway.verify_webhook(&other_key, body.as_bytes(), now).err(),
        Some(WebhookError::BadSignature)
    );
    let tampered = body.replace("\"amount\":300000", "\"amount\":3000000");
    assert_ne!(tampered, body);
    assert_eq!(
        gateway.verify_webhook(&signed, tampered.as_bytes(), now).err(),
        Some(WebhookError::BadSignature)
    );
    assert_eq!(
        gateway.verify_webhook(&WebhookHeaders::default(), body.as_bytes(), now).err(),
        Some(WebhookError::MissingSignature)
    );
    let garbage = WebhookHeaders::new([(SIGNATURE_HEADER.to_owned(), "not hex".to_owned())]);
    assert_eq!(
        gateway.verify_webhook(&garbage, body.as_bytes(), now).err(),
        Some(WebhookError::MalformedSignature)
    );
    Ok(())
}

#[tokio::test]
async fn refund_events_are_parsed_once_verified() -> Result<(), WebhookError> {
    let (gateway, double) = gateway().await;
    let reference = paid(&gateway, &double, ngn(80_000)).await;
    let refund = gateway
        .refund(refund_of(&reference, ngn(30_000), "refund-e"))
        .await
        .map_err(|e| WebhookError::MalformedPayload(e.to_string()))?;
    let id: u64 = refund.provider_refund_id.parse().expect("numeric id");
    let now = OffsetDateTime::now_utc();
    for (status, expected) in [
        ("pending", GatewayRefundStatus::Pending),
        ("processing", GatewayRefundStatus::Pending),
        ("processed", GatewayRefundStatus::Succeeded),
        ("failed", GatewayRefundStatus::Failed),
    ] {
        let body = double.refund_event(id, status).expect("a refund");
        let headers = WebhookHeaders::new([(SIGNATURE_HEADER.to_owned(), double.sign(&body))]);
        let event = gateway.verify_webhook(&headers, body.as_bytes(), now)?;
        assert_eq!(event.event_type, format!("refund.{status}"));
        let GatewayEventKind::PaymentRefundUpdated {
            reference: about,
            amount,
            status: got,
            ..
        } = event.kind
        else {
            panic!("wrong kind for {status}: {:?}", event.kind);
        };
        assert_eq!(
            (got, amount, about.provider_payment_id.as_deref()),
            (expected, ngn(30_000), Some(reference.as_str()))
        );
    }
    Ok(())
}

#[test]
fn a_public_key_or_a_bad_url_is_refused() {
    assert!(PaystackGateway::new(settings("pk_test_public", "https://api.paystack.co")).is_err());
    assert!(PaystackGateway::new(settings("sk_test_", "https://api.paystack.co")).is_err());
    assert!(PaystackGateway::new(settings(SECRET, "ftp://api.paystack.co")).is_err());
    assert!(PaystackGateway::new(settings(SECRET, "https://api.paystack.co")).is_ok());
}
