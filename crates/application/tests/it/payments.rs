use application::pagination::PageRequest;
use application::ports::gateway::{GatewayEvent, GatewayEventKind, GatewayRefund, GatewayRefundStatus, PaymentReference, RefundUpdate};
use application::refunds::RefundCommand;
use application::settlement::{EventOutcome, GatewayEventError};
use application::top_ups::TopUpRequest;
use domain::ids::{PaymentId, RefundId};
use domain::money::Money;
use domain::order::OrderStatus;
use domain::payment::{Payment, PaymentStatus, RefundStatus};
use domain::user::Role;

use crate::orders::card_cart;
use crate::support::{Harness, MockGateway, provider, usd, working_gateway};

pub fn event(id: &str, kind: GatewayEventKind) -> GatewayEvent {
    GatewayEvent {
        event_id: id.into(),
        event_type: "test.event".into(),
        kind,
    }
}

pub fn paid(payment: &Payment, amount: Money) -> GatewayEventKind {
    GatewayEventKind::CheckoutCompleted {
        reference: PaymentReference {
            payment_id: Some(payment.id()),
            session_id: None,
            provider_payment_id: Some(format!("pi_{}", payment.id().as_uuid().simple())),
        },
        amount: Some(amount),
        paid: true,
    }
}

pub fn reference(payment_id: PaymentId) -> PaymentReference {
    PaymentReference {
        payment_id: Some(payment_id),
        ..PaymentReference::default()
    }
}

