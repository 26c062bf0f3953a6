//! Paying again for a card order awaiting payment: a checkout that could not be opened, one the
//! buyer abandoned, or a payment the provider declined, is replaced by a new one for the same
//! order and reserved stock.

use application::checkout::{Checkout, CheckoutError};
use application::idempotency::{IdempotencyKey, IdempotencyScope, Idempotent, StoredResponse};
use application::pagination::PageRequest;
use application::ports::gateway::{CheckoutRequest, CheckoutSession, GatewayError, GatewayEvent, GatewayEventKind, PaymentReference};
use application::ports::store::PaymentFilter;
use domain::follow_up::FollowUpState;
use domain::order::OrderStatus;
use domain::payment::PaymentStatus;
use domain::user::Role;

use crate::orders::{card_cart, wallet_cart};
use crate::payments::pay;
use crate::support::{Harness, MockGateway, provider, working_gateway};

type Outcome = Result<(), Box<dyn std::error::Error>>;

fn render(checkout: &Checkout) -> StoredResponse {
    StoredResponse {
        status: 201,
        body: checkout.order.id().to_string().into_bytes(),
        location: None,
    }
}

fn keyed(caller: &application::auth::Caller, key: &str) -> Idempotent<Checkout> {
    Idempotent {
        scope: IdempotencyScope {
            principal: Some(caller.user_id),
            key: IdempotencyKey::parse(key).unwrap_or_else(|e| panic!("{e}")),
        },
        fingerprint: "fp".into(),
        render,
    }
}

fn session(request: &CheckoutRequest) -> CheckoutSession {
    CheckoutSession {
        session_id: format!("cs_{}", request.payment_id.as_uuid().simple()),
        checkout_url: format!("https://pay.example/{}", request.payment_id),
    }
}

/// A provider that is down for the first checkout, then opens every one; it cannot close
/// checkouts, so an abandoned one is only cancelled here.
fn flaky_gateway() -> MockGateway {
    let mut gateway = MockGateway::new();
    gateway.expect_provider().return_const(provider());
    gateway.expect_supports_currency().return_const(true);
    gateway
        .expect_create_checkout()
        .times(1)
        .returning(|_| Err(GatewayError::Unavailable("503 from the provider".into())));
    gateway.expect_create_checkout().returning(|request| Ok(session(&request)));
    gateway
}

#[tokio::test]
async fn a_checkout_that_could_not_open_is_paid_again_for_the_same_reserved_stock() -> Outcome {
    let h = Harness::with_gateway(flaky_gateway());
    let (ann, buyer) = (h.user(Role::Merchant).await, h.user(Role::Customer).await);
    let mug = h.product(&ann, 700, 3).await;
    let failed = h
        .app
        .checkout(&buyer, card_cart(&[(mug.product.id, 2)]), Some(keyed(&buyer, "cart-1")))
        .await;
    assert!(
        matches!(failed, Err(CheckoutError::Gateway(GatewayError::Unavailable(_)))),
        "{failed:?}"
    );
    let order_id = h
        .app
        .my_orders(&buyer, &application::pagination::PageRequest::first(1))
        .await?
        .items[0]
        .id();
    assert_eq!(h.stock(&mug).await, (1, 2), "still reserved for a retry");

    let again = h.app.pay_again(&buyer, order_id, None, Some(keyed(&buyer, "pay-again-1"))).await?;
    let payment = again.payment.ok_or("a new payment")?;
    assert!(payment.checkout_url().is_some_and(|url| url.starts_with("https://pay.example/")));
    assert_eq!((again.order.status(), h.stock(&mug).await), (OrderStatus::PaymentPending, (1, 2)));

    pay(&h, &payment).await;
    let details = h.app.order_details(&buyer, order_id).await?;
    assert_eq!(details.order.status(), OrderStatus::Paid);
    assert_eq!(
        details.payment.map(|p| p.id()),
        Some(payment.id()),
        "the new payment is the order's"
    );
    assert_eq!((h.balance(&ann).await, h.stock(&mug).await), (1_400, (1, 0)));
    h.assert_ledger_ok().await;
    Ok(())
}

