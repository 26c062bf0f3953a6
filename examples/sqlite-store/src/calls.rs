//! Metered call sessions (`CallRepository`).
//!
//! `hold_id` is not a foreign key, as in PostgreSQL: the port records a call on its own, and the
//! use case writes the hold in the same transaction.

use application::pagination::{Cursor, Page, PageRequest};
use application::ports::store::{CallFilter, CallRepository, StoreError, StoreResult};
use domain::call::{CallSession, CallStatus};
use domain::ids::{CallId, HoldId, UserId};
use rusqlite::{Row, params};
use time::OffsetDateTime;

use crate::SqliteTx;
use crate::codec;

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS call_sessions (
    id                 TEXT PRIMARY KEY,
    caller_id          TEXT NOT NULL REFERENCES users (id),
    receiver_id        TEXT NOT NULL REFERENCES users (id),
    currency           TEXT NOT NULL CHECK (currency GLOB '[A-Z][A-Z][A-Z]'),
    rate_per_minute    INTEGER NOT NULL CHECK (rate_per_minute > 0),
    hold_id            TEXT NOT NULL,
    authorized_minutes INTEGER NOT NULL CHECK (authorized_minutes > 0),
    status             TEXT NOT NULL CHECK (status IN ('active', 'ended')),
    started_at         INTEGER NOT NULL,
    ended_at           INTEGER,
    billed_minutes     INTEGER NOT NULL CHECK (billed_minutes >= 0),
    charged            INTEGER NOT NULL CHECK (charged >= 0),
    CONSTRAINT call_sessions_two_parties CHECK (caller_id <> receiver_id)
) STRICT;

