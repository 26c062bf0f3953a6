//! Outbound webhooks through the use cases: endpoints, fan-out, delivery, retries, giving up.

use application::pagination::PageRequest;
use application::ports::store::DeliveryFilter;
use application::ports::webhooks::SendError;
use application::webhooks::{EndpointUpdate, NewEndpoint, WebhookUseError};
use domain::user::Role;
use domain::webhook::{DISABLE_AFTER, DeliveryStatus, RETRY_WINDOW};
use time::Duration;

use crate::orders::wallet_cart;
use crate::support::Harness;

fn endpoint(events: &[&str]) -> NewEndpoint {
    NewEndpoint {
        url: "https://receiver.example/hooks".into(),
        events: events.iter().map(|e| (*e).to_owned()).collect(),
        description: "orders".into(),
    }
}

fn page() -> PageRequest {
    PageRequest { limit: 50, after: None }
}

type Outcome = Result<(), Box<dyn std::error::Error>>;

#[tokio::test]
async fn a_purchase_reaches_the_platform_and_only_the_merchants_who_sold() -> Outcome {
    let h = Harness::new();
    let (admin, seller, other) = (h.admin().await, h.user(Role::Merchant).await, h.user(Role::Merchant).await);
    let buyer = h.funded_customer(10_000).await;
    let mug = h.product(&seller, 700, 5).await;
    let platform = h.app.create_webhook_endpoint(&admin, endpoint(&["*"])).await?;
    let sellers = h.app.create_webhook_endpoint(&seller, endpoint(&["order.paid"])).await?;
    h.app.create_webhook_endpoint(&other, endpoint(&["order.paid"])).await?;
    h.app.relay_webhooks().await?;
    let before = h.webhooks.received().len();
    let checkout = h.app.checkout(&buyer, wallet_cart(&[(mug.product.id, 1)]), None).await?;
    let round = h.app.relay_webhooks().await?;
    let sent = &h.webhooks.received()[before..];
    let paid: Vec<_> = sent.iter().filter(|w| w.event_type == "order.paid").collect();
    assert_eq!(paid.len(), 2, "the platform's and the seller's endpoint; not the other merchant's");
    let urls_and_secrets: Vec<_> = paid.iter().map(|w| w.secrets.clone()).collect();
    assert!(urls_and_secrets.contains(&vec![platform.secret.clone()]) && urls_and_secrets.contains(&vec![sellers.secret.clone()]));
    let order_id = checkout.order.id().to_string();
    assert!(paid.iter().all(|w| w.object.contains(&("order_id".into(), order_id.clone()))));
    assert_eq!(round.delivered, sent.len());
    assert!(h.app.relay_webhooks().await?.delivered == 0, "each delivered once");
    Ok(())
}

#[tokio::test]
async fn a_failing_receiver_gets_the_event_once_more_after_each_failure_then_never_again() -> Outcome {
    let h = Harness::new();
    let admin = h.admin().await;
    let hook = h.app.create_webhook_endpoint(&admin, endpoint(&["wallet.credited"])).await?;
    h.webhooks
        .answer_with([Ok(500), Err(SendError::Timeout(std::time::Duration::from_secs(10))), Ok(503)]);
    let customer = h.user(Role::Customer).await;
    h.fund(&customer, 1_000).await;
    let mut attempts = Vec::new();
    for _ in 0..6 {
        h.app.relay_webhooks().await?;
        attempts.push(h.webhooks.received().len());
        // Past any backoff of the first attempts.
        h.clock.advance(Duration::hours(1));
    }
    assert_eq!(attempts, vec![1, 2, 3, 4, 4, 4], "three failures, one success, then nothing");
    let deliveries = h
        .app
        .webhook_deliveries(&admin, hook.id, &DeliveryFilter::default(), &page())
        .await?;
    let delivery = deliveries.items.first().ok_or("no delivery")?;
    assert_eq!((delivery.status, delivery.attempts), (DeliveryStatus::Succeeded, 4));
    let ids: Vec<_> = h.webhooks.received().iter().map(|w| (w.event_id, w.delivery_id)).collect();
    assert!(
        ids.windows(2).all(|pair| pair[0] == pair[1]),
        "the same event and delivery each time"
    );
    Ok(())
}

