//! Idempotency keys: one row per (principal, key), claimed with `INSERT ... ON CONFLICT DO
//! NOTHING`, completed with the response a retry replays.
//!
//! The port's waiting and locking come free here: the transaction that claims a key holds the
//! store's only connection, so no other can have inserted the key without committing it, and the
//! existing record read after a refused insert stays as read until the transaction ends.

use application::ports::records::{IdempotencyKey, IdempotencyRecord, IdempotencyScope, IdempotencyState, RecoveryPoint, StoredResponse};
use application::ports::store::{ClaimOutcome, IdempotencyRepository, StoreResult};
use domain::ids::UserId;
use rusqlite::{Row, params};
use time::OffsetDateTime;

use crate::SqliteTx;
use crate::codec;

pub(crate) const SCHEMA: &str = "
-- `principal` is the caller's user id or 'anonymous'. A key is claimed `in_progress` with a lease
-- (`locked_until`) and what it has committed so far (`recovery_point`), then completed with the
-- response to replay.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    principal         TEXT NOT NULL,
    key               TEXT NOT NULL,
    fingerprint       TEXT NOT NULL,
    state             TEXT NOT NULL CHECK (state IN ('in_progress', 'completed')),
    locked_until      INTEGER,
    response_status   INTEGER,
    response_body     BLOB,
    response_location TEXT,
    recovery_point    TEXT,
    created_at        INTEGER NOT NULL,
    completed_at      INTEGER,
    CONSTRAINT idempotency_key PRIMARY KEY (principal, key),
    CONSTRAINT idempotency_keys_state CHECK (
        (state = 'in_progress' AND locked_until IS NOT NULL AND response_status IS NULL)
        OR (state = 'completed' AND response_status IS NOT NULL AND response_body IS NOT NULL))
) STRICT, WITHOUT ROWID;
";

/// The columns `record_from_row` reads, in its order.
const RECORD_COLUMNS: &str = "principal, key, fingerprint, state, locked_until, response_status, response_body, response_location, \
                              recovery_point, created_at";

/// The `INSERT` of a whole record (`bind_record`'s parameters); a conflict clause completes it.
/// A record inserted completed is completed when it is created.
const INSERT_RECORD: &str = "INSERT INTO idempotency_keys \
         (principal, key, fingerprint, state, locked_until, response_status, response_body, response_location, recovery_point, \
          created_at, completed_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, CASE WHEN ?4 = 'completed' THEN ?10 END)";

fn record_from_row(row: &Row<'_>) -> StoreResult<IdempotencyRecord> {
    let principal: String = codec::get(row, 0)?;
    let key: String = codec::get(row, 1)?;
    let state: String = codec::get(row, 3)?;
    let recovery_point: Option<String> = codec::get(row, 8)?;
    let principal = match principal.as_str() {
        "anonymous" => None,
        id => Some(UserId::parse(id).map_err(codec::corrupt)?),
    };
    let recovery = recovery_point
        .as_deref()
        .map(RecoveryPoint::parse)
        .transpose()
        .map_err(codec::corrupt)?;
    let state = match state.as_str() {
        "in_progress" => IdempotencyState::InProgress {
            locked_until: codec::instant_opt(row, 4)?.ok_or_else(|| codec::corrupt("an in-progress idempotency key without a lease"))?,
            recovery,
        },
        "completed" => {
            let status: Option<i64> = codec::get(row, 5)?;
            let body: Option<Vec<u8>> = codec::get(row, 6)?;
            match (status, body) {
                (Some(status), Some(body)) => IdempotencyState::Completed(StoredResponse {
                    status: u16::try_from(status).map_err(|_| codec::corrupt(format!("HTTP status {status}")))?,
                    body,
                    location: codec::get(row, 7)?,
                }),
                _ => return Err(codec::corrupt("a completed idempotency key without its response")),
            }
        }
        other => return Err(codec::corrupt(format!("unknown idempotency key state `{other}`"))),
    };
    Ok(IdempotencyRecord {
        scope: IdempotencyScope {
            principal,
            key: IdempotencyKey::parse(&key).map_err(codec::corrupt)?,
        },
        fingerprint: codec::get(row, 2)?,
        state,
        created_at: codec::instant(row, 9)?,
    })
}

