//! Card payments and refunds.
//!
//! Gateway events name a payment by our id, the provider's checkout session or the provider's
//! payment id; each lookup has its index. The expiry job takes pending payments whose checkout
//! ran out with `SKIP LOCKED`, so several workers share the backlog instead of queueing on it.

use application::pagination::{Cursor, Page, PageRequest};
use application::ports::store::{
    AdminPaymentFilter, AdminRefundFilter, PaymentFilter, PaymentLookup, PaymentRepository, REFUND_REQUESTS_OPEN, RefundRepository,
    RefundRequestFilter, StoreError, StoreResult,
};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Bool, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use domain::ids::{OrderId, PaymentId, RefundId, RefundRequestId, UserId};
use domain::payment::{Payment, PaymentPurpose, PaymentRecord, PaymentStatus, ProviderName, Refund, RefundRecord, RefundStatus};
use domain::refund_request::{RefundRequest, RefundRequestRecord, RefundRequestStatus};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::mapping::{corrupt, limit, limit_plus_one, money, position_after, provider, word};
use crate::schema::{payments, refund_requests, refunds};
use crate::sql::{Read, Write};
use crate::tx::{DomainRow, Expect, PgTx};

macro_rules! payment_columns {
    () => {
        "id, purpose, order_id, top_up_user_id, payer_id, provider, currency, amount, status, provider_session_id, \
         provider_payment_id, checkout_url, disputed, late_success, created_at, expires_at, updated_at"
    };
}

#[derive(QueryableByName)]
#[diesel(table_name = payments, check_for_backend(diesel::pg::Pg))]
struct PaymentRow {
    id: Uuid,
    purpose: String,
    order_id: Option<Uuid>,
    top_up_user_id: Option<Uuid>,
    payer_id: Uuid,
    provider: String,
    currency: String,
    amount: i64,
    status: String,
    provider_session_id: Option<String>,
    provider_payment_id: Option<String>,
    checkout_url: Option<String>,
    disputed: bool,
    late_success: bool,
    created_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl DomainRow for PaymentRow {
    type Domain = Payment;

    fn into_domain(self) -> StoreResult<Payment> {
        let purpose = match (self.purpose.as_str(), self.order_id, self.top_up_user_id) {
            ("order", Some(order), None) => PaymentPurpose::Order(OrderId::from_uuid(order)),
            ("top_up", None, Some(user)) => PaymentPurpose::TopUp(UserId::from_uuid(user)),
            _ => return Err(corrupt(format!("payment {} has an inconsistent purpose", self.id))),
        };
        Ok(Payment::restore(PaymentRecord {
            id: PaymentId::from_uuid(self.id),
            purpose,
            payer_id: UserId::from_uuid(self.payer_id),
            provider: provider(&self.provider)?,
            amount: money(self.amount, &self.currency)?,
            status: word("payment status", &self.status, PaymentStatus::parse)?,
            provider_session_id: self.provider_session_id,
            provider_payment_id: self.provider_payment_id,
            checkout_url: self.checkout_url,
            disputed: self.disputed,
            late_success: self.late_success,
            created_at: self.created_at,
            expires_at: self.expires_at,
            updated_at: self.updated_at,
        }))
    }
}

impl PaymentRepository for PgTx {
    async fn insert_payment(&mut self, payment: &Payment) -> StoreResult<()> {
        let (purpose, order_id, top_up_user_id) = match payment.purpose() {
            PaymentPurpose::Order(order) => ("order", Some(order.as_uuid()), None),
            PaymentPurpose::TopUp(user) => ("top_up", None, Some(user.as_uuid())),
        };
        let statement = Write::new(concat!(
            "INSERT INTO payments (",
            payment_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
        ))
        .bind::<SqlUuid, _>(payment.id().as_uuid())
        .bind::<Text, _>(purpose)
        .bind::<Nullable<SqlUuid>, _>(order_id)
        .bind::<Nullable<SqlUuid>, _>(top_up_user_id)
        .bind::<SqlUuid, _>(payment.payer_id().as_uuid())
        .bind::<Text, _>(payment.provider().as_str().to_owned())
        .bind::<Text, _>(payment.currency().code())
        .bind::<BigInt, _>(payment.amount().amount_minor())
        .bind::<Text, _>(payment.status().as_str())
        .bind::<Nullable<Text>, _>(payment.provider_session_id().map(str::to_owned))
        .bind::<Nullable<Text>, _>(payment.provider_payment_id().map(str::to_owned))
        .bind::<Nullable<Text>, _>(payment.checkout_url().map(str::to_owned))
        .bind::<Bool, _>(payment.disputed())
        .bind::<Bool, _>(payment.late_success())
        .bind::<Timestamptz, _>(payment.created_at())
        .bind::<Timestamptz, _>(payment.expires_at())
        .bind::<Timestamptz, _>(payment.updated_at());
        self.defer(statement, Expect::Any)
    }

