//! Refunds, and buyers' refund requests.
//!
//! A buyer may have one open request per order and merchant. A partial unique index keeps that
//! rule, named as the port names it (`REFUND_REQUESTS_OPEN`), and the insert steps aside from it
//! (`ON CONFLICT ... DO NOTHING`) so that a refused request leaves the transaction usable.

use application::pagination::{Cursor, Page, PageRequest};
use application::ports::store::{AdminRefundFilter, REFUND_REQUESTS_OPEN, RefundRepository, RefundRequestFilter, StoreError, StoreResult};
use domain::ids::{OrderId, PaymentId, RefundId, RefundRequestId, UserId};
use domain::payment::{ProviderName, Refund, RefundRecord, RefundStatus};
use domain::refund_request::{RefundRequest, RefundRequestRecord, RefundRequestStatus};
use rusqlite::{Row, params};

use crate::SqliteTx;
use crate::codec;

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS refunds (
    id                 TEXT PRIMARY KEY,
    order_id           TEXT NOT NULL REFERENCES orders (id),
    payment_id         TEXT REFERENCES payments (id),
    merchant_id        TEXT NOT NULL REFERENCES users (id),
    currency           TEXT NOT NULL CHECK (currency GLOB '[A-Z][A-Z][A-Z]'),
    amount             INTEGER NOT NULL CHECK (amount > 0),
    status             TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    provider_refund_id TEXT,
    reason             TEXT NOT NULL,
    -- Empty for a refund made outside the API (the provider's dashboard).
    requested_by       TEXT REFERENCES users (id),
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
) STRICT;

CREATE INDEX IF NOT EXISTS refunds_by_order ON refunds (order_id, created_at, id);
CREATE INDEX IF NOT EXISTS refunds_by_provider_id ON refunds (provider_refund_id) WHERE provider_refund_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS refunds_by_payment ON refunds (payment_id) WHERE payment_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS refunds_newest ON refunds (created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS refunds_by_merchant ON refunds (merchant_id, created_at DESC, id DESC);

CREATE TABLE IF NOT EXISTS refund_requests (
    id          TEXT PRIMARY KEY,
    order_id    TEXT NOT NULL REFERENCES orders (id),
    buyer_id    TEXT NOT NULL REFERENCES users (id),
    merchant_id TEXT NOT NULL REFERENCES users (id),
    -- Both empty: everything left of the merchant's share when it is approved.
    currency    TEXT CHECK (currency GLOB '[A-Z][A-Z][A-Z]'),
    amount      INTEGER CHECK (amount > 0),
    reason      TEXT NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    status      TEXT NOT NULL
        CONSTRAINT refund_requests_status_check
        CHECK (status IN ('open', 'approved', 'declined', 'withdrawn', 'refund_failed')),
    decided_by  TEXT REFERENCES users (id),
    note        TEXT CHECK (length(note) BETWEEN 1 AND 500),
    refund_id   TEXT REFERENCES refunds (id),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    CHECK ((currency IS NULL) = (amount IS NULL)),
    CONSTRAINT refund_requests_refund_named CHECK ((status IN ('approved', 'refund_failed')) = (refund_id IS NOT NULL)),
    CHECK ((status = 'declined') = (note IS NOT NULL))
) STRICT;

-- At most one open request per order and merchant.
CREATE UNIQUE INDEX IF NOT EXISTS refund_requests_open ON refund_requests (order_id, merchant_id) WHERE status = 'open';
CREATE INDEX IF NOT EXISTS refund_requests_by_merchant ON refund_requests (merchant_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS refund_requests_by_buyer ON refund_requests (buyer_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS refund_requests_by_order ON refund_requests (order_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS refund_requests_newest ON refund_requests (created_at DESC, id DESC);
";

/// Every column of a refund, in the order `refund_from_row` reads them.
macro_rules! refund_columns {
    () => {
        "id, order_id, payment_id, merchant_id, currency, amount, status, provider_refund_id, reason, requested_by, created_at, updated_at"
    };
}

fn refund_from_row(row: &Row<'_>) -> StoreResult<Refund> {
    let currency: String = codec::get(row, 4)?;
    let status: String = codec::get(row, 6)?;
    Ok(Refund::restore(RefundRecord {
        id: RefundId::from_uuid(codec::uuid(row, 0)?),
        order_id: OrderId::from_uuid(codec::uuid(row, 1)?),
        payment_id: codec::uuid_opt(row, 2)?.map(PaymentId::from_uuid),
        merchant_id: UserId::from_uuid(codec::uuid(row, 3)?),
        amount: codec::money(codec::get(row, 5)?, &currency)?,
        status: codec::word("refund status", &status, RefundStatus::parse)?,
        provider_refund_id: codec::get(row, 7)?,
        reason: codec::get(row, 8)?,
        requested_by: codec::uuid_opt(row, 9)?.map(UserId::from_uuid),
        created_at: codec::instant(row, 10)?,
        updated_at: codec::instant(row, 11)?,
    }))
}

/// Every column of a refund request, in the order `refund_request_from_row` reads them.
macro_rules! refund_request_columns {
    () => {
        "id, order_id, buyer_id, merchant_id, currency, amount, reason, status, decided_by, note, refund_id, created_at, updated_at"
    };
}

fn refund_request_from_row(row: &Row<'_>) -> StoreResult<RefundRequest> {
    let id = codec::uuid(row, 0)?;
    let amount = match (codec::get::<Option<String>>(row, 4)?, codec::get::<Option<i64>>(row, 5)?) {
        (Some(code), Some(minor)) => Some(codec::money(minor, &code)?),
        (None, None) => None,
        _ => return Err(codec::corrupt(format!("refund request {id} has half an amount"))),
    };
    let status: String = codec::get(row, 7)?;
    Ok(RefundRequest::restore(RefundRequestRecord {
        id: RefundRequestId::from_uuid(id),
        order_id: OrderId::from_uuid(codec::uuid(row, 1)?),
        buyer_id: UserId::from_uuid(codec::uuid(row, 2)?),
        merchant_id: UserId::from_uuid(codec::uuid(row, 3)?),
        amount,
        reason: codec::get(row, 6)?,
        status: codec::word("refund request status", &status, RefundRequestStatus::parse)?,
        decided_by: codec::uuid_opt(row, 8)?.map(UserId::from_uuid),
        note: codec::get(row, 9)?,
        refund_id: codec::uuid_opt(row, 10)?.map(RefundId::from_uuid),
        created_at: codec::instant(row, 11)?,
        updated_at: codec::instant(row, 12)?,
    }))
}

impl RefundRepository for SqliteTx {
    async fn insert_refund(&mut self, refund: &Refund) -> StoreResult<()> {
        self.execute(
            concat!(
                "INSERT INTO refunds (",
                refund_columns!(),
                ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
            ),
            params![
                codec::id_text(refund.id().as_uuid()),
                codec::id_text(refund.order_id().as_uuid()),
                refund.payment_id().map(|id| codec::id_text(id.as_uuid())),
                codec::id_text(refund.merchant_id().as_uuid()),
                refund.amount().currency().code(),
                refund.amount().amount_minor(),
                refund.status().as_str(),
                refund.provider_refund_id(),
                refund.reason(),
                refund.requested_by().map(|id| codec::id_text(id.as_uuid())),
                codec::nanos(refund.created_at()),
                codec::nanos(refund.updated_at()),
            ],
        )?;
        Ok(())
    }

    /// Writes what settling a refund changes.
    async fn update_refund(&mut self, refund: &Refund) -> StoreResult<()> {
        self.execute_one(
            "UPDATE refunds SET payment_id = ?2, status = ?3, provider_refund_id = ?4, updated_at = ?5 WHERE id = ?1",
            params![
                codec::id_text(refund.id().as_uuid()),
                refund.payment_id().map(|id| codec::id_text(id.as_uuid())),
                refund.status().as_str(),
                refund.provider_refund_id(),
                codec::nanos(refund.updated_at()),
            ],
            "refund",
        )
    }

    async fn find_refund(&mut self, id: RefundId) -> StoreResult<Option<Refund>> {
        self.query_opt(
            concat!("SELECT ", refund_columns!(), " FROM refunds WHERE id = ?1"),
            params![codec::id_text(id.as_uuid())],
            refund_from_row,
        )
    }

    async fn find_refund_by_provider_id(&mut self, provider_refund_id: &str) -> StoreResult<Option<Refund>> {
        self.query_opt(
            concat!(
                "SELECT ",
                refund_columns!(),
                " FROM refunds WHERE provider_refund_id = ?1 ORDER BY id LIMIT 1"
            ),
            params![provider_refund_id],
            refund_from_row,
        )
    }

    async fn lock_refund(&mut self, id: RefundId) -> StoreResult<Option<Refund>> {
        // The transaction holds the only connection: reading is locking.
        self.find_refund(id).await
    }

    async fn list_order_refunds(&mut self, order: OrderId) -> StoreResult<Vec<Refund>> {
        self.query(
            concat!(
                "SELECT ",
                refund_columns!(),
                " FROM refunds WHERE order_id = ?1 ORDER BY created_at, id"
            ),
            params![codec::id_text(order.as_uuid())],
            refund_from_row,
        )
    }

    async fn list_refunds(&mut self, filter: &AdminRefundFilter, page: &PageRequest) -> StoreResult<Page<Refund>> {
        let (at, id) = codec::position_after(page);
        // A provider filter keeps refunds of that provider's card payments; a refund to a wallet
        // has no payment, and so no provider.
        let refunds = self.query(
            concat!(
                "SELECT ",
                refund_columns!(),
                " FROM refunds WHERE (created_at, id) < (?1, ?2) \
                   AND (?4 IS NULL OR status = ?4) AND (?5 IS NULL OR merchant_id = ?5) \
                   AND (?6 IS NULL OR payment_id IN (SELECT p.id FROM payments p WHERE p.provider = ?6)) \
                   AND (?7 IS NULL OR currency = ?7) \
                   AND (?8 IS NULL OR created_at >= ?8) AND (?9 IS NULL OR created_at < ?9) \
                 ORDER BY created_at DESC, id DESC LIMIT ?3"
            ),
            params![
                at,
                id,
                codec::limit_plus_one(page.limit),
                filter.status.map(RefundStatus::as_str),
                filter.merchant.map(|merchant| codec::id_text(merchant.as_uuid())),
                filter.provider.as_ref().map(ProviderName::as_str),
                filter.currency.map(|currency| currency.code()),
                codec::nanos_opt(filter.created.from),
                codec::nanos_opt(filter.created.to),
            ],
            refund_from_row,
        )?;
        Ok(Page::from_rows(refunds, page.limit, |refund| Cursor::Position {
            at: refund.created_at(),
            id: refund.id().as_uuid(),
        }))
    }

    async fn insert_refund_request(&mut self, request: &RefundRequest) -> StoreResult<()> {
        let r = request.record();
        let inserted = self.execute(
            concat!(
                "INSERT INTO refund_requests (",
                refund_request_columns!(),
                ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) \
                 ON CONFLICT (order_id, merchant_id) WHERE status = 'open' DO NOTHING"
            ),
            params![
                codec::id_text(r.id.as_uuid()),
                codec::id_text(r.order_id.as_uuid()),
                codec::id_text(r.buyer_id.as_uuid()),
                codec::id_text(r.merchant_id.as_uuid()),
                r.amount.map(|amount| amount.currency().code()),
                r.amount.map(|amount| amount.amount_minor()),
                r.reason,
                r.status.as_str(),
                r.decided_by.map(|id| codec::id_text(id.as_uuid())),
                r.note,
                r.refund_id.map(|id| codec::id_text(id.as_uuid())),
                codec::nanos(r.created_at),
                codec::nanos(r.updated_at),
            ],
        )?;
        match inserted {
            0 => Err(StoreError::Duplicate(REFUND_REQUESTS_OPEN.to_owned())),
            _ => Ok(()),
        }
    }

    /// Writes what a decision changes.
    async fn update_refund_request(&mut self, request: &RefundRequest) -> StoreResult<()> {
        let r = request.record();
        self.execute_one(
            "UPDATE refund_requests SET status = ?2, decided_by = ?3, note = ?4, refund_id = ?5, updated_at = ?6 WHERE id = ?1",
            params![
                codec::id_text(r.id.as_uuid()),
                r.status.as_str(),
                r.decided_by.map(|id| codec::id_text(id.as_uuid())),
                r.note,
                r.refund_id.map(|id| codec::id_text(id.as_uuid())),
                codec::nanos(r.updated_at),
            ],
            "refund request",
        )
    }

    async fn find_refund_request(&mut self, id: RefundRequestId) -> StoreResult<Option<RefundRequest>> {
        self.query_opt(
            concat!("SELECT ", refund_request_columns!(), " FROM refund_requests WHERE id = ?1"),
            params![codec::id_text(id.as_uuid())],
            refund_request_from_row,
        )
    }

    async fn lock_refund_request(&mut self, id: RefundRequestId) -> StoreResult<Option<RefundRequest>> {
        // The transaction holds the only connection: reading is locking.
        self.find_refund_request(id).await
    }

    async fn list_refund_requests(&mut self, filter: &RefundRequestFilter, page: &PageRequest) -> StoreResult<Page<RefundRequest>> {
        let (at, id) = codec::position_after(page);
        let requests = self.query(
            concat!(
                "SELECT ",
                refund_request_columns!(),
                " FROM refund_requests WHERE (created_at, id) < (?1, ?2) \
                   AND (?4 IS NULL OR buyer_id = ?4) AND (?5 IS NULL OR merchant_id = ?5) \
                   AND (?6 IS NULL OR order_id = ?6) AND (?7 IS NULL OR status = ?7) \
                   AND (?8 IS NULL OR buyer_id = ?8 OR merchant_id = ?8) \
                 ORDER BY created_at DESC, id DESC LIMIT ?3"
            ),
            params![
                at,
                id,
                codec::limit_plus_one(page.limit),
                filter.buyer.map(|buyer| codec::id_text(buyer.as_uuid())),
                filter.merchant.map(|merchant| codec::id_text(merchant.as_uuid())),
                filter.order.map(|order| codec::id_text(order.as_uuid())),
                filter.status.map(RefundRequestStatus::as_str),
                filter.party.map(|party| codec::id_text(party.as_uuid())),
            ],
            refund_request_from_row,
        )?;
        Ok(Page::from_rows(requests, page.limit, |request| Cursor::Position {
            at: request.created_at(),
            id: request.id().as_uuid(),
        }))
    }
}
