//! The Stripe adapter over real HTTP against a local double of Stripe's API.

use std::time::Duration;

use adapter_stripe::testing::{StripeDouble, event, paid_session, signature};
use adapter_stripe::{StripeGateway, StripeSettings};
use application::ports::gateway::{
    CheckoutClosure, CheckoutLine, CheckoutRequest, GatewayError, GatewayEventKind, GatewayRefundStatus, PaymentGateway, RefundRequest,
    WebhookError, WebhookHeaders,
};
use domain::ids::{PaymentId, RefundId};
use domain::money::{Currency, Money};
use serde_json::json;
use time::OffsetDateTime;

const SECRETS: [&str; 2] = ["whsec_old_secret", "whsec_new_secret"];

fn settings(double: &StripeDouble) -> StripeSettings {
    StripeSettings {
        secret_key: "sk_test_123".into(),
        webhook_secrets: SECRETS.iter().map(|s| (*s).to_owned()).collect(),
        api_base: double.url(),
        success_url: "https://shop.example/paid".into(),
        cancel_url: "https://shop.example/cancelled".into(),
        webhook_tolerance_secs: 300,
        request_timeout: Duration::from_secs(5),
        attempts_max: 3,
    }
}

async fn gateway() -> (StripeGateway, StripeDouble) {
    let double = StripeDouble::start().await.expect("the double starts");
    (StripeGateway::new(settings(&double)).expect("valid settings"), double)
}

fn usd(minor: i64) -> Money {
    Money::from_minor(minor, Currency::Usd)
}

fn checkout(key: &str) -> CheckoutRequest {
    CheckoutRequest {
        payment_id: PaymentId::from_uuid(uuid::Uuid::now_v7()),
        amount: usd(2_900),
        description: "Order".into(),
        lines: vec![
            CheckoutLine {
                name: "Mug".into(),
                unit_amount: usd(1_250),
                quantity: 2,
            },
            CheckoutLine {
                name: "Pen".into(),
                unit_amount: usd(400),
                quantity: 1,
            },
        ],
        customer_email: "ann@example.com".into(),
        expires_at: OffsetDateTime::now_utc() + time::Duration::hours(1),
        idempotency_key: key.into(),
    }
}

