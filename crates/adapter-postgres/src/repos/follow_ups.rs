//! Follow-ups: provider calls multi-step flows still owe. The job takes due ones with
//! `SKIP LOCKED`, so several server instances share them.

use application::pagination::{Cursor, Page, PageRequest};
use application::ports::store::{FollowUpRepository, StoreResult};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Integer, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use domain::follow_up::{FollowUp, FollowUpState, FollowUpTask};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::mapping::{corrupt, limit, limit_plus_one, position_after, to_i32, to_u32, word};
use crate::sql::{Read, Write};
use crate::tx::{DomainRow, Expect, PgTx};

macro_rules! follow_up_columns {
    () => {
        "kind, subject_id, state, attempts, next_attempt_at, last_error, created_at, updated_at"
    };
}

#[derive(QueryableByName)]
struct FollowUpRow {
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = SqlUuid)]
    subject_id: Uuid,
    #[diesel(sql_type = Text)]
    state: String,
    #[diesel(sql_type = Integer)]
    attempts: i32,
    #[diesel(sql_type = Timestamptz)]
    next_attempt_at: OffsetDateTime,
    #[diesel(sql_type = Nullable<Text>)]
    last_error: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    created_at: OffsetDateTime,
    #[diesel(sql_type = Timestamptz)]
    updated_at: OffsetDateTime,
}

impl DomainRow for FollowUpRow {
    type Domain = FollowUp;

    fn into_domain(self) -> StoreResult<FollowUp> {
        Ok(FollowUp {
            task: FollowUpTask::from_parts(&self.kind, self.subject_id)
                .ok_or_else(|| corrupt(format!("unknown follow-up kind `{}`", self.kind)))?,
            state: word("follow-up state", &self.state, FollowUpState::parse)?,
            attempts: to_u32(self.attempts, "follow-up attempts")?,
            next_attempt_at: self.next_attempt_at,
            last_error: self.last_error,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

impl FollowUpRepository for PgTx {
    async fn insert_follow_up(&mut self, follow_up: &FollowUp) -> StoreResult<()> {
        let statement = Write::new(concat!(
            "INSERT INTO follow_ups (",
            follow_up_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (kind, subject_id) DO NOTHING"
        ))
        .bind::<Text, _>(follow_up.task.kind())
        .bind::<SqlUuid, _>(follow_up.task.subject())
        .bind::<Text, _>(follow_up.state.as_str())
        .bind::<Integer, _>(to_i32(follow_up.attempts, "follow-up attempts")?)
        .bind::<Timestamptz, _>(follow_up.next_attempt_at)
        .bind::<Nullable<Text>, _>(follow_up.last_error.clone())
        .bind::<Timestamptz, _>(follow_up.created_at)
        .bind::<Timestamptz, _>(follow_up.updated_at);
        self.defer(statement, Expect::Any)
    }

    async fn lock_follow_up(&mut self, task: &FollowUpTask) -> StoreResult<Option<FollowUp>> {
        let statement = Read::new(concat!(
            "SELECT ",
            follow_up_columns!(),
            " FROM follow_ups WHERE kind = $1 AND subject_id = $2 FOR NO KEY UPDATE"
        ))
        .bind::<Text, _>(task.kind())
        .bind::<SqlUuid, _>(task.subject());
        self.select_first::<FollowUpRow>(statement).await
    }

    async fn update_follow_up(&mut self, follow_up: &FollowUp) -> StoreResult<()> {
        let statement = Write::new(
            "UPDATE follow_ups SET state = $3, attempts = $4, next_attempt_at = $5, last_error = $6, updated_at = $7 \
             WHERE kind = $1 AND subject_id = $2",
        )
        .bind::<Text, _>(follow_up.task.kind())
        .bind::<SqlUuid, _>(follow_up.task.subject())
        .bind::<Text, _>(follow_up.state.as_str())
        .bind::<Integer, _>(to_i32(follow_up.attempts, "follow-up attempts")?)
        .bind::<Timestamptz, _>(follow_up.next_attempt_at)
        .bind::<Nullable<Text>, _>(follow_up.last_error.clone())
        .bind::<Timestamptz, _>(follow_up.updated_at);
        self.defer(statement, Expect::Rows(1, "follow-up"))
    }

    async fn lock_due_follow_ups(&mut self, now: OffsetDateTime, batch: usize) -> StoreResult<Vec<FollowUp>> {
        let statement = Read::new(concat!(
            "SELECT ",
            follow_up_columns!(),
            " FROM follow_ups WHERE state = 'pending' AND next_attempt_at <= $1 \
             ORDER BY next_attempt_at LIMIT $2 FOR NO KEY UPDATE SKIP LOCKED"
        ))
        .bind::<Timestamptz, _>(now)
        .bind::<BigInt, _>(limit(batch));
        self.select::<FollowUpRow>(statement).await
    }

    async fn list_follow_ups(&mut self, state: FollowUpState, page: &PageRequest) -> StoreResult<Page<FollowUp>> {
        let (at, id) = position_after(page);
        let statement = Read::new(concat!(
            "SELECT ",
            follow_up_columns!(),
            " FROM follow_ups WHERE state = $1 AND (updated_at, subject_id) < ($2, $3) \
             ORDER BY updated_at DESC, subject_id DESC LIMIT $4"
        ))
        .bind::<Text, _>(state.as_str())
        .bind::<Timestamptz, _>(at)
        .bind::<SqlUuid, _>(id)
        .bind::<BigInt, _>(limit_plus_one(page.limit));
        let rows = self.select::<FollowUpRow>(statement).await?;
        Ok(Page::from_rows(rows, page.limit, |f| Cursor::Position {
            at: f.updated_at,
            id: f.task.subject(),
        }))
    }
}
