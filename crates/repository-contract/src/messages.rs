//! The contract of the webhook inbox and the event outbox (`WebhookInbox`, `EventOutbox`).

use crate::prelude::*;

fn received(provider_name: &str, event_id: &str, event_type: &str, seconds: i64) -> ReceivedWebhook {
    ReceivedWebhook {
        id: id(),
        provider: provider(provider_name),
        event_id: event_id.to_owned(),
        event_type: event_type.to_owned(),
        payment_id: None,
        provider_reference: None,
        received_at: now() + Duration::seconds(seconds),
        outcome: None,
    }
}

pub async fn a_webhook_event_is_recorded_once_per_provider<U: UnitOfWork>(store: U) {
    let first = received("stripe", "evt_1", "checkout.session.completed", 0);
    let mut tx = begin(&store).await;
    assert!(expect(tx.record_webhook_event(&first).await, "first"));
    commit(tx).await;
    let mut tx = begin(&store).await;
    let again = received("stripe", "evt_1", "checkout.session.completed", 1);
    assert!(!expect(tx.record_webhook_event(&again).await, "again"));
    let elsewhere = received("monnify", "evt_1", "SUCCESSFUL_TRANSACTION", 2);
    assert!(expect(tx.record_webhook_event(&elsewhere).await, "other provider"));
    commit(tx).await;
    let mut tx = begin(&store).await;
    assert_eq!(
        expect(tx.find_webhook_event(first.id).await, "find"),
        Some(first),
        "the first record stays"
    );
    assert_eq!(expect(tx.find_webhook_event(again.id).await, "find the duplicate"), None);
}

/// The ids of the received events `filter` keeps, on one page.
async fn listed<Tx: WebhookInbox + Send>(tx: &mut Tx, filter: &ReceivedWebhookFilter) -> Vec<domain::ids::ReceivedWebhookId> {
    let page = expect(tx.list_webhook_events(filter, &PageRequest::first(10)).await, "listed");
    page.items.iter().map(|event| event.id).collect()
}

pub async fn admins_list_received_webhooks_with_their_outcomes<U: UnitOfWork>(store: U) {
    let payment: PaymentId = id();
    let paid = ReceivedWebhook {
        payment_id: Some(payment),
        provider_reference: Some("cs_1".into()),
        ..received("stripe", "evt_paid", "checkout.session.completed", 0)
    };
    let ignored = received("stripe", "evt_other", "customer.created", 1);
    let paystack = received("paystack", "evt_charge", "charge.success", 2);
    let mut tx = begin(&store).await;
    for event in [&paid, &ignored, &paystack] {
        assert!(expect(tx.record_webhook_event(event).await, "record"));
    }
    let applied = InboxOutcome {
        kind: "applied",
        detail: None,
    };
    let not_handled = InboxOutcome {
        kind: "ignored",
        detail: Some("event type not handled".into()),
    };
    expect(tx.record_webhook_outcome(paid.id, &applied).await, "applied");
    expect(tx.record_webhook_outcome(ignored.id, &not_handled).await, "ignored");
    commit(tx).await;

    let ids = |page: &Page<ReceivedWebhook>| page.items.iter().map(|event| event.id).collect::<Vec<_>>();
    let mut tx = begin(&store).await;
    let all = ReceivedWebhookFilter::default();
    let page = expect(tx.list_webhook_events(&all, &PageRequest::first(2)).await, "first page");
    assert_eq!(ids(&page), vec![paystack.id, ignored.id], "newest first");
    let next = PageRequest {
        limit: 2,
        after: page.next_cursor,
    };
    let rest = expect(tx.list_webhook_events(&all, &next).await, "next page");
    assert_eq!(
        rest.items,
        vec![ReceivedWebhook {
            outcome: Some(applied.clone()),
            ..paid.clone()
        }]
    );
    assert_eq!(rest.next_cursor, None);
    let stripe = ReceivedWebhookFilter {
        provider: Some(provider("stripe")),
        ..all.clone()
    };
    assert_eq!(listed(&mut tx, &stripe).await, vec![ignored.id, paid.id]);
    let of_payment = ReceivedWebhookFilter {
        payment: Some(payment),
        ..all.clone()
    };
    assert_eq!(listed(&mut tx, &of_payment).await, vec![paid.id]);
    let ignored_ones = ReceivedWebhookFilter {
        outcome: Some("ignored"),
        event_type: Some("customer.created".into()),
        ..all.clone()
    };
    let found = expect(tx.list_webhook_events(&ignored_ones, &PageRequest::first(10)).await, "ignored");
    assert_eq!(found.items.len(), 1);
    assert_eq!(found.items[0].outcome, Some(not_handled));
    let later = ReceivedWebhookFilter {
        received: CreatedWithin {
            from: Some(now() + Duration::seconds(1)),
            to: Some(now() + Duration::seconds(2)),
        },
        ..all
    };
    assert_eq!(listed(&mut tx, &later).await, vec![ignored.id]);
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
