-- Metered call sessions, billed per started minute from funds held on the caller's wallet.
--
-- `hold_id` is not a foreign key: the storage port records a call on its own, and the use case
-- writes the hold in the same database transaction.
CREATE TABLE call_sessions (
    id                 uuid PRIMARY KEY,
    caller_id          uuid NOT NULL REFERENCES users (id),
    receiver_id        uuid NOT NULL REFERENCES users (id),
    currency           currency_code NOT NULL,
    rate_per_minute    bigint NOT NULL CHECK (rate_per_minute > 0),
    hold_id            uuid NOT NULL,
    authorized_minutes integer NOT NULL CHECK (authorized_minutes > 0),
    status             text NOT NULL CHECK (status IN ('active', 'ended')),
    started_at         timestamptz NOT NULL,
    ended_at           timestamptz,
    billed_minutes     integer NOT NULL CHECK (billed_minutes >= 0),
    charged            bigint NOT NULL CHECK (charged >= 0),
    CONSTRAINT call_sessions_two_parties CHECK (caller_id <> receiver_id)
);

-- A user's calls, made or received, newest first: one index per side, merged by the query.
CREATE INDEX call_sessions_by_caller ON call_sessions (caller_id, started_at DESC, id DESC);
CREATE INDEX call_sessions_by_receiver ON call_sessions (receiver_id, started_at DESC, id DESC);