#[tokio::test]
async fn a_checkout_session_carries_our_payment_and_idempotency_key() -> Result<(), GatewayError> {
    let (gateway, double) = gateway().await;
    let request = checkout("checkout-1");
    let session = gateway.create_checkout(request.clone()).await?;
    assert!(session.session_id.starts_with("cs_test_"));
    assert!(session.checkout_url.contains(&session.session_id));
    let sent = &double.requests()[0];
    assert_eq!((sent.method.as_str(), sent.path.as_str()), ("POST", "/v1/checkout/sessions"));
    assert_eq!(sent.idempotency_key.as_deref(), Some("checkout-1"));
    let field = |k: &str| sent.form.get(k).cloned().unwrap_or_default();
    assert_eq!(field("mode"), "payment");
    assert_eq!(field("client_reference_id"), request.payment_id.to_string());
    assert_eq!(field("metadata[payment_id]"), request.payment_id.to_string());
    assert_eq!(field("payment_intent_data[metadata][payment_id]"), request.payment_id.to_string());
    assert_eq!(
        (field("line_items[0][price_data][unit_amount]"), field("line_items[0][quantity]")),
        ("1250".into(), "2".into())
    );
    assert_eq!(field("line_items[1][price_data][product_data][name]"), "Pen");
    assert_eq!(field("line_items[0][price_data][currency]"), "usd");
    assert_eq!(field("success_url"), "https://shop.example/paid");
    // A retried call with the same key gets the same session (Stripe replays it).
    assert_eq!(gateway.create_checkout(request).await?.session_id, session.session_id);
    Ok(())
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retried_with_the_same_key() -> Result<(), GatewayError> {
    let (gateway, double) = gateway().await;
    let limited = StripeDouble::error("invalid_request_error", "rate_limit", "Too many requests");
    let broken = StripeDouble::error("api_error", "", "Something went wrong");
    double.fail_next("/v1/checkout/sessions", vec![(429, limited), (500, broken)]);
    gateway.create_checkout(checkout("checkout-2")).await?;
    let keys: Vec<Option<String>> = double.requests().iter().map(|r| r.idempotency_key.clone()).collect();
    assert_eq!(keys, vec![Some("checkout-2".to_owned()); 3]);
    Ok(())
}

#[tokio::test]
async fn errors_map_to_clear_gateway_errors_and_only_safe_ones_repeat() {
    let (gateway, double) = gateway().await;
    double.fail_next(
        "/v1/refunds",
        vec![(402, StripeDouble::error("card_error", "card_declined", "Your card was declined."))],
    );
    let refund = RefundRequest {
        refund_id: RefundId::from_uuid(uuid::Uuid::now_v7()),
        payment_id: PaymentId::from_uuid(uuid::Uuid::now_v7()),
        provider_payment_id: "pi_1".into(),
        amount: usd(500),
        reason: "r".into(),
        idempotency_key: "refund-1".into(),
    };
    let declined = gateway.refund(refund.clone()).await;
    assert!(
        matches!(declined, Err(GatewayError::Declined(ref m)) if m.contains("insufficient_funds")),
        "{declined:?}"
    );
    double.fail_next(
        "/v1/refunds",
        vec![(
            400,
            StripeDouble::error("invalid_request_error", "parameter_missing", "Missing payment_intent"),
        )],
    );
    assert!(matches!(gateway.refund(refund.clone()).await, Err(GatewayError::InvalidRequest(ref m)) if m.contains("Missing")));
    double.fail_next(
        "/v1/refunds",
        vec![(401, StripeDouble::error("invalid_request_error", "", "Invalid API Key"))],
    );
    assert_eq!(gateway.refund(refund.clone()).await, Err(GatewayError::Authentication));
    let outage = StripeDouble::error("api_error", "", "down");
    double.fail_next("/v1/refunds", vec![(503, outage.clone()), (503, outage.clone()), (503, outage)]);
    assert!(matches!(gateway.refund(refund.clone()).await, Err(GatewayError::Unavailable(_))));
    let refunds = double.requests().iter().filter(|r| r.path == "/v1/refunds").count();
    assert_eq!(
        refunds,
        1 + 1 + 1 + 3,
        "declines, invalid requests and bad keys are sent once; outages three times"
    );
    let limited = StripeDouble::error("invalid_request_error", "rate_limit", "slow down");
    double.fail_next("/v1/refunds", vec![(429, limited.clone()), (429, limited.clone()), (429, limited)]);
    assert_eq!(gateway.refund(refund).await, Err(GatewayError::RateLimited));
}

#[tokio::test]
async fn refunds_report_their_status_and_carry_our_refund_id() -> Result<(), GatewayError> {
    let (gateway, double) = gateway().await;
    let request = RefundRequest {
        refund_id: RefundId::from_uuid(uuid::Uuid::now_v7()),
        payment_id: PaymentId::from_uuid(uuid::Uuid::now_v7()),
        provider_payment_id: "pi_42".into(),
        amount: usd(700),
        reason: "damaged".into(),
        idempotency_key: "refund-2".into(),
    };
    let refund = gateway.refund(request.clone()).await?;
    assert_eq!(refund.status, GatewayRefundStatus::Succeeded);
    let sent = double
        .requests()
        .into_iter()
        .find(|r| r.path == "/v1/refunds")
        .expect("a refund request");
    assert_eq!(
        (
            sent.form.get("payment_intent").map(String::as_str),
            sent.form.get("amount").map(String::as_str)
        ),
        (Some("pi_42"), Some("700"))
    );
    assert_eq!(sent.form.get("metadata[refund_id]"), Some(&request.refund_id.to_string()));
    double.set_refund_status("pending");
    let pending = gateway
        .refund(RefundRequest {
            idempotency_key: "refund-3".into(),
            ..request
        })
        .await?;
    assert_eq!(pending.status, GatewayRefundStatus::Pending);
    Ok(())
}

#[tokio::test]
async fn an_abandoned_session_is_expired_at_stripe() -> Result<(), GatewayError> {
    let (gateway, double) = gateway().await;
    let session = gateway.create_checkout(checkout("checkout-9")).await?;
    assert_eq!(gateway.expire_checkout(&session.session_id).await?, CheckoutClosure::Closed);
    assert_eq!(
        double.session(&session.session_id).map(|s| s["status"].clone()),
        Some(json!("expired"))
    );
    // Expiring it again is not an error: there is nothing left to do.
    assert_eq!(gateway.expire_checkout(&session.session_id).await?, CheckoutClosure::Closed);
    Ok(())
}

#[tokio::test]
async fn a_completed_session_cannot_be_expired_and_says_so() -> Result<(), GatewayError> {
    let (gateway, double) = gateway().await;
    let session = gateway.create_checkout(checkout("checkout-10")).await?;
    double.complete_session(&session.session_id, "pi_10");
    assert_eq!(gateway.expire_checkout(&session.session_id).await?, CheckoutClosure::Completed);
    Ok(())
}

fn headers(signature: &str) -> WebhookHeaders {
    WebhookHeaders::new([("Stripe-Signature".to_owned(), signature.to_owned())])
}

#[tokio::test]
async fn webhooks_are_verified_before_they_are_believed() -> Result<(), WebhookError> {
    let (gateway, _double) = gateway().await;
    let session = json!({"id": "cs_1", "amount_total": 2900, "currency": "usd", "client_reference_id": "0190f0a4-3b5c-7cde-8f00-112233445566", "payment_status": "unpaid"});
    let body = event("evt_1", "checkout.session.completed", paid_session(&session, "pi_1"));
    let now = OffsetDateTime::now_utc();
    for secret in SECRETS {
        let verified = gateway.verify_webhook(&headers(&signature(secret, &body)), body.as_bytes(), now)?;
        assert!(matches!(verified.kind, GatewayEventKind::CheckoutCompleted { paid: true, .. }));
        assert_eq!(verified.event_id, "evt_1");
    }
    let t = now.unix_timestamp();
    let good = stripe_signature::sign(SECRETS[1].as_bytes(), t, body.as_bytes());
    let v1 = good.split("v1=").nth(1).unwrap_or_default().to_owned();
    let several = format!("t={t},v1={},v1={v1}", "ab".repeat(32));
    assert!(
        gateway.verify_webhook(&headers(&several), body.as_bytes(), now).is_ok(),
        "any v1 may match"
    );
    let wrong = stripe_signature::sign(b"whsec_someone_else", t, body.as_bytes());
    assert_eq!(
        gateway.verify_webhook(&headers(&wrong), body.as_bytes(), now).err(),
        Some(WebhookError::BadSignature)
    );
    let tampered = body.replace("2900", "1");
    assert_eq!(
        gateway.verify_webhook(&headers(&good), tampered.as_bytes(), now).err(),
        Some(WebhookError::BadSignature)
    );
    let stale = stripe_signature::sign(SECRETS[0].as_bytes(), t - 301, body.as_bytes());
    assert_eq!(
        gateway.verify_webhook(&headers(&stale), body.as_bytes(), now).err(),
        Some(WebhookError::StaleTimestamp)
    );
    let future = stripe_signature::sign(SECRETS[0].as_bytes(), t + 301, body.as_bytes());
    assert_eq!(
        gateway.verify_webhook(&headers(&future), body.as_bytes(), now).err(),
        Some(WebhookError::StaleTimestamp)
    );
    assert_eq!(
        gateway.verify_webhook(&WebhookHeaders::default(), body.as_bytes(), now).err(),
        Some(WebhookError::MissingSignature)
    );
    assert_eq!(
        gateway.verify_webhook(&headers("v1=abc"), body.as_bytes(), now).err(),
        Some(WebhookError::MalformedSignature)
    );
    let other = event("evt_2", "invoice.paid", json!({"id": "in_1"}));
    let ignored = gateway.verify_webhook(&headers(&signature(SECRETS[0], &other)), other.as_bytes(), now)?;
    assert_eq!(ignored.kind, GatewayEventKind::Ignored);
    Ok(())
}

#[test]
fn broken_configuration_is_refused() {
    let settings = StripeSettings {
        secret_key: "pk_live_public".into(),
        webhook_secrets: vec!["whsec_x".into()],
        api_base: "https://api.stripe.com/".into(),
        success_url: String::new(),
        cancel_url: String::new(),
        webhook_tolerance_secs: 300,
        request_timeout: Duration::from_secs(5),
        attempts_max: 3,
    };
    assert!(StripeGateway::new(settings.clone()).is_err());
    assert!(
        StripeGateway::new(StripeSettings {
            secret_key: "sk_test_1".into(),
            webhook_secrets: vec![],
            ..settings.clone()
        })
        .is_err()
    );
    assert!(
        StripeGateway::new(StripeSettings {
            secret_key: "sk_test_1".into(),
            api_base: "not a url".into(),
            ..settings
        })
        .is_err()
    );
}
