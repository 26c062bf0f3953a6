//! Outbound webhook endpoints and their deliveries. A deliverer claims endpoints by setting
//! `held_until`, taking rows with `SKIP LOCKED`, so instances share the endpoints and never serve
//! one together.

use application::pagination::{Cursor, Page, PageRequest};
use application::ports::store::{DeliveryBacklog, DeliveryFilter, EndpointFilter, StoreResult, WebhookRepository};
use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Bool, Integer, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use domain::ids::{EventId, UserId, WebhookDeliveryId, WebhookEndpointId};
use domain::webhook::{
    AttemptRecord, DeliveryStatus, EndpointOwner, EndpointUrl, EventSelection, RetiringSecret, WebhookDelivery, WebhookEndpoint,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::mapping::{corrupt, limit, limit_plus_one, position_after, to_i32, to_u32, word};
use crate::sql::{Read, Write};
use crate::tx::{DomainRow, Expect, PgTx};

macro_rules! endpoint_columns {
    () => {
        "id, owner_user_id, url, event_types, description, enabled, secret, retiring_secret, retiring_until, failing_since, \
         disabled_reason, created_at, updated_at"
    };
}

macro_rules! delivery_columns {
    () => {
        "id, event_id, endpoint_id, event_type, status, attempts, next_attempt_at, last_attempt_at, last_status_code, \
         last_latency_ms, last_response, queued_at, created_at, updated_at"
    };
}

#[derive(QueryableByName)]
struct EndpointRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    owner_user_id: Option<Uuid>,
    #[diesel(sql_type = Text)]
    url: String,
    #[diesel(sql_type = Array<Text>)]
    event_types: Vec<String>,
    #[diesel(sql_type = Text)]
    description: String,
    #[diesel(sql_type = Bool)]
    enabled: bool,
    #[diesel(sql_type = Text)]
    secret: String,
    #[diesel(sql_type = Nullable<Text>)]
    retiring_secret: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    retiring_until: Option<OffsetDateTime>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    failing_since: Option<OffsetDateTime>,
    #[diesel(sql_type = Nullable<Text>)]
    disabled_reason: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    created_at: OffsetDateTime,
    #[diesel(sql_type = Timestamptz)]
    updated_at: OffsetDateTime,
}

impl DomainRow for EndpointRow {
    type Domain = WebhookEndpoint;

    fn into_domain(self) -> StoreResult<WebhookEndpoint> {
        let retiring = match (self.retiring_secret, self.retiring_until) {
            (Some(secret), Some(until)) => Some(RetiringSecret { secret, until }),
            _ => None,
        };
        Ok(WebhookEndpoint {
            id: WebhookEndpointId::from_uuid(self.id),
            owner: self
                .owner_user_id
                .map_or(EndpointOwner::Platform, |user| EndpointOwner::Merchant(UserId::from_uuid(user))),
            // Stored URLs were checked when they were set; the scheme rule may have changed since.
            url: EndpointUrl::parse(&self.url, true).map_err(corrupt)?,
            events: EventSelection::from_list(&self.event_types).map_err(corrupt)?,
            description: self.description,
            enabled: self.enabled,
            secret: self.secret,
            retiring,
            failing_since: self.failing_since,
            disabled_reason: self.disabled_reason,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

#[derive(QueryableByName)]
struct DeliveryRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    event_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    endpoint_id: Uuid,
    #[diesel(sql_type = Text)]
    event_type: String,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Integer)]
    attempts: i32,
    #[diesel(sql_type = Timestamptz)]
    next_attempt_at: OffsetDateTime,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    last_attempt_at: Option<OffsetDateTime>,
    #[diesel(sql_type = Nullable<Integer>)]
    last_status_code: Option<i32>,
    #[diesel(sql_type = Nullable<Integer>)]
    last_latency_ms: Option<i32>,
    #[diesel(sql_type = Nullable<Text>)]
    last_response: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    queued_at: OffsetDateTime,
    #[diesel(sql_type = Timestamptz)]
    created_at: OffsetDateTime,
    #[diesel(sql_type = Timestamptz)]
    updated_at: OffsetDateTime,
}

impl DomainRow for DeliveryRow {
    type Domain = WebhookDelivery;

