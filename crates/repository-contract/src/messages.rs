//! The contract of the webhook inbox and the event outbox (`WebhookInbox`, `EventOutbox`).

use crate::prelude::*;

pub async fn a_webhook_event_is_recorded_once_per_provider<U: UnitOfWork>(store: U) {
    let mut tx = begin(&store).await;
    assert!(expect(
        tx.record_webhook_event(&provider("stripe"), "evt_1", "checkout.session.completed", now())
            .await,
        "first"
    ));
    commit(tx).await;
    let mut tx = begin(&store).await;
    assert!(!expect(
        tx.record_webhook_event(&provider("stripe"), "evt_1", "checkout.session.completed", now())
            .await,
        "again"
    ));
    assert!(expect(
        tx.record_webhook_event(&provider("monnify"), "evt_1", "SUCCESSFUL_TRANSACTION", now())
            .await,
        "other provider"
    ));
}

pub async fn outbox_events_are_published_once<U: UnitOfWork>(store: U) {
    let events: Vec<OutboxEvent> = (0..3)
        .map(|n| OutboxEvent {
            id: id(),
            event: DomainEvent::StockChanged {
                product_id: id(),
                available: n,
            },
            occurred_at: now() + Duration::seconds(n),
        })
        .collect();
    let mut tx = begin(&store).await;
    expect(tx.enqueue_events(&events).await, "enqueue");
    commit(tx).await;
    let mut tx = begin(&store).await;
    let batch = expect(tx.lock_unpublished_events(2).await, "batch");
    assert_eq!(batch, events[..2].to_vec());
    expect(
        tx.mark_events_published(&batch.iter().map(|e| e.id).collect::<Vec<_>>(), now())
            .await,
        "mark",
    );
    commit(tx).await;
    let mut tx = begin(&store).await;
    assert_eq!(expect(tx.lock_unpublished_events(10).await, "rest"), events[2..].to_vec());
}
