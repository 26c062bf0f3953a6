//! Outbound webhooks: the endpoints merchants and admins register, one delivery per outbox event
//! and endpoint, and the deliverer's hold on an endpoint.
//!
//! A deliverer claims an endpoint by setting `held_until`. With one transaction at a time there is
//! no `SKIP LOCKED` to need: an endpoint is free when its hold is missing or has run out.
//!
//! The subscribed event types (`text[]` in PostgreSQL) are a JSON array of strings.

use application::pagination::{Cursor, Page, PageRequest};
use application::ports::store::{DeliveryBacklog, DeliveryFilter, EndpointFilter, StoreError, StoreResult, WebhookRepository};
use domain::ids::{EventId, UserId, WebhookDeliveryId, WebhookEndpointId};
use domain::webhook::{
    AttemptRecord, DeliveryStatus, EndpointOwner, EndpointUrl, EventSelection, RetiringSecret, WebhookDelivery, WebhookEndpoint,
};
use rusqlite::{Row, params};
use time::OffsetDateTime;

use crate::SqliteTx;
use crate::codec;

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS webhook_endpoints (
    id              TEXT PRIMARY KEY,
    -- NULL: the platform's (its admins'), which receives every event.
    owner_user_id   TEXT REFERENCES users (id),
    url             TEXT NOT NULL CHECK (length(url) BETWEEN 1 AND 2048),
    -- A JSON array of type names; [\"*\"] for every type.
    event_types     TEXT NOT NULL CHECK (json_valid(event_types) AND json_type(event_types) = 'array'
                                         AND json_array_length(event_types) > 0),
    description     TEXT NOT NULL CHECK (length(description) <= 500),
    enabled         INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    secret          TEXT NOT NULL,
    retiring_secret TEXT,
    retiring_until  INTEGER,
    failing_since   INTEGER,
    disabled_reason TEXT,
    held_until      INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    CONSTRAINT webhook_endpoints_retiring CHECK ((retiring_secret IS NULL) = (retiring_until IS NULL))
) STRICT;

CREATE INDEX IF NOT EXISTS webhook_endpoints_by_owner ON webhook_endpoints (owner_user_id, created_at DESC, id DESC);

CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id               TEXT PRIMARY KEY,
    event_id         TEXT NOT NULL REFERENCES outbox_events (id),
    endpoint_id      TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_type       TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts         INTEGER NOT NULL CHECK (attempts >= 0),
    next_attempt_at  INTEGER NOT NULL,
    last_attempt_at  INTEGER,
    last_status_code INTEGER,
    last_latency_ms  INTEGER,
    last_response    TEXT,
    queued_at        INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    CONSTRAINT webhook_deliveries_once UNIQUE (event_id, endpoint_id)
) STRICT;