    /// Writes everything a payment's life changes; who pays what, for what, never changes.
    async fn update_payment(&mut self, payment: &Payment) -> StoreResult<()> {
        let statement = Write::new(
            "UPDATE payments SET status = $2, provider_session_id = $3, provider_payment_id = $4, checkout_url = $5, \
                 disputed = $6, late_success = $7, expires_at = $8, updated_at = $9 \
             WHERE id = $1",
        )
        .bind::<SqlUuid, _>(payment.id().as_uuid())
        .bind::<Text, _>(payment.status().as_str())
        .bind::<Nullable<Text>, _>(payment.provider_session_id().map(str::to_owned))
        .bind::<Nullable<Text>, _>(payment.provider_payment_id().map(str::to_owned))
        .bind::<Nullable<Text>, _>(payment.checkout_url().map(str::to_owned))
        .bind::<Bool, _>(payment.disputed())
        .bind::<Bool, _>(payment.late_success())
        .bind::<Timestamptz, _>(payment.expires_at())
        .bind::<Timestamptz, _>(payment.updated_at());
        self.defer(statement, Expect::Rows(1, "payment"))
    }

    async fn list_payer_payments(&mut self, payer: UserId, filter: PaymentFilter, page: &PageRequest) -> StoreResult<Page<Payment>> {
        let (at, id) = position_after(page);
        let statement = Read::new(concat!(
            "SELECT ",
            payment_columns!(),
            " FROM payments WHERE payer_id = $1 AND (created_at, id) < ($2, $3) \
               AND ($5::text IS NULL OR status = $5) AND ($6::text IS NULL OR purpose = $6) \
             ORDER BY created_at DESC, id DESC LIMIT $4"
        ))
        .bind::<SqlUuid, _>(payer.as_uuid())
        .bind::<Timestamptz, _>(at)
        .bind::<SqlUuid, _>(id)
        .bind::<BigInt, _>(limit_plus_one(page.limit))
        .bind::<Nullable<Text>, _>(filter.status.map(PaymentStatus::as_str))
        .bind::<Nullable<Text>, _>(filter.top_ups.map(|top_ups| if top_ups { "top_up" } else { "order" }));
        let rows = self.select::<PaymentRow>(statement).await?;
        Ok(Page::from_rows(rows, page.limit, |payment| Cursor::Position {
            at: payment.created_at(),
            id: payment.id().as_uuid(),
        }))
    }

    async fn list_payments(&mut self, filter: &AdminPaymentFilter, page: &PageRequest) -> StoreResult<Page<Payment>> {
        let (at, id) = position_after(page);
        let statement = Read::new(concat!(
            "SELECT ",
            payment_columns!(),
            " FROM payments WHERE (created_at, id) < ($1, $2) \
               AND ($4::text IS NULL OR status = $4) AND ($5::text IS NULL OR purpose = $5) \
               AND ($6::uuid IS NULL OR payer_id = $6) AND ($7::text IS NULL OR provider = $7) \
               AND ($8::text IS NULL OR currency = $8::currency_code) \
               AND ($9::timestamptz IS NULL OR created_at >= $9) AND ($10::timestamptz IS NULL OR created_at < $10) \
             ORDER BY created_at DESC, id DESC LIMIT $3"
        ))
        .bind::<Timestamptz, _>(at)
        .bind::<SqlUuid, _>(id)
        .bind::<BigInt, _>(limit_plus_one(page.limit))
        .bind::<Nullable<Text>, _>(filter.of.status.map(PaymentStatus::as_str))
        .bind::<Nullable<Text>, _>(filter.of.top_ups.map(|top_ups| if top_ups { "top_up" } else { "order" }))
        .bind::<Nullable<SqlUuid>, _>(filter.payer.map(|payer| payer.as_uuid()))
        .bind::<Nullable<Text>, _>(filter.provider.as_ref().map(|p| p.as_str().to_owned()))
        .bind::<Nullable<Text>, _>(filter.currency.map(|c| c.code()))
        .bind::<Nullable<Timestamptz>, _>(filter.created.from)
        .bind::<Nullable<Timestamptz>, _>(filter.created.to);
        let rows = self.select::<PaymentRow>(statement).await?;
        Ok(Page::from_rows(rows, page.limit, |payment| Cursor::Position {
            at: payment.created_at(),
            id: payment.id().as_uuid(),
        }))
    }

