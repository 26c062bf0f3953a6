//! Idempotency keys and the inbox of processed webhook events: "have we seen this before?",
//! answered by a primary key and `INSERT ... ON CONFLICT DO NOTHING`.

use application::idempotency::{IdempotencyKey, IdempotencyRecord, IdempotencyScope, IdempotencyState, RecoveryPoint, StoredResponse};
use application::pagination::{Cursor, Page, PageRequest};
use application::ports::store::{
    ClaimOutcome, IdempotencyRepository, InboxOutcome, ReceivedWebhook, ReceivedWebhookFilter, StoreError, StoreResult, WebhookInbox,
};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Binary, Integer, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use domain::ids::{PaymentId, ReceivedWebhookId, UserId};
use domain::payment::ProviderName;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::mapping::{corrupt, limit_plus_one, position_after, provider};
use crate::schema::{idempotency_keys, processed_webhook_events};
use crate::sql::{Read, Write};
use crate::tx::{DomainRow, Expect, PgTx};

/// The `INSERT` of a whole record; an `ON CONFLICT` clause completes it.
macro_rules! insert_record_sql {
    () => {
        "INSERT INTO idempotency_keys \
             (principal, key, fingerprint, state, locked_until, response_status, response_body, response_location, recovery_point, \
              created_at, completed_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, CASE WHEN $4 = 'completed' THEN $10 END)"
    };
}

/// How often a claim is attempted when the key keeps vanishing between the insert and the read
/// (released by a concurrent request each time).
const CLAIM_ATTEMPTS_MAX: u32 = 3;

#[derive(QueryableByName)]
#[diesel(table_name = idempotency_keys, check_for_backend(diesel::pg::Pg))]
struct RecordRow {
    principal: String,
    key: String,
    fingerprint: String,
    state: String,
    locked_until: Option<OffsetDateTime>,
    response_status: Option<i32>,
    response_body: Option<Vec<u8>>,
    response_location: Option<String>,
    recovery_point: Option<String>,
    created_at: OffsetDateTime,
}

impl DomainRow for RecordRow {
    type Domain = IdempotencyRecord;

    fn into_domain(self) -> StoreResult<IdempotencyRecord> {
        let principal = match self.principal.as_str() {
            "anonymous" => None,
            id => Some(UserId::parse(id).map_err(corrupt)?),
        };
        let recovery = self
            .recovery_point
            .as_deref()
            .map(RecoveryPoint::parse)
            .transpose()
            .map_err(corrupt)?;
        let state = match (self.state.as_str(), self.locked_until, self.response_status, self.response_body) {
            ("in_progress", Some(locked_until), _, _) => IdempotencyState::InProgress { locked_until, recovery },
            ("completed", _, Some(status), Some(body)) => IdempotencyState::Completed(StoredResponse {
                status: u16::try_from(status).map_err(corrupt)?,
                body,
                location: self.response_location,
            }),
            (state, ..) => return Err(corrupt(format!("idempotency key in an inconsistent state `{state}`"))),
        };
        Ok(IdempotencyRecord {
            scope: IdempotencyScope {
                principal,
                key: IdempotencyKey::parse(&self.key).map_err(corrupt)?,
            },
            fingerprint: self.fingerprint,
            state,
            created_at: self.created_at,
        })
    }
}

/// The columns a record's state is stored in.
struct StateColumns {
    state: &'static str,
    locked_until: Option<OffsetDateTime>,
    status: Option<i32>,
    body: Option<Vec<u8>>,
    location: Option<String>,
    recovery_point: Option<String>,
}

fn state_columns(state: &IdempotencyState) -> StateColumns {
    match state {
        IdempotencyState::InProgress { locked_until, recovery } => StateColumns {
            state: "in_progress",
            locked_until: Some(*locked_until),
            status: None,
            body: None,
            location: None,
            recovery_point: recovery.as_ref().map(RecoveryPoint::code),
        },
        IdempotencyState::Completed(response) => StateColumns {
            state: "completed",
            locked_until: None,
            status: Some(i32::from(response.status)),
            body: Some(response.body.clone()),
            location: response.location.clone(),
            recovery_point: None,
        },
    }
}

