//! The contract of outbound webhook endpoints and deliveries (`WebhookRepository`, and the
//! outbox's `find_events`).

use domain::webhook::{
    AttemptOutcome, AttemptRecord, DeliveryStatus, EndpointOwner, EndpointUrl, EventSelection, WebhookDelivery, WebhookEndpoint,
};

use crate::prelude::*;

fn endpoint(owner: EndpointOwner, created_at: time::OffsetDateTime) -> WebhookEndpoint {
    let url = EndpointUrl::parse("https://receiver.example/hooks", false).expect("url");
    WebhookEndpoint::register(id(), owner, url, EventSelection::All, "orders", "whsec_1".into(), created_at).expect("endpoint")
}

fn event(n: i64) -> OutboxEvent {
    OutboxEvent {
        id: id(),
        event: DomainEvent::StockChanged {
            product_id: id(),
            available: n,
        },
        occurred_at: now() + Duration::seconds(n),
    }
}

/// A merchant with an endpoint, and events in the outbox.
async fn seeded<U: UnitOfWork>(store: &U, events: usize) -> (WebhookEndpoint, Vec<OutboxEvent>) {
    let merchant = user(Role::Merchant);
    let endpoint = endpoint(EndpointOwner::Merchant(merchant.id), now());
    let events: Vec<OutboxEvent> = (0..events as i64).map(event).collect();
    let mut tx = begin(store).await;
    expect(tx.insert_user(&merchant).await, "merchant");
    expect(tx.insert_webhook_endpoint(&endpoint).await, "endpoint");
    expect(tx.enqueue_events(&events).await, "events");
    commit(tx).await;
    (endpoint, events)
}

pub async fn webhook_endpoints_are_stored_listed_by_owner_and_deleted<U: UnitOfWork>(store: U) {
    let (mine, _) = seeded(&store, 0).await;
    let platform = endpoint(EndpointOwner::Platform, now() + Duration::seconds(1));
    let mut tx = begin(&store).await;
    expect(tx.insert_webhook_endpoint(&platform).await, "platform");
    commit(tx).await;
    let mut tx = begin(&store).await;
    assert_eq!(expect(tx.find_webhook_endpoint(mine.id).await, "find"), Some(mine.clone()));
    let page = PageRequest { limit: 10, after: None };
    let all = expect(tx.list_webhook_endpoints(EndpointFilter::All, &page).await, "all");
    assert_eq!(
        all.items.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![platform.id, mine.id],
        "newest first"
    );
    let only = expect(
        tx.list_webhook_endpoints(EndpointFilter::Owner(EndpointOwner::Platform), &page)
            .await,
        "platform's",
    );
    assert_eq!(only.items, vec![platform.clone()]);
    let rolled = mine.clone().roll_secret("whsec_2".into(), Duration::hours(1), now()).failed(now());
    expect(tx.update_webhook_endpoint(&rolled).await, "update");
    assert_eq!(expect(tx.lock_webhook_endpoint(mine.id).await, "lock"), Some(rolled));
    expect(tx.delete_webhook_endpoint(mine.id).await, "delete");
    assert_eq!(expect(tx.find_webhook_endpoint(mine.id).await, "gone"), None);
    commit(tx).await;
}

