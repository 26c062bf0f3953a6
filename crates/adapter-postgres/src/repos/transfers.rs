//! Person-to-person transfers and withdrawals: the business records next to their journal
//! transactions.

use application::pagination::{Cursor, Page, PageRequest};
use application::ports::store::{StoreResult, TransferFilter, TransferRepository, WithdrawalFilter};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use domain::ids::{HoldId, TransactionId, TransferId, UserId, WithdrawalId};
use domain::wallet::Transfer;
use domain::withdrawal::{Settlement, Withdrawal, WithdrawalRecord, WithdrawalStatus};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::mapping::{corrupt, limit_plus_one, money, position_after, provider, word};
use crate::schema::{transfers, withdrawals};
use crate::sql::{Read, Write};
use crate::tx::{DomainRow, Expect, PgTx};

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

impl DomainRow for TransferRow {
    type Domain = Transfer;

    fn into_domain(self) -> StoreResult<Transfer> {
        Ok(Transfer {
            id: TransferId::from_uuid(self.id),
            from_user_id: UserId::from_uuid(self.from_user_id),
            to_user_id: UserId::from_uuid(self.to_user_id),
            amount: money(self.amount, &self.currency)?,
            transaction_id: TransactionId::from_uuid(self.transaction_id),
            note: self.note,
            created_at: self.created_at,
        })
    }
}

/// Every column of a withdrawal, in `WithdrawalRow`'s order.
macro_rules! withdrawal_columns {
    () => {
        "id, user_id, currency, amount, destination, transaction_id, created_at, status, hold_id, decided_by, decided_at, \
         reason, settlement, provider, provider_reference, failure_reason, settled_by, updated_at"
    };
}

#[derive(QueryableByName)]
#[diesel(table_name = withdrawals, check_for_backend(diesel::pg::Pg))]
struct WithdrawalRow {
    id: Uuid,
    user_id: Uuid,
    currency: String,
    amount: i64,
    destination: String,
    transaction_id: Option<Uuid>,
    created_at: OffsetDateTime,
    status: String,
    hold_id: Option<Uuid>,
    decided_by: Option<Uuid>,
    decided_at: Option<OffsetDateTime>,
    reason: Option<String>,
    settlement: Option<String>,
    provider: Option<String>,
    provider_reference: Option<String>,
    failure_reason: Option<String>,
    settled_by: Option<Uuid>,
    updated_at: OffsetDateTime,
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

