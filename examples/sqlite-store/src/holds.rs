//! Holds: funds reserved on user wallets, pending until captured, released or expired.
//!
//! A hold is in its wallet's currency (the `(wallet_id, currency)` foreign key), and what it still
//! reserves is `amount - captured`, which the wallet's cached `held` sums over its pending holds;
//! use cases change both in one transaction. `lock_hold` is a plain read: the transaction holds
//! the store's only connection.

use application::ports::store::{HoldRepository, StoreResult};
use domain::ids::{HoldId, OrderId, UserId, WalletId};
use domain::wallet::{Hold, HoldStatus};
use rusqlite::{Row, params};
use time::OffsetDateTime;

use crate::SqliteTx;
use crate::codec;

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS holds (
    id         TEXT PRIMARY KEY,
    wallet_id  TEXT NOT NULL,
    currency   TEXT NOT NULL CHECK (length(currency) = 3 AND currency GLOB '[A-Z][A-Z][A-Z]'),
    amount     INTEGER NOT NULL CHECK (amount > 0),
    captured   INTEGER NOT NULL DEFAULT 0,
    status     TEXT NOT NULL CHECK (status IN ('pending', 'captured', 'released', 'expired')),
    reference  TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    settled_at INTEGER,
    -- The merchant a customer lets capture the hold; none for a call's hold.
    payee_id   TEXT REFERENCES users (id),
    -- The manual-capture order whose part the hold keeps.
    order_id   TEXT REFERENCES orders (id),
    CONSTRAINT holds_wallet FOREIGN KEY (wallet_id, currency) REFERENCES wallets (id, currency),
    CONSTRAINT holds_captured_within_amount CHECK (captured >= 0 AND captured <= amount)
) STRICT;
CREATE INDEX IF NOT EXISTS holds_pending_by_wallet ON holds (wallet_id) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS holds_pending_by_expiry ON holds (expires_at) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS holds_by_order ON holds (order_id) WHERE order_id IS NOT NULL;
";

/// The columns `hold` reads, in its order.
const COLUMNS: &str =
    "id, wallet_id, currency, amount, captured, status, reference, created_at, expires_at, settled_at, payee_id, order_id";

fn hold(row: &Row<'_>) -> StoreResult<Hold> {
    let currency: String = codec::get(row, 2)?;
    let status: String = codec::get(row, 5)?;
    Ok(Hold {
        id: HoldId::from_uuid(codec::uuid(row, 0)?),
        wallet_id: WalletId::from_uuid(codec::uuid(row, 1)?),
        amount: codec::money(codec::get(row, 3)?, &currency)?,
        captured: codec::money(codec::get(row, 4)?, &currency)?,
        status: codec::word("hold status", &status, HoldStatus::parse)?,
        reference: codec::get(row, 6)?,
        created_at: codec::instant(row, 7)?,
        expires_at: codec::instant(row, 8)?,
        settled_at: codec::instant_opt(row, 9)?,
        payee: codec::uuid_opt(row, 10)?.map(UserId::from_uuid),
        order_id: codec::uuid_opt(row, 11)?.map(OrderId::from_uuid),
    })
}

impl SqliteTx {
    fn hold_by_id(&mut self, id: HoldId) -> StoreResult<Option<Hold>> {
        self.query_opt(
            &format!("SELECT {COLUMNS} FROM holds WHERE id = ?1"),
            params![codec::id_text(id.as_uuid())],
            hold,
        )
    }
}

impl HoldRepository for SqliteTx {
    async fn insert_hold(&mut self, hold: &Hold) -> StoreResult<()> {
        self.execute(
            &format!("INSERT INTO holds ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"),
            params![
                codec::id_text(hold.id.as_uuid()),
                codec::id_text(hold.wallet_id.as_uuid()),
                hold.amount.currency().code(),
                hold.amount.amount_minor(),
                hold.captured.amount_minor(),
                hold.status.as_str(),
                hold.reference,
                codec::nanos(hold.created_at),
                codec::nanos(hold.expires_at),
                codec::nanos_opt(hold.settled_at),
                hold.payee.map(|payee| codec::id_text(payee.as_uuid())),
                hold.order_id.map(|order| codec::id_text(order.as_uuid())),
            ],
        )?;
        Ok(())
    }

    async fn find_hold(&mut self, id: HoldId) -> StoreResult<Option<Hold>> {
        self.hold_by_id(id)
    }

    async fn lock_hold(&mut self, id: HoldId) -> StoreResult<Option<Hold>> {
        self.hold_by_id(id)
    }

    /// Writes what extending or settling changes: the amount, the captured amount, the status,
    /// the expiry and when it settled.
    async fn update_hold(&mut self, hold: &Hold) -> StoreResult<()> {
        self.execute_one(
            "UPDATE holds SET amount = ?2, captured = ?3, status = ?4, expires_at = ?5, settled_at = ?6 WHERE id = ?1",
            params![
                codec::id_text(hold.id.as_uuid()),
                hold.amount.amount_minor(),
                hold.captured.amount_minor(),
                hold.status.as_str(),
                codec::nanos(hold.expires_at),
                codec::nanos_opt(hold.settled_at),
            ],
            "hold",
        )
    }

    async fn find_expired_holds(&mut self, now: OffsetDateTime, limit: usize) -> StoreResult<Vec<Hold>> {
        self.query(
            &format!(
                "SELECT {COLUMNS} FROM holds h WHERE status = 'pending' AND expires_at <= ?1 \
                   AND NOT EXISTS (SELECT 1 FROM call_sessions c WHERE c.hold_id = h.id AND c.status = 'active') \
                   AND NOT EXISTS (SELECT 1 FROM withdrawals w WHERE w.hold_id = h.id AND w.status IN ('requested', 'approved')) \
                 ORDER BY expires_at, id LIMIT ?2"
            ),
            params![codec::nanos(now), codec::limit(limit)],
            hold,
        )
    }

    async fn find_order_holds(&mut self, order_id: OrderId) -> StoreResult<Vec<Hold>> {
        self.query(
            &format!("SELECT {COLUMNS} FROM holds WHERE order_id = ?1 ORDER BY id"),
            params![codec::id_text(order_id.as_uuid())],
            hold,
        )
    }
}