pub async fn a_delivery_is_recorded_once_per_event_and_endpoint<U: UnitOfWork>(store: U) {
    let (endpoint, events) = seeded(&store, 2).await;
    let first = WebhookDelivery::schedule(id(), events[0].id, endpoint.id, "product.stock_changed", now());
    let again = WebhookDelivery::schedule(id(), events[0].id, endpoint.id, "product.stock_changed", now());
    let second = WebhookDelivery::schedule(
        id(),
        events[1].id,
        endpoint.id,
        "product.stock_changed",
        now() + Duration::seconds(1),
    );
    let mut tx = begin(&store).await;
    expect(tx.insert_webhook_deliveries(&[first.clone(), second.clone()]).await, "insert");
    expect(tx.insert_webhook_deliveries(std::slice::from_ref(&again)).await, "again");
    commit(tx).await;
    let mut tx = begin(&store).await;
    assert_eq!(expect(tx.lock_webhook_delivery(first.id).await, "first"), Some(first.clone()));
    assert_eq!(
        expect(tx.lock_webhook_delivery(again.id).await, "again"),
        None,
        "one per event and endpoint"
    );
    let due = expect(
        tx.due_webhook_deliveries(endpoint.id, now() + Duration::seconds(1), 10).await,
        "due",
    );
    assert_eq!(due, vec![first.clone(), second.clone()], "oldest queued first");
    let attempt = AttemptRecord {
        at: now(),
        status_code: Some(503),
        latency_ms: 12,
        response: "busy".into(),
    };
    let retried = first
        .begin_attempt(now(), Duration::minutes(1))
        .record(attempt, AttemptOutcome::Retry { retry_after: None }, 0);
    expect(tx.update_webhook_deliveries(std::slice::from_ref(&retried)).await, "update");
    assert_eq!(
        expect(tx.lock_webhook_delivery(retried.id).await, "read back"),
        Some(retried.clone())
    );
    let backlog = expect(tx.webhook_delivery_backlog().await, "backlog");
    assert_eq!((backlog.queued, backlog.retrying), (1, 1));
    let page = PageRequest { limit: 10, after: None };
    let filter = DeliveryFilter {
        status: Some(DeliveryStatus::Pending),
        event_type: Some("product.stock_changed".into()),
    };
    let listed = expect(tx.list_webhook_deliveries(endpoint.id, &filter, &page).await, "list");
    assert_eq!(listed.items.iter().map(|d| d.id).collect::<Vec<_>>(), vec![second.id, retried.id]);
    let mut found = expect(tx.find_events(&[events[1].id, id(), events[0].id]).await, "events");
    found.sort_by_key(|event| event.id);
    let mut expected = vec![events[0].clone(), events[1].clone()];
    expected.sort_by_key(|event| event.id);
    assert_eq!(found, expected, "the events that exist, whatever the order");
    commit(tx).await;
}

pub async fn an_endpoint_is_claimed_by_one_deliverer_until_released<U: UnitOfWork>(store: U) {
    let (endpoint, events) = seeded(&store, 1).await;
    let delivery = WebhookDelivery::schedule(id(), events[0].id, endpoint.id, "product.stock_changed", now());
    let mut tx = begin(&store).await;
    expect(tx.insert_webhook_deliveries(std::slice::from_ref(&delivery)).await, "insert");
    commit(tx).await;
    let until = now() + Duration::minutes(1);
    let mut first = begin(&store).await;
    let claimed = expect(first.claim_webhook_endpoints(now(), until, 10).await, "claim");
    assert_eq!(claimed.iter().map(|e| e.id).collect::<Vec<_>>(), vec![endpoint.id]);
    commit(first).await;
    let mut second = begin(&store).await;
    assert!(
        expect(second.claim_webhook_endpoints(now(), until, 10).await, "held").is_empty(),
        "held by the first"
    );
    let after_lease = expect(
        second.claim_webhook_endpoints(until, until + Duration::minutes(1), 10).await,
        "lease over",
    );
    assert_eq!(after_lease.len(), 1, "a lease that ran out frees the endpoint");
    expect(second.hold_webhook_endpoint(endpoint.id, None).await, "release");
    commit(second).await;
    let mut third = begin(&store).await;
    assert_eq!(expect(third.claim_webhook_endpoints(now(), until, 10).await, "released").len(), 1);
    commit(third).await;
}

