//! The outbox: domain events written in the transaction of their cause, published afterwards.
//!
//! Publishers take the oldest unpublished events with `SKIP LOCKED`, so several can work side by
//! side, each on its own batch.

use application::ports::store::{EventOutbox, StoreResult};
use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Text, Timestamptz, Uuid as SqlUuid};
use domain::events::OutboxEvent;
use domain::ids::EventId;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::events::{decode, encode};
use crate::mapping::limit;
use crate::sql::{Read, Write};
use crate::tx::{DomainRow, Expect, PgTx};

#[derive(QueryableByName)]
struct EventRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Text)]
    event_type: String,
    #[diesel(sql_type = Text)]
    payload: String,
    #[diesel(sql_type = Timestamptz)]
    occurred_at: OffsetDateTime,
}

impl DomainRow for EventRow {
    type Domain = OutboxEvent;

    fn into_domain(self) -> StoreResult<OutboxEvent> {
        Ok(OutboxEvent {
            id: EventId::from_uuid(self.id),
            event: decode(&self.event_type, &self.payload)?,
            occurred_at: self.occurred_at,
        })
    }
}

impl EventOutbox for PgTx {
    /// All events in one statement, numbered (`sequence`) in the order given.
    async fn enqueue_events(&mut self, events: &[OutboxEvent]) -> StoreResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        let payloads = events.iter().map(|e| encode(&e.event)).collect::<StoreResult<Vec<String>>>()?;
        let statement = Write::new(
            "INSERT INTO outbox_events (id, event_type, payload, occurred_at) \
             SELECT e.id, e.event_type, e.payload::jsonb, e.occurred_at \
             FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[]) \
                  WITH ORDINALITY AS e(id, event_type, payload, occurred_at, position) \
             ORDER BY e.position",
        )
        .bind::<Array<SqlUuid>, _>(events.iter().map(|e| e.id.as_uuid()).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(events.iter().map(|e| e.event.name()).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(payloads)
        .bind::<Array<Timestamptz>, _>(events.iter().map(|e| e.occurred_at).collect::<Vec<_>>());
        self.defer(statement, Expect::Any)
    }

    async fn lock_unpublished_events(&mut self, batch_size: usize) -> StoreResult<Vec<OutboxEvent>> {
        let statement = Read::new(
            "SELECT id, event_type, payload::text AS payload, occurred_at FROM outbox_events \
             WHERE published_at IS NULL ORDER BY sequence LIMIT $1 FOR NO KEY UPDATE SKIP LOCKED",
        )
        .bind::<BigInt, _>(limit(batch_size));
        self.select::<EventRow>(statement).await
    }

    async fn find_events(&mut self, ids: &[EventId]) -> StoreResult<Vec<OutboxEvent>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = ids.iter().map(|id| id.as_uuid()).collect();
        let statement = Read::new("SELECT id, event_type, payload::text AS payload, occurred_at FROM outbox_events WHERE id = ANY($1)")
            .bind::<Array<SqlUuid>, _>(ids)
            .planned_each_time();
        self.select::<EventRow>(statement).await
    }

    async fn oldest_unpublished_event(&mut self) -> StoreResult<Option<OffsetDateTime>> {
        #[derive(QueryableByName)]
        struct Oldest {
            #[diesel(sql_type = diesel::sql_types::Nullable<Timestamptz>)]
            occurred_at: Option<OffsetDateTime>,
        }
        let statement =
            Read::new("SELECT (SELECT occurred_at FROM outbox_events WHERE published_at IS NULL ORDER BY sequence LIMIT 1) AS occurred_at");
        let row: Option<Oldest> = self.read_first(statement).await?;
        Ok(row.and_then(|row| row.occurred_at))
    }

    async fn mark_events_published(&mut self, ids: &[EventId], at: OffsetDateTime) -> StoreResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let statement = Write::new("UPDATE outbox_events SET published_at = $2 WHERE id = ANY($1)")
            .bind::<Array<SqlUuid>, _>(ids.iter().map(EventId::as_uuid).collect::<Vec<_>>())
            .bind::<Timestamptz, _>(at)
            .planned_each_time();
        self.defer(statement, Expect::Any)
    }
}