#[tokio::test]
async fn a_refusal_stops_the_retries_and_a_window_of_failures_gives_up() -> Outcome {
    let h = Harness::new();
    let admin = h.admin().await;
    let hook = h.app.create_webhook_endpoint(&admin, endpoint(&["wallet.credited"])).await?;
    h.webhooks.answer_with([Ok(410)]);
    let customer = h.user(Role::Customer).await;
    h.fund(&customer, 1_000).await;
    h.app.relay_webhooks().await?;
    h.clock.advance(Duration::hours(1));
    h.app.relay_webhooks().await?;
    assert_eq!(h.webhooks.received().len(), 1, "a 410 is not retried");
    let listed = h
        .app
        .webhook_deliveries(&admin, hook.id, &DeliveryFilter::default(), &page())
        .await?;
    assert_eq!(listed.items.first().map(|d| d.status), Some(DeliveryStatus::Failed));
    // A receiver down for the whole retry window: given up, and the endpoint disabled.
    h.webhooks.answer_with((0..200).map(|_| Ok(502)));
    h.fund(&customer, 1_000).await;
    let deadline = h.clock_now() + RETRY_WINDOW + Duration::hours(12);
    while h.clock_now() < deadline {
        h.app.relay_webhooks().await?;
        h.clock.advance(Duration::hours(1));
    }
    let hook = h.app.webhook_endpoint(&admin, hook.id).await?;
    assert!(!hook.enabled && hook.disabled_reason.is_some(), "disabled after days of failures");
    assert!(hook.failing_since.is_some_and(|since| hook.updated_at - since >= DISABLE_AFTER));
    let pending = DeliveryFilter {
        status: Some(DeliveryStatus::Pending),
        event_type: None,
    };
    let waiting = h.app.webhook_deliveries(&admin, hook.id, &pending, &page()).await?;
    assert_eq!(waiting.items.len(), 1, "the event waits for the endpoint to be enabled again");
    // Enabled again by its owner, a redelivery goes through.
    let enable = EndpointUpdate {
        enabled: Some(true),
        ..EndpointUpdate::default()
    };
    h.app.update_webhook_endpoint(&admin, hook.id, enable).await?;
    h.webhooks.answer_ok();
    let from = h.clock_now() - Duration::days(10);
    assert_eq!(h.app.redeliver_webhooks(&admin, hook.id, from, h.clock_now()).await?, 2);
    let sent_before = h.webhooks.received().len();
    h.app.relay_webhooks().await?;
    assert_eq!(h.webhooks.received().len(), sent_before + 2);
    Ok(())
}

#[tokio::test]
async fn owners_manage_their_endpoints_roll_secrets_and_test_them() -> Outcome {
    let h = Harness::new();
    let (merchant, stranger, customer) = (
        h.user(Role::Merchant).await,
        h.user(Role::Merchant).await,
        h.user(Role::Customer).await,
    );
    assert!(matches!(
        h.app.create_webhook_endpoint(&customer, endpoint(&["*"])).await,
        Err(WebhookUseError::Forbidden)
    ));
    assert!(matches!(
        h.app
            .create_webhook_endpoint(
                &merchant,
                NewEndpoint {
                    url: "http://receiver.example".into(),
                    ..endpoint(&["*"])
                }
            )
            .await,
        Err(WebhookUseError::Invalid(_))
    ));
    assert!(matches!(
        h.app.create_webhook_endpoint(&merchant, endpoint(&["order.lost"])).await,
        Err(WebhookUseError::Invalid(_))
    ));
    let hook = h.app.create_webhook_endpoint(&merchant, endpoint(&["order.paid"])).await?;
    assert!(matches!(
        h.app.webhook_endpoint(&stranger, hook.id).await,
        Err(WebhookUseError::NotFound)
    ));
    let rolled = h.app.roll_webhook_secret(&merchant, hook.id, Duration::hours(2)).await?;
    assert_ne!(rolled.secret, hook.secret);
    h.app.test_webhook_endpoint(&merchant, hook.id).await?;
    h.app.relay_webhooks().await?;
    let sent = h.webhooks.received();
    let test = sent
        .iter()
        .find(|w| w.event_type == "webhook_endpoint.test")
        .ok_or("no test event")?;
    assert_eq!(
        test.secrets,
        vec![rolled.secret.clone(), hook.secret.clone()],
        "both sign during the overlap"
    );
    assert_eq!(sent.len(), 1, "a test event goes to its endpoint only");
    h.app.delete_webhook_endpoint(&merchant, hook.id).await?;
    assert!(matches!(
        h.app.webhook_endpoint(&merchant, hook.id).await,
        Err(WebhookUseError::NotFound)
    ));
    Ok(())
}

