-- Idempotency keys, the inbox of processed webhook events and the outbox of domain events.

-- One row per (principal, key): `principal` is the caller's user id or 'anonymous'. A key is
-- claimed `in_progress` with a lease (`locked_until`), then completed with the response to replay.
CREATE TABLE idempotency_keys (
    principal         text NOT NULL,
    key               text NOT NULL,
    fingerprint       text NOT NULL,
    state             text NOT NULL CHECK (state IN ('in_progress', 'completed')),
    locked_until      timestamptz,
    response_status   integer,
    response_body     bytea,
    response_location text,
    created_at        timestamptz NOT NULL,
    completed_at      timestamptz,
    CONSTRAINT idempotency_key PRIMARY KEY (principal, key),
    CONSTRAINT idempotency_keys_state CHECK (
        (state = 'in_progress' AND locked_until IS NOT NULL AND response_status IS NULL)
        OR (state = 'completed' AND response_status IS NOT NULL AND response_body IS NOT NULL))
);

-- A provider's event id is recorded in the transaction of the event's effect, so a redelivered
-- event finds it and has no effect.
CREATE TABLE processed_webhook_events (
    provider    text NOT NULL,
    event_id    text NOT NULL,
    event_type  text NOT NULL,
    received_at timestamptz NOT NULL,
    CONSTRAINT processed_webhook_event PRIMARY KEY (provider, event_id)
);

-- Events written in the transaction of their cause and published afterwards. `sequence` keeps
-- the order they were written in; publishers take the oldest unpublished ones.
CREATE TABLE outbox_events (
    id           uuid PRIMARY KEY,
    sequence     bigserial NOT NULL,
    event_type   text NOT NULL,
    payload      jsonb NOT NULL,
    occurred_at  timestamptz NOT NULL,
    published_at timestamptz
);

CREATE INDEX outbox_events_unpublished ON outbox_events (sequence) WHERE published_at IS NULL;
