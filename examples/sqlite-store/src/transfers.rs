//! Person-to-person transfers, and withdrawals with their lifecycle: the business records beside
//! the journal transactions that moved the money.
//!
//! `transaction_id` names a journal transaction without a foreign key, as in the PostgreSQL
//! store: the port records a transfer or withdrawal on its own, and the use cases write both in
//! one transaction. A withdrawal's CHECK rules say which fields each status has.

use application::pagination::{Cursor, Page, PageRequest};
use application::ports::store::{StoreResult, TransferFilter, TransferRepository, WithdrawalFilter};
use domain::ids::{HoldId, TransactionId, TransferId, UserId, WithdrawalId};
use domain::wallet::Transfer;
use domain::withdrawal::{Settlement, Withdrawal, WithdrawalRecord, WithdrawalStatus};
use rusqlite::{Row, params};

use crate::SqliteTx;
use crate::codec;

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS transfers (
    id             TEXT PRIMARY KEY,
    from_user_id   TEXT NOT NULL REFERENCES users (id),
    to_user_id     TEXT NOT NULL REFERENCES users (id),
    currency       TEXT NOT NULL CHECK (currency GLOB '[A-Z][A-Z][A-Z]'),
    amount         INTEGER NOT NULL CHECK (amount > 0),
    transaction_id TEXT NOT NULL,
    note           TEXT NOT NULL,
    created_at     INTEGER NOT NULL
) STRICT;

