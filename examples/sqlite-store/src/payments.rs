//! Card payments, for an order or a wallet top-up.
//!
//! A gateway event names a payment by our id, the provider's checkout session or the provider's
//! payment id, and each lookup has its index. `lock_payment` and `lock_expired_payments` are plain
//! reads: the transaction holds the only connection, so no other worker can take the same rows
//! (which is all that `SKIP LOCKED` gives the PostgreSQL store).

use application::pagination::{Cursor, Page, PageRequest};
use application::ports::store::{AdminPaymentFilter, PaymentFilter, PaymentLookup, PaymentRepository, StoreResult};
use domain::ids::{OrderId, PaymentId, UserId};
use domain::payment::{Payment, PaymentPurpose, PaymentRecord, PaymentStatus, ProviderName};
use rusqlite::{Row, params};
use time::OffsetDateTime;

use crate::SqliteTx;
use crate::codec;

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS payments (
    id                  TEXT PRIMARY KEY,
    purpose             TEXT NOT NULL CHECK (purpose IN ('order', 'top_up')),
    order_id            TEXT REFERENCES orders (id),
    top_up_user_id      TEXT REFERENCES users (id),
    payer_id            TEXT NOT NULL REFERENCES users (id),
    provider            TEXT NOT NULL,
    currency            TEXT NOT NULL CHECK (currency GLOB '[A-Z][A-Z][A-Z]'),
    amount              INTEGER NOT NULL CHECK (amount > 0),
    status              TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed', 'expired', 'cancelled')),
    provider_session_id TEXT,
    provider_payment_id TEXT,
    checkout_url        TEXT,
    disputed            INTEGER NOT NULL CHECK (disputed IN (0, 1)),
    late_success        INTEGER NOT NULL CHECK (late_success IN (0, 1)),
    created_at          INTEGER NOT NULL,
    expires_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    CONSTRAINT payments_purpose CHECK (
        (purpose = 'order' AND order_id IS NOT NULL AND top_up_user_id IS NULL)
        OR (purpose = 'top_up' AND top_up_user_id IS NOT NULL AND order_id IS NULL))
) STRICT;

