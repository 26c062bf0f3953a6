//! Metered call sessions.

use application::pagination::{Cursor, Page, PageRequest};
use application::ports::store::{CallFilter, CallRepository, StoreResult};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Integer, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use domain::call::{CallSession, CallStatus};
use domain::ids::{CallId, HoldId, UserId};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::mapping::{limit, limit_plus_one, money, position_after, to_i32, to_u32, word};
use crate::schema::call_sessions;
use crate::sql::{Read, Write};
use crate::tx::{DomainRow, Expect, PgTx};

macro_rules! call_columns {
    () => {
        "id, caller_id, receiver_id, currency, rate_per_minute, hold_id, authorized_minutes, status, started_at, ended_at, \
         billed_minutes, charged"
    };
}

#[derive(QueryableByName)]
#[diesel(table_name = call_sessions, check_for_backend(diesel::pg::Pg))]
struct CallRow {
    id: Uuid,
    caller_id: Uuid,
    receiver_id: Uuid,
    currency: String,
    rate_per_minute: i64,
    hold_id: Uuid,
    authorized_minutes: i32,
    status: String,
    started_at: OffsetDateTime,
    ended_at: Option<OffsetDateTime>,
    billed_minutes: i32,
    charged: i64,
}

impl DomainRow for CallRow {
    type Domain = CallSession;

    fn into_domain(self) -> StoreResult<CallSession> {
        Ok(CallSession {
            id: CallId::from_uuid(self.id),
            caller_id: UserId::from_uuid(self.caller_id),
            receiver_id: UserId::from_uuid(self.receiver_id),
            rate_per_minute: money(self.rate_per_minute, &self.currency)?,
            hold_id: HoldId::from_uuid(self.hold_id),
            authorized_minutes: to_u32(self.authorized_minutes, "authorized minutes")?,
            status: word("call status", &self.status, CallStatus::parse)?,
            started_at: self.started_at,
            ended_at: self.ended_at,
            billed_minutes: to_u32(self.billed_minutes, "billed minutes")?,
            charged: money(self.charged, &self.currency)?,
        })
    }
}

/// A user's calls as caller and as receiver, each side read newest first from its own index and
/// merged; a call never has the same user on both sides.
const LIST_CALLS: &str = concat!(
    "SELECT ",
    call_columns!(),
    " FROM ( \
         (SELECT * FROM call_sessions WHERE caller_id = $3 AND (started_at, id) < ($1, $2) \
          ORDER BY started_at DESC, id DESC LIMIT $4) \
         UNION ALL \
         (SELECT * FROM call_sessions WHERE receiver_id = $3 AND caller_id <> $3 AND (started_at, id) < ($1, $2) \
          ORDER BY started_at DESC, id DESC LIMIT $4) \
     ) calls ORDER BY started_at DESC, id DESC LIMIT $4"
);

impl CallRepository for PgTx {
    async fn find_call(&mut self, id: CallId) -> StoreResult<Option<CallSession>> {
        let statement =
            Read::new(concat!("SELECT ", call_columns!(), " FROM call_sessions WHERE id = $1")).bind::<SqlUuid, _>(id.as_uuid());
        self.select_first::<CallRow>(statement).await
    }

    async fn list_every_call(&mut self, filter: CallFilter, page: &PageRequest) -> StoreResult<Page<CallSession>> {
        let (at, id) = position_after(page);
        let statement = Read::new(concat!(
            "SELECT ",
            call_columns!(),
            " FROM call_sessions WHERE (started_at, id) < ($1, $2) AND ($4::text IS NULL OR status = $4) \
               AND ($5::uuid IS NULL OR caller_id = $5 OR receiver_id = $5) \
               AND ($6::timestamptz IS NULL OR started_at >= $6) AND ($7::timestamptz IS NULL OR started_at < $7) \
             ORDER BY started_at DESC, id DESC LIMIT $3"
        ))
        .bind::<Timestamptz, _>(at)
        .bind::<SqlUuid, _>(id)
        .bind::<BigInt, _>(limit_plus_one(page.limit))
        .bind::<Nullable<Text>, _>(filter.status.map(CallStatus::as_str))
        .bind::<Nullable<SqlUuid>, _>(filter.user.map(|user| user.as_uuid()))
        .bind::<Nullable<Timestamptz>, _>(filter.started.from)
        .bind::<Nullable<Timestamptz>, _>(filter.started.to);
        let calls = self.select::<CallRow>(statement).await?;
        Ok(Page::from_rows(calls, page.limit, |c| Cursor::Position {
            at: c.started_at,
            id: c.id.as_uuid(),
        }))
    }