    async fn find_payment(&mut self, id: PaymentId) -> StoreResult<Option<Payment>> {
        let statement = Read::new(concat!("SELECT ", payment_columns!(), " FROM payments WHERE id = $1")).bind::<SqlUuid, _>(id.as_uuid());
        self.select_first::<PaymentRow>(statement).await
    }

    async fn lock_payment(&mut self, provider: &ProviderName, lookup: &PaymentLookup) -> StoreResult<Option<Payment>> {
        let statement = match lookup {
            PaymentLookup::Ours(id) => Read::new(concat!(
                "SELECT ",
                payment_columns!(),
                " FROM payments WHERE provider = $1 AND id = $2 FOR NO KEY UPDATE"
            ))
            .bind::<Text, _>(provider.as_str())
            .bind::<SqlUuid, _>(id.as_uuid()),
            PaymentLookup::Session(session) => Read::new(concat!(
                "SELECT ",
                payment_columns!(),
                " FROM payments WHERE provider = $1 AND provider_session_id = $2 ORDER BY id LIMIT 1 FOR NO KEY UPDATE"
            ))
            .bind::<Text, _>(provider.as_str())
            .bind::<Text, _>(session.as_str()),
            PaymentLookup::ProviderPayment(payment) => Read::new(concat!(
                "SELECT ",
                payment_columns!(),
                " FROM payments WHERE provider = $1 AND provider_payment_id = $2 ORDER BY id LIMIT 1 FOR NO KEY UPDATE"
            ))
            .bind::<Text, _>(provider.as_str())
            .bind::<Text, _>(payment.as_str()),
        };
        self.select_first::<PaymentRow>(statement).await
    }

    async fn find_order_payment(&mut self, order: OrderId) -> StoreResult<Option<Payment>> {
        let statement = Read::new(concat!(
            "SELECT ",
            payment_columns!(),
            " FROM payments WHERE order_id = $1 ORDER BY created_at DESC, id DESC LIMIT 1"
        ))
        .bind::<SqlUuid, _>(order.as_uuid());
        self.select_first::<PaymentRow>(statement).await
    }