#[tokio::test]
async fn an_abandoned_checkout_is_closed_and_replaced_and_only_the_buyer_may() -> Outcome {
    let h = Harness::with_gateway(flaky_gateway());
    let (ann, buyer, stranger) = (
        h.user(Role::Merchant).await,
        h.funded_customer(5_000).await,
        h.user(Role::Customer).await,
    );
    let mug = h.product(&ann, 700, 3).await;
    let _ = h
        .app
        .checkout(&buyer, card_cart(&[(mug.product.id, 1)]), Some(keyed(&buyer, "k")))
        .await;
    let order_id = h
        .app
        .my_orders(&buyer, &application::pagination::PageRequest::first(1))
        .await?
        .items[0]
        .id();
    let first = h.app.pay_again(&buyer, order_id, None, None).await?.payment.ok_or("payment")?;

    let other = h.app.pay_again(&stranger, order_id, None, None).await;
    assert!(matches!(other, Err(CheckoutError::OrderNotFound)), "{other:?}");
    let second = h.app.pay_again(&buyer, order_id, None, None).await?.payment.ok_or("payment")?;
    assert_ne!(first.id(), second.id());
    let details = h.app.order_details(&buyer, order_id).await?;
    assert_eq!(details.payment.map(|p| p.id()), Some(second.id()));
    let payments = h
        .app
        .my_payments(&buyer, PaymentFilter::default(), &application::pagination::PageRequest::first(10))
        .await?;
    let statuses: Vec<_> = payments.items.iter().map(|p| (p.id() == first.id(), p.status())).collect();
    assert!(
        statuses.contains(&(true, PaymentStatus::Cancelled)),
        "the abandoned payment is cancelled: {statuses:?}"
    );
    assert_eq!(h.stock(&mug).await, (2, 1), "one reservation, not two");

    let paid = h.app.checkout(&buyer, wallet_cart(&[(mug.product.id, 1)]), None).await?.order;
    let not_pending = h.app.pay_again(&buyer, paid.id(), None, None).await;
    assert!(
        matches!(not_pending, Err(CheckoutError::NotAwaitingPayment(OrderStatus::Paid))),
        "{not_pending:?}"
    );
    h.assert_ledger_ok().await;
    Ok(())
}

fn declined(payment: &domain::payment::Payment, event_id: &str) -> GatewayEvent {
    GatewayEvent {
        event_id: event_id.into(),
        event_type: "checkout.session.async_payment_failed".into(),
        kind: GatewayEventKind::PaymentFailed {
            reference: PaymentReference {
                payment_id: Some(payment.id()),
                ..PaymentReference::default()
            },
            reason: "insufficient funds".into(),
        },
    }
}