/// A merchant, a buyer and a pending card order for two units of a 7.00 product (of three).
pub async fn pending_card_order(
    h: &Harness,
) -> (
    application::auth::Caller,
    application::auth::Caller,
    application::catalog::CatalogEntry,
    Payment,
) {
    let ann = h.user(Role::Merchant).await;
    let buyer = h.user(Role::Customer).await;
    let mug = h.product(&ann, 700, 3).await;
    let checkout = h
        .app
        .checkout(&buyer, card_cart(&[(mug.product.id, 2)]), None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (ann, buyer, mug, checkout.payment.unwrap_or_else(|| panic!("no payment")))
}

/// The gateway reports the payment paid in full.
pub async fn pay(h: &Harness, payment: &Payment) {
    let completed = event(&format!("evt_paid_{}", payment.id()), paid(payment, payment.amount()));
    let outcome = h.app.apply_gateway_event(&provider(), &completed).await;
    assert_eq!(outcome.ok(), Some(EventOutcome::Applied));
}

#[tokio::test]
async fn a_paid_checkout_credits_the_merchant_once_however_often_it_is_reported() -> Result<(), Box<dyn std::error::Error>> {
    let h = Harness::new();
    let (ann, buyer, mug, payment) = pending_card_order(&h).await;
    let completed = event("evt_1", paid(&payment, usd(1_400)));
    assert_eq!(h.app.apply_gateway_event(&provider(), &completed).await?, EventOutcome::Applied);
    assert_eq!(h.app.apply_gateway_event(&provider(), &completed).await?, EventOutcome::Duplicate);
    let succeeded = event(
        "evt_2",
        GatewayEventKind::PaymentSucceeded {
            reference: reference(payment.id()),
            amount: None,
        },
    );
    assert_eq!(
        h.app.apply_gateway_event(&provider(), &succeeded).await?,
        EventOutcome::Ignored("payment already succeeded")
    );
    let details = h.app.order_details(&buyer, payment_order(&payment)).await?;
    assert_eq!(details.order.status(), OrderStatus::Paid);
    assert_eq!(details.payment.map(|p| p.status()), Some(PaymentStatus::Succeeded));
    assert_eq!(h.balance(&ann).await, 1_400);
    assert_eq!(h.stock(&mug).await, (1, 0));
    h.assert_ledger_ok().await;
    Ok(())
}

pub fn payment_order(payment: &Payment) -> domain::ids::OrderId {
    match payment.purpose() {
        domain::payment::PaymentPurpose::Order(id) => id,
        domain::payment::PaymentPurpose::TopUp(_) => panic!("not an order payment"),
    }
}

#[tokio::test]
async fn an_amount_that_does_not_match_is_refused_and_not_recorded() -> Result<(), Box<dyn std::error::Error>> {
    let h = Harness::new();
    let (ann, buyer, _, payment) = pending_card_order(&h).await;
    let wrong = event("evt_1", paid(&payment, usd(1)));
    assert!(matches!(
        h.app.apply_gateway_event(&provider(), &wrong).await,
        Err(GatewayEventError::AmountMismatch { .. })
    ));
    assert_eq!(h.balance(&ann).await, 0);
    assert_eq!(
        h.app.order_details(&buyer, payment_order(&payment)).await?.order.status(),
        OrderStatus::PaymentPending
    );
    Ok(())
}

#[tokio::test]
async fn a_failed_payment_cancels_the_order_and_a_late_success_is_refunded() -> Result<(), Box<dyn std::error::Error>> {
    let mut gateway = working_gateway();
    gateway.checkpoint();
    gateway.expect_provider().return_const(provider());
    gateway.expect_supports_currency().return_const(true);
    gateway.expect_create_checkout().returning(|request| {
        Ok(application::ports::gateway::CheckoutSession {
            session_id: format!("cs_{}", request.payment_id),
            checkout_url: "https://pay.example".into(),
        })
    });
    gateway
        .expect_refund()
        .withf(|request| request.idempotency_key.starts_with("late-success-") && request.amount == usd(1_400))
        .times(1)
        .returning(|_| {
            Ok(GatewayRefund {
                provider_refund_id: "re_late".into(),
                status: GatewayRefundStatus::Succeeded,
            })
        });
    let h = Harness::with_gateway(gateway);
    let (ann, buyer, mug, payment) = pending_card_order(&h).await;
    let declined = event(
        "evt_1",
        GatewayEventKind::PaymentFailed {
            reference: reference(payment.id()),
            reason: "card_declined".into(),
        },
    );
    assert_eq!(h.app.apply_gateway_event(&provider(), &declined).await?, EventOutcome::Applied);
    assert_eq!(
        h.app.order_details(&buyer, payment_order(&payment)).await?.order.status(),
        OrderStatus::PaymentPending,
        "kept for the buyer to pay again"
    );
    assert_eq!(h.stock(&mug).await, (1, 2), "still reserved");
    let late = event("evt_2", paid(&payment, usd(1_400)));
    assert_eq!(h.app.apply_gateway_event(&provider(), &late).await?, EventOutcome::LateSuccess);
    let details = h.app.order_details(&buyer, payment_order(&payment)).await?;
    assert_eq!(
        details.order.status(),
        OrderStatus::PaymentPending,
        "a declined payment does not pay the order"
    );
    assert!(
        details
            .payment
            .is_some_and(|p| p.late_success() && p.status() == PaymentStatus::Failed)
    );
    assert_eq!(h.balance(&ann).await, 0);
    h.clock.advance(time::Duration::minutes(31));
    h.app.run_follow_ups(10).await?;
    let details = h.app.order_details(&buyer, payment_order(&payment)).await?;
    assert_eq!(details.order.status(), OrderStatus::Cancelled, "unpaid at the deadline");
    assert_eq!(h.stock(&mug).await, (3, 0));
    h.assert_ledger_ok().await;
    Ok(())
}

/// A gateway whose refunds answer `statuses` in turn (the last one from then on), keeping the
/// refund ids it was asked with.
fn scripted_refunds(statuses: Vec<GatewayRefundStatus>, asked: std::sync::Arc<std::sync::Mutex<Vec<RefundId>>>) -> MockGateway {
    let mut gateway = working_gateway();
    gateway.checkpoint();
    gateway.expect_provider().return_const(provider());
    gateway.expect_supports_currency().return_const(true);
    gateway.expect_create_checkout().returning(|request| {
        Ok(application::ports::gateway::CheckoutSession {
            session_id: format!("cs_{}", request.payment_id),
            checkout_url: "https://pay.example".into(),
        })
    });
    gateway.expect_refund().returning(move |request| {
        let mut asked = asked.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        asked.push(request.refund_id);
        Ok(GatewayRefund {
            provider_refund_id: format!("re_{}", request.idempotency_key),
            status: statuses[(asked.len() - 1).min(statuses.len() - 1)],
        })
    });
    gateway
}

fn no_record() -> std::sync::Arc<std::sync::Mutex<Vec<RefundId>>> {
    std::sync::Arc::default()
}

/// Cancels a card order by its deadline, then reports its payment paid: a late success.
async fn late_success(h: &Harness) -> Payment {
    let (_, _, _, payment) = pending_card_order(h).await;
    h.clock.advance(time::Duration::minutes(31));
    h.app.expire_abandoned_checkouts(10).await.unwrap_or_else(|e| panic!("{e}"));
    let late = event("evt_late", paid(&payment, usd(1_400)));
    let outcome = h.app.apply_gateway_event(&provider(), &late).await;
    assert_eq!(outcome.unwrap_or_else(|e| panic!("{e}")), EventOutcome::LateSuccess);
    payment
}

async fn follow_ups(h: &Harness, state: domain::follow_up::FollowUpState) -> Vec<domain::follow_up::FollowUp> {
    let admin = h.admin().await;
    h.app
        .follow_ups(&admin, state, &PageRequest::first(10))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .items
}

#[tokio::test]
async fn a_late_success_refund_the_provider_reports_pending_is_asked_about_until_it_succeeds() -> Result<(), Box<dyn std::error::Error>> {
    use domain::follow_up::FollowUpState;
    let statuses = vec![
        GatewayRefundStatus::Pending,
        GatewayRefundStatus::Pending,
        GatewayRefundStatus::Succeeded,
    ];
    let asked = no_record();
    let h = Harness::with_gateway(scripted_refunds(statuses, std::sync::Arc::clone(&asked)));
    let payment = late_success(&h).await;
    assert!(follow_ups(&h, FollowUpState::Done).await.is_empty(), "pending is not refunded");
    let pending = follow_ups(&h, FollowUpState::Pending).await;
    assert_eq!(pending.len(), 1);
    assert!(
        pending[0].last_error.as_deref().is_some_and(|e| e.contains("not settled")),
        "{pending:?}"
    );
    for _ in 0..4 {
        h.clock.advance(time::Duration::hours(1));
        h.app.run_follow_ups(10).await?;
    }
    let done = follow_ups(&h, FollowUpState::Done).await;
    assert_eq!((done.len(), done[0].attempts), (1, 3), "done on the third answer: {done:?}");
    assert!(follow_ups(&h, FollowUpState::Pending).await.is_empty());
    let asked = asked.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    assert_eq!(
        asked,
        vec![RefundId::from_uuid(payment.id().as_uuid()); 3],
        "the same request each time: a provider refuses its key reused with other parameters"
    );
    h.assert_ledger_ok().await;
    Ok(())
}

#[tokio::test]
async fn the_refund_events_of_a_late_success_end_its_follow_up() -> Result<(), Box<dyn std::error::Error>> {
    use domain::follow_up::FollowUpState;
    for (status, state) in [
        (GatewayRefundStatus::Succeeded, FollowUpState::Done),
        (GatewayRefundStatus::Failed, FollowUpState::Stuck),
    ] {
        let h = Harness::with_gateway(scripted_refunds(vec![GatewayRefundStatus::Pending], no_record()));
        let payment = late_success(&h).await;
        assert_eq!(follow_ups(&h, FollowUpState::Pending).await.len(), 1, "pending at the provider");
        let update = RefundUpdate {
            provider_refund_id: format!("re_late-success-{}", payment.id()),
            refund_id: Some(RefundId::from_uuid(payment.id().as_uuid())),
            amount: Some(payment.amount()),
            status,
        };
        let settled = event("evt_refund", GatewayEventKind::RefundUpdated(update.clone()));
        assert_eq!(h.app.apply_gateway_event(&provider(), &settled).await?, EventOutcome::Applied);
        let ended = follow_ups(&h, state).await;
        assert_eq!(ended.len(), 1, "{status:?}: {ended:?}");
        assert!(follow_ups(&h, FollowUpState::Pending).await.is_empty());
        let again = event("evt_refund_again", GatewayEventKind::RefundUpdated(update));
        assert!(matches!(
            h.app.apply_gateway_event(&provider(), &again).await?,
            EventOutcome::Ignored(_)
        ));
        h.assert_ledger_ok().await;
    }
    Ok(())
}

#[tokio::test]
async fn a_late_success_refund_the_provider_reports_failed_is_stuck_for_admins() -> Result<(), Box<dyn std::error::Error>> {
    use domain::follow_up::FollowUpState;
    let h = Harness::with_gateway(scripted_refunds(vec![GatewayRefundStatus::Failed], no_record()));
    late_success(&h).await;
    assert!(follow_ups(&h, FollowUpState::Done).await.is_empty(), "a failed refund is not done");
    let stuck = follow_ups(&h, FollowUpState::Stuck).await;
    assert_eq!(stuck.len(), 1, "flagged at once: asking again under the same key fails again");
    assert!(stuck[0].last_error.as_deref().is_some_and(|e| e.contains("failed")), "{stuck:?}");
    h.assert_ledger_ok().await;
    Ok(())
}

#[tokio::test]
async fn abandoned_checkouts_expire_and_release_their_stock() -> Result<(), Box<dyn std::error::Error>> {
    let h = Harness::new();
    let (_, buyer, mug, payment) = pending_card_order(&h).await;
    assert_eq!(h.app.expire_abandoned_checkouts(10).await?, 0);
    h.clock.advance(time::Duration::minutes(31));
    assert_eq!(h.app.expire_abandoned_checkouts(10).await?, 1);
    assert_eq!(h.app.expire_abandoned_checkouts(10).await?, 0);
    let details = h.app.order_details(&buyer, payment_order(&payment)).await?;
    assert_eq!(
        (details.order.status(), details.payment.map(|p| p.status())),
        (OrderStatus::Cancelled, Some(PaymentStatus::Expired))
    );
    assert_eq!(h.stock(&mug).await, (3, 0));
    let expired = event(
        "evt_9",
        GatewayEventKind::CheckoutExpired {
            reference: reference(payment.id()),
        },
    );
    assert_eq!(
        h.app.apply_gateway_event(&provider(), &expired).await?,
        EventOutcome::Ignored("payment already settled")
    );
    Ok(())
}

#[tokio::test]
async fn a_top_up_credits_the_wallet_only_when_the_gateway_confirms() -> Result<(), Box<dyn std::error::Error>> {
    let h = Harness::new();
    let alice = h.user(Role::Customer).await;
    let payment = h
        .app
        .start_top_up(
            &alice,
            TopUpRequest {
                amount: usd(2_000),
                provider: None,
            },
            None,
        )
        .await?;
    assert_eq!(payment.status(), PaymentStatus::Pending);
    assert_eq!(h.balance(&alice).await, 0);
    let confirmed = event("evt_1", paid(&payment, usd(2_000)));
    assert_eq!(h.app.apply_gateway_event(&provider(), &confirmed).await?, EventOutcome::Applied);
    assert_eq!(h.app.apply_gateway_event(&provider(), &confirmed).await?, EventOutcome::Duplicate);
    assert_eq!(h.balance(&alice).await, 2_000);
    h.assert_ledger_ok().await;
    Ok(())
}

#[tokio::test]
async fn a_card_refund_settles_when_the_gateway_answers() -> Result<(), Box<dyn std::error::Error>> {
    let h = Harness::new();
    let (ann, buyer, _, payment) = pending_card_order(&h).await;
    h.app
        .apply_gateway_event(&provider(), &event("evt_1", paid(&payment, usd(1_400))))
        .await?;
    let command = RefundCommand {
        amount: Some(usd(400)),
        merchant_id: None,
        reason: "late delivery".into(),
    };
    let refunds = h.app.refund_order(&ann, payment_order(&payment), command, None).await?;
    assert_eq!(refunds[0].status(), RefundStatus::Succeeded);
    assert!(refunds[0].provider_refund_id().is_some());
    assert_eq!(h.balance(&ann).await, 1_000);
    let details = h.app.order_details(&buyer, payment_order(&payment)).await?;
    assert_eq!(
        (details.order.status(), details.order.refunded()),
        (OrderStatus::PartiallyRefunded, usd(400))
    );
    h.assert_ledger_ok().await;
    Ok(())
}

fn pending_refunds_gateway() -> MockGateway {
    let mut gateway = MockGateway::new();
    gateway.expect_provider().return_const(provider());
    gateway.expect_supports_currency().return_const(true);
    gateway.expect_create_checkout().returning(|request| {
        Ok(application::ports::gateway::CheckoutSession {
            session_id: format!("cs_{}", request.payment_id),
            checkout_url: "https://pay.example".into(),
        })
    });
    gateway.expect_refund().returning(|request| {
        Ok(GatewayRefund {
            provider_refund_id: format!("re_{}", request.refund_id),
            status: GatewayRefundStatus::Pending,
        })
    });
    gateway
}

#[tokio::test]
async fn a_pending_card_refund_completes_or_fails_by_webhook() -> Result<(), Box<dyn std::error::Error>> {
    let h = Harness::with_gateway(pending_refunds_gateway());
    let (ann, buyer, _, payment) = pending_card_order(&h).await;
    h.app
        .apply_gateway_event(&provider(), &event("evt_1", paid(&payment, usd(1_400))))
        .await?;
    let order_id = payment_order(&payment);
    let first = h
        .app
        .refund_order(
            &ann,
            order_id,
            RefundCommand {
                amount: Some(usd(400)),
                merchant_id: None,
                reason: String::new(),
            },
            None,
        )
        .await?;
    let second = h
        .app
        .refund_order(
            &ann,
            order_id,
            RefundCommand {
                amount: Some(usd(100)),
                merchant_id: None,
                reason: String::new(),
            },
            None,
        )
        .await?;
    assert_eq!(
        (first[0].status(), second[0].status()),
        (RefundStatus::Pending, RefundStatus::Pending)
    );
    assert_eq!(h.balance(&ann).await, 900);
    let update = |refund: &domain::payment::Refund, status| RefundUpdate {
        provider_refund_id: refund.provider_refund_id().map(str::to_owned).unwrap_or_default(),
        refund_id: None,
        amount: Some(refund.amount()),
        status,
    };
    let done = event(
        "evt_2",
        GatewayEventKind::RefundUpdated(update(&first[0], GatewayRefundStatus::Succeeded)),
    );
    assert_eq!(h.app.apply_gateway_event(&provider(), &done).await?, EventOutcome::Applied);
    let failed = event(
        "evt_3",
        GatewayEventKind::Refunded {
            reference: reference(payment.id()),
            refunds: vec![update(&second[0], GatewayRefundStatus::Failed)],
            refunded_total: None,
        },
    );
    assert_eq!(h.app.apply_gateway_event(&provider(), &failed).await?, EventOutcome::Applied);
    let late_flip = event(
        "evt_4",
        GatewayEventKind::RefundUpdated(update(&second[0], GatewayRefundStatus::Succeeded)),
    );
    assert_eq!(
        h.app.apply_gateway_event(&provider(), &late_flip).await?,
        EventOutcome::Ignored("refund already settled")
    );
    assert_eq!(h.balance(&ann).await, 1_000);
    let details = h.app.order_details(&buyer, order_id).await?;
    assert_eq!(
        (details.order.status(), details.order.refunded()),
        (OrderStatus::PartiallyRefunded, usd(400))
    );
    h.assert_ledger_ok().await;
    Ok(())
}

#[tokio::test]
async fn a_dispute_is_recorded_on_the_payment_and_in_the_audit_trail() -> Result<(), Box<dyn std::error::Error>> {
    let h = Harness::new();
    let (_, buyer, _, payment) = pending_card_order(&h).await;
    h.app
        .apply_gateway_event(&provider(), &event("evt_1", paid(&payment, usd(1_400))))
        .await?;
    let dispute = event(
        "evt_2",
        GatewayEventKind::DisputeOpened {
            reference: reference(payment.id()),
            amount: Some(usd(1_400)),
            reason: "fraudulent".into(),
        },
    );
    assert_eq!(h.app.apply_gateway_event(&provider(), &dispute).await?, EventOutcome::Applied);
    let details = h.app.order_details(&buyer, payment_order(&payment)).await?;
    assert!(details.payment.is_some_and(|p| p.disputed()));
    let trail = h
        .app
        .order_audit(&h.admin().await, Some(payment_order(&payment)), &PageRequest::first(1))
        .await?;
    assert_eq!(trail.items[0].reason, "dispute opened: fraudulent");
    assert_eq!(trail.items[0].to, OrderStatus::Paid);
    Ok(())
}

#[tokio::test]
async fn unknown_events_and_payments_are_acknowledged_and_ignored() -> Result<(), Box<dyn std::error::Error>> {
    let h = Harness::new();
    assert_eq!(
        h.app
            .apply_gateway_event(&provider(), &event("evt_1", GatewayEventKind::Ignored))
            .await?,
        EventOutcome::Ignored("event type not handled")
    );
    let stranger = PaymentReference {
        session_id: Some("cs_unknown".into()),
        ..PaymentReference::default()
    };
    let unknown = event(
        "evt_2",
        GatewayEventKind::PaymentSucceeded {
            reference: stranger,
            amount: None,
        },
    );
    assert_eq!(
        h.app.apply_gateway_event(&provider(), &unknown).await?,
        EventOutcome::Ignored("unknown payment")
    );
    Ok(())
}

#[tokio::test]
async fn an_abandoned_top_up_expires_and_a_late_success_still_credits_the_wallet() -> Result<(), Box<dyn std::error::Error>> {
    let h = Harness::new();
    let alice = h.user(Role::Customer).await;
    let request = TopUpRequest {
        amount: usd(2_000),
        provider: None,
    };
    let payment = h.app.start_top_up(&alice, request, None).await?;
    h.clock.advance(time::Duration::minutes(31));
    assert_eq!(h.app.expire_abandoned_checkouts(10).await?, 1);
    let expired = h.app.payment_details(&alice, payment.id()).await?;
    assert_eq!(expired.status(), PaymentStatus::Expired);
    assert_eq!(h.balance(&alice).await, 0);

    // The payer had paid after all: the money is theirs, so the wallet is credited, not bounced.
    let late = event("evt_late", paid(&payment, usd(2_000)));
    assert_eq!(h.app.apply_gateway_event(&provider(), &late).await?, EventOutcome::LateSuccess);
    assert_eq!(h.app.apply_gateway_event(&provider(), &late).await?, EventOutcome::Duplicate);
    assert_eq!(h.balance(&alice).await, 2_000);
    h.assert_ledger_ok().await;
    Ok(())
}

#[tokio::test]
async fn a_refund_event_naming_only_the_payment_and_amount_settles_the_oldest_matching_refund() -> Result<(), Box<dyn std::error::Error>> {
    let h = Harness::with_gateway(pending_refunds_gateway());
    let (ann, buyer, _, payment) = pending_card_order(&h).await;
    h.app
        .apply_gateway_event(&provider(), &event("evt_1", paid(&payment, usd(1_400))))
        .await?;
    let order_id = payment_order(&payment);
    let mut refunds = Vec::new();
    for cents in [300, 300, 500] {
        let command = RefundCommand {
            amount: Some(usd(cents)),
            merchant_id: None,
            reason: String::new(),
        };
        refunds.push(h.app.refund_order(&ann, order_id, command, None).await?.remove(0));
        // Refunds of one order are ordered by creation time.
        h.clock.advance(time::Duration::seconds(1));
    }
    let named = |amount: i64, status: GatewayRefundStatus| GatewayEventKind::PaymentRefundUpdated {
        reference: reference(payment.id()),
        amount: usd(amount),
        status,
        provider_refund_id: None,
    };
    let outcome = h
        .app
        .apply_gateway_event(&provider(), &event("evt_r1", named(300, GatewayRefundStatus::Succeeded)))
        .await?;
    assert_eq!(outcome, EventOutcome::Applied);
    let outcome = h
        .app
        .apply_gateway_event(&provider(), &event("evt_r2", named(300, GatewayRefundStatus::Failed)))
        .await?;
    assert_eq!(outcome, EventOutcome::Applied);
    let unknown = h
        .app
        .apply_gateway_event(&provider(), &event("evt_r3", named(999, GatewayRefundStatus::Succeeded)))
        .await?;
    assert_eq!(unknown, EventOutcome::Ignored("no pending refund of this payment and amount"));
    let details = h.app.order_details(&buyer, order_id).await?;
    let status_of = |id| details.refunds.iter().find(|r| r.id() == id).map(|r| r.status());
    assert_eq!(
        status_of(refunds[0].id()),
        Some(RefundStatus::Succeeded),
        "the oldest of the amount first"
    );
    assert_eq!(status_of(refunds[1].id()), Some(RefundStatus::Failed));
    assert_eq!(status_of(refunds[2].id()), Some(RefundStatus::Pending));
    assert_eq!(details.order.refunded(), usd(300));
    // The failed refund's 3.00 went back to the merchant; 3.00 and 5.00 are out.
    assert_eq!(h.balance(&ann).await, 600);
    h.assert_ledger_ok().await;
    Ok(())
}