impl PgTx {
    async fn try_claim(&mut self, record: &IdempotencyRecord) -> StoreResult<bool> {
        let statement = insert_record(record, concat!(insert_record_sql!(), " ON CONFLICT (principal, key) DO NOTHING"));
        Ok(self.execute(statement).await? == 1)
    }

    async fn lock_idempotency_record(&mut self, scope: &IdempotencyScope) -> StoreResult<Option<IdempotencyRecord>> {
        let statement = Read::new(
            "SELECT principal, key, fingerprint, state, locked_until, response_status, response_body, response_location, \
                 recovery_point, created_at \
             FROM idempotency_keys WHERE principal = $1 AND key = $2 FOR NO KEY UPDATE",
        )
        .bind::<Text, _>(scope.principal_text())
        .bind::<Text, _>(scope.key.as_str());
        self.select_first::<RecordRow>(statement).await
    }
}

impl IdempotencyRepository for PgTx {
    /// Inserts, or else reads and locks the existing record. The read is a second statement: one
    /// statement could not see a row that a concurrent request committed while the insert waited
    /// for it.
    async fn claim_idempotency_key(&mut self, record: &IdempotencyRecord) -> StoreResult<ClaimOutcome> {
        for _ in 0..CLAIM_ATTEMPTS_MAX {
            if self.try_claim(record).await? {
                return Ok(ClaimOutcome::Claimed);
            }
            if let Some(existing) = self.lock_idempotency_record(&record.scope).await? {
                if self.is_member() {
                    // In a group, the record may be an earlier member's, not yet committed: its
                    // state is not an answer to give. Alone, this request waits for the group's
                    // commit at the insert and then finds what the other request committed.
                    tracing::debug!("a grouped request found its key taken; it runs again alone");
                    return Err(StoreError::Conflict);
                }
                return Ok(ClaimOutcome::Existing(existing));
            }
        }
        Err(StoreError::Conflict)
    }

    async fn find_idempotency_record(&mut self, scope: &IdempotencyScope) -> StoreResult<Option<IdempotencyRecord>> {
        let statement = Read::new(
            "SELECT principal, key, fingerprint, state, locked_until, response_status, response_body, response_location, \
                 recovery_point, created_at \
             FROM idempotency_keys WHERE principal = $1 AND key = $2",
        )
        .bind::<Text, _>(scope.principal_text())
        .bind::<Text, _>(scope.key.as_str());
        self.select_first::<RecordRow>(statement).await
    }

    async fn renew_idempotency_lease(&mut self, scope: &IdempotencyScope, locked_until: OffsetDateTime) -> StoreResult<()> {
        let statement =
            Write::new("UPDATE idempotency_keys SET locked_until = $3 WHERE principal = $1 AND key = $2 AND state = 'in_progress'")
                .bind::<Text, _>(scope.principal_text())
                .bind::<Text, _>(scope.key.as_str().to_owned())
                .bind::<Timestamptz, _>(locked_until);
        self.defer(statement, Expect::Rows(1, "idempotency key"))
    }

    async fn set_idempotency_recovery_point(&mut self, scope: &IdempotencyScope, point: &RecoveryPoint) -> StoreResult<()> {
        let statement =
            Write::new("UPDATE idempotency_keys SET recovery_point = $3 WHERE principal = $1 AND key = $2 AND state = 'in_progress'")
                .bind::<Text, _>(scope.principal_text())
                .bind::<Text, _>(scope.key.as_str().to_owned())
                .bind::<Text, _>(point.code());
        self.defer(statement, Expect::Rows(1, "idempotency key"))
    }