    async fn list_transfers(&mut self, filter: TransferFilter, page: &PageRequest) -> StoreResult<Page<Transfer>> {
        let (at, id) = position_after(page);
        let statement = Read::new(
            "SELECT id, from_user_id, to_user_id, currency, amount, transaction_id, note, created_at FROM transfers \
             WHERE (created_at, id) < ($1, $2) AND ($4::uuid IS NULL OR from_user_id = $4 OR to_user_id = $4) \
               AND ($5::text IS NULL OR currency = $5::currency_code) \
               AND ($6::timestamptz IS NULL OR created_at >= $6) AND ($7::timestamptz IS NULL OR created_at < $7) \
             ORDER BY created_at DESC, id DESC LIMIT $3",
        )
        .bind::<Timestamptz, _>(at)
        .bind::<SqlUuid, _>(id)
        .bind::<BigInt, _>(limit_plus_one(page.limit))
        .bind::<Nullable<SqlUuid>, _>(filter.user.map(|user| user.as_uuid()))
        .bind::<Nullable<Text>, _>(filter.currency.map(|c| c.code()))
        .bind::<Nullable<Timestamptz>, _>(filter.created.from)
        .bind::<Nullable<Timestamptz>, _>(filter.created.to);
        let transfers = self.select::<TransferRow>(statement).await?;
        Ok(Page::from_rows(transfers, page.limit, |t| Cursor::Position {
            at: t.created_at,
            id: t.id.as_uuid(),
        }))
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
        let statement = Write::new(concat!(
            "INSERT INTO withdrawals (",
            withdrawal_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
        ))
        .bind::<SqlUuid, _>(withdrawal.id().as_uuid())
        .bind::<SqlUuid, _>(withdrawal.user_id().as_uuid())
        .bind::<Text, _>(withdrawal.amount().currency().code())
        .bind::<BigInt, _>(withdrawal.amount().amount_minor())
        .bind::<Text, _>(withdrawal.destination().to_owned())
        .bind::<Nullable<SqlUuid>, _>(withdrawal.transaction_id().map(|id| id.as_uuid()))
        .bind::<Timestamptz, _>(withdrawal.created_at())
        .bind::<Text, _>(withdrawal.status().as_str())
        .bind::<Nullable<SqlUuid>, _>(withdrawal.hold_id().map(|id| id.as_uuid()))
        .bind::<Nullable<SqlUuid>, _>(withdrawal.decided_by().map(|id| id.as_uuid()))
        .bind::<Nullable<Timestamptz>, _>(withdrawal.decided_at())
        .bind::<Nullable<Text>, _>(withdrawal.reason().map(str::to_owned))
        .bind::<Nullable<Text>, _>(withdrawal.settlement().map(|s| s.kind()))
        .bind::<Nullable<Text>, _>(
            withdrawal
                .settlement()
                .and_then(Settlement::provider)
                .map(|p| p.as_str().to_owned()),
        )
        .bind::<Nullable<Text>, _>(withdrawal.provider_reference().map(str::to_owned))
        .bind::<Nullable<Text>, _>(withdrawal.failure_reason().map(str::to_owned))
        .bind::<Nullable<SqlUuid>, _>(withdrawal.settled_by().map(|id| id.as_uuid()))
        .bind::<Timestamptz, _>(withdrawal.updated_at());
        self.defer(statement, Expect::Any)
    }

    async fn find_withdrawal(&mut self, id: WithdrawalId) -> StoreResult<Option<Withdrawal>> {
        let statement =
            Read::new(concat!("SELECT ", withdrawal_columns!(), " FROM withdrawals WHERE id = $1")).bind::<SqlUuid, _>(id.as_uuid());
        self.select_first::<WithdrawalRow>(statement).await
    }

    async fn lock_withdrawal(&mut self, id: WithdrawalId) -> StoreResult<Option<Withdrawal>> {
        let statement = Read::new(concat!(
            "SELECT ",
            withdrawal_columns!(),
            " FROM withdrawals WHERE id = $1 FOR NO KEY UPDATE"
        ))
        .bind::<SqlUuid, _>(id.as_uuid());
        self.select_first::<WithdrawalRow>(statement).await
    }

    async fn update_withdrawal(&mut self, withdrawal: &Withdrawal) -> StoreResult<()> {
        let statement = Write::new(
            "UPDATE withdrawals SET status = $2, transaction_id = $3, decided_by = $4, decided_at = $5, reason = $6, \
             settlement = $7, provider = $8, provider_reference = $9, failure_reason = $10, settled_by = $11, updated_at = $12 \
             WHERE id = $1",
        )
        .bind::<SqlUuid, _>(withdrawal.id().as_uuid())
        .bind::<Text, _>(withdrawal.status().as_str())
        .bind::<Nullable<SqlUuid>, _>(withdrawal.transaction_id().map(|id| id.as_uuid()))
        .bind::<Nullable<SqlUuid>, _>(withdrawal.decided_by().map(|id| id.as_uuid()))
        .bind::<Nullable<Timestamptz>, _>(withdrawal.decided_at())
        .bind::<Nullable<Text>, _>(withdrawal.reason().map(str::to_owned))
        .bind::<Nullable<Text>, _>(withdrawal.settlement().map(|s| s.kind()))
        .bind::<Nullable<Text>, _>(
            withdrawal
                .settlement()
                .and_then(Settlement::provider)
                .map(|p| p.as_str().to_owned()),
        )
        .bind::<Nullable<Text>, _>(withdrawal.provider_reference().map(str::to_owned))
        .bind::<Nullable<Text>, _>(withdrawal.failure_reason().map(str::to_owned))
        .bind::<Nullable<SqlUuid>, _>(withdrawal.settled_by().map(|id| id.as_uuid()))
        .bind::<Timestamptz, _>(withdrawal.updated_at());
        self.defer(statement, Expect::Rows(1, "withdrawal"))
    }