-- The admins' list, and a user's transfers as sender or recipient from one index per side.
CREATE INDEX IF NOT EXISTS transfers_newest ON transfers (created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS transfers_by_sender ON transfers (from_user_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS transfers_by_recipient ON transfers (to_user_id, created_at DESC, id DESC);

CREATE TABLE IF NOT EXISTS withdrawals (
    id                 TEXT PRIMARY KEY,
    user_id            TEXT NOT NULL REFERENCES users (id),
    currency           TEXT NOT NULL CHECK (currency GLOB '[A-Z][A-Z][A-Z]'),
    amount             INTEGER NOT NULL CHECK (amount > 0),
    destination        TEXT NOT NULL,
    -- The journal transaction, once paid.
    transaction_id     TEXT,
    created_at         INTEGER NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('requested', 'approved', 'paid', 'failed', 'rejected')),
    -- The hold that keeps the amount while the withdrawal is in flight (none for those paid at once).
    hold_id            TEXT REFERENCES holds (id),
    decided_by         TEXT REFERENCES users (id),
    decided_at         INTEGER,
    reason             TEXT,
    settlement         TEXT CHECK (settlement IN ('payout', 'manual')),
    provider           TEXT,
    provider_reference TEXT,
    failure_reason     TEXT,
    settled_by         TEXT REFERENCES users (id),
    updated_at         INTEGER NOT NULL,
    CONSTRAINT withdrawals_paid_posted CHECK (status <> 'paid' OR transaction_id IS NOT NULL),
    CONSTRAINT withdrawals_unpaid_unposted CHECK (status = 'paid' OR transaction_id IS NULL),
    CONSTRAINT withdrawals_in_flight_held CHECK (status NOT IN ('requested', 'approved') OR hold_id IS NOT NULL),
    CONSTRAINT withdrawals_approved_settled CHECK (status <> 'approved' OR settlement IS NOT NULL),
    CONSTRAINT withdrawals_payout_provider CHECK ((settlement = 'payout') = (provider IS NOT NULL)),
    CONSTRAINT withdrawals_rejected_decided CHECK (status <> 'rejected' OR (decided_by IS NOT NULL AND reason IS NOT NULL)),
    CONSTRAINT withdrawals_failed_reason CHECK (status <> 'failed' OR failure_reason IS NOT NULL)
) STRICT;

-- One withdrawal per hold; also how the hold-expiry job skips the holds of withdrawals in flight.
CREATE UNIQUE INDEX IF NOT EXISTS withdrawals_hold ON withdrawals (hold_id) WHERE hold_id IS NOT NULL;
-- A user's own list, and the admins' desk: all, or one status, newest first.
CREATE INDEX IF NOT EXISTS withdrawals_by_user ON withdrawals (user_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS withdrawals_newest ON withdrawals (created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS withdrawals_by_status ON withdrawals (status, created_at DESC, id DESC);
";

/// Every column of a transfer, in the order `transfer_from_row` reads them.
macro_rules! transfer_columns {
    () => {
        "id, from_user_id, to_user_id, currency, amount, transaction_id, note, created_at"
    };
}

fn transfer_from_row(row: &Row<'_>) -> StoreResult<Transfer> {
    let currency: String = codec::get(row, 3)?;
    Ok(Transfer {
        id: TransferId::from_uuid(codec::uuid(row, 0)?),
        from_user_id: UserId::from_uuid(codec::uuid(row, 1)?),
        to_user_id: UserId::from_uuid(codec::uuid(row, 2)?),
        amount: codec::money(codec::get(row, 4)?, &currency)?,
        transaction_id: TransactionId::from_uuid(codec::uuid(row, 5)?),
        note: codec::get(row, 6)?,
        created_at: codec::instant(row, 7)?,
    })
}

/// Every column of a withdrawal, in the order `withdrawal_from_row` reads them.
macro_rules! withdrawal_columns {
    () => {
        "id, user_id, currency, amount, destination, transaction_id, created_at, status, hold_id, decided_by, decided_at, \
         reason, settlement, provider, provider_reference, failure_reason, settled_by, updated_at"
    };
}

fn withdrawal_from_row(row: &Row<'_>) -> StoreResult<Withdrawal> {
    let id = codec::uuid(row, 0)?;
    let currency: String = codec::get(row, 2)?;
    let status: String = codec::get(row, 7)?;
    let settlement: Option<String> = codec::get(row, 12)?;
    let provider: Option<String> = codec::get(row, 13)?;
    let settlement = match (settlement.as_deref(), provider.as_deref()) {
        (None, None) => None,
        (Some("manual"), None) => Some(Settlement::Manual),
        (Some("payout"), Some(name)) => Some(Settlement::Payout(codec::provider(name)?)),
        (settlement, provider) => {
            return Err(codec::corrupt(format!(
                "withdrawal {id} has settlement {settlement:?} with provider {provider:?}"
            )));
        }
    };
    Ok(Withdrawal::restore(WithdrawalRecord {
        id: WithdrawalId::from_uuid(id),
        user_id: UserId::from_uuid(codec::uuid(row, 1)?),
        amount: codec::money(codec::get(row, 3)?, &currency)?,
        destination: codec::get(row, 4)?,
        status: codec::word("withdrawal status", &status, WithdrawalStatus::parse)?,
        hold_id: codec::uuid_opt(row, 8)?.map(HoldId::from_uuid),
        decided_by: codec::uuid_opt(row, 9)?.map(UserId::from_uuid),
        decided_at: codec::instant_opt(row, 10)?,
        reason: codec::get(row, 11)?,
        settlement,
        provider_reference: codec::get(row, 14)?,
        failure_reason: codec::get(row, 15)?,
        settled_by: codec::uuid_opt(row, 16)?.map(UserId::from_uuid),
        transaction_id: codec::uuid_opt(row, 5)?.map(TransactionId::from_uuid),
        created_at: codec::instant(row, 6)?,
        updated_at: codec::instant(row, 17)?,
    }))
}

fn withdrawal_page(withdrawals: Vec<Withdrawal>, page: &PageRequest) -> Page<Withdrawal> {
    Page::from_rows(withdrawals, page.limit, |withdrawal| Cursor::Position {
        at: withdrawal.created_at(),
        id: withdrawal.id().as_uuid(),
    })
}

fn optional_id(id: Option<uuid::Uuid>) -> Option<String> {
    id.map(codec::id_text)
}

impl TransferRepository for SqliteTx {
    async fn insert_transfer(&mut self, transfer: &Transfer) -> StoreResult<()> {
        self.execute(
            concat!(
                "INSERT INTO transfers (",
                transfer_columns!(),
                ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
            ),
            params![
                codec::id_text(transfer.id.as_uuid()),
                codec::id_text(transfer.from_user_id.as_uuid()),
                codec::id_text(transfer.to_user_id.as_uuid()),
                transfer.amount.currency().code(),
                transfer.amount.amount_minor(),
                codec::id_text(transfer.transaction_id.as_uuid()),
                transfer.note,
                codec::nanos(transfer.created_at),
            ],
        )?;
        Ok(())
    }

    async fn find_transfer(&mut self, id: TransferId) -> StoreResult<Option<Transfer>> {
        self.query_opt(
            concat!("SELECT ", transfer_columns!(), " FROM transfers WHERE id = ?1"),
            params![codec::id_text(id.as_uuid())],
            transfer_from_row,
        )
    }

    async fn list_transfers(&mut self, filter: TransferFilter, page: &PageRequest) -> StoreResult<Page<Transfer>> {
        let (at, id) = codec::position_after(page);
        let transfers = self.query(
            concat!(
                "SELECT ",
                transfer_columns!(),
                " FROM transfers WHERE (created_at, id) < (?1, ?2) AND (?4 IS NULL OR from_user_id = ?4 OR to_user_id = ?4) \
                   AND (?5 IS NULL OR currency = ?5) \
                   AND (?6 IS NULL OR created_at >= ?6) AND (?7 IS NULL OR created_at < ?7) \
                 ORDER BY created_at DESC, id DESC LIMIT ?3"
            ),
            params![
                at,
                id,
                codec::limit_plus_one(page.limit),
                filter.user.map(|user| codec::id_text(user.as_uuid())),
                filter.currency.map(|currency| currency.code()),
                codec::nanos_opt(filter.created.from),
                codec::nanos_opt(filter.created.to),
            ],
            transfer_from_row,
        )?;
        Ok(Page::from_rows(transfers, page.limit, |transfer| Cursor::Position {
            at: transfer.created_at,
            id: transfer.id.as_uuid(),
        }))
    }

    async fn insert_withdrawal(&mut self, withdrawal: &Withdrawal) -> StoreResult<()> {
        let w = withdrawal.record();
        self.execute(
            concat!(
                "INSERT INTO withdrawals (",
                withdrawal_columns!(),
                ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)"
            ),
            params![
                codec::id_text(w.id.as_uuid()),
                codec::id_text(w.user_id.as_uuid()),
                w.amount.currency().code(),
                w.amount.amount_minor(),
                w.destination,
                optional_id(w.transaction_id.map(|id| id.as_uuid())),
                codec::nanos(w.created_at),
                w.status.as_str(),
                optional_id(w.hold_id.map(|id| id.as_uuid())),
                optional_id(w.decided_by.map(|id| id.as_uuid())),
                codec::nanos_opt(w.decided_at),
                w.reason,
                w.settlement.as_ref().map(Settlement::kind),
                w.settlement
                    .as_ref()
                    .and_then(Settlement::provider)
                    .map(|provider| provider.as_str()),
                w.provider_reference,
                w.failure_reason,
                optional_id(w.settled_by.map(|id| id.as_uuid())),
                codec::nanos(w.updated_at),
            ],
        )?;
        Ok(())
    }

    async fn find_withdrawal(&mut self, id: WithdrawalId) -> StoreResult<Option<Withdrawal>> {
        self.query_opt(
            concat!("SELECT ", withdrawal_columns!(), " FROM withdrawals WHERE id = ?1"),
            params![codec::id_text(id.as_uuid())],
            withdrawal_from_row,
        )
    }

    async fn lock_withdrawal(&mut self, id: WithdrawalId) -> StoreResult<Option<Withdrawal>> {
        // The transaction holds the only connection: reading is locking.
        self.find_withdrawal(id).await
    }

    /// Writes what a transition changes; who withdraws what, to where, against which hold, never
    /// changes.
    async fn update_withdrawal(&mut self, withdrawal: &Withdrawal) -> StoreResult<()> {
        let w = withdrawal.record();
        self.execute_one(
            "UPDATE withdrawals SET status = ?2, transaction_id = ?3, decided_by = ?4, decided_at = ?5, reason = ?6, \
                 settlement = ?7, provider = ?8, provider_reference = ?9, failure_reason = ?10, settled_by = ?11, updated_at = ?12 \
             WHERE id = ?1",
            params![
                codec::id_text(w.id.as_uuid()),
                w.status.as_str(),
                optional_id(w.transaction_id.map(|id| id.as_uuid())),
                optional_id(w.decided_by.map(|id| id.as_uuid())),
                codec::nanos_opt(w.decided_at),
                w.reason,
                w.settlement.as_ref().map(Settlement::kind),
                w.settlement
                    .as_ref()
                    .and_then(Settlement::provider)
                    .map(|provider| provider.as_str()),
                w.provider_reference,
                w.failure_reason,
                optional_id(w.settled_by.map(|id| id.as_uuid())),
                codec::nanos(w.updated_at),
            ],
            "withdrawal",
        )
    }

    async fn list_user_withdrawals(&mut self, user: UserId, page: &PageRequest) -> StoreResult<Page<Withdrawal>> {
        let (at, id) = codec::position_after(page);
        let withdrawals = self.query(
            concat!(
                "SELECT ",
                withdrawal_columns!(),
                " FROM withdrawals WHERE user_id = ?1 AND (created_at, id) < (?2, ?3) ORDER BY created_at DESC, id DESC LIMIT ?4"
            ),
            params![codec::id_text(user.as_uuid()), at, id, codec::limit_plus_one(page.limit)],
            withdrawal_from_row,
        )?;
        Ok(withdrawal_page(withdrawals, page))
    }

    async fn list_withdrawals(&mut self, filter: WithdrawalFilter, page: &PageRequest) -> StoreResult<Page<Withdrawal>> {
        let (at, id) = codec::position_after(page);
        let withdrawals = self.query(
            concat!(
                "SELECT ",
                withdrawal_columns!(),
                " FROM withdrawals WHERE (created_at, id) < (?1, ?2) \
                   AND (?4 IS NULL OR status = ?4) AND (?5 IS NULL OR user_id = ?5) AND (?6 IS NULL OR currency = ?6) \
                   AND (?7 IS NULL OR created_at >= ?7) AND (?8 IS NULL OR created_at < ?8) \
                 ORDER BY created_at DESC, id DESC LIMIT ?3"
            ),
            params![
                at,
                id,
                codec::limit_plus_one(page.limit),
                filter.status.map(WithdrawalStatus::as_str),
                filter.user.map(|user| codec::id_text(user.as_uuid())),
                filter.currency.map(|currency| currency.code()),
                codec::nanos_opt(filter.created.from),
                codec::nanos_opt(filter.created.to),
            ],
            withdrawal_from_row,
        )?;
        Ok(withdrawal_page(withdrawals, page))
    }
}