    async fn complete_idempotency_key(
        &mut self,
        scope: &IdempotencyScope,
        response: &StoredResponse,
        at: OffsetDateTime,
    ) -> StoreResult<()> {
        let statement = Write::new(
            "UPDATE idempotency_keys SET state = 'completed', locked_until = NULL, response_status = $3, response_body = $4, \
                 response_location = $5, recovery_point = NULL, completed_at = $6 \
             WHERE principal = $1 AND key = $2",
        )
        .bind::<Text, _>(scope.principal_text())
        .bind::<Text, _>(scope.key.as_str().to_owned())
        .bind::<Integer, _>(i32::from(response.status))
        .bind::<Binary, _>(response.body.clone())
        .bind::<Nullable<Text>, _>(response.location.clone())
        .bind::<Timestamptz, _>(at);
        self.defer(statement, Expect::Rows(1, "idempotency key"))
    }

    /// An upsert that leaves a completed key, or one another request claimed, as it is.
    async fn settle_idempotency_key(&mut self, record: &IdempotencyRecord, at: OffsetDateTime) -> StoreResult<()> {
        let completing = IdempotencyRecord {
            created_at: at,
            ..record.clone()
        };
        let statement = insert_record(
            &completing,
            concat!(
                insert_record_sql!(),
                " ON CONFLICT (principal, key) DO UPDATE SET state = EXCLUDED.state, locked_until = NULL, \
                 response_status = EXCLUDED.response_status, response_body = EXCLUDED.response_body, \
                 response_location = EXCLUDED.response_location, recovery_point = NULL, completed_at = EXCLUDED.created_at \
                 WHERE idempotency_keys.state = 'in_progress' AND idempotency_keys.fingerprint = EXCLUDED.fingerprint"
            ),
        );
        self.defer(statement, Expect::Any)
    }

    async fn end_idempotency_lease(&mut self, scope: &IdempotencyScope, at: OffsetDateTime) -> StoreResult<()> {
        let statement = Write::new(
            "UPDATE idempotency_keys SET locked_until = LEAST(locked_until, $3) \
             WHERE principal = $1 AND key = $2 AND state = 'in_progress'",
        )
        .bind::<Text, _>(scope.principal_text())
        .bind::<Text, _>(scope.key.as_str().to_owned())
        .bind::<Timestamptz, _>(at);
        self.defer(statement, Expect::Any)
    }
}

/// `sql` (`insert_record_sql!()` and a conflict clause) bound to the record's columns.
fn insert_record(record: &IdempotencyRecord, sql: &'static str) -> Write {
    let columns = state_columns(&record.state);
    Write::new(sql)
        .bind::<Text, _>(record.scope.principal_text())
        .bind::<Text, _>(record.scope.key.as_str().to_owned())
        .bind::<Text, _>(record.fingerprint.clone())
        .bind::<Text, _>(columns.state)
        .bind::<Nullable<Timestamptz>, _>(columns.locked_until)
        .bind::<Nullable<Integer>, _>(columns.status)
        .bind::<Nullable<Binary>, _>(columns.body)
        .bind::<Nullable<Text>, _>(columns.location)
        .bind::<Nullable<Text>, _>(columns.recovery_point)
        .bind::<Timestamptz, _>(record.created_at)
}

#[derive(QueryableByName)]
#[diesel(table_name = processed_webhook_events, check_for_backend(diesel::pg::Pg))]
struct ReceivedWebhookRow {
    id: Uuid,
    provider: String,
    event_id: String,
    event_type: String,
    payment_id: Option<Uuid>,
    provider_reference: Option<String>,
    received_at: OffsetDateTime,
    outcome: Option<String>,
    outcome_detail: Option<String>,
}

impl DomainRow for ReceivedWebhookRow {
    type Domain = ReceivedWebhook;

    fn into_domain(self) -> StoreResult<ReceivedWebhook> {
        let outcome = match self.outcome {
            None => None,
            Some(kind) => Some(InboxOutcome {
                kind: InboxOutcome::kind_named(&kind).ok_or_else(|| corrupt(format!("unknown inbox outcome {kind}")))?,
                detail: self.outcome_detail,
            }),
        };
        Ok(ReceivedWebhook {
            id: ReceivedWebhookId::from_uuid(self.id),
            provider: provider(&self.provider)?,
            event_id: self.event_id,
            event_type: self.event_type,
            payment_id: self.payment_id.map(PaymentId::from_uuid),
            provider_reference: self.provider_reference,
            received_at: self.received_at,
            outcome,
        })
    }
}

