//! The Monnify adapter over real HTTP against a local double of Monnify's API.

use std::time::Duration;

use adapter_monnify::testing::{MonnifyDouble, refusal};
use adapter_monnify::{MonnifyGateway, MonnifySettings, SIGNATURE_HEADER, sign};
use application::ports::gateway::{
    CheckoutLine, CheckoutRequest, GatewayError, GatewayEventKind, GatewayRefundStatus, PaymentGateway, PaymentReference, RefundRequest,
    WebhookError, WebhookHeaders,
};
use domain::ids::{PaymentId, RefundId};
use domain::money::{Currency, Money};
use time::OffsetDateTime;

const API_KEY: &str = "MK_TEST_123";
const SECRET: &str = "SK_TEST_SECRET";

async fn gateway() -> (MonnifyGateway, MonnifyDouble) {
    gateway_with_secret(SECRET).await
}

/// The adapter, configured with `secret_key`, against a double that knows only `SECRET`.
async fn gateway_with_secret(secret_key: &str) -> (MonnifyGateway, MonnifyDouble) {
    let double = MonnifyDouble::start(API_KEY, SECRET).await.expect("the double starts");
    let settings = MonnifySettings {
        api_key: API_KEY.into(),
        secret_key: secret_key.into(),
        contract_code: "CONTRACT1".into(),
        base_url: double.url(),
        redirect_url: "https://shop.example/paid".into(),
        request_timeout: Duration::from_secs(5),
        attempts_max: 3,
    };
    (MonnifyGateway::new(settings).expect("valid settings"), double)
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

/// A refund of `amount` of the Monnify transaction `MNFY|1|2`.
fn refund_of(amount: Money) -> RefundRequest {
    RefundRequest {
        refund_id: RefundId::from_uuid(uuid::Uuid::now_v7()),
        payment_id: PaymentId::from_uuid(uuid::Uuid::now_v7()),
        provider_payment_id: "MNFY|1|2".into(),
        amount,
        reason: "customer request".into(),
        idempotency_key: "r".into(),
    }
}

#[tokio::test]
async fn a_transaction_is_initialised_in_naira_with_one_login() -> Result<(), GatewayError> {
    let (gateway, double) = gateway().await;
    let request = checkout(ngn(250_050));
    let session = gateway.create_checkout(request.clone()).await?;
    assert!(session.session_id.starts_with("MNFY|"));
    assert!(session.checkout_url.contains(&session.session_id));
    let transaction = double.transaction_for(&request.payment_id.to_string()).expect("recorded");
    assert_eq!(transaction.amount, "2500.50", "the amount is the exact decimal, never a float");
    gateway.create_checkout(checkout(ngn(100))).await?;
    assert_eq!(double.logins(), 1, "the token is cached");
    double.revoke_tokens();
    gateway.create_checkout(checkout(ngn(100))).await?;
    assert_eq!(double.logins(), 2, "a rejected token is renewed once");
    let dollars = gateway.create_checkout(checkout(Money::from_minor(100, Currency::Usd))).await;
    assert!(matches!(dollars, Err(GatewayError::InvalidRequest(_))));
    assert!(!gateway.supports_currency(Currency::Usd) && gateway.supports_currency(Currency::Ngn));
    Ok(())
}

#[tokio::test]
async fn server_errors_are_retried_and_refusals_reported() -> Result<(), GatewayError> {
    let (gateway, double) = gateway().await;
    double.fail_next(
        "/api/v1/merchant",
        vec![(502, refusal("bad gateway", "99")), (500, refusal("oops", "99"))],
    );
    gateway.create_checkout(checkout(ngn(10_000))).await?;
    double.fail_next("/api/v1/merchant", vec![(400, refusal("Duplicate payment reference", "99"))]);
    let refused = gateway.create_checkout(checkout(ngn(10_000))).await;
    assert!(
        matches!(refused, Err(GatewayError::InvalidRequest(ref m)) if m.contains("Duplicate")),
        "{refused:?}"
    );
    double.fail_next("/api/v1/merchant", vec![(503, refusal("down", "99")); 3]);
    assert!(matches!(
        gateway.create_checkout(checkout(ngn(10_000))).await,
        Err(GatewayError::Unavailable(_))
    ));
    Ok(())
}

#[tokio::test]
async fn rate_limits_are_retried_and_reported_when_they_last() -> Result<(), GatewayError> {
    let (gateway, double) = gateway().await;
    double.fail_next("/api/v1/merchant", vec![(429, refusal("Too many requests", "99"))]);
    gateway.create_checkout(checkout(ngn(10_000))).await?;
    assert_eq!(double.transactions().len(), 1, "the retry after a 429 went through");
    double.fail_next("/api/v1/merchant", vec![(429, refusal("Too many requests", "99")); 3]);
    let limited = gateway.create_checkout(checkout(ngn(10_000))).await;
    assert!(matches!(limited, Err(GatewayError::RateLimited)), "{limited:?}");
    assert_eq!(double.transactions().len(), 1, "nothing was initialised while limited");
    Ok(())
}

#[tokio::test]
async fn wrong_credentials_are_named_and_not_retried_forever() {
    let (gateway, double) = gateway_with_secret("SK_WRONG").await;
    let refused = gateway.create_checkout(checkout(ngn(10_000))).await;
    assert!(matches!(refused, Err(GatewayError::Authentication)), "{refused:?}");
    assert_eq!((double.logins(), double.transactions().len()), (0, 0));
}

#[tokio::test]
async fn a_declined_card_leaves_the_transaction_unpaid() -> Result<(), GatewayError> {
    // Monnify takes the card on its own page; a decline there sends no webhook, and the status
    // API reports the transaction as failed.
    let (gateway, double) = gateway().await;
    let request = checkout(ngn(75_000));
    let session = gateway.create_checkout(request.clone()).await?;
    double.pay(&session.session_id, "FAILED");
    let reference = PaymentReference {
        payment_id: Some(request.payment_id),
        session_id: Some(session.session_id),
        provider_payment_id: None,
    };
    let declined = gateway.confirm_payment(&reference).await?.expect("Monnify answers");
    assert!(!declined.paid);
    Ok(())
}

#[tokio::test]
async fn a_retried_refund_is_looked_up_and_never_made_or_refused_twice() -> Result<(), GatewayError> {
    let (gateway, double) = gateway().await;
    let refund = refund_of(ngn(50_000));
    // A 5xx may have been applied: the retry carries the same refundReference.
    double.fail_next("/api/v1/refunds/initiate-refund", vec![(500, refusal("Internal error", "99"))]);
    let first = gateway.refund(refund.clone()).await?;
    assert_eq!(first.status, GatewayRefundStatus::Pending);
    // The follow-up job asks again while Monnify is still processing, then after it finished.
    // Monnify would refuse the reference as a duplicate; the lookup finds the refund instead.
    let again = gateway.refund(refund.clone()).await?;
    assert_eq!(again.status, GatewayRefundStatus::Pending);
    double.set_refund_status("COMPLETED");
    let done = gateway.refund(refund.clone()).await?;
    assert_eq!(
        (done.provider_refund_id, done.status),
        (refund.refund_id.to_string(), GatewayRefundStatus::Succeeded)
    );
    let references: Vec<_> = double.refunds().iter().map(|r| r["refundReference"].clone()).collect();
    assert_eq!(references, vec![serde_json::json!(refund.refund_id.to_string())], "initiated once");
    // A new refund Monnify refuses is a refusal.
    double.fail_next(
        "/api/v1/refunds/initiate-refund",
        vec![(400, refusal("Refund amount cannot exceed the transaction amount", "99"))],
    );
    let refused = gateway.refund(refund_of(ngn(9_999_999))).await;
    assert!(
        matches!(refused, Err(GatewayError::InvalidRequest(ref m)) if m.contains("cannot exceed")),
        "{refused:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_success_is_confirmed_with_the_status_api() -> Result<(), GatewayError> {
    let (gateway, double) = gateway().await;
    let request = checkout(ngn(500_000));
    let session = gateway.create_checkout(request.clone()).await?;
    let reference = PaymentReference {
        payment_id: Some(request.payment_id),
        session_id: Some(session.session_id.clone()),
        provider_payment_id: None,
    };
    let pending = gateway.confirm_payment(&reference).await?.expect("Monnify confirms");
    assert!(!pending.paid);
    double.pay(&session.session_id, "PAID");
    let paid = gateway.confirm_payment(&reference).await?.expect("Monnify confirms");
    assert!(paid.paid);
    assert_eq!(paid.amount, Some(ngn(500_000)));
    Ok(())
}

#[tokio::test]
async fn refunds_carry_our_reference_and_report_their_status() -> Result<(), GatewayError> {
    let (gateway, double) = gateway().await;
    let refund = refund_of(ngn(120_000));
    let answer = gateway.refund(refund.clone()).await?;
    assert_eq!(
        (answer.provider_refund_id, answer.status),
        (refund.refund_id.to_string(), GatewayRefundStatus::Pending)
    );
    let sent = &double.refunds()[0];
    assert_eq!(sent["refundAmount"], "1200.00", "the amount is the exact decimal, never a float");
    assert_eq!(sent["transactionReference"], "MNFY|1|2");
    double.set_refund_status("COMPLETED");
    assert_eq!(gateway.refund(refund).await?.status, GatewayRefundStatus::Succeeded);
    Ok(())
}

#[tokio::test]
async fn webhooks_must_carry_monnifys_signature() -> Result<(), WebhookError> {
    let (gateway, double) = gateway().await;
    let request = checkout(ngn(300_000));
    let session = gateway
        .create_checkout(request.clone())
        .await
        .map_err(|e| WebhookError::MalformedPayload(e.to_string()))?;
    let body = double.pay(&session.session_id, "PAID").expect("a transaction");
    let now = OffsetDateTime::now_utc();
    let signed = WebhookHeaders::new([(SIGNATURE_HEADER.to_owned(), sign(SECRET, body.as_bytes()))]);
    let event = gateway.verify_webhook(&signed, body.as_bytes(), now)?;
    assert_eq!(event.event_id, format!("SUCCESSFUL_TRANSACTION:{}", session.session_id));
    assert!(
        matches!(event.kind, GatewayEventKind::PaymentSucceeded { ref reference, amount: Some(amount) } if reference.payment_id == Some(request.payment_id) && amount == ngn(300_000))
    );
    let forged = WebhookHeaders::new([(SIGNATURE_HEADER.to_owned(), sign("not the secret", body.as_bytes()))]);
    assert_eq!(
        gateway.verify_webhook(&forged, body.as_bytes(), now).err(),
        Some(WebhookError::BadSignature)
    );
    let tampered = body.replace("ada@example.com", "eve@example.com");
    assert_ne!(tampered, body);
    assert_eq!(
        gateway.verify_webhook(&signed, tampered.as_bytes(), now).err(),
        Some(WebhookError::BadSignature)
    );
    assert_eq!(
        gateway.verify_webhook(&WebhookHeaders::default(), body.as_bytes(), now).err(),
        Some(WebhookError::MissingSignature)
    );
    Ok(())
}

#[test]
fn incomplete_configuration_is_refused() {
    let settings = MonnifySettings {
        api_key: API_KEY.into(),
        secret_key: String::new(),
        contract_code: "C".into(),
        base_url: "https://sandbox.monnify.com".into(),
        redirect_url: String::new(),
        request_timeout: Duration::from_secs(5),
        attempts_max: 3,
    };
    assert!(MonnifyGateway::new(settings.clone()).is_err());
    assert!(
        MonnifyGateway::new(MonnifySettings {
            secret_key: "s".into(),
            base_url: "ftp://x".into(),
            ..settings
        })
        .is_err()
    );
}