#[tokio::test]
async fn a_slow_receiver_gets_its_turn_without_holding_up_the_others() -> Outcome {
    let h = Harness::new();
    let admin = h.admin().await;
    let slow = NewEndpoint {
        url: "https://slow.example/hooks".into(),
        ..endpoint(&["wallet.credited"])
    };
    h.app.create_webhook_endpoint(&admin, slow).await?;
    h.app.create_webhook_endpoint(&admin, endpoint(&["wallet.credited"])).await?;
    h.webhooks
        .slow_at("https://slow.example/hooks", h.clock.clone(), Duration::seconds(3));
    let customer = h.user(Role::Customer).await;
    for _ in 0..10 {
        h.fund(&customer, 100).await;
    }
    let sent_to = |url: &str| h.webhooks.received().iter().filter(|w| w.url == url).count();
    h.app.relay_webhooks().await?;
    assert_eq!(
        (sent_to("https://slow.example/hooks"), sent_to("https://receiver.example/hooks")),
        (2, 10),
        "the slow receiver's budget ran out after two requests; the other got everything"
    );
    h.app.relay_webhooks().await?;
    assert_eq!(sent_to("https://slow.example/hooks"), 4, "and the slow one gets its turn again");
    Ok(())
}

#[tokio::test]
async fn deliveries_are_listed_for_thirty_days_after_they_end_then_pruned() -> Outcome {
    let h = Harness::new();
    let admin = h.admin().await;
    let hook = h.app.create_webhook_endpoint(&admin, endpoint(&["wallet.credited"])).await?;
    let customer = h.user(Role::Customer).await;
    h.fund(&customer, 100).await;
    h.app.relay_webhooks().await?;
    let listed = |h: &Harness| {
        let app = h.app.clone();
        async move { app.webhook_deliveries(&admin, hook.id, &DeliveryFilter::default(), &page()).await }
    };
    assert_eq!(listed(&h).await?.items.len(), 1);
    h.clock.advance(Duration::days(29));
    assert_eq!(h.app.prune_webhook_history(100).await?, 0);
    h.clock.advance(Duration::days(2));
    assert_eq!(h.app.prune_webhook_history(100).await?, 1);
    assert!(listed(&h).await?.items.is_empty());
    Ok(())
}

/// Merchants are told what happened to their orders by the event's type: a second partial refund
/// is `order.refunded` (it was announced as `order.disputed`, since the order's status stays
/// partially refunded), and a dispute is `order.disputed`, with the order's status as both `from`
/// and `to`, as before.
#[tokio::test]
async fn a_second_partial_refund_is_a_refund_and_a_dispute_a_dispute() -> Outcome {
    use application::ports::gateway::GatewayEventKind;
    use application::refunds::RefundCommand;

    use crate::payments::{event, paid, pending_card_order, reference};
    use crate::support::{provider, usd};

    let h = Harness::new();
    let admin = h.admin().await;
    h.app
        .create_webhook_endpoint(&admin, endpoint(&["order.refunded", "order.disputed"]))
        .await?;
    let seller = h.user(Role::Merchant).await;
    let buyer = h.funded_customer(10_000).await;
    let mug = h.product(&seller, 700, 5).await;
    let order = h.app.checkout(&buyer, wallet_cart(&[(mug.product.id, 3)]), None).await?.order;
    for part in [100, 200] {
        let refund = RefundCommand {
            amount: Some(usd(part)),
            merchant_id: None,
            reason: "partly broken".into(),
        };
        h.app.refund_order(&seller, order.id(), refund, None).await?;
    }
    h.app.relay_webhooks().await?;
    let types: Vec<_> = h.webhooks.received().iter().map(|w| w.event_type.clone()).collect();
    assert_eq!(types, ["order.refunded", "order.refunded"]);

    let (_, _, _, payment) = pending_card_order(&h).await;
    h.app
        .apply_gateway_event(&provider(), &event("evt_paid", paid(&payment, payment.amount())))
        .await?;
    let dispute = GatewayEventKind::DisputeOpened {
        reference: reference(payment.id()),
        amount: None,
        reason: "fraudulent".into(),
    };
    h.app.apply_gateway_event(&provider(), &event("evt_dispute", dispute)).await?;
    h.app.relay_webhooks().await?;
    let disputed: Vec<_> = h.webhooks.received().into_iter().skip(2).collect();
    assert_eq!(disputed.len(), 1, "{disputed:?}");
    assert_eq!(disputed[0].event_type, "order.disputed");
    let object: std::collections::BTreeMap<_, _> = disputed[0].object.iter().cloned().collect();
    assert_eq!(object.get("from").map(String::as_str), Some("paid"));
    assert_eq!(object.get("to").map(String::as_str), Some("paid"));
    Ok(())
}