/// Every column of a received webhook, in `ReceivedWebhookRow`'s order.
macro_rules! received_webhook_columns {
    () => {
        "id, provider, event_id, event_type, payment_id, provider_reference, received_at, outcome, outcome_detail"
    };
}

impl WebhookInbox for PgTx {
    async fn record_webhook_event(&mut self, event: &ReceivedWebhook) -> StoreResult<bool> {
        let statement = Write::new(
            "INSERT INTO processed_webhook_events (id, provider, event_id, event_type, payment_id, provider_reference, received_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (provider, event_id) DO NOTHING",
        )
        .bind::<SqlUuid, _>(event.id.as_uuid())
        .bind::<Text, _>(event.provider.as_str())
        .bind::<Text, _>(&event.event_id)
        .bind::<Text, _>(&event.event_type)
        .bind::<Nullable<SqlUuid>, _>(event.payment_id.map(|id| id.as_uuid()))
        .bind::<Nullable<Text>, _>(event.provider_reference.as_deref())
        .bind::<Timestamptz, _>(event.received_at);
        Ok(self.execute(statement).await? == 1)
    }

    async fn record_webhook_outcome(&mut self, id: ReceivedWebhookId, outcome: &InboxOutcome) -> StoreResult<()> {
        let statement = Write::new("UPDATE processed_webhook_events SET outcome = $2, outcome_detail = $3 WHERE id = $1")
            .bind::<SqlUuid, _>(id.as_uuid())
            .bind::<Text, _>(outcome.kind)
            .bind::<Nullable<Text>, _>(outcome.detail.as_deref());
        self.defer(statement, Expect::Rows(1, "received webhook"))
    }

    async fn list_webhook_events(&mut self, filter: &ReceivedWebhookFilter, page: &PageRequest) -> StoreResult<Page<ReceivedWebhook>> {
        let (at, id) = position_after(page);
        let statement = Read::new(concat!(
            "SELECT ",
            received_webhook_columns!(),
            " FROM processed_webhook_events \
             WHERE (received_at, id) < ($1, $2) AND ($4::text IS NULL OR provider = $4) AND ($5::text IS NULL OR event_type = $5) \
               AND ($6::text IS NULL OR outcome = $6) AND ($7::uuid IS NULL OR payment_id = $7) \
               AND ($8::timestamptz IS NULL OR received_at >= $8) AND ($9::timestamptz IS NULL OR received_at < $9) \
             ORDER BY received_at DESC, id DESC LIMIT $3"
        ))
        .bind::<Timestamptz, _>(at)
        .bind::<SqlUuid, _>(id)
        .bind::<BigInt, _>(limit_plus_one(page.limit))
        .bind::<Nullable<Text>, _>(filter.provider.as_ref().map(ProviderName::as_str))
        .bind::<Nullable<Text>, _>(filter.event_type.as_deref())
        .bind::<Nullable<Text>, _>(filter.outcome)
        .bind::<Nullable<SqlUuid>, _>(filter.payment.map(|id| id.as_uuid()))
        .bind::<Nullable<Timestamptz>, _>(filter.received.from)
        .bind::<Nullable<Timestamptz>, _>(filter.received.to);
        let events = self.select::<ReceivedWebhookRow>(statement).await?;
        Ok(Page::from_rows(events, page.limit, |event| Cursor::Position {
            at: event.received_at,
            id: event.id.as_uuid(),
        }))
    }

    async fn find_webhook_event(&mut self, id: ReceivedWebhookId) -> StoreResult<Option<ReceivedWebhook>> {
        let statement = Read::new(concat!(
            "SELECT ",
            received_webhook_columns!(),
            " FROM processed_webhook_events WHERE id = $1"
        ))
        .bind::<SqlUuid, _>(id.as_uuid());
        Ok(self.select::<ReceivedWebhookRow>(statement).await?.pop())
    }
}