impl SqliteTx {
    /// Runs `sql` (`INSERT_RECORD` and a conflict clause) for `record`, created at `created_at`;
    /// says how many rows it changed.
    fn write_record(&mut self, sql: &str, record: &IdempotencyRecord, created_at: OffsetDateTime) -> StoreResult<usize> {
        let (state, locked_until, recovery_point, response) = match &record.state {
            IdempotencyState::InProgress { locked_until, recovery } => (
                "in_progress",
                Some(codec::nanos(*locked_until)),
                recovery.as_ref().map(RecoveryPoint::code),
                None,
            ),
            IdempotencyState::Completed(response) => ("completed", None, None, Some(response)),
        };
        self.execute(
            sql,
            params![
                record.scope.principal_text(),
                record.scope.key.as_str(),
                record.fingerprint,
                state,
                locked_until,
                response.map(|response| i64::from(response.status)),
                response.map(|response| response.body.as_slice()),
                response.and_then(|response| response.location.as_deref()),
                recovery_point,
                codec::nanos(created_at),
            ],
        )
    }
}

impl IdempotencyRepository for SqliteTx {
    async fn claim_idempotency_key(&mut self, record: &IdempotencyRecord) -> StoreResult<ClaimOutcome> {
        let claimed = self.write_record(
            &format!("{INSERT_RECORD} ON CONFLICT (principal, key) DO NOTHING"),
            record,
            record.created_at,
        )?;
        if claimed == 1 {
            return Ok(ClaimOutcome::Claimed);
        }
        // Nothing else writes while this transaction runs, so the record the insert ran into is
        // there to read.
        let existing = self.find_idempotency_record(&record.scope).await?;
        existing
            .map(ClaimOutcome::Existing)
            .ok_or_else(|| codec::missing("the idempotency key a claim ran into"))
    }

    async fn find_idempotency_record(&mut self, scope: &IdempotencyScope) -> StoreResult<Option<IdempotencyRecord>> {
        self.query_opt(
            &format!("SELECT {RECORD_COLUMNS} FROM idempotency_keys WHERE principal = ?1 AND key = ?2"),
            params![scope.principal_text(), scope.key.as_str()],
            record_from_row,
        )
    }

    async fn renew_idempotency_lease(&mut self, scope: &IdempotencyScope, locked_until: OffsetDateTime) -> StoreResult<()> {
        self.execute_one(
            "UPDATE idempotency_keys SET locked_until = ?3 WHERE principal = ?1 AND key = ?2 AND state = 'in_progress'",
            params![scope.principal_text(), scope.key.as_str(), codec::nanos(locked_until)],
            "in-progress idempotency key",
        )
    }

    async fn set_idempotency_recovery_point(&mut self, scope: &IdempotencyScope, point: &RecoveryPoint) -> StoreResult<()> {
        self.execute_one(
            "UPDATE idempotency_keys SET recovery_point = ?3 WHERE principal = ?1 AND key = ?2 AND state = 'in_progress'",
            params![scope.principal_text(), scope.key.as_str(), point.code()],
            "in-progress idempotency key",
        )
    }

    async fn complete_idempotency_key(
        &mut self,
        scope: &IdempotencyScope,
        response: &StoredResponse,
        at: OffsetDateTime,
    ) -> StoreResult<()> {
        self.execute_one(
            "UPDATE idempotency_keys SET state = 'completed', locked_until = NULL, response_status = ?3, response_body = ?4, \
                 response_location = ?5, recovery_point = NULL, completed_at = ?6 \
             WHERE principal = ?1 AND key = ?2",
            params![
                scope.principal_text(),
                scope.key.as_str(),
                i64::from(response.status),
                response.body.as_slice(),
                response.location.as_deref(),
                codec::nanos(at),
            ],
            "idempotency key",
        )
    }

    /// An upsert that leaves a completed key, or one another request (another fingerprint)
    /// claimed, as it is.
    async fn settle_idempotency_key(&mut self, record: &IdempotencyRecord, at: OffsetDateTime) -> StoreResult<()> {
        self.write_record(
            &format!(
                "{INSERT_RECORD} ON CONFLICT (principal, key) DO UPDATE SET state = excluded.state, locked_until = NULL, \
                     response_status = excluded.response_status, response_body = excluded.response_body, \
                     response_location = excluded.response_location, recovery_point = NULL, completed_at = excluded.created_at \
                 WHERE idempotency_keys.state = 'in_progress' AND idempotency_keys.fingerprint = excluded.fingerprint"
            ),
            record,
            at,
        )?;
        Ok(())
    }

    async fn end_idempotency_lease(&mut self, scope: &IdempotencyScope, at: OffsetDateTime) -> StoreResult<()> {
        // A lease already over stays as it ended; a completed key has none.
        self.execute(
            "UPDATE idempotency_keys SET locked_until = min(locked_until, ?3) \
             WHERE principal = ?1 AND key = ?2 AND state = 'in_progress'",
            params![scope.principal_text(), scope.key.as_str(), codec::nanos(at)],
        )?;
        Ok(())
    }
}
