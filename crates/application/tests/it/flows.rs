//! Multi-step flows end: the job extends or ends calls at their limit, releases expired holds and
//! retries what a provider could not do at once.

use std::sync::{Arc, Mutex};

use application::Settings;
use application::calls::StartCall;
use application::ports::gateway::{CheckoutSession, GatewayError, GatewayRefund, GatewayRefundStatus};
use application::refunds::RefundCommand;
use domain::call::CallStatus;
use domain::follow_up::{FollowUpState, RetryPolicy};
use domain::money::Currency;
use domain::payment::RefundStatus;
use domain::user::Role;
use time::Duration;

use crate::orders::card_cart;
use crate::support::{Harness, MockGateway, provider, usd};

async fn call(
    h: &Harness,
    caller: &application::auth::Caller,
    receiver: &application::auth::Caller,
    rate: i64,
) -> domain::call::CallSession {
    let start = StartCall {
        receiver_id: receiver.user_id,
        rate_per_minute: usd(rate),
    };
    h.app.start_call(caller, start, None).await.unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn a_call_at_its_limit_is_ended_and_billed_by_the_job() -> Result<(), Box<dyn std::error::Error>> {
    let h = Harness::new();
    let caller = h.funded_customer(50).await;
    let receiver = h.user(Role::Customer).await;
    let started = call(&h, &caller, &receiver, 50).await;
    assert_eq!(started.authorized_minutes, 1);
    h.clock.advance(Duration::seconds(30));
    assert_eq!(
        h.app.settle_due_calls(10).await?,
        0,
        "nothing more is affordable, but the minute is not over"
    );
    h.clock.advance(Duration::minutes(3));
    assert_eq!(h.app.settle_due_calls(10).await?, 1);
    let ended = &h
        .app
        .list_calls(&caller, &application::pagination::PageRequest::first(1))
        .await?
        .items[0];
    assert_eq!((ended.status, ended.billed_minutes, ended.charged), (CallStatus::Ended, 1, usd(50)));
    assert_eq!(
        ended.ended_at,
        Some(started.authorized_until()),
        "billed up to its limit, not to when the job ran"
    );
    assert_eq!((h.balance(&caller).await, h.balance(&receiver).await), (0, 50));
    assert_eq!(h.app.wallet(&caller, Currency::Usd).await?.held(), usd(0));
    assert_eq!(h.app.settle_due_calls(10).await?, 0);
    h.assert_ledger_ok().await;
    Ok(())
}

#[tokio::test]
async fn a_call_is_extended_while_the_caller_can_afford_the_next_minute() -> Result<(), Box<dyn std::error::Error>> {
    let h = Harness::new();
    let caller = h.funded_customer(50).await;
    let receiver = h.user(Role::Customer).await;
    let started = call(&h, &caller, &receiver, 50).await;
    h.fund(&caller, 100).await;
    h.clock.advance(Duration::seconds(30));
    assert_eq!(h.app.settle_due_calls(10).await?, 1);
    let extended = &h
        .app
        .list_calls(&caller, &application::pagination::PageRequest::first(1))
        .await?
        .items[0];
    assert_eq!((extended.status, extended.authorized_minutes), (CallStatus::Active, 3));
    assert_eq!(h.app.wallet(&caller, Currency::Usd).await?.held(), usd(150));
    h.clock.advance(Duration::minutes(5));
    assert_eq!(h.app.settle_due_calls(10).await?, 1);
    let ended = &h
        .app
        .list_calls(&caller, &application::pagination::PageRequest::first(1))
        .await?
        .items[0];
    assert_eq!((ended.billed_minutes, ended.charged), (3, usd(150)));
    assert_eq!(ended.ended_at, Some(started.started_at + Duration::minutes(3)));
    assert_eq!((h.balance(&caller).await, h.balance(&receiver).await), (0, 150));
    h.assert_ledger_ok().await;
    Ok(())
}

#[tokio::test]
async fn two_calls_of_one_caller_never_spend_more_than_the_wallet_holds() -> Result<(), Box<dyn std::error::Error>> {
    let h = Harness::with_settings(Settings {
        call_minutes_max: 1,
        ..Settings::default()
    });
    let caller = h.funded_customer(150).await;
    let first = h.user(Role::Customer).await;
    let second = h.user(Role::Customer).await;
    call(&h, &caller, &first, 50).await;
    call(&h, &caller, &second, 50).await;
    for _ in 0..10 {
        h.clock.advance(Duration::seconds(30));
        h.app.settle_due_calls(10).await?;
        let wallet = h.app.wallet(&caller, Currency::Usd).await?;
        assert!(wallet.held().amount_minor() <= wallet.balance().amount_minor(), "{wallet:?}");
    }
    let (paid_first, paid_second) = (h.balance(&first).await, h.balance(&second).await);
    assert_eq!(paid_first + paid_second, 150, "every cent the caller had, and not one more");
    assert_eq!(h.balance(&caller).await, 0);
    let calls = h.app.list_calls(&caller, &application::pagination::PageRequest::first(10)).await?;
    assert!(calls.items.iter().all(|c| c.status == CallStatus::Ended));
    h.assert_ledger_ok().await;
    Ok(())
}

/// A gateway whose refunds fail with 503 `failures` times, then succeed.
fn flaky_refunds(failures: u32, attempts: Arc<Mutex<Vec<String>>>) -> MockGateway {
    let mut gateway = MockGateway::new();
    gateway.expect_provider().return_const(provider());
    gateway.expect_supports_currency().return_const(true);
    gateway.expect_create_checkout().returning(|request| {
        Ok(CheckoutSession {
            session_id: format!("cs_{}", request.payment_id.as_uuid().simple()),
            checkout_url: "https://pay.example/x".into(),
        })
    });
    gateway.expect_refund().returning(move |request| {
        let mut attempts = attempts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        attempts.push(request.idempotency_key.clone());
        if attempts.len() <= failures as usize {
            return Err(GatewayError::Unavailable("503 Service Unavailable".into()));
        }
        Ok(GatewayRefund {
            provider_refund_id: format!("re_{}", request.idempotency_key),
            status: GatewayRefundStatus::Succeeded,
        })
    });
    gateway
}

fn quick_retries(attempts_max: u32) -> Settings {
    Settings {
        follow_up_retry: RetryPolicy {
            attempts_max,
            first_delay: Duration::seconds(10),
            delay_max: Duration::minutes(1),
        },
        ..Settings::default()
    }
}

#[tokio::test]
async fn a_refund_the_provider_could_not_take_is_completed_by_the_job() -> Result<(), Box<dyn std::error::Error>> {
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let h = Harness::with(flaky_refunds(2, Arc::clone(&attempts)), quick_retries(5));
    let ann = h.user(Role::Merchant).await;
    let buyer = h.user(Role::Customer).await;
    let mug = h.product(&ann, 700, 3).await;
    let checkout = h.app.checkout(&buyer, card_cart(&[(mug.product.id, 2)]), None).await?;
    let payment = checkout.payment.unwrap_or_else(|| panic!("no payment"));
    crate::payments::pay(&h, &payment).await;
    let command = RefundCommand {
        amount: None,
        merchant_id: None,
        reason: String::new(),
    };
    let refunds = h.app.refund_order(&ann, checkout.order.id(), command, None).await?;
    assert_eq!(
        refunds[0].status(),
        RefundStatus::Pending,
        "the provider was down: pending, not lost"
    );
    assert_eq!(h.app.run_follow_ups(10).await?, 0, "not due yet");
    // 10 s after the first failure, and up to a fifth more.
    h.clock.advance(Duration::seconds(13));
    assert_eq!(h.app.run_follow_ups(10).await?, 1, "the second attempt fails too");
    h.clock.advance(Duration::seconds(11));
    assert_eq!(h.app.run_follow_ups(10).await?, 0, "backing off: 20 s now");
    h.clock.advance(Duration::seconds(14));
    assert_eq!(h.app.run_follow_ups(10).await?, 1);
    let details = h.app.order_details(&buyer, checkout.order.id()).await?;
    assert_eq!(details.refunds[0].status(), RefundStatus::Succeeded);
    assert_eq!(details.order.refunded(), usd(1_400));
    let keys = attempts.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    assert_eq!(keys.len(), 3);
    assert!(
        keys.iter().all(|k| *k == keys[0]),
        "every attempt under the same provider key: {keys:?}"
    );
    let admin = h.admin().await;
    let done = h
        .app
        .follow_ups(&admin, FollowUpState::Done, &application::pagination::PageRequest::first(10))
        .await?;
    assert_eq!((done.items.len(), done.items[0].attempts), (1, 3));
    h.assert_ledger_ok().await;
    Ok(())
}

#[tokio::test]
async fn a_refund_the_provider_never_takes_is_stuck_where_admins_see_it() -> Result<(), Box<dyn std::error::Error>> {
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let h = Harness::with(flaky_refunds(100, Arc::clone(&attempts)), quick_retries(3));
    let ann = h.user(Role::Merchant).await;
    let buyer = h.user(Role::Customer).await;
    let mug = h.product(&ann, 700, 3).await;
    let checkout = h.app.checkout(&buyer, card_cart(&[(mug.product.id, 1)]), None).await?;
    crate::payments::pay(&h, &checkout.payment.clone().unwrap_or_else(|| panic!("no payment"))).await;
    let command = RefundCommand {
        amount: None,
        merchant_id: None,
        reason: String::new(),
    };
    h.app.refund_order(&ann, checkout.order.id(), command, None).await?;
    for _ in 0..5 {
        h.clock.advance(Duration::minutes(2));
        h.app.run_follow_ups(10).await?;
    }
    let admin = h.admin().await;
    let stuck = h
        .app
        .follow_ups(&admin, FollowUpState::Stuck, &application::pagination::PageRequest::first(10))
        .await?;
    assert_eq!(stuck.items.len(), 1);
    assert_eq!(stuck.items[0].attempts, 3);
    assert!(
        stuck.items[0].last_error.as_deref().is_some_and(|e| e.contains("503")),
        "{:?}",
        stuck.items[0]
    );
    assert_eq!(
        attempts.lock().unwrap_or_else(std::sync::PoisonError::into_inner).len(),
        3,
        "no attempt after it is stuck"
    );
    assert!(
        h.app
            .follow_ups(&buyer, FollowUpState::Stuck, &application::pagination::PageRequest::first(10))
            .await
            .is_err()
    );
    // The money stays accounted for: out of the merchant's wallet, in the clearing account.
    assert_eq!(h.balance(&ann).await, 0);
    h.assert_ledger_ok().await;
    Ok(())
}

#[tokio::test]
async fn the_adjustments_account_is_driven_to_its_bound_and_no_further() -> Result<(), Box<dyn std::error::Error>> {
    use application::adjustments::{AdjustmentError, AdjustmentRequest};
    use domain::money::Money;
    let h = Harness::new();
    let admin = h.admin().await;
    let alice = h.user(Role::Customer).await;
    let largest = Money::AMOUNT_MINOR_MAX;
    let adjust = |minor: i64| AdjustmentRequest {
        user_id: alice.user_id,
        amount: usd(minor),
        reason: "bound test".into(),
    };
    let steps = domain::ledger::SYSTEM_BALANCE_MAX_MINOR / largest;
    for _ in 0..steps {
        h.app.adjust_wallet(&admin, adjust(largest), None).await?;
    }
    assert!(matches!(
        h.app.adjust_wallet(&admin, adjust(1), None).await,
        Err(AdjustmentError::PlatformLimit(Currency::Usd))
    ));
    assert_eq!(
        h.balance(&alice).await,
        domain::ledger::SYSTEM_BALANCE_MAX_MINOR,
        "nothing of the refused one was written"
    );
    // Taking money back moves the account away from its bound.
    h.app.adjust_wallet(&admin, adjust(-largest), None).await?;
    h.app.adjust_wallet(&admin, adjust(largest), None).await?;
    h.assert_ledger_ok().await;
    Ok(())
}

#[tokio::test]
async fn a_clearing_account_at_its_bound_takes_no_more_card_payments() -> Result<(), Box<dyn std::error::Error>> {
    use application::ports::gateway::{GatewayEvent, GatewayEventKind, PaymentReference};
    use application::settlement::EventOutcome;
    use application::top_ups::{TopUpError, TopUpRequest};
    use domain::money::Money;
    let h = Harness::new();
    let alice = h.user(Role::Customer).await;
    let largest = usd(Money::AMOUNT_MINOR_MAX);
    let top_up = || TopUpRequest {
        amount: largest,
        provider: None,
    };
    for n in 0..domain::ledger::SYSTEM_BALANCE_MAX_MINOR / Money::AMOUNT_MINOR_MAX {
        let payment = h.app.start_top_up(&alice, top_up(), None).await?;
        let paid = GatewayEvent {
            event_id: format!("evt_{n}"),
            event_type: "checkout.session.completed".into(),
            kind: GatewayEventKind::CheckoutCompleted {
                reference: PaymentReference {
                    payment_id: Some(payment.id()),
                    session_id: payment.provider_session_id().map(str::to_owned),
                    provider_payment_id: Some(format!("pi_{n}")),
                },
                amount: Some(largest),
                paid: true,
            },
        };
        assert_eq!(h.app.apply_gateway_event(&provider(), &paid).await?, EventOutcome::Applied);
    }
    assert!(matches!(
        h.app.start_top_up(&alice, top_up(), None).await,
        Err(TopUpError::PlatformLimit(Currency::Usd))
    ));
    assert_eq!(h.balance(&alice).await, domain::ledger::SYSTEM_BALANCE_MAX_MINOR);
    h.assert_ledger_ok().await;
    Ok(())
}
