//! Holds through the use cases: a customer authorises a merchant, who captures in parts and
//! voids the rest; consent, bounds, expiry, races and keys.

use application::holds::{CaptureRequest, HOLD_TTL_MAX, HoldRequest, HoldUseError};
use application::idempotency::{IdempotencyError, IdempotencyKey, IdempotencyScope, Idempotent, StoredResponse};
use application::webhooks::NewEndpoint;
use domain::money::Currency;
use domain::user::Role;
use domain::wallet::{Hold, HoldError, HoldStatus};
use time::Duration;

use crate::support::{Harness, usd};

type Outcome = Result<(), Box<dyn std::error::Error>>;

fn authorise(merchant: &application::auth::Caller, minor: i64) -> HoldRequest {
    HoldRequest {
        merchant_id: merchant.user_id,
        amount: usd(minor),
        description: "ride to the airport".into(),
        expires_in: None,
        customer_id: None,
    }
}

fn part(minor: i64) -> CaptureRequest {
    CaptureRequest {
        amount: Some(usd(minor)),
        final_capture: false,
    }
}

fn render(hold: &Hold) -> StoredResponse {
    StoredResponse {
        status: 200,
        body: format!("{}:{}", hold.id, hold.captured).into_bytes(),
        location: None,
    }
}

fn keyed(caller: &application::auth::Caller, key: &str) -> Option<Idempotent<Hold>> {
    Some(Idempotent {
        scope: IdempotencyScope {
            principal: Some(caller.user_id),
            key: IdempotencyKey::parse(key).unwrap_or_else(|e| panic!("{e}")),
        },
        fingerprint: "fp".into(),
        render,
    })
}

#[tokio::test]
async fn a_merchant_captures_in_parts_then_voids_the_rest_and_every_step_is_announced() -> Outcome {
    let h = Harness::new();
    let admin = h.admin().await;
    let events = NewEndpoint {
        url: "https://platform.example/hooks".into(),
        events: vec!["hold.authorised".into(), "hold.captured".into(), "hold.voided".into()],
        description: String::new(),
    };
    h.app.create_webhook_endpoint(&admin, events).await?;
    let (rider, driver) = (h.funded_customer(10_000).await, h.user(Role::Merchant).await);
    let hold = h.app.authorise_hold(&rider, authorise(&driver, 4_000), None).await?;
    let wallet = h.app.wallet(&rider, Currency::Usd).await?;
    assert_eq!(
        (wallet.balance(), wallet.held(), wallet.available()),
        (usd(10_000), usd(4_000), usd(6_000))
    );
    let hold = h.app.capture_hold(&driver, hold.id, part(1_500), None).await?;
    let hold = h.app.capture_hold(&driver, hold.id, part(1_000), None).await?;
    assert_eq!(
        (hold.status, hold.captured, hold.remaining()),
        (HoldStatus::Pending, usd(2_500), usd(1_500))
    );
    let voided = h.app.void_hold(&driver, hold.id, None).await?;
    assert_eq!((voided.status, voided.captured), (HoldStatus::Released, usd(2_500)));
    let wallet = h.app.wallet(&rider, Currency::Usd).await?;
    assert_eq!((wallet.balance(), wallet.held()), (usd(7_500), usd(0)));
    assert_eq!(h.balance(&driver).await, 2_500);
    h.app.relay_webhooks().await?;
    let kinds: Vec<String> = h.webhooks.received().iter().map(|w| w.event_type.clone()).collect();
    assert_eq!(kinds, ["hold.authorised", "hold.captured", "hold.captured", "hold.voided"]);
    let released = h.webhooks.received()[3].object.clone();
    assert!(released.contains(&("released".into(), "15.00".into())), "{released:?}");
    h.assert_ledger_ok().await;
    Ok(())
}