    async fn list_user_withdrawals(&mut self, user: UserId, page: &PageRequest) -> StoreResult<Page<Withdrawal>> {
        let (at, id) = position_after(page);
        let statement = Read::new(concat!(
            "SELECT ",
            withdrawal_columns!(),
            " FROM withdrawals WHERE user_id = $1 AND (created_at, id) < ($2, $3) ORDER BY created_at DESC, id DESC LIMIT $4"
        ))
        .bind::<SqlUuid, _>(user.as_uuid())
        .bind::<Timestamptz, _>(at)
        .bind::<SqlUuid, _>(id)
        .bind::<BigInt, _>(limit_plus_one(page.limit));
        let withdrawals = self.select::<WithdrawalRow>(statement).await?;
        Ok(page_of(withdrawals, page))
    }

    async fn list_withdrawals(&mut self, filter: WithdrawalFilter, page: &PageRequest) -> StoreResult<Page<Withdrawal>> {
        let (at, id) = position_after(page);
        let statement = Read::new(concat!(
            "SELECT ",
            withdrawal_columns!(),
            " FROM withdrawals WHERE ($1::text IS NULL OR status = $1) AND (created_at, id) < ($2, $3) \
               AND ($5::uuid IS NULL OR user_id = $5) AND ($6::text IS NULL OR currency = $6::currency_code) \
               AND ($7::timestamptz IS NULL OR created_at >= $7) AND ($8::timestamptz IS NULL OR created_at < $8) \
             ORDER BY created_at DESC, id DESC LIMIT $4"
        ))
        .bind::<Nullable<Text>, _>(filter.status.map(WithdrawalStatus::as_str))
        .bind::<Timestamptz, _>(at)
        .bind::<SqlUuid, _>(id)
        .bind::<BigInt, _>(limit_plus_one(page.limit))
        .bind::<Nullable<SqlUuid>, _>(filter.user.map(|user| user.as_uuid()))
        .bind::<Nullable<Text>, _>(filter.currency.map(|c| c.code()))
        .bind::<Nullable<Timestamptz>, _>(filter.created.from)
        .bind::<Nullable<Timestamptz>, _>(filter.created.to);
        let withdrawals = self.select::<WithdrawalRow>(statement).await?;
        Ok(page_of(withdrawals, page))
    }
}

fn page_of(withdrawals: Vec<Withdrawal>, page: &PageRequest) -> Page<Withdrawal> {
    Page::from_rows(withdrawals, page.limit, |w| Cursor::Position {
        at: w.created_at(),
        id: w.id().as_uuid(),
    })
}

impl DomainRow for WithdrawalRow {
    type Domain = Withdrawal;

    fn into_domain(self) -> StoreResult<Withdrawal> {
        let settlement = match (self.settlement.as_deref(), self.provider.as_deref()) {
            (None, _) => None,
            (Some("manual"), _) => Some(Settlement::Manual),
            (Some("payout"), Some(name)) => Some(Settlement::Payout(provider(name)?)),
            (Some(other), _) => return Err(corrupt(format!("withdrawal settlement `{other}`"))),
        };
        Ok(Withdrawal::restore(WithdrawalRecord {
            id: WithdrawalId::from_uuid(self.id),
            user_id: UserId::from_uuid(self.user_id),
            amount: money(self.amount, &self.currency)?,
            destination: self.destination,
            status: word("withdrawal status", &self.status, WithdrawalStatus::parse)?,
            hold_id: self.hold_id.map(HoldId::from_uuid),
            decided_by: self.decided_by.map(UserId::from_uuid),
            decided_at: self.decided_at,
            reason: self.reason,
            settlement,
            provider_reference: self.provider_reference,
            failure_reason: self.failure_reason,
            settled_by: self.settled_by.map(UserId::from_uuid),
            transaction_id: self.transaction_id.map(TransactionId::from_uuid),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }))
    }
}