-- A user's calls, made or received, newest first: one index per side, merged by the query.
CREATE INDEX IF NOT EXISTS call_sessions_by_caller ON call_sessions (caller_id, started_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS call_sessions_by_receiver ON call_sessions (receiver_id, started_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS call_sessions_newest ON call_sessions (started_at DESC, id DESC);
-- Active calls, for the job that extends their authorisation or ends them.
CREATE INDEX IF NOT EXISTS call_sessions_active ON call_sessions (started_at) WHERE status = 'active';
";

/// The name PostgreSQL gives a taken call id, reported the same way here.
const CALL_SESSIONS_PKEY: &str = "call_sessions_pkey";

/// One minute in the stored unit of instants.
const NANOS_PER_MINUTE: i64 = 60_000_000_000;

macro_rules! call_columns {
    () => {
        "id, caller_id, receiver_id, currency, rate_per_minute, hold_id, authorized_minutes, status, started_at, ended_at, \
         billed_minutes, charged"
    };
}

/// A user's (`?3`) calls as caller and as receiver, each side read newest first from its own
/// index and the two merged; a call never has the same user on both sides.
const LIST_CALLS: &str = concat!(
    "SELECT * FROM ( \
         SELECT * FROM (SELECT ",
    call_columns!(),
    " FROM call_sessions WHERE caller_id = ?3 AND (started_at, id) < (?1, ?2) \
           ORDER BY started_at DESC, id DESC LIMIT ?4) \
         UNION ALL \
         SELECT * FROM (SELECT ",
    call_columns!(),
    " FROM call_sessions WHERE receiver_id = ?3 AND (started_at, id) < (?1, ?2) \
           ORDER BY started_at DESC, id DESC LIMIT ?4) \
     ) ORDER BY started_at DESC, id DESC LIMIT ?4"
);

/// The admins' listing, every filter optional; the period includes its start, not its end.
const LIST_EVERY_CALL: &str = concat!(
    "SELECT ",
    call_columns!(),
    " FROM call_sessions WHERE (started_at, id) < (?1, ?2) AND (?4 IS NULL OR status = ?4) \
       AND (?5 IS NULL OR caller_id = ?5 OR receiver_id = ?5) \
       AND (?6 IS NULL OR started_at >= ?6) AND (?7 IS NULL OR started_at < ?7) \
     ORDER BY started_at DESC, id DESC LIMIT ?3"
);

fn call(row: &Row<'_>) -> StoreResult<CallSession> {
    let currency: String = codec::get(row, 3)?;
    let status: String = codec::get(row, 7)?;
    Ok(CallSession {
        id: CallId::from_uuid(codec::uuid(row, 0)?),
        caller_id: UserId::from_uuid(codec::uuid(row, 1)?),
        receiver_id: UserId::from_uuid(codec::uuid(row, 2)?),
        rate_per_minute: codec::money(codec::get(row, 4)?, &currency)?,
        hold_id: HoldId::from_uuid(codec::uuid(row, 5)?),
        authorized_minutes: codec::to_u32(codec::get(row, 6)?, "authorized minutes")?,
        status: codec::word("call status", &status, CallStatus::parse)?,
        started_at: codec::instant(row, 8)?,
        ended_at: codec::instant_opt(row, 9)?,
        billed_minutes: codec::to_u32(codec::get(row, 10)?, "billed minutes")?,
        charged: codec::money(codec::get(row, 11)?, &currency)?,
    })
}

fn page_of(calls: Vec<CallSession>, limit: usize) -> Page<CallSession> {
    Page::from_rows(calls, limit, |call| Cursor::Position {
        at: call.started_at,
        id: call.id.as_uuid(),
    })
}

fn find(tx: &mut SqliteTx, id: CallId) -> StoreResult<Option<CallSession>> {
    tx.query_opt(
        concat!("SELECT ", call_columns!(), " FROM call_sessions WHERE id = ?1"),
        params![codec::id_text(id.as_uuid())],
        call,
    )
}

impl CallRepository for SqliteTx {
    /// A taken id is reported as PostgreSQL names it.
    async fn insert_call(&mut self, call: &CallSession) -> StoreResult<()> {
        let inserted = self.execute(
            concat!(
                "INSERT INTO call_sessions (",
                call_columns!(),
                ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) ON CONFLICT (id) DO NOTHING"
            ),
            params![
                codec::id_text(call.id.as_uuid()),
                codec::id_text(call.caller_id.as_uuid()),
                codec::id_text(call.receiver_id.as_uuid()),
                call.rate_per_minute.currency().code(),
                call.rate_per_minute.amount_minor(),
                codec::id_text(call.hold_id.as_uuid()),
                i64::from(call.authorized_minutes),
                call.status.as_str(),
                codec::nanos(call.started_at),
                codec::nanos_opt(call.ended_at),
                i64::from(call.billed_minutes),
                call.charged.amount_minor(),
            ],
        )?;
        if inserted == 0 {
            return Err(StoreError::Duplicate(CALL_SESSIONS_PKEY.to_owned()));
        }
        Ok(())
    }

    /// A plain read: the transaction already keeps every other writer out.
    async fn lock_call(&mut self, id: CallId) -> StoreResult<Option<CallSession>> {
        find(self, id)
    }

    /// Writes what extending, ending and billing a call change.
    async fn update_call(&mut self, call: &CallSession) -> StoreResult<()> {
        self.execute_one(
            "UPDATE call_sessions SET authorized_minutes = ?2, status = ?3, ended_at = ?4, billed_minutes = ?5, charged = ?6 \
             WHERE id = ?1",
            params![
                codec::id_text(call.id.as_uuid()),
                i64::from(call.authorized_minutes),
                call.status.as_str(),
                codec::nanos_opt(call.ended_at),
                i64::from(call.billed_minutes),
                call.charged.amount_minor(),
            ],
            "call",
        )
    }

    async fn find_calls_authorized_until(&mut self, bound: OffsetDateTime, limit: usize) -> StoreResult<Vec<CallId>> {
        let ids = self.query(
            "SELECT id FROM call_sessions \
             WHERE status = 'active' AND started_at + authorized_minutes * ?3 <= ?1 \
             ORDER BY started_at + authorized_minutes * ?3, id LIMIT ?2",
            params![codec::nanos(bound), codec::limit(limit), NANOS_PER_MINUTE],
            |row| codec::uuid(row, 0),
        )?;
        Ok(ids.into_iter().map(CallId::from_uuid).collect())
    }

    async fn list_calls(&mut self, user: UserId, page: &PageRequest) -> StoreResult<Page<CallSession>> {
        let (at, id) = codec::position_after(page);
        let calls = self.query(
            LIST_CALLS,
            params![at, id, codec::id_text(user.as_uuid()), codec::limit_plus_one(page.limit)],
            call,
        )?;
        Ok(page_of(calls, page.limit))
    }

    async fn find_call(&mut self, id: CallId) -> StoreResult<Option<CallSession>> {
        find(self, id)
    }

    async fn list_every_call(&mut self, filter: CallFilter, page: &PageRequest) -> StoreResult<Page<CallSession>> {
        let (at, id) = codec::position_after(page);
        let calls = self.query(
            LIST_EVERY_CALL,
            params![
                at,
                id,
                codec::limit_plus_one(page.limit),
                filter.status.map(CallStatus::as_str),
                filter.user.map(|user| codec::id_text(user.as_uuid())),
                codec::nanos_opt(filter.started.from),
                codec::nanos_opt(filter.started.to),
            ],
            call,
        )?;
        Ok(page_of(calls, page.limit))
    }
}