-- Whether an endpoint has something due (the claim); its queue, oldest first; its listing, newest
-- first (also how the cascade from a deleted endpoint finds its deliveries); the prune job's
-- settled deliveries, oldest first.
CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries (endpoint_id, next_attempt_at) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS webhook_deliveries_queue ON webhook_deliveries (endpoint_id, queued_at, id) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS webhook_deliveries_by_endpoint ON webhook_deliveries (endpoint_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS webhook_deliveries_settled ON webhook_deliveries (updated_at) WHERE status <> 'pending';
";

/// An endpoint's columns in the order `endpoint` reads them.
macro_rules! endpoint_columns {
    () => {
        "id, owner_user_id, url, event_types, description, enabled, secret, retiring_secret, retiring_until, failing_since, disabled_reason, created_at, updated_at"
    };
}

/// A delivery's columns in the order `delivery` reads them.
macro_rules! delivery_columns {
    () => {
        "id, event_id, endpoint_id, event_type, status, attempts, next_attempt_at, last_attempt_at, last_status_code, \
         last_latency_ms, last_response, queued_at, created_at, updated_at"
    };
}

fn endpoint(row: &Row<'_>) -> StoreResult<WebhookEndpoint> {
    let owner = codec::uuid_opt(row, 1)?.map_or(EndpointOwner::Platform, |user| EndpointOwner::Merchant(UserId::from_uuid(user)));
    let url: String = codec::get(row, 2)?;
    let types: String = codec::get(row, 3)?;
    let types: Vec<String> = serde_json::from_str(&types).map_err(codec::corrupt)?;
    let retiring_secret: Option<String> = codec::get(row, 7)?;
    let retiring = match (retiring_secret, codec::instant_opt(row, 8)?) {
        (Some(secret), Some(until)) => Some(RetiringSecret { secret, until }),
        _ => None,
    };
    Ok(WebhookEndpoint {
        id: WebhookEndpointId::from_uuid(codec::uuid(row, 0)?),
        owner,
        // Stored URLs were checked when they were set; the scheme rule may have changed since.
        url: EndpointUrl::parse(&url, true).map_err(codec::corrupt)?,
        events: EventSelection::from_list(&types).map_err(codec::corrupt)?,
        description: codec::get(row, 4)?,
        enabled: codec::get(row, 5)?,
        secret: codec::get(row, 6)?,
        retiring,
        failing_since: codec::instant_opt(row, 9)?,
        disabled_reason: codec::get(row, 10)?,
        created_at: codec::instant(row, 11)?,
        updated_at: codec::instant(row, 12)?,
    })
}

fn delivery(row: &Row<'_>) -> StoreResult<WebhookDelivery> {
    let last_attempt = match codec::instant_opt(row, 7)? {
        Some(at) => {
            let status_code: Option<i64> = codec::get(row, 8)?;
            let latency_ms: Option<i64> = codec::get(row, 9)?;
            let response: Option<String> = codec::get(row, 10)?;
            Some(AttemptRecord {
                at,
                status_code: status_code
                    .map(|code| u16::try_from(code).map_err(|_| codec::corrupt(format!("HTTP status {code} is out of range"))))
                    .transpose()?,
                latency_ms: codec::to_u32(latency_ms.unwrap_or(0), "delivery latency")?,
                response: response.unwrap_or_default(),
            })
        }
        None => None,
    };
    let status: String = codec::get(row, 4)?;
    Ok(WebhookDelivery {
        id: WebhookDeliveryId::from_uuid(codec::uuid(row, 0)?),
        event_id: EventId::from_uuid(codec::uuid(row, 1)?),
        endpoint_id: WebhookEndpointId::from_uuid(codec::uuid(row, 2)?),
        event_type: codec::get(row, 3)?,
        status: codec::word("delivery status", &status, DeliveryStatus::parse)?,
        attempts: codec::to_u32(codec::get(row, 5)?, "delivery attempts")?,
        next_attempt_at: codec::instant(row, 6)?,
        last_attempt,
        queued_at: codec::instant(row, 11)?,
        created_at: codec::instant(row, 12)?,
        updated_at: codec::instant(row, 13)?,
    })
}

fn endpoint_by_id(tx: &mut SqliteTx, id: WebhookEndpointId) -> StoreResult<Option<WebhookEndpoint>> {
    tx.query_opt(
        concat!("SELECT ", endpoint_columns!(), " FROM webhook_endpoints WHERE id = ?1"),
        params![codec::id_text(id.as_uuid())],
        endpoint,
    )
}

fn owner_text(owner: EndpointOwner) -> Option<String> {
    match owner {
        EndpointOwner::Platform => None,
        EndpointOwner::Merchant(user) => Some(codec::id_text(user.as_uuid())),
    }
}

/// The selection as a JSON array of strings.
fn event_types_json(selection: &EventSelection) -> StoreResult<String> {
    serde_json::to_string(&selection.to_list()).map_err(|error| StoreError::Unexpected(Box::new(error)))
}

/// What a delivery's row holds besides its identity, as stored values.
struct DeliveryState {
    status: &'static str,
    attempts: i64,
    next_attempt_at: i64,
    last_attempt_at: Option<i64>,
    last_status_code: Option<i64>,
    last_latency_ms: Option<i64>,
    last_response: Option<String>,
    queued_at: i64,
    updated_at: i64,
}

impl DeliveryState {
    fn of(delivery: &WebhookDelivery) -> DeliveryState {
        let last = delivery.last_attempt.as_ref();
        DeliveryState {
            status: delivery.status.as_str(),
            attempts: i64::from(delivery.attempts),
            next_attempt_at: codec::nanos(delivery.next_attempt_at),
            last_attempt_at: last.map(|attempt| codec::nanos(attempt.at)),
            last_status_code: last.and_then(|attempt| attempt.status_code).map(i64::from),
            last_latency_ms: last.map(|attempt| i64::from(attempt.latency_ms)),
            last_response: last.map(|attempt| attempt.response.clone()),
            queued_at: codec::nanos(delivery.queued_at),
            updated_at: codec::nanos(delivery.updated_at),
        }
    }
}

impl WebhookRepository for SqliteTx {
    async fn insert_webhook_endpoint(&mut self, endpoint: &WebhookEndpoint) -> StoreResult<()> {
        let retiring = endpoint.retiring.as_ref();
        self.execute(
            "INSERT INTO webhook_endpoints (id, url, event_types, description, enabled, secret, retiring_secret, retiring_until, \
                 failing_since, disabled_reason, updated_at, owner_user_id, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            params![
                codec::id_text(endpoint.id.as_uuid()),
                endpoint.url.as_str(),
                event_types_json(&endpoint.events)?,
                endpoint.description,
                endpoint.enabled,
                endpoint.secret,
                retiring.map(|retiring| retiring.secret.as_str()),
                retiring.map(|retiring| codec::nanos(retiring.until)),
                codec::nanos_opt(endpoint.failing_since),
                endpoint.disabled_reason,
                codec::nanos(endpoint.updated_at),
                owner_text(endpoint.owner),
                codec::nanos(endpoint.created_at),
            ],
        )?;
        Ok(())
    }

    async fn update_webhook_endpoint(&mut self, endpoint: &WebhookEndpoint) -> StoreResult<()> {
        // The owner and the registration time never change; neither does the hold, which is the
        // deliverer's.
        let retiring = endpoint.retiring.as_ref();
        self.execute_one(
            "UPDATE webhook_endpoints SET url = ?2, event_types = ?3, description = ?4, enabled = ?5, secret = ?6, \
                 retiring_secret = ?7, retiring_until = ?8, failing_since = ?9, disabled_reason = ?10, updated_at = ?11 \
             WHERE id = ?1",
            params![
                codec::id_text(endpoint.id.as_uuid()),
                endpoint.url.as_str(),
                event_types_json(&endpoint.events)?,
                endpoint.description,
                endpoint.enabled,
                endpoint.secret,
                retiring.map(|retiring| retiring.secret.as_str()),
                retiring.map(|retiring| codec::nanos(retiring.until)),
                codec::nanos_opt(endpoint.failing_since),
                endpoint.disabled_reason,
                codec::nanos(endpoint.updated_at),
            ],
            "webhook endpoint",
        )
    }

    async fn delete_webhook_endpoint(&mut self, id: WebhookEndpointId) -> StoreResult<()> {
        // Its deliveries go with it (ON DELETE CASCADE; the store turns foreign keys on).
        self.execute_one(
            "DELETE FROM webhook_endpoints WHERE id = ?1",
            params![codec::id_text(id.as_uuid())],
            "webhook endpoint",
        )
    }

    async fn find_webhook_endpoint(&mut self, id: WebhookEndpointId) -> StoreResult<Option<WebhookEndpoint>> {
        endpoint_by_id(self, id)
    }

    async fn lock_webhook_endpoint(&mut self, id: WebhookEndpointId) -> StoreResult<Option<WebhookEndpoint>> {
        // The transaction holds the only connection: what it reads stays true until it ends.
        endpoint_by_id(self, id)
    }

    async fn list_webhook_endpoints(&mut self, filter: EndpointFilter, page: &PageRequest) -> StoreResult<Page<WebhookEndpoint>> {
        let (at, id) = codec::position_after(page);
        // `?4` false: every owner; true: the owner `?5` (NULL for the platform, which `IS` matches).
        let (only_owner, owner) = match filter {
            EndpointFilter::All => (false, None),
            EndpointFilter::Owner(owner) => (true, owner_text(owner)),
        };
        let rows = self.query(
            concat!(
                "SELECT ",
                endpoint_columns!(),
                " FROM webhook_endpoints WHERE (created_at, id) < (?1, ?2) AND (NOT ?4 OR owner_user_id IS ?5) \
                 ORDER BY created_at DESC, id DESC LIMIT ?3"
            ),
            params![at, id, codec::limit_plus_one(page.limit), only_owner, owner],
            endpoint,
        )?;
        Ok(Page::from_rows(rows, page.limit, |endpoint| Cursor::Position {
            at: endpoint.created_at,
            id: endpoint.id.as_uuid(),
        }))
    }

    async fn enabled_webhook_endpoints(&mut self) -> StoreResult<Vec<WebhookEndpoint>> {
        self.query(
            concat!("SELECT ", endpoint_columns!(), " FROM webhook_endpoints WHERE enabled ORDER BY id"),
            [],
            endpoint,
        )
    }

    async fn insert_webhook_deliveries(&mut self, deliveries: &[WebhookDelivery]) -> StoreResult<()> {
        for delivery in deliveries {
            let state = DeliveryState::of(delivery);
            // A pair recorded before is left as it is; any other refusal is an error.
            self.execute(
                "INSERT INTO webhook_deliveries (id, event_id, endpoint_id, event_type, status, attempts, next_attempt_at, \
                     last_attempt_at, last_status_code, last_latency_ms, last_response, queued_at, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) \
                 ON CONFLICT (event_id, endpoint_id) DO NOTHING",
                params![
                    codec::id_text(delivery.id.as_uuid()),
                    codec::id_text(delivery.event_id.as_uuid()),
                    codec::id_text(delivery.endpoint_id.as_uuid()),
                    delivery.event_type,
                    state.status,
                    state.attempts,
                    state.next_attempt_at,
                    state.last_attempt_at,
                    state.last_status_code,
                    state.last_latency_ms,
                    state.last_response,
                    state.queued_at,
                    codec::nanos(delivery.created_at),
                    state.updated_at,
                ],
            )?;
        }
        Ok(())
    }

    async fn update_webhook_deliveries(&mut self, deliveries: &[WebhookDelivery]) -> StoreResult<()> {
        // One cached statement per delivery: in one local transaction that costs what a batch
        // would, and each must find its row.
        for delivery in deliveries {
            let state = DeliveryState::of(delivery);
            self.execute_one(
                "UPDATE webhook_deliveries SET status = ?2, attempts = ?3, next_attempt_at = ?4, last_attempt_at = ?5, \
                     last_status_code = ?6, last_latency_ms = ?7, last_response = ?8, queued_at = ?9, updated_at = ?10 \
                 WHERE id = ?1",
                params![
                    codec::id_text(delivery.id.as_uuid()),
                    state.status,
                    state.attempts,
                    state.next_attempt_at,
                    state.last_attempt_at,
                    state.last_status_code,
                    state.last_latency_ms,
                    state.last_response,
                    state.queued_at,
                    state.updated_at,
                ],
                "webhook delivery",
            )?;
        }
        Ok(())
    }

    async fn lock_webhook_delivery(&mut self, id: WebhookDeliveryId) -> StoreResult<Option<WebhookDelivery>> {
        self.query_opt(
            concat!("SELECT ", delivery_columns!(), " FROM webhook_deliveries WHERE id = ?1"),
            params![codec::id_text(id.as_uuid())],
            delivery,
        )
    }

    async fn claim_webhook_endpoints(
        &mut self,
        now: OffsetDateTime,
        until: OffsetDateTime,
        limit: usize,
    ) -> StoreResult<Vec<WebhookEndpoint>> {
        let mut claimed = self.query(
            concat!(
                "UPDATE webhook_endpoints SET held_until = ?2 WHERE id IN ( \
                     SELECT e.id FROM webhook_endpoints e \
                     WHERE e.enabled AND (e.held_until IS NULL OR e.held_until <= ?1) \
                       AND EXISTS (SELECT 1 FROM webhook_deliveries d \
                                   WHERE d.endpoint_id = e.id AND d.status = 'pending' AND d.next_attempt_at <= ?1) \
                     ORDER BY e.id LIMIT ?3) \
                 RETURNING ",
                endpoint_columns!()
            ),
            params![codec::nanos(now), codec::nanos(until), codec::limit(limit)],
            endpoint,
        )?;
        // RETURNING promises no order.
        claimed.sort_by_key(|endpoint| endpoint.id);
        Ok(claimed)
    }

    async fn hold_webhook_endpoint(&mut self, id: WebhookEndpointId, until: Option<OffsetDateTime>) -> StoreResult<()> {
        // An endpoint deleted meanwhile has no hold to change: nothing to report.
        self.execute(
            "UPDATE webhook_endpoints SET held_until = ?2 WHERE id = ?1",
            params![codec::id_text(id.as_uuid()), codec::nanos_opt(until)],
        )?;
        Ok(())
    }

    async fn due_webhook_deliveries(
        &mut self,
        endpoint: WebhookEndpointId,
        now: OffsetDateTime,
        limit: usize,
    ) -> StoreResult<Vec<WebhookDelivery>> {
        self.query(
            concat!(
                "SELECT ",
                delivery_columns!(),
                " FROM webhook_deliveries WHERE endpoint_id = ?1 AND status = 'pending' AND next_attempt_at <= ?2 \
                 ORDER BY queued_at, id LIMIT ?3"
            ),
            params![codec::id_text(endpoint.as_uuid()), codec::nanos(now), codec::limit(limit)],
            delivery,
        )
    }

    async fn list_webhook_deliveries(
        &mut self,
        endpoint: WebhookEndpointId,
        filter: &DeliveryFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<WebhookDelivery>> {
        let (at, id) = codec::position_after(page);
        let rows = self.query(
            concat!(
                "SELECT ",
                delivery_columns!(),
                " FROM webhook_deliveries WHERE endpoint_id = ?1 AND (created_at, id) < (?2, ?3) \
                   AND (?5 IS NULL OR status = ?5) AND (?6 IS NULL OR event_type = ?6) \
                 ORDER BY created_at DESC, id DESC LIMIT ?4"
            ),
            params![
                codec::id_text(endpoint.as_uuid()),
                at,
                id,
                codec::limit_plus_one(page.limit),
                filter.status.map(DeliveryStatus::as_str),
                filter.event_type,
            ],
            delivery,
        )?;
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
        // The endpoint's deliveries are few beside the outbox: walk them and look each event up.
        let requeued = self.execute(
            "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = ?4, queued_at = ?4, updated_at = ?4 \
             WHERE endpoint_id = ?1 \
               AND EXISTS (SELECT 1 FROM outbox_events e \
                           WHERE e.id = webhook_deliveries.event_id AND e.occurred_at >= ?2 AND e.occurred_at < ?3)",
            params![
                codec::id_text(endpoint.as_uuid()),
                codec::nanos(from),
                codec::nanos(to),
                codec::nanos(at)
            ],
        )?;
        Ok(requeued as u64)
    }

    async fn webhook_delivery_backlog(&mut self) -> StoreResult<DeliveryBacklog> {
        let (queued, retrying) = self.query_one(
            "SELECT count(*) FILTER (WHERE last_attempt_at IS NULL), count(*) FILTER (WHERE last_attempt_at IS NOT NULL) \
             FROM webhook_deliveries WHERE status = 'pending'",
            [],
            |row| Ok((codec::get::<i64>(row, 0)?, codec::get::<i64>(row, 1)?)),
        )?;
        Ok(DeliveryBacklog {
            queued: u64::try_from(queued).map_err(codec::corrupt)?,
            retrying: u64::try_from(retrying).map_err(codec::corrupt)?,
        })
    }

    async fn prune_settled_webhook_deliveries(&mut self, before: OffsetDateTime, limit: usize) -> StoreResult<u64> {
        let pruned = self.execute(
            "DELETE FROM webhook_deliveries WHERE id IN ( \
                 SELECT id FROM webhook_deliveries WHERE status <> 'pending' AND updated_at < ?1 ORDER BY updated_at LIMIT ?2)",
            params![codec::nanos(before), codec::limit(limit)],
        )?;
        Ok(pruned as u64)
    }
}