#[tokio::test]
async fn a_declined_payment_keeps_the_order_until_its_deadline_and_is_paid_again() -> Outcome {
    let h = Harness::with_gateway(working_gateway());
    let ann = h.user(Role::Merchant).await;
    let buyer = h.user(Role::Customer).await;
    let mug = h.product(&ann, 700, 3).await;
    let checkout = h.app.checkout(&buyer, card_cart(&[(mug.product.id, 2)]), None).await?;
    let (order_id, first) = (checkout.order.id(), checkout.payment.ok_or("payment")?);
    h.app.apply_gateway_event(&provider(), &declined(&first, "evt_declined_1")).await?;
    let details = h.app.order_details(&buyer, order_id).await?;
    assert_eq!(details.order.status(), OrderStatus::PaymentPending);
    assert_eq!(details.payment.map(|p| p.status()), Some(PaymentStatus::Failed));
    let trail = h.app.order_audit(&h.admin().await, Some(order_id), &PageRequest::first(50)).await?;
    assert!(
        trail
            .items
            .iter()
            .any(|change| change.reason.contains("declined (insufficient funds)")),
        "the audit trail says why"
    );
    assert_eq!(h.stock(&mug).await, (1, 2), "the stock stays reserved");
    let deadlines = h
        .app
        .follow_ups(&h.admin().await, FollowUpState::Pending, &PageRequest::first(50))
        .await?;
    assert_eq!(
        deadlines.items.iter().map(|f| f.task.kind()).collect::<Vec<_>>(),
        vec!["unpaid_order"]
    );

    // Declined again after paying again: the deadline moves to the new payment's.
    h.clock.advance(time::Duration::minutes(20));
    let second = h.app.pay_again(&buyer, order_id, None, None).await?.payment.ok_or("payment")?;
    h.app.apply_gateway_event(&provider(), &declined(&second, "evt_declined_2")).await?;
    h.clock.advance(time::Duration::minutes(15));
    h.app.run_follow_ups(10).await?;
    assert_eq!(
        h.app.order_details(&buyer, order_id).await?.order.status(),
        OrderStatus::PaymentPending,
        "past the first deadline only"
    );

    let third = h.app.pay_again(&buyer, order_id, None, None).await?.payment.ok_or("payment")?;
    pay(&h, &third).await;
    h.clock.advance(time::Duration::hours(1));
    h.app.run_follow_ups(10).await?;
    assert_eq!(h.app.order_details(&buyer, order_id).await?.order.status(), OrderStatus::Paid);
    assert_eq!(h.stock(&mug).await, (1, 0), "sold once");
    assert_eq!(h.balance(&ann).await, 1_400);
    let done = h
        .app
        .follow_ups(&h.admin().await, FollowUpState::Done, &PageRequest::first(50))
        .await?;
    assert_eq!(done.items.len(), 1, "the deadline ended with the payment");
    h.assert_ledger_ok().await;
    Ok(())
}

#[tokio::test]
async fn a_declined_order_left_unpaid_is_cancelled_at_its_deadline_and_a_declined_top_up_at_once() -> Outcome {
    let h = Harness::with_gateway(working_gateway());
    let ann = h.user(Role::Merchant).await;
    let buyer = h.user(Role::Customer).await;
    let mug = h.product(&ann, 700, 3).await;
    let checkout = h.app.checkout(&buyer, card_cart(&[(mug.product.id, 3)]), None).await?;
    let (order_id, payment) = (checkout.order.id(), checkout.payment.ok_or("payment")?);
    h.app.apply_gateway_event(&provider(), &declined(&payment, "evt_declined")).await?;
    h.clock.advance(time::Duration::minutes(29));
    h.app.run_follow_ups(10).await?;
    assert_eq!(
        h.app.order_details(&buyer, order_id).await?.order.status(),
        OrderStatus::PaymentPending,
        "before the deadline"
    );
    h.clock.advance(time::Duration::minutes(2));
    h.app.run_follow_ups(10).await?;
    assert_eq!(h.app.order_details(&buyer, order_id).await?.order.status(), OrderStatus::Cancelled);
    assert_eq!(h.stock(&mug).await, (3, 0), "released");
    let again = h.app.pay_again(&buyer, order_id, None, None).await;
    assert!(
        matches!(again, Err(CheckoutError::NotAwaitingPayment(OrderStatus::Cancelled))),
        "{again:?}"
    );

    let request = application::top_ups::TopUpRequest {
        amount: crate::support::usd(500),
        provider: None,
    };
    let top_up = h.app.start_top_up(&buyer, request, None).await?;
    h.app
        .apply_gateway_event(&provider(), &declined(&top_up, "evt_top_up_declined"))
        .await?;
    let payment = h.app.payment_details(&buyer, top_up.id()).await?;
    assert_eq!(payment.status(), PaymentStatus::Failed, "a top-up has nothing to keep");
    h.assert_ledger_ok().await;
    Ok(())
}