    async fn lock_expired_payments(&mut self, now: OffsetDateTime, batch_size: usize) -> StoreResult<Vec<Payment>> {
        let statement = Read::new(concat!(
            "SELECT ",
            payment_columns!(),
            " FROM payments WHERE status = 'pending' AND expires_at <= $1 ORDER BY expires_at, id LIMIT $2 \
             FOR NO KEY UPDATE SKIP LOCKED"
        ))
        .bind::<Timestamptz, _>(now)
        .bind::<BigInt, _>(limit(batch_size));
        self.select::<PaymentRow>(statement).await
    }
}

macro_rules! refund_columns {
    () => {
        "id, order_id, payment_id, merchant_id, currency, amount, status, provider_refund_id, reason, requested_by, created_at, updated_at"
    };
}

#[derive(QueryableByName)]
#[diesel(table_name = refunds, check_for_backend(diesel::pg::Pg))]
struct RefundRow {
    id: Uuid,
    order_id: Uuid,
    payment_id: Option<Uuid>,
    merchant_id: Uuid,
    currency: String,
    amount: i64,
    status: String,
    provider_refund_id: Option<String>,
    reason: String,
    requested_by: Option<Uuid>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl DomainRow for RefundRow {
    type Domain = Refund;

    fn into_domain(self) -> StoreResult<Refund> {
        Ok(Refund::restore(RefundRecord {
            id: RefundId::from_uuid(self.id),
            order_id: OrderId::from_uuid(self.order_id),
            payment_id: self.payment_id.map(PaymentId::from_uuid),
            merchant_id: UserId::from_uuid(self.merchant_id),
            amount: money(self.amount, &self.currency)?,
            status: word("refund status", &self.status, RefundStatus::parse)?,
            provider_refund_id: self.provider_refund_id,
            reason: self.reason,
            requested_by: self.requested_by.map(UserId::from_uuid),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }))
    }
}

macro_rules! refund_request_columns {
    () => {
        "id, order_id, buyer_id, merchant_id, currency, amount, reason, status, decided_by, note, refund_id, created_at, updated_at"
    };
}

#[derive(QueryableByName)]
#[diesel(table_name = refund_requests, check_for_backend(diesel::pg::Pg))]
struct RefundRequestRow {
    id: Uuid,
    order_id: Uuid,
    buyer_id: Uuid,
    merchant_id: Uuid,
    currency: Option<String>,
    amount: Option<i64>,
    reason: String,
    status: String,
    decided_by: Option<Uuid>,
    note: Option<String>,
    refund_id: Option<Uuid>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl DomainRow for RefundRequestRow {
    type Domain = RefundRequest;

    fn into_domain(self) -> StoreResult<RefundRequest> {
        let amount = match (self.amount, self.currency) {
            (Some(minor), Some(code)) => Some(money(minor, &code)?),
            _ => None,
        };
        Ok(RefundRequest::restore(RefundRequestRecord {
            id: RefundRequestId::from_uuid(self.id),
            order_id: OrderId::from_uuid(self.order_id),
            buyer_id: UserId::from_uuid(self.buyer_id),
            merchant_id: UserId::from_uuid(self.merchant_id),
            amount,
            reason: self.reason,
            status: word("refund request status", &self.status, RefundRequestStatus::parse)?,
            decided_by: self.decided_by.map(UserId::from_uuid),
            note: self.note,
            refund_id: self.refund_id.map(RefundId::from_uuid),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }))
    }
}

impl RefundRepository for PgTx {
    async fn insert_refund(&mut self, refund: &Refund) -> StoreResult<()> {
        let statement = Write::new(concat!(
            "INSERT INTO refunds (",
            refund_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        ))
        .bind::<SqlUuid, _>(refund.id().as_uuid())
        .bind::<SqlUuid, _>(refund.order_id().as_uuid())
        .bind::<Nullable<SqlUuid>, _>(refund.payment_id().map(|id| id.as_uuid()))
        .bind::<SqlUuid, _>(refund.merchant_id().as_uuid())
        .bind::<Text, _>(refund.amount().currency().code())
        .bind::<BigInt, _>(refund.amount().amount_minor())
        .bind::<Text, _>(refund.status().as_str())
        .bind::<Nullable<Text>, _>(refund.provider_refund_id().map(str::to_owned))
        .bind::<Text, _>(refund.reason().to_owned())
        .bind::<Nullable<SqlUuid>, _>(refund.requested_by().map(|id| id.as_uuid()))
        .bind::<Timestamptz, _>(refund.created_at())
        .bind::<Timestamptz, _>(refund.updated_at());
        self.defer(statement, Expect::Any)
    }

    /// Writes what settling a refund changes.
    async fn update_refund(&mut self, refund: &Refund) -> StoreResult<()> {
        let statement =
            Write::new("UPDATE refunds SET payment_id = $2, status = $3, provider_refund_id = $4, updated_at = $5 WHERE id = $1")
                .bind::<SqlUuid, _>(refund.id().as_uuid())
                .bind::<Nullable<SqlUuid>, _>(refund.payment_id().map(|id| id.as_uuid()))
                .bind::<Text, _>(refund.status().as_str())
                .bind::<Nullable<Text>, _>(refund.provider_refund_id().map(str::to_owned))
                .bind::<Timestamptz, _>(refund.updated_at());
        self.defer(statement, Expect::Rows(1, "refund"))
    }