    async fn insert_call(&mut self, call: &CallSession) -> StoreResult<()> {
        let statement = Write::new(concat!(
            "INSERT INTO call_sessions (",
            call_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        ))
        .bind::<SqlUuid, _>(call.id.as_uuid())
        .bind::<SqlUuid, _>(call.caller_id.as_uuid())
        .bind::<SqlUuid, _>(call.receiver_id.as_uuid())
        .bind::<Text, _>(call.rate_per_minute.currency().code())
        .bind::<BigInt, _>(call.rate_per_minute.amount_minor())
        .bind::<SqlUuid, _>(call.hold_id.as_uuid())
        .bind::<Integer, _>(to_i32(call.authorized_minutes, "authorized minutes")?)
        .bind::<Text, _>(call.status.as_str())
        .bind::<Timestamptz, _>(call.started_at)
        .bind::<Nullable<Timestamptz>, _>(call.ended_at)
        .bind::<Integer, _>(to_i32(call.billed_minutes, "billed minutes")?)
        .bind::<BigInt, _>(call.charged.amount_minor());
        self.defer(statement, Expect::Any)
    }

    async fn lock_call(&mut self, id: CallId) -> StoreResult<Option<CallSession>> {
        let statement = Read::new(concat!(
            "SELECT ",
            call_columns!(),
            " FROM call_sessions WHERE id = $1 FOR NO KEY UPDATE"
        ))
        .bind::<SqlUuid, _>(id.as_uuid());
        self.select_first::<CallRow>(statement).await
    }

    /// Writes what ending (and billing) a call changes.
    async fn update_call(&mut self, call: &CallSession) -> StoreResult<()> {
        let statement = Write::new(
            "UPDATE call_sessions SET authorized_minutes = $2, status = $3, ended_at = $4, billed_minutes = $5, charged = $6 \
             WHERE id = $1",
        )
        .bind::<SqlUuid, _>(call.id.as_uuid())
        .bind::<Integer, _>(to_i32(call.authorized_minutes, "authorized minutes")?)
        .bind::<Text, _>(call.status.as_str())
        .bind::<Nullable<Timestamptz>, _>(call.ended_at)
        .bind::<Integer, _>(to_i32(call.billed_minutes, "billed minutes")?)
        .bind::<BigInt, _>(call.charged.amount_minor());
        self.defer(statement, Expect::Rows(1, "call"))
    }

    async fn find_calls_authorized_until(&mut self, bound: OffsetDateTime, batch: usize) -> StoreResult<Vec<CallId>> {
        #[derive(QueryableByName)]
        struct IdRow {
            #[diesel(sql_type = SqlUuid)]
            id: Uuid,
        }
        let statement = Read::new(
            "SELECT id FROM call_sessions \
             WHERE status = 'active' AND started_at + authorized_minutes * interval '1 minute' <= $1 \
             ORDER BY started_at + authorized_minutes * interval '1 minute' LIMIT $2",
        )
        .bind::<Timestamptz, _>(bound)
        .bind::<BigInt, _>(limit(batch));
        Ok(self
            .read::<IdRow>(statement)
            .await?
            .into_iter()
            .map(|row| CallId::from_uuid(row.id))
            .collect())
    }

    async fn list_calls(&mut self, user: UserId, page: &PageRequest) -> StoreResult<Page<CallSession>> {
        let (at, id) = position_after(page);
        let statement = Read::new(LIST_CALLS)
            .bind::<Timestamptz, _>(at)
            .bind::<SqlUuid, _>(id)
            .bind::<SqlUuid, _>(user.as_uuid())
            .bind::<BigInt, _>(limit_plus_one(page.limit));
        let calls = self.select::<CallRow>(statement).await?;
        Ok(Page::from_rows(calls, page.limit, |call| Cursor::Position {
            at: call.started_at,
            id: call.id.as_uuid(),
        }))
    }
}
