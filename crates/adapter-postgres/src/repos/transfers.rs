//! Person-to-person transfers and withdrawals: the business records next to their journal
//! transactions.

use application::pagination::{Cursor, Page, PageRequest};
use application::ports::store::{StoreResult, TransferRepository};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text, Timestamptz, Uuid as SqlUuid};
use domain::ids::{TransactionId, TransferId, UserId, WithdrawalId};
use domain::wallet::{Transfer, Withdrawal};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::mapping::{limit_plus_one, money, position_after};
use crate::schema::{transfers, withdrawals};
use crate::sql::{Read, Write};
use crate::tx::{Expect, PgTx};

#[derive(QueryableByName)]
#[diesel(table_name = transfers, check_for_backend(diesel::pg::Pg))]
struct TransferRow {
    id: Uuid,
    from_user_id: Uuid,
    to_user_id: Uuid,
    currency: String,
    amount: i64,
    transaction_id: Uuid,
    note: String,
    created_at: OffsetDateTime,
}

#[derive(QueryableByName)]
#[diesel(table_name = withdrawals, check_for_backend(diesel::pg::Pg))]
struct WithdrawalRow {
    id: Uuid,
    user_id: Uuid,
    currency: String,
    amount: i64,
    destination: String,
    transaction_id: Uuid,
    created_at: OffsetDateTime,
}

impl TransferRepository for PgTx {
    async fn insert_transfer(&mut self, transfer: &Transfer) -> StoreResult<()> {
        let statement = Write::new(
            "INSERT INTO transfers (id, from_user_id, to_user_id, currency, amount, transaction_id, note, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind::<SqlUuid, _>(transfer.id.as_uuid())
        .bind::<SqlUuid, _>(transfer.from_user_id.as_uuid())
        .bind::<SqlUuid, _>(transfer.to_user_id.as_uuid())
        .bind::<Text, _>(transfer.amount.currency().code())
        .bind::<BigInt, _>(transfer.amount.amount_minor())
        .bind::<SqlUuid, _>(transfer.transaction_id.as_uuid())
        .bind::<Text, _>(transfer.note.clone())
        .bind::<Timestamptz, _>(transfer.created_at);
        self.defer(statement, Expect::Any)
    }

    async fn find_transfer(&mut self, id: TransferId) -> StoreResult<Option<Transfer>> {
        let statement = Read::new(
            "SELECT id, from_user_id, to_user_id, currency, amount, transaction_id, note, created_at FROM transfers WHERE id = $1",
        )
        .bind::<SqlUuid, _>(id.as_uuid());
        let Some(row) = self.read_first::<TransferRow>(statement).await? else {
            return Ok(None);
        };
        Ok(Some(Transfer {
            id: TransferId::from_uuid(row.id),
            from_user_id: UserId::from_uuid(row.from_user_id),
            to_user_id: UserId::from_uuid(row.to_user_id),
            amount: money(row.amount, &row.currency)?,
            transaction_id: TransactionId::from_uuid(row.transaction_id),
            note: row.note,
            created_at: row.created_at,
        }))
    }

    async fn insert_withdrawal(&mut self, withdrawal: &Withdrawal) -> StoreResult<()> {
        let statement = Write::new(
            "INSERT INTO withdrawals (id, user_id, currency, amount, destination, transaction_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind::<SqlUuid, _>(withdrawal.id.as_uuid())
        .bind::<SqlUuid, _>(withdrawal.user_id.as_uuid())
        .bind::<Text, _>(withdrawal.amount.currency().code())
        .bind::<BigInt, _>(withdrawal.amount.amount_minor())
        .bind::<Text, _>(withdrawal.destination.clone())
        .bind::<SqlUuid, _>(withdrawal.transaction_id.as_uuid())
        .bind::<Timestamptz, _>(withdrawal.created_at);
        self.defer(statement, Expect::Any)
    }

    async fn find_withdrawal(&mut self, id: WithdrawalId) -> StoreResult<Option<Withdrawal>> {
        let statement =
            Read::new("SELECT id, user_id, currency, amount, destination, transaction_id, created_at FROM withdrawals WHERE id = $1")
                .bind::<SqlUuid, _>(id.as_uuid());
        let Some(row) = self.read_first::<WithdrawalRow>(statement).await? else {
            return Ok(None);
        };
        row.into_withdrawal().map(Some)
    }

    async fn list_user_withdrawals(&mut self, user: UserId, page: &PageRequest) -> StoreResult<Page<Withdrawal>> {
        let (at, id) = position_after(page);
        let statement = Read::new(
            "SELECT id, user_id, currency, amount, destination, transaction_id, created_at FROM withdrawals \
             WHERE user_id = $1 AND (created_at, id) < ($2, $3) ORDER BY created_at DESC, id DESC LIMIT $4",
        )
        .bind::<SqlUuid, _>(user.as_uuid())
        .bind::<Timestamptz, _>(at)
        .bind::<SqlUuid, _>(id)
        .bind::<BigInt, _>(limit_plus_one(page.limit));
        let rows = self.read::<WithdrawalRow>(statement).await?;
        let withdrawals = rows
            .into_iter()
            .map(WithdrawalRow::into_withdrawal)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_rows(withdrawals, page.limit, |w| Cursor::Position {
            at: w.created_at,
            id: w.id.as_uuid(),
        }))
    }
}

impl WithdrawalRow {
    fn into_withdrawal(self) -> StoreResult<Withdrawal> {
        Ok(Withdrawal {
            id: WithdrawalId::from_uuid(self.id),
            user_id: UserId::from_uuid(self.user_id),
            amount: money(self.amount, &self.currency)?,
            destination: self.destination,
            transaction_id: TransactionId::from_uuid(self.transaction_id),
            created_at: self.created_at,
        })
    }
}
