//! The inbox of providers' webhook events and the outbox of domain events.
//!
//! The inbox deduplicates by its primary key (provider, provider's event id) with `INSERT ... ON
//! CONFLICT DO NOTHING`. The outbox numbers events in the order they were written (`sequence`, an
//! `AUTOINCREMENT` key, so a number is never handed out twice) and stores each as its name and its
//! attributes (`DomainEvent::attributes`) as a JSON object of strings, as the PostgreSQL store
//! does.
//!
//! "Locked" outbox reads are plain reads: the transaction holds the store's only connection, so no
//! other publisher can take the same events meanwhile.

use std::collections::BTreeMap;

use application::pagination::{Cursor, Page, PageRequest};
use application::ports::store::{EventOutbox, InboxOutcome, ReceivedWebhook, ReceivedWebhookFilter, StoreError, StoreResult, WebhookInbox};
use domain::events::{DomainEvent, OutboxEvent};
use domain::ids::{EventId, PaymentId, ReceivedWebhookId};
use domain::payment::ProviderName;
use rusqlite::{Row, params};
use time::OffsetDateTime;

use crate::SqliteTx;
use crate::codec;

pub(crate) const SCHEMA: &str = "
-- A provider's event id is recorded in the transaction of the event's effect, so a redelivered
-- event finds it and has no effect; `outcome` is what applying it did.
CREATE TABLE IF NOT EXISTS processed_webhook_events (
    id                 TEXT NOT NULL,
    provider           TEXT NOT NULL,
    event_id           TEXT NOT NULL,
    event_type         TEXT NOT NULL,
    payment_id         TEXT,
    provider_reference TEXT,
    received_at        INTEGER NOT NULL,
    outcome            TEXT CHECK (outcome IN ('applied', 'ignored', 'late_success', 'refused')),
    outcome_detail     TEXT,
    CONSTRAINT processed_webhook_event PRIMARY KEY (provider, event_id)
) STRICT;
CREATE UNIQUE INDEX IF NOT EXISTS processed_webhook_events_id ON processed_webhook_events (id);
CREATE INDEX IF NOT EXISTS processed_webhook_events_newest ON processed_webhook_events (received_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS processed_webhook_events_by_payment ON processed_webhook_events (payment_id, received_at DESC, id DESC)
    WHERE payment_id IS NOT NULL;

-- Events written in the transaction of their cause and published afterwards, oldest first.
-- `id` is unique, and so the target of the webhook deliveries' foreign key.
CREATE TABLE IF NOT EXISTS outbox_events (
    sequence     INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL UNIQUE,
    event_type   TEXT NOT NULL,
    payload      TEXT NOT NULL CHECK (json_valid(payload)),
    occurred_at  INTEGER NOT NULL,
    published_at INTEGER
) STRICT;
CREATE INDEX IF NOT EXISTS outbox_events_unpublished ON outbox_events (sequence) WHERE published_at IS NULL;
";

/// The columns `received_from_row` reads, in its order.
const RECEIVED_COLUMNS: &str = "id, provider, event_id, event_type, payment_id, provider_reference, received_at, outcome, outcome_detail";

fn received_from_row(row: &Row<'_>) -> StoreResult<ReceivedWebhook> {
    let provider: String = codec::get(row, 1)?;
    let outcome: Option<String> = codec::get(row, 7)?;
    let outcome = match outcome {
        None => None,
        Some(kind) => Some(InboxOutcome {
            kind: codec::word("inbox outcome", &kind, InboxOutcome::kind_named)?,
            detail: codec::get(row, 8)?,
        }),
    };
    Ok(ReceivedWebhook {
        id: ReceivedWebhookId::from_uuid(codec::uuid(row, 0)?),
        provider: codec::provider(&provider)?,
        event_id: codec::get(row, 2)?,
        event_type: codec::get(row, 3)?,
        payment_id: codec::uuid_opt(row, 4)?.map(PaymentId::from_uuid),
        provider_reference: codec::get(row, 5)?,
        received_at: codec::instant(row, 6)?,
        outcome,
    })
}

impl WebhookInbox for SqliteTx {
    async fn record_webhook_event(&mut self, event: &ReceivedWebhook) -> StoreResult<bool> {
        let recorded = self.execute(
            "INSERT INTO processed_webhook_events (id, provider, event_id, event_type, payment_id, provider_reference, received_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (provider, event_id) DO NOTHING",
            params![
                codec::id_text(event.id.as_uuid()),
                event.provider.as_str(),
                event.event_id,
                event.event_type,
                event.payment_id.map(|id| codec::id_text(id.as_uuid())),
                event.provider_reference,
                codec::nanos(event.received_at),
            ],
        )?;
        Ok(recorded == 1)
    }

    async fn record_webhook_outcome(&mut self, id: ReceivedWebhookId, outcome: &InboxOutcome) -> StoreResult<()> {
        self.execute_one(
            "UPDATE processed_webhook_events SET outcome = ?2, outcome_detail = ?3 WHERE id = ?1",
            params![codec::id_text(id.as_uuid()), outcome.kind, outcome.detail],
            "received webhook",
        )
    }

    async fn list_webhook_events(&mut self, filter: &ReceivedWebhookFilter, page: &PageRequest) -> StoreResult<Page<ReceivedWebhook>> {
        let (at, id) = codec::position_after(page);
        let events = self.query(
            &format!(
                "SELECT {RECEIVED_COLUMNS} FROM processed_webhook_events \
                 WHERE (received_at, id) < (?1, ?2) AND (?4 IS NULL OR provider = ?4) AND (?5 IS NULL OR event_type = ?5) \
                   AND (?6 IS NULL OR outcome = ?6) AND (?7 IS NULL OR payment_id = ?7) \
                   AND (?8 IS NULL OR received_at >= ?8) AND (?9 IS NULL OR received_at < ?9) \
                 ORDER BY received_at DESC, id DESC LIMIT ?3"
            ),
            params![
                at,
                id,
                codec::limit_plus_one(page.limit),
                filter.provider.as_ref().map(ProviderName::as_str),
                filter.event_type,
                filter.outcome,
                filter.payment.map(|id| codec::id_text(id.as_uuid())),
                codec::nanos_opt(filter.received.from),
                codec::nanos_opt(filter.received.to),
            ],
            received_from_row,
        )?;
        Ok(Page::from_rows(events, page.limit, |event| Cursor::Position {
            at: event.received_at,
            id: event.id.as_uuid(),
        }))
    }

    async fn find_webhook_event(&mut self, id: ReceivedWebhookId) -> StoreResult<Option<ReceivedWebhook>> {
        self.query_opt(
            &format!("SELECT {RECEIVED_COLUMNS} FROM processed_webhook_events WHERE id = ?1"),
            params![codec::id_text(id.as_uuid())],
            received_from_row,
        )
    }
}

/// An event's attributes as a JSON object of strings.
fn encode(event: &DomainEvent) -> StoreResult<String> {
    let attributes: BTreeMap<&str, String> = event.attributes().into_iter().collect();
    serde_json::to_string(&attributes).map_err(|error| StoreError::Unexpected(Box::new(error)))
}

/// An outbox row before its payload is decoded.
struct StoredEvent {
    id: EventId,
    event_type: String,
    payload: String,
    occurred_at: OffsetDateTime,
}

fn stored_event_from_row(row: &Row<'_>) -> StoreResult<StoredEvent> {
    Ok(StoredEvent {
        id: EventId::from_uuid(codec::uuid(row, 0)?),
        event_type: codec::get(row, 1)?,
        payload: codec::get(row, 2)?,
        occurred_at: codec::instant(row, 3)?,
    })
}

impl SqliteTx {
    /// Reads outbox rows and decodes each payload.
    fn outbox_events(&mut self, sql: &str, params: impl rusqlite::Params) -> StoreResult<Vec<OutboxEvent>> {
        let stored = self.query(sql, params, stored_event_from_row)?;
        stored
            .into_iter()
            .map(|row| {
                let attributes: BTreeMap<String, String> = serde_json::from_str(&row.payload).map_err(codec::corrupt)?;
                Ok(OutboxEvent {
                    id: row.id,
                    event: DomainEvent::from_attributes(&row.event_type, &attributes).map_err(codec::corrupt)?,
                    occurred_at: row.occurred_at,
                })
            })
            .collect()
    }
}

impl EventOutbox for SqliteTx {
    /// One insert per event, in the order given: `sequence` follows it.
    async fn enqueue_events(&mut self, events: &[OutboxEvent]) -> StoreResult<()> {
        for event in events {
            self.execute_one(
                "INSERT INTO outbox_events (id, event_type, payload, occurred_at) VALUES (?1, ?2, ?3, ?4)",
                params![
                    codec::id_text(event.id.as_uuid()),
                    event.event.name(),
                    encode(&event.event)?,
                    codec::nanos(event.occurred_at),
                ],
                "outbox event",
            )?;
        }
        Ok(())
    }

    async fn lock_unpublished_events(&mut self, limit: usize) -> StoreResult<Vec<OutboxEvent>> {
        self.outbox_events(
            "SELECT id, event_type, payload, occurred_at FROM outbox_events WHERE published_at IS NULL ORDER BY sequence LIMIT ?1",
            params![codec::limit(limit)],
        )
    }

    async fn mark_events_published(&mut self, ids: &[EventId], at: OffsetDateTime) -> StoreResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.execute(
            "UPDATE outbox_events SET published_at = ?2 WHERE id IN (SELECT value FROM json_each(?1))",
            params![codec::id_list(ids.iter().map(EventId::as_uuid)), codec::nanos(at)],
        )?;
        Ok(())
    }

    async fn find_events(&mut self, ids: &[EventId]) -> StoreResult<Vec<OutboxEvent>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.outbox_events(
            "SELECT id, event_type, payload, occurred_at FROM outbox_events WHERE id IN (SELECT value FROM json_each(?1))",
            params![codec::id_list(ids.iter().map(EventId::as_uuid))],
        )
    }

    async fn oldest_unpublished_event(&mut self) -> StoreResult<Option<OffsetDateTime>> {
        self.query_opt(
            "SELECT occurred_at FROM outbox_events WHERE published_at IS NULL ORDER BY sequence LIMIT 1",
            [],
            |row| codec::instant(row, 0),
        )
    }
}