    async fn find_refund(&mut self, id: RefundId) -> StoreResult<Option<Refund>> {
        let statement = Read::new(concat!("SELECT ", refund_columns!(), " FROM refunds WHERE id = $1")).bind::<SqlUuid, _>(id.as_uuid());
        self.select_first::<RefundRow>(statement).await
    }

    async fn find_refund_by_provider_id(&mut self, provider_refund_id: &str) -> StoreResult<Option<Refund>> {
        let statement = Read::new(concat!(
            "SELECT ",
            refund_columns!(),
            " FROM refunds WHERE provider_refund_id = $1 ORDER BY id LIMIT 1"
        ))
        .bind::<Text, _>(provider_refund_id);
        self.select_first::<RefundRow>(statement).await
    }

    async fn lock_refund(&mut self, id: RefundId) -> StoreResult<Option<Refund>> {
        let statement = Read::new(concat!(
            "SELECT ",
            refund_columns!(),
            " FROM refunds WHERE id = $1 FOR NO KEY UPDATE"
        ))
        .bind::<SqlUuid, _>(id.as_uuid());
        self.select_first::<RefundRow>(statement).await
    }

    /// Oldest first.
    async fn list_refunds(&mut self, filter: &AdminRefundFilter, page: &PageRequest) -> StoreResult<Page<Refund>> {
        let (at, id) = position_after(page);
        let statement = Read::new(concat!(
            "SELECT ",
            refund_columns!(),
            " FROM refunds WHERE (created_at, id) < ($1, $2) \
               AND ($4::text IS NULL OR status = $4) AND ($5::uuid IS NULL OR merchant_id = $5) \
               AND ($6::text IS NULL OR payment_id IN (SELECT p.id FROM payments p WHERE p.provider = $6)) \
               AND ($7::text IS NULL OR currency = $7::currency_code) \
               AND ($8::timestamptz IS NULL OR created_at >= $8) AND ($9::timestamptz IS NULL OR created_at < $9) \
             ORDER BY created_at DESC, id DESC LIMIT $3"
        ))
        .bind::<Timestamptz, _>(at)
        .bind::<SqlUuid, _>(id)
        .bind::<BigInt, _>(limit_plus_one(page.limit))
        .bind::<Nullable<Text>, _>(filter.status.map(RefundStatus::as_str))
        .bind::<Nullable<SqlUuid>, _>(filter.merchant.map(|merchant| merchant.as_uuid()))
        .bind::<Nullable<Text>, _>(filter.provider.as_ref().map(|p| p.as_str().to_owned()))
        .bind::<Nullable<Text>, _>(filter.currency.map(|c| c.code()))
        .bind::<Nullable<Timestamptz>, _>(filter.created.from)
        .bind::<Nullable<Timestamptz>, _>(filter.created.to);
        let rows = self.select::<RefundRow>(statement).await?;
        Ok(Page::from_rows(rows, page.limit, |refund| Cursor::Position {
            at: refund.created_at(),
            id: refund.id().as_uuid(),
        }))
    }

    async fn list_order_refunds(&mut self, order: OrderId) -> StoreResult<Vec<Refund>> {
        let statement = Read::new(concat!(
            "SELECT ",
            refund_columns!(),
            " FROM refunds WHERE order_id = $1 ORDER BY created_at, id"
        ))
        .bind::<SqlUuid, _>(order.as_uuid());
        self.select::<RefundRow>(statement).await
    }

    /// An open request colliding with another for the same order and merchant is not inserted
    /// (`ON CONFLICT DO NOTHING`), so that the transaction stays usable.
    async fn insert_refund_request(&mut self, request: &RefundRequest) -> StoreResult<()> {
        let r = request.record();
        let statement = Write::new(concat!(
            "INSERT INTO refund_requests (",
            refund_request_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
             ON CONFLICT (order_id, merchant_id) WHERE status = 'open' DO NOTHING"
        ))
        .bind::<SqlUuid, _>(r.id.as_uuid())
        .bind::<SqlUuid, _>(r.order_id.as_uuid())
        .bind::<SqlUuid, _>(r.buyer_id.as_uuid())
        .bind::<SqlUuid, _>(r.merchant_id.as_uuid())
        .bind::<Nullable<Text>, _>(r.amount.map(|amount| amount.currency().code()))
        .bind::<Nullable<BigInt>, _>(r.amount.map(|amount| amount.amount_minor()))
        .bind::<Text, _>(r.reason.clone())
        .bind::<Text, _>(r.status.as_str())
        .bind::<Nullable<SqlUuid>, _>(r.decided_by.map(|id| id.as_uuid()))
        .bind::<Nullable<Text>, _>(r.note.clone())
        .bind::<Nullable<SqlUuid>, _>(r.refund_id.map(|id| id.as_uuid()))
        .bind::<Timestamptz, _>(r.created_at)
        .bind::<Timestamptz, _>(r.updated_at);
        match self.execute(statement).await? {
            0 => Err(StoreError::Duplicate(REFUND_REQUESTS_OPEN.to_owned())),
            _ => Ok(()),
        }
    }