    fn into_domain(self) -> StoreResult<WebhookDelivery> {
        let last_attempt = match self.last_attempt_at {
            Some(at) => Some(AttemptRecord {
                at,
                status_code: self.last_status_code.map(|code| u16::try_from(code).map_err(corrupt)).transpose()?,
                latency_ms: u32::try_from(self.last_latency_ms.unwrap_or(0)).map_err(corrupt)?,
                response: self.last_response.unwrap_or_default(),
            }),
            None => None,
        };
        Ok(WebhookDelivery {
            id: WebhookDeliveryId::from_uuid(self.id),
            event_id: EventId::from_uuid(self.event_id),
            endpoint_id: WebhookEndpointId::from_uuid(self.endpoint_id),
            event_type: self.event_type,
            status: word("delivery status", &self.status, DeliveryStatus::parse)?,
            attempts: to_u32(self.attempts, "delivery attempts")?,
            next_attempt_at: self.next_attempt_at,
            last_attempt,
            queued_at: self.queued_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

#[derive(QueryableByName)]
struct BacklogRow {
    #[diesel(sql_type = BigInt)]
    queued: i64,
    #[diesel(sql_type = BigInt)]
    retrying: i64,
}

fn owner_id(owner: EndpointOwner) -> Option<Uuid> {
    match owner {
        EndpointOwner::Platform => None,
        EndpointOwner::Merchant(user) => Some(user.as_uuid()),
    }
}

/// The endpoint's columns that change after it is registered, bound as `$2` to `$11`.
fn bind_endpoint_state(statement: Write, endpoint: &WebhookEndpoint) -> Write {
    statement
        .bind::<Text, _>(endpoint.url.as_str().to_owned())
        .bind::<Array<Text>, _>(endpoint.events.to_list())
        .bind::<Text, _>(endpoint.description.clone())
        .bind::<Bool, _>(endpoint.enabled)
        .bind::<Text, _>(endpoint.secret.clone())
        .bind::<Nullable<Text>, _>(endpoint.retiring.as_ref().map(|retiring| retiring.secret.clone()))
        .bind::<Nullable<Timestamptz>, _>(endpoint.retiring.as_ref().map(|retiring| retiring.until))
        .bind::<Nullable<Timestamptz>, _>(endpoint.failing_since)
        .bind::<Nullable<Text>, _>(endpoint.disabled_reason.clone())
        .bind::<Timestamptz, _>(endpoint.updated_at)
}

impl WebhookRepository for PgTx {
    async fn insert_webhook_endpoint(&mut self, endpoint: &WebhookEndpoint) -> StoreResult<()> {
        let statement = Write::new(
            "INSERT INTO webhook_endpoints (id, url, event_types, description, enabled, secret, retiring_secret, retiring_until, \
             failing_since, disabled_reason, updated_at, owner_user_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind::<SqlUuid, _>(endpoint.id.as_uuid());
        let statement = bind_endpoint_state(statement, endpoint)
            .bind::<Nullable<SqlUuid>, _>(owner_id(endpoint.owner))
            .bind::<Timestamptz, _>(endpoint.created_at);
        self.defer(statement, Expect::Any)
    }

    async fn update_webhook_endpoint(&mut self, endpoint: &WebhookEndpoint) -> StoreResult<()> {
        let statement = Write::new(
            "UPDATE webhook_endpoints SET url = $2, event_types = $3, description = $4, enabled = $5, secret = $6, \
                 retiring_secret = $7, retiring_until = $8, failing_since = $9, disabled_reason = $10, updated_at = $11 \
             WHERE id = $1",
        )
        .bind::<SqlUuid, _>(endpoint.id.as_uuid());
        self.defer(bind_endpoint_state(statement, endpoint), Expect::Rows(1, "webhook endpoint"))
    }

    async fn delete_webhook_endpoint(&mut self, id: WebhookEndpointId) -> StoreResult<()> {
        let statement = Write::new("DELETE FROM webhook_endpoints WHERE id = $1").bind::<SqlUuid, _>(id.as_uuid());
        self.defer(statement, Expect::Rows(1, "webhook endpoint"))
    }

    async fn find_webhook_endpoint(&mut self, id: WebhookEndpointId) -> StoreResult<Option<WebhookEndpoint>> {
        let statement =
            Read::new(concat!("SELECT ", endpoint_columns!(), " FROM webhook_endpoints WHERE id = $1")).bind::<SqlUuid, _>(id.as_uuid());
        self.select_first::<EndpointRow>(statement).await
    }

    async fn lock_webhook_endpoint(&mut self, id: WebhookEndpointId) -> StoreResult<Option<WebhookEndpoint>> {
        let statement = Read::new(concat!(
            "SELECT ",
            endpoint_columns!(),
            " FROM webhook_endpoints WHERE id = $1 FOR NO KEY UPDATE"
        ))
        .bind::<SqlUuid, _>(id.as_uuid());
        self.select_first::<EndpointRow>(statement).await
    }

    async fn list_webhook_endpoints(&mut self, filter: EndpointFilter, page: &PageRequest) -> StoreResult<Page<WebhookEndpoint>> {
        let (at, id) = position_after(page);
        // `$4` false: every owner; true: the owner `$5` (NULL for the platform).
        let (only_owner, owner) = match filter {
            EndpointFilter::All => (false, None),
            EndpointFilter::Owner(owner) => (true, owner_id(owner)),
        };
        let statement = Read::new(concat!(
            "SELECT ",
            endpoint_columns!(),
            " FROM webhook_endpoints WHERE (created_at, id) < ($1, $2) \
               AND (NOT $4 OR owner_user_id IS NOT DISTINCT FROM $5) \
             ORDER BY created_at DESC, id DESC LIMIT $3"
        ))
        .bind::<Timestamptz, _>(at)
        .bind::<SqlUuid, _>(id)
        .bind::<BigInt, _>(limit_plus_one(page.limit))
        .bind::<Bool, _>(only_owner)
        .bind::<Nullable<SqlUuid>, _>(owner);
        let rows = self.select::<EndpointRow>(statement).await?;
        Ok(Page::from_rows(rows, page.limit, |endpoint| Cursor::Position {
            at: endpoint.created_at,
            id: endpoint.id.as_uuid(),
        }))
    }

    async fn enabled_webhook_endpoints(&mut self) -> StoreResult<Vec<WebhookEndpoint>> {
        let statement = Read::new(concat!(
            "SELECT ",
            endpoint_columns!(),
            " FROM webhook_endpoints WHERE enabled ORDER BY id"
        ));
        self.select::<EndpointRow>(statement).await
    }

    async fn insert_webhook_deliveries(&mut self, deliveries: &[WebhookDelivery]) -> StoreResult<()> {
        if deliveries.is_empty() {
            return Ok(());
        }
        let statement = Write::new(
            "INSERT INTO webhook_deliveries (id, event_id, endpoint_id, event_type, status, attempts, next_attempt_at, queued_at, \
                 created_at, updated_at) \
             SELECT d.id, d.event_id, d.endpoint_id, d.event_type, 'pending', 0, d.at, d.at, d.at, d.at \
             FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::timestamptz[]) AS d(id, event_id, endpoint_id, event_type, at) \
             ON CONFLICT ON CONSTRAINT webhook_deliveries_once DO NOTHING",
        )
        .bind::<Array<SqlUuid>, _>(deliveries.iter().map(|d| d.id.as_uuid()).collect::<Vec<_>>())
        .bind::<Array<SqlUuid>, _>(deliveries.iter().map(|d| d.event_id.as_uuid()).collect::<Vec<_>>())
        .bind::<Array<SqlUuid>, _>(deliveries.iter().map(|d| d.endpoint_id.as_uuid()).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(deliveries.iter().map(|d| d.event_type.clone()).collect::<Vec<_>>())
        .bind::<Array<Timestamptz>, _>(deliveries.iter().map(|d| d.queued_at).collect::<Vec<_>>());
        self.defer(statement, Expect::Any)
    }

    async fn update_webhook_deliveries(&mut self, deliveries: &[WebhookDelivery]) -> StoreResult<()> {
        if deliveries.is_empty() {
            return Ok(());
        }
        let last = |d: &WebhookDelivery| d.last_attempt.clone();
        let attempts = deliveries
            .iter()
            .map(|d| to_i32(d.attempts, "delivery attempts"))
            .collect::<StoreResult<Vec<i32>>>()?;
        let statement = Write::new(
            "UPDATE webhook_deliveries w SET status = d.status, attempts = d.attempts, next_attempt_at = d.next_attempt_at, \
             last_attempt_at = d.last_attempt_at, last_status_code = d.last_status_code, last_latency_ms = d.last_latency_ms, \
             last_response = d.last_response, queued_at = d.queued_at, updated_at = d.updated_at \
             FROM unnest($1::uuid[], $2::text[], $3::int[], $4::timestamptz[], $5::timestamptz[], $6::int[], $7::int[], $8::text[], \
                         $9::timestamptz[], $10::timestamptz[]) \
                  AS d(id, status, attempts, next_attempt_at, last_attempt_at, last_status_code, last_latency_ms, last_response, \
                       queued_at, updated_at) \
             WHERE w.id = d.id AND w.id = ANY($1)",
        )
        .bind::<Array<SqlUuid>, _>(deliveries.iter().map(|d| d.id.as_uuid()).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(deliveries.iter().map(|d| d.status.as_str()).collect::<Vec<_>>())
        .bind::<Array<Integer>, _>(attempts)
        .bind::<Array<Timestamptz>, _>(deliveries.iter().map(|d| d.next_attempt_at).collect::<Vec<_>>())
        .bind::<Array<Nullable<Timestamptz>>, _>(deliveries.iter().map(|d| last(d).map(|a| a.at)).collect::<Vec<_>>())
        .bind::<Array<Nullable<Integer>>, _>(
            deliveries
                .iter()
                .map(|d| last(d).and_then(|a| a.status_code).map(i32::from))
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Nullable<Integer>>, _>(
            deliveries
                .iter()
                .map(|d| last(d).map(|a| i32::try_from(a.latency_ms).unwrap_or(i32::MAX)))
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Nullable<Text>>, _>(deliveries.iter().map(|d| last(d).map(|a| a.response)).collect::<Vec<_>>())
        .bind::<Array<Timestamptz>, _>(deliveries.iter().map(|d| d.queued_at).collect::<Vec<_>>())
        .bind::<Array<Timestamptz>, _>(deliveries.iter().map(|d| d.updated_at).collect::<Vec<_>>())
        .planned_each_time();
        self.defer(statement, Expect::Rows(deliveries.len(), "webhook delivery"))
    }

    async fn lock_webhook_delivery(&mut self, id: WebhookDeliveryId) -> StoreResult<Option<WebhookDelivery>> {
        let statement = Read::new(concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM webhook_deliveries WHERE id = $1 FOR NO KEY UPDATE"
        ))
        .bind::<SqlUuid, _>(id.as_uuid());
        self.select_first::<DeliveryRow>(statement).await
    }

    async fn claim_webhook_endpoints(
        &mut self,
        now: OffsetDateTime,
        until: OffsetDateTime,
        batch: usize,
    ) -> StoreResult<Vec<WebhookEndpoint>> {
        let statement = Write::new(concat!(
            "WITH claimed AS ( \
                 SELECT e.id FROM webhook_endpoints e \
                 WHERE e.enabled AND (e.held_until IS NULL OR e.held_until <= $1) \
                   AND EXISTS (SELECT 1 FROM webhook_deliveries d \
                               WHERE d.endpoint_id = e.id AND d.status = 'pending' AND d.next_attempt_at <= $1) \
                 ORDER BY e.id LIMIT $3 FOR NO KEY UPDATE SKIP LOCKED \
             ) \
             UPDATE webhook_endpoints SET held_until = $2 FROM claimed WHERE webhook_endpoints.id = claimed.id \
             RETURNING ",
            "webhook_endpoints.id, owner_user_id, url, event_types, description, enabled, secret, retiring_secret, \
             retiring_until, failing_since, disabled_reason, created_at, updated_at"
        ))
        .bind::<Timestamptz, _>(now)
        .bind::<Timestamptz, _>(until)
        .bind::<BigInt, _>(limit(batch))
        .planned_each_time();
        self.write_returning::<EndpointRow>(statement)
            .await?
            .into_iter()
            .map(EndpointRow::into_domain)
            .collect()
    }

    async fn hold_webhook_endpoint(&mut self, id: WebhookEndpointId, until: Option<OffsetDateTime>) -> StoreResult<()> {
        let statement = Write::new("UPDATE webhook_endpoints SET held_until = $2 WHERE id = $1")
            .bind::<SqlUuid, _>(id.as_uuid())
            .bind::<Nullable<Timestamptz>, _>(until);
        self.defer(statement, Expect::Any)
    }

    async fn due_webhook_deliveries(
        &mut self,
        endpoint: WebhookEndpointId,
        now: OffsetDateTime,
        batch: usize,
    ) -> StoreResult<Vec<WebhookDelivery>> {
        let statement = Read::new(concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM webhook_deliveries WHERE endpoint_id = $1 AND status = 'pending' AND next_attempt_at <= $2 \
             ORDER BY queued_at, id LIMIT $3"
        ))
        .bind::<SqlUuid, _>(endpoint.as_uuid())
        .bind::<Timestamptz, _>(now)
        .bind::<BigInt, _>(limit(batch))
        .planned_each_time();
        self.select::<DeliveryRow>(statement).await
    }

    async fn list_webhook_deliveries(
        &mut self,
        endpoint: WebhookEndpointId,
        filter: &DeliveryFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<WebhookDelivery>> {
        let (at, id) = position_after(page);
        let statement = Read::new(concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM webhook_deliveries WHERE endpoint_id = $1 AND (created_at, id) < ($2, $3) \
               AND ($5::text IS NULL OR status = $5) AND ($6::text IS NULL OR event_type = $6) \
             ORDER BY created_at DESC, id DESC LIMIT $4"
        ))
        .bind::<SqlUuid, _>(endpoint.as_uuid())
        .bind::<Timestamptz, _>(at)
        .bind::<SqlUuid, _>(id)
        .bind::<BigInt, _>(limit_plus_one(page.limit))
        .bind::<Nullable<Text>, _>(filter.status.map(DeliveryStatus::as_str))
        .bind::<Nullable<Text>, _>(filter.event_type.clone());
        let rows = self.select::<DeliveryRow>(statement).await?;
        Ok(Page::from_rows(rows, page.limit, |delivery| Cursor::Position {
            at: delivery.created_at,
            id: delivery.id.as_uuid(),
        }))
    }

    async fn requeue_webhook_deliveries(
        &mut self,
        endpoint: WebhookEndpointId,
        from: OffsetDateTime,
        to: OffsetDateTime,
        at: OffsetDateTime,
    ) -> StoreResult<u64> {
        let statement = Write::new(
            "UPDATE webhook_deliveries d SET status = 'pending', next_attempt_at = $4, queued_at = $4, updated_at = $4 \
             FROM outbox_events e \
             WHERE d.endpoint_id = $1 AND e.id = d.event_id AND e.occurred_at >= $2 AND e.occurred_at < $3",
        )
        .bind::<SqlUuid, _>(endpoint.as_uuid())
        .bind::<Timestamptz, _>(from)
        .bind::<Timestamptz, _>(to)
        .bind::<Timestamptz, _>(at);
        Ok(self.execute(statement).await? as u64)
    }

    async fn prune_settled_webhook_deliveries(&mut self, before: OffsetDateTime, batch: usize) -> StoreResult<u64> {
        let statement = Write::new(
            "DELETE FROM webhook_deliveries WHERE id IN ( \
                 SELECT id FROM webhook_deliveries WHERE status <> 'pending' AND updated_at < $1 ORDER BY updated_at LIMIT $2)",
        )
        .bind::<Timestamptz, _>(before)
        .bind::<BigInt, _>(limit(batch));
        Ok(self.execute(statement).await? as u64)
    }

    async fn webhook_delivery_backlog(&mut self) -> StoreResult<DeliveryBacklog> {
        let statement = Read::new(
            "SELECT count(*) FILTER (WHERE last_attempt_at IS NULL) AS queued, \
                    count(*) FILTER (WHERE last_attempt_at IS NOT NULL) AS retrying \
             FROM webhook_deliveries WHERE status = 'pending'",
        );
        let row: Option<BacklogRow> = self.read_first(statement).await?;
        let row = row.ok_or_else(|| corrupt("a count returned no row"))?;
        Ok(DeliveryBacklog {
            queued: u64::try_from(row.queued).map_err(corrupt)?,
            retrying: u64::try_from(row.retrying).map_err(corrupt)?,
        })
    }
}