-- The latest payment of an order; a webhook's payment by session or by the provider's payment id;
-- the expiry job's pending payments, soonest deadline first; a payer's own and the admins' lists.
CREATE INDEX IF NOT EXISTS payments_by_order ON payments (order_id, created_at DESC, id DESC) WHERE order_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS payments_by_session ON payments (provider, provider_session_id) WHERE provider_session_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS payments_by_provider_payment ON payments (provider, provider_payment_id)
    WHERE provider_payment_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS payments_pending_by_expiry ON payments (expires_at, id) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS payments_by_payer ON payments (payer_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS payments_newest ON payments (created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS payments_by_status ON payments (status, created_at DESC, id DESC);
";

/// Every column of a payment, in the order `payment_from_row` reads them.
macro_rules! payment_columns {
    () => {
        "id, purpose, order_id, top_up_user_id, payer_id, provider, currency, amount, status, provider_session_id, \
         provider_payment_id, checkout_url, disputed, late_success, created_at, expires_at, updated_at"
    };
}

fn payment_from_row(row: &Row<'_>) -> StoreResult<Payment> {
    let id = codec::uuid(row, 0)?;
    let purpose: String = codec::get(row, 1)?;
    let purpose = match (purpose.as_str(), codec::uuid_opt(row, 2)?, codec::uuid_opt(row, 3)?) {
        ("order", Some(order), None) => PaymentPurpose::Order(OrderId::from_uuid(order)),
        ("top_up", None, Some(user)) => PaymentPurpose::TopUp(UserId::from_uuid(user)),
        _ => return Err(codec::corrupt(format!("payment {id} has an inconsistent purpose"))),
    };
    let provider: String = codec::get(row, 5)?;
    let currency: String = codec::get(row, 6)?;
    let status: String = codec::get(row, 8)?;
    Ok(Payment::restore(PaymentRecord {
        id: PaymentId::from_uuid(id),
        purpose,
        payer_id: UserId::from_uuid(codec::uuid(row, 4)?),
        provider: codec::provider(&provider)?,
        amount: codec::money(codec::get(row, 7)?, &currency)?,
        status: codec::word("payment status", &status, PaymentStatus::parse)?,
        provider_session_id: codec::get(row, 9)?,
        provider_payment_id: codec::get(row, 10)?,
        checkout_url: codec::get(row, 11)?,
        disputed: codec::get(row, 12)?,
        late_success: codec::get(row, 13)?,
        created_at: codec::instant(row, 14)?,
        expires_at: codec::instant(row, 15)?,
        updated_at: codec::instant(row, 16)?,
    }))
}

/// The stored `purpose` word a payer's `top_ups` filter stands for.
fn purpose_word(top_ups: Option<bool>) -> Option<&'static str> {
    top_ups.map(|top_ups| if top_ups { "top_up" } else { "order" })
}

fn page_of(payments: Vec<Payment>, page: &PageRequest) -> Page<Payment> {
    Page::from_rows(payments, page.limit, |payment| Cursor::Position {
        at: payment.created_at(),
        id: payment.id().as_uuid(),
    })
}

impl PaymentRepository for SqliteTx {
    async fn insert_payment(&mut self, payment: &Payment) -> StoreResult<()> {
        let (purpose, order_id, top_up_user_id) = match payment.purpose() {
            PaymentPurpose::Order(order) => ("order", Some(codec::id_text(order.as_uuid())), None),
            PaymentPurpose::TopUp(user) => ("top_up", None, Some(codec::id_text(user.as_uuid()))),
        };
        self.execute(
            concat!(
                "INSERT INTO payments (",
                payment_columns!(),
                ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
            ),
            params![
                codec::id_text(payment.id().as_uuid()),
                purpose,
                order_id,
                top_up_user_id,
                codec::id_text(payment.payer_id().as_uuid()),
                payment.provider().as_str(),
                payment.currency().code(),
                payment.amount().amount_minor(),
                payment.status().as_str(),
                payment.provider_session_id(),
                payment.provider_payment_id(),
                payment.checkout_url(),
                payment.disputed(),
                payment.late_success(),
                codec::nanos(payment.created_at()),
                codec::nanos(payment.expires_at()),
                codec::nanos(payment.updated_at()),
            ],
        )?;
        Ok(())
    }

    /// Writes everything a payment's life changes; who pays what, for what, never changes.
    async fn update_payment(&mut self, payment: &Payment) -> StoreResult<()> {
        self.execute_one(
            "UPDATE payments SET status = ?2, provider_session_id = ?3, provider_payment_id = ?4, checkout_url = ?5, \
                 disputed = ?6, late_success = ?7, expires_at = ?8, updated_at = ?9 \
             WHERE id = ?1",
            params![
                codec::id_text(payment.id().as_uuid()),
                payment.status().as_str(),
                payment.provider_session_id(),
                payment.provider_payment_id(),
                payment.checkout_url(),
                payment.disputed(),
                payment.late_success(),
                codec::nanos(payment.expires_at()),
                codec::nanos(payment.updated_at()),
            ],
            "payment",
        )
    }

    async fn find_payment(&mut self, id: PaymentId) -> StoreResult<Option<Payment>> {
        self.query_opt(
            concat!("SELECT ", payment_columns!(), " FROM payments WHERE id = ?1"),
            params![codec::id_text(id.as_uuid())],
            payment_from_row,
        )
    }

    async fn lock_payment(&mut self, provider: &ProviderName, lookup: &PaymentLookup) -> StoreResult<Option<Payment>> {
        // A session or provider payment id is meant to name one payment; should two share it, the
        // lowest id wins, as in the PostgreSQL store.
        let (sql, key) = match lookup {
            PaymentLookup::Ours(id) => (
                concat!("SELECT ", payment_columns!(), " FROM payments WHERE provider = ?1 AND id = ?2"),
                codec::id_text(id.as_uuid()),
            ),
            PaymentLookup::Session(session) => (
                concat!(
                    "SELECT ",
                    payment_columns!(),
                    " FROM payments WHERE provider = ?1 AND provider_session_id = ?2 ORDER BY id LIMIT 1"
                ),
                session.clone(),
            ),
            PaymentLookup::ProviderPayment(payment) => (
                concat!(
                    "SELECT ",
                    payment_columns!(),
                    " FROM payments WHERE provider = ?1 AND provider_payment_id = ?2 ORDER BY id LIMIT 1"
                ),
                payment.clone(),
            ),
        };
        self.query_opt(sql, params![provider.as_str(), key], payment_from_row)
    }

    async fn list_payer_payments(&mut self, payer: UserId, filter: PaymentFilter, page: &PageRequest) -> StoreResult<Page<Payment>> {
        let (at, id) = codec::position_after(page);
        let payments = self.query(
            concat!(
                "SELECT ",
                payment_columns!(),
                " FROM payments WHERE payer_id = ?1 AND (created_at, id) < (?2, ?3) \
                   AND (?5 IS NULL OR status = ?5) AND (?6 IS NULL OR purpose = ?6) \
                 ORDER BY created_at DESC, id DESC LIMIT ?4"
            ),
            params![
                codec::id_text(payer.as_uuid()),
                at,
                id,
                codec::limit_plus_one(page.limit),
                filter.status.map(PaymentStatus::as_str),
                purpose_word(filter.top_ups),
            ],
            payment_from_row,
        )?;
        Ok(page_of(payments, page))
    }

    async fn list_payments(&mut self, filter: &AdminPaymentFilter, page: &PageRequest) -> StoreResult<Page<Payment>> {
        let (at, id) = codec::position_after(page);
        let payments = self.query(
            concat!(
                "SELECT ",
                payment_columns!(),
                " FROM payments WHERE (created_at, id) < (?1, ?2) \
                   AND (?4 IS NULL OR status = ?4) AND (?5 IS NULL OR purpose = ?5) \
                   AND (?6 IS NULL OR payer_id = ?6) AND (?7 IS NULL OR provider = ?7) \
                   AND (?8 IS NULL OR currency = ?8) \
                   AND (?9 IS NULL OR created_at >= ?9) AND (?10 IS NULL OR created_at < ?10) \
                 ORDER BY created_at DESC, id DESC LIMIT ?3"
            ),
            params![
                at,
                id,
                codec::limit_plus_one(page.limit),
                filter.of.status.map(PaymentStatus::as_str),
                purpose_word(filter.of.top_ups),
                filter.payer.map(|payer| codec::id_text(payer.as_uuid())),
                filter.provider.as_ref().map(ProviderName::as_str),
                filter.currency.map(|currency| currency.code()),
                codec::nanos_opt(filter.created.from),
                codec::nanos_opt(filter.created.to),
            ],
            payment_from_row,
        )?;
        Ok(page_of(payments, page))
    }

    async fn find_order_payment(&mut self, order: OrderId) -> StoreResult<Option<Payment>> {
        self.query_opt(
            concat!(
                "SELECT ",
                payment_columns!(),
                " FROM payments WHERE order_id = ?1 ORDER BY created_at DESC, id DESC LIMIT 1"
            ),
            params![codec::id_text(order.as_uuid())],
            payment_from_row,
        )
    }

    async fn lock_expired_payments(&mut self, now: OffsetDateTime, limit: usize) -> StoreResult<Vec<Payment>> {
        self.query(
            concat!(
                "SELECT ",
                payment_columns!(),
                " FROM payments WHERE status = 'pending' AND expires_at <= ?1 ORDER BY expires_at, id LIMIT ?2"
            ),
            params![codec::nanos(now), codec::limit(limit)],
            payment_from_row,
        )
    }
}