#[tokio::test]
async fn only_the_customer_authorises_and_only_its_merchant_captures() -> Outcome {
    let h = Harness::new();
    let (rider, driver, other) = (
        h.funded_customer(1_000).await,
        h.user(Role::Merchant).await,
        h.user(Role::Merchant).await,
    );
    let on_someone_else = HoldRequest {
        customer_id: Some(rider.user_id),
        ..authorise(&driver, 500)
    };
    assert!(matches!(
        h.app.authorise_hold(&driver, on_someone_else, None).await,
        Err(HoldUseError::ConsentRequired)
    ));
    let customer = h.user(Role::Customer).await;
    assert!(matches!(
        h.app.authorise_hold(&rider, authorise(&customer, 500), None).await,
        Err(HoldUseError::MerchantNotFound)
    ));
    let too_long = HoldRequest {
        expires_in: Some(HOLD_TTL_MAX + Duration::seconds(1)),
        ..authorise(&driver, 500)
    };
    assert!(matches!(
        h.app.authorise_hold(&rider, too_long, None).await,
        Err(HoldUseError::Expiry)
    ));
    assert!(matches!(
        h.app.authorise_hold(&rider, authorise(&driver, 1_001), None).await,
        Err(HoldUseError::InsufficientFunds { .. })
    ));
    let hold = h.app.authorise_hold(&rider, authorise(&driver, 800), None).await?;
    assert!(matches!(
        h.app.capture_hold(&other, hold.id, part(100), None).await,
        Err(HoldUseError::NotFound)
    ));
    assert!(matches!(h.app.hold(&other, hold.id).await, Err(HoldUseError::NotFound)));
    assert!(matches!(
        h.app.capture_hold(&rider, hold.id, part(100), None).await,
        Err(HoldUseError::NotFound)
    ));
    assert!(matches!(
        h.app.capture_hold(&driver, hold.id, part(801), None).await,
        Err(HoldUseError::Hold(HoldError::CaptureExceedsHold { .. }))
    ));
    assert_eq!(h.app.hold(&rider, hold.id).await?.id, hold.id);
    h.app.capture_hold(&driver, hold.id, part(300), None).await?;
    assert!(
        matches!(h.app.void_hold(&rider, hold.id, None).await, Err(HoldUseError::Forbidden(_))),
        "once the merchant has captured, the customer cannot take the rest back"
    );
    let untouched = h.app.authorise_hold(&rider, authorise(&driver, 200), None).await?;
    assert_eq!(h.app.void_hold(&rider, untouched.id, None).await?.status, HoldStatus::Released);
    h.assert_ledger_ok().await;
    Ok(())
}

#[tokio::test]
async fn an_expired_hold_is_released_by_the_job_and_cannot_be_captured() -> Outcome {
    let h = Harness::new();
    let (rider, hotel) = (h.funded_customer(1_000).await, h.user(Role::Merchant).await);
    let night = HoldRequest {
        expires_in: Some(Duration::days(2)),
        ..authorise(&hotel, 400)
    };
    let hold = h.app.authorise_hold(&rider, night, None).await?;
    h.app.capture_hold(&hotel, hold.id, part(100), None).await?;
    h.clock.advance(Duration::days(1));
    assert_eq!(h.app.release_expired_holds(10).await?, 0);
    h.clock.advance(Duration::days(1));
    assert_eq!(h.app.release_expired_holds(10).await?, 1);
    assert_eq!(h.app.release_expired_holds(10).await?, 0);
    let wallet = h.app.wallet(&rider, Currency::Usd).await?;
    assert_eq!((wallet.balance(), wallet.held()), (usd(900), usd(0)));
    assert!(matches!(
        h.app.capture_hold(&hotel, hold.id, part(100), None).await,
        Err(HoldUseError::Hold(HoldError::NotPending(HoldStatus::Expired)))
    ));
    h.assert_ledger_ok().await;
    Ok(())
}

#[tokio::test]
async fn racing_captures_never_exceed_the_hold_and_a_key_captures_once() -> Outcome {
    let h = Harness::new();
    let (rider, driver) = (h.funded_customer(1_000).await, h.user(Role::Merchant).await);
    let hold = h.app.authorise_hold(&rider, authorise(&driver, 500), None).await?;
    let (first, second, third) = tokio::join!(
        h.app.capture_hold(&driver, hold.id, part(200), None),
        h.app.capture_hold(&driver, hold.id, part(200), None),
        h.app.capture_hold(&driver, hold.id, part(200), None),
    );
    let won = [&first, &second, &third].iter().filter(|r| r.is_ok()).count();
    assert_eq!(won, 2, "two fit in 500, the third does not");
    assert_eq!(h.balance(&driver).await, 400);
    let final_capture = CaptureRequest {
        amount: None,
        final_capture: true,
    };
    let once = h
        .app
        .capture_hold(&driver, hold.id, final_capture, keyed(&driver, "last-capture"))
        .await?;
    let again = h
        .app
        .capture_hold(&driver, hold.id, final_capture, keyed(&driver, "last-capture"))
        .await;
    assert_eq!((once.status, once.captured), (HoldStatus::Captured, usd(500)));
    assert!(
        matches!(again, Err(HoldUseError::Idempotency(IdempotencyError::Completed))),
        "the key's response is replayed by the HTTP layer; the use case does nothing again"
    );
    assert_eq!(h.balance(&driver).await, 500);
    h.assert_ledger_ok().await;
    Ok(())
}