    /// Writes what a decision changes.
    async fn update_refund_request(&mut self, request: &RefundRequest) -> StoreResult<()> {
        let r = request.record();
        let statement =
            Write::new("UPDATE refund_requests SET status = $2, decided_by = $3, note = $4, refund_id = $5, updated_at = $6 WHERE id = $1")
                .bind::<SqlUuid, _>(r.id.as_uuid())
                .bind::<Text, _>(r.status.as_str())
                .bind::<Nullable<SqlUuid>, _>(r.decided_by.map(|id| id.as_uuid()))
                .bind::<Nullable<Text>, _>(r.note.clone())
                .bind::<Nullable<SqlUuid>, _>(r.refund_id.map(|id| id.as_uuid()))
                .bind::<Timestamptz, _>(r.updated_at);
        self.defer(statement, Expect::Rows(1, "refund request"))
    }

    async fn find_refund_request(&mut self, id: RefundRequestId) -> StoreResult<Option<RefundRequest>> {
        let statement = Read::new(concat!("SELECT ", refund_request_columns!(), " FROM refund_requests WHERE id = $1"))
            .bind::<SqlUuid, _>(id.as_uuid());
        self.select_first::<RefundRequestRow>(statement).await
    }

    async fn lock_refund_request(&mut self, id: RefundRequestId) -> StoreResult<Option<RefundRequest>> {
        let statement = Read::new(concat!(
            "SELECT ",
            refund_request_columns!(),
            " FROM refund_requests WHERE id = $1 FOR NO KEY UPDATE"
        ))
        .bind::<SqlUuid, _>(id.as_uuid());
        self.select_first::<RefundRequestRow>(statement).await
    }

    async fn list_refund_requests(&mut self, filter: &RefundRequestFilter, page: &PageRequest) -> StoreResult<Page<RefundRequest>> {
        let (at, id) = position_after(page);
        let statement = Read::new(concat!(
            "SELECT ",
            refund_request_columns!(),
            " FROM refund_requests WHERE (created_at, id) < ($1, $2) \
               AND ($4::uuid IS NULL OR buyer_id = $4) AND ($5::uuid IS NULL OR merchant_id = $5) \
               AND ($6::uuid IS NULL OR order_id = $6) AND ($7::text IS NULL OR status = $7) \
               AND ($8::uuid IS NULL OR buyer_id = $8 OR merchant_id = $8) \
             ORDER BY created_at DESC, id DESC LIMIT $3"
        ))
        .bind::<Timestamptz, _>(at)
        .bind::<SqlUuid, _>(id)
        .bind::<BigInt, _>(limit_plus_one(page.limit))
        .bind::<Nullable<SqlUuid>, _>(filter.buyer.map(|buyer| buyer.as_uuid()))
        .bind::<Nullable<SqlUuid>, _>(filter.merchant.map(|merchant| merchant.as_uuid()))
        .bind::<Nullable<SqlUuid>, _>(filter.order.map(|order| order.as_uuid()))
        .bind::<Nullable<Text>, _>(filter.status.map(RefundRequestStatus::as_str))
        .bind::<Nullable<SqlUuid>, _>(filter.party.map(|party| party.as_uuid()));
        let rows = self.select::<RefundRequestRow>(statement).await?;
        Ok(Page::from_rows(rows, page.limit, |request| Cursor::Position {
            at: request.created_at(),
            id: request.id().as_uuid(),
        }))
    }
}