pub async fn deliveries_of_a_time_range_are_queued_again<U: UnitOfWork>(store: U) {
    let (endpoint, events) = seeded(&store, 3).await;
    let deliveries: Vec<WebhookDelivery> = events
        .iter()
        .map(|event| {
            let attempt = AttemptRecord {
                at: now(),
                status_code: Some(200),
                latency_ms: 3,
                response: String::new(),
            };
            WebhookDelivery::schedule(id(), event.id, endpoint.id, "product.stock_changed", now())
                .begin_attempt(now(), Duration::minutes(1))
                .record(attempt, AttemptOutcome::Delivered, 0)
        })
        .collect();
    let mut tx = begin(&store).await;
    expect(tx.insert_webhook_deliveries(&deliveries).await, "insert");
    for delivery in &deliveries {
        expect(tx.update_webhook_deliveries(std::slice::from_ref(delivery)).await, "delivered");
    }
    commit(tx).await;
    let later = now() + Duration::hours(1);
    let mut tx = begin(&store).await;
    // Events 0 and 1 occurred in the range; 2 a second after it ends.
    let requeued = expect(
        tx.requeue_webhook_deliveries(endpoint.id, now(), now() + Duration::seconds(2), later)
            .await,
        "requeue",
    );
    assert_eq!(requeued, 2);
    let due = expect(tx.due_webhook_deliveries(endpoint.id, later, 10).await, "due");
    assert_eq!(due.iter().map(|d| d.event_id).collect::<Vec<_>>().len(), 2);
    assert!(due.iter().all(|d| d.status == DeliveryStatus::Pending && d.queued_at == later));
    commit(tx).await;
}

pub async fn settled_deliveries_are_pruned_and_pending_ones_never<U: UnitOfWork>(store: U) {
    let (endpoint, events) = seeded(&store, 4).await;
    let (long_ago, lately) = (now() - Duration::days(40), now() - Duration::days(1));
    let ended = |event: &OutboxEvent, at, outcome| {
        let attempt = AttemptRecord {
            at,
            status_code: Some(if outcome == AttemptOutcome::Delivered { 200 } else { 410 }),
            latency_ms: 3,
            response: String::new(),
        };
        WebhookDelivery::schedule(id(), event.id, endpoint.id, "product.stock_changed", at)
            .begin_attempt(at, Duration::minutes(1))
            .record(attempt, outcome, 0)
    };
    let old_success = ended(&events[0], long_ago, AttemptOutcome::Delivered);
    let old_refusal = ended(&events[1], long_ago, AttemptOutcome::Refused);
    let recent = ended(&events[2], lately, AttemptOutcome::Delivered);
    let old_pending = WebhookDelivery::schedule(id(), events[3].id, endpoint.id, "product.stock_changed", long_ago);
    assert_eq!(
        (old_success.status, old_refusal.status, old_pending.status),
        (DeliveryStatus::Succeeded, DeliveryStatus::Failed, DeliveryStatus::Pending)
    );
    let all = [old_success.clone(), old_refusal.clone(), recent.clone(), old_pending.clone()];
    let mut tx = begin(&store).await;
    expect(tx.insert_webhook_deliveries(&all).await, "insert");
    expect(tx.update_webhook_deliveries(&all[..3]).await, "ended");
    commit(tx).await;
    let cutoff = now() - Duration::days(30);
    let mut tx = begin(&store).await;
    assert_eq!(
        expect(tx.prune_settled_webhook_deliveries(cutoff, 1).await, "one"),
        1,
        "at most the batch"
    );
    assert_eq!(expect(tx.prune_settled_webhook_deliveries(cutoff, 10).await, "rest"), 1);
    assert_eq!(expect(tx.prune_settled_webhook_deliveries(cutoff, 10).await, "none left"), 0);
    let page = PageRequest { limit: 10, after: None };
    let left = expect(
        tx.list_webhook_deliveries(endpoint.id, &DeliveryFilter::default(), &page).await,
        "left",
    );
    let mut left: Vec<_> = left.items.iter().map(|d| d.id).collect();
    left.sort();
    let mut kept = vec![recent.id, old_pending.id];
    kept.sort();
    assert_eq!(left, kept, "the recent one and the pending one stay");
    commit(tx).await;
}
