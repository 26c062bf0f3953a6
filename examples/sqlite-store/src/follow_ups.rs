//! Follow-ups: provider calls multi-step flows still owe, one row per task.
//!
//! The job takes the due ones oldest first. PostgreSQL skips rows another runner has locked; here
//! the transaction holds the store's only connection, so there is no other runner to skip, and the
//! lease the job writes (`next_attempt_at`) keeps the next one off a task being tried.

use application::pagination::{Cursor, Page, PageRequest};
use application::ports::store::{FollowUpRepository, StoreResult};
use domain::follow_up::{FollowUp, FollowUpState, FollowUpTask};
use rusqlite::{Row, params};
use time::OffsetDateTime;

use crate::SqliteTx;
use crate::codec;

pub(crate) const SCHEMA: &str = "
-- Tried again with backoff until done, or stuck with the last error for an admin.
CREATE TABLE IF NOT EXISTS follow_ups (
    kind            TEXT NOT NULL CHECK (kind IN ('refund', 'late_success_refund', 'recover_shortfall', 'outside_top_up_refund',
                                                  'payout', 'unpaid_order')),
    subject_id      TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'done', 'stuck')),
    attempts        INTEGER NOT NULL CHECK (attempts >= 0),
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    CONSTRAINT follow_up PRIMARY KEY (kind, subject_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS follow_ups_due ON follow_ups (next_attempt_at) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS follow_ups_by_state ON follow_ups (state, updated_at DESC, subject_id DESC);
";

/// The columns `follow_up_from_row` reads, in its order.
const FOLLOW_UP_COLUMNS: &str = "kind, subject_id, state, attempts, next_attempt_at, last_error, created_at, updated_at";

fn follow_up_from_row(row: &Row<'_>) -> StoreResult<FollowUp> {
    let kind: String = codec::get(row, 0)?;
    let state: String = codec::get(row, 2)?;
    Ok(FollowUp {
        task: FollowUpTask::from_parts(&kind, codec::uuid(row, 1)?)
            .ok_or_else(|| codec::corrupt(format!("unknown follow-up kind `{kind}`")))?,
        state: codec::word("follow-up state", &state, FollowUpState::parse)?,
        attempts: codec::to_u32(codec::get(row, 3)?, "follow-up attempts")?,
        next_attempt_at: codec::instant(row, 4)?,
        last_error: codec::get(row, 5)?,
        created_at: codec::instant(row, 6)?,
        updated_at: codec::instant(row, 7)?,
    })
}

impl FollowUpRepository for SqliteTx {
    async fn insert_follow_up(&mut self, follow_up: &FollowUp) -> StoreResult<()> {
        self.execute(
            &format!(
                "INSERT INTO follow_ups ({FOLLOW_UP_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                 ON CONFLICT (kind, subject_id) DO NOTHING"
            ),
            params![
                follow_up.task.kind(),
                codec::id_text(follow_up.task.subject()),
                follow_up.state.as_str(),
                i64::from(follow_up.attempts),
                codec::nanos(follow_up.next_attempt_at),
                follow_up.last_error,
                codec::nanos(follow_up.created_at),
                codec::nanos(follow_up.updated_at),
            ],
        )?;
        Ok(())
    }

    async fn lock_follow_up(&mut self, task: &FollowUpTask) -> StoreResult<Option<FollowUp>> {
        self.query_opt(
            &format!("SELECT {FOLLOW_UP_COLUMNS} FROM follow_ups WHERE kind = ?1 AND subject_id = ?2"),
            params![task.kind(), codec::id_text(task.subject())],
            follow_up_from_row,
        )
    }

    async fn update_follow_up(&mut self, follow_up: &FollowUp) -> StoreResult<()> {
        self.execute_one(
            "UPDATE follow_ups SET state = ?3, attempts = ?4, next_attempt_at = ?5, last_error = ?6, updated_at = ?7 \
             WHERE kind = ?1 AND subject_id = ?2",
            params![
                follow_up.task.kind(),
                codec::id_text(follow_up.task.subject()),
                follow_up.state.as_str(),
                i64::from(follow_up.attempts),
                codec::nanos(follow_up.next_attempt_at),
                follow_up.last_error,
                codec::nanos(follow_up.updated_at),
            ],
            "follow-up",
        )
    }

    async fn lock_due_follow_ups(&mut self, now: OffsetDateTime, limit: usize) -> StoreResult<Vec<FollowUp>> {
        self.query(
            &format!(
                "SELECT {FOLLOW_UP_COLUMNS} FROM follow_ups WHERE state = 'pending' AND next_attempt_at <= ?1 \
                 ORDER BY next_attempt_at, kind, subject_id LIMIT ?2"
            ),
            params![codec::nanos(now), codec::limit(limit)],
            follow_up_from_row,
        )
    }

    async fn list_follow_ups(&mut self, state: FollowUpState, page: &PageRequest) -> StoreResult<Page<FollowUp>> {
        let (at, id) = codec::position_after(page);
        let follow_ups = self.query(
            &format!(
                "SELECT {FOLLOW_UP_COLUMNS} FROM follow_ups WHERE state = ?1 AND (updated_at, subject_id) < (?2, ?3) \
                 ORDER BY updated_at DESC, subject_id DESC LIMIT ?4"
            ),
            params![state.as_str(), at, id, codec::limit_plus_one(page.limit)],
            follow_up_from_row,
        )?;
        Ok(Page::from_rows(follow_ups, page.limit, |follow_up| Cursor::Position {
            at: follow_up.updated_at,
            id: follow_up.task.subject(),
        }))
    }
}
