-- Outbound webhooks: the endpoints merchants and admins register, and one delivery per event and
-- endpoint. The relay claims an endpoint by setting `held_until` (with SKIP LOCKED), so no two
-- instances deliver to one endpoint at once.
CREATE TABLE webhook_endpoints (
    id              uuid PRIMARY KEY,
    -- NULL: the platform's (its admins'), which receives every event.
    owner_user_id   uuid REFERENCES users (id),
    url             text NOT NULL CHECK (char_length(url) BETWEEN 1 AND 2048),
    -- '{*}' for every type.
    event_types     text[] NOT NULL CHECK (cardinality(event_types) > 0),
    description     text NOT NULL CHECK (char_length(description) <= 500),
    enabled         boolean NOT NULL,
    secret          text NOT NULL,
    retiring_secret text,
    retiring_until  timestamptz,
    failing_since   timestamptz,
    disabled_reason text,
    held_until      timestamptz,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    CONSTRAINT webhook_endpoints_retiring CHECK ((retiring_secret IS NULL) = (retiring_until IS NULL))
);

CREATE INDEX webhook_endpoints_by_owner ON webhook_endpoints (owner_user_id, created_at DESC, id DESC);

CREATE TABLE webhook_deliveries (
    id                uuid PRIMARY KEY,
    event_id          uuid NOT NULL REFERENCES outbox_events (id),
    endpoint_id       uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_type        text NOT NULL,
    status            text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts          integer NOT NULL CHECK (attempts >= 0),
    next_attempt_at   timestamptz NOT NULL,
    last_attempt_at   timestamptz,
    last_status_code  integer,
    last_latency_ms   integer,
    last_response     text,
    queued_at         timestamptz NOT NULL,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    CONSTRAINT webhook_deliveries_once UNIQUE (event_id, endpoint_id)
);

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (endpoint_id, next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (endpoint_id, created_at DESC, id DESC);
