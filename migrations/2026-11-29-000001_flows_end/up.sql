-- Every multi-step flow ends: done exactly once, retried by a job until done, or stuck where an
-- admin sees it.

-- A request of several steps (card checkout, top-up, card refund) records under its idempotency
-- key what it has committed so far, so a retry resumes there instead of starting again.
ALTER TABLE idempotency_keys ADD COLUMN recovery_point text;

-- A refund made outside the API (the provider's dashboard) was asked for by nobody here.
ALTER TABLE refunds ALTER COLUMN requested_by DROP NOT NULL;
CREATE INDEX refunds_by_payment ON refunds (payment_id) WHERE payment_id IS NOT NULL;

-- Provider calls a flow still owes (a refund to send, a late payment to give back), tried again
-- with backoff until done, or stuck with the last error for an admin. One row per task.
CREATE TABLE follow_ups (
    kind            text NOT NULL CHECK (kind IN ('refund', 'late_success_refund', 'recover_shortfall', 'outside_top_up_refund')),
    subject_id      uuid NOT NULL,
    state           text NOT NULL CHECK (state IN ('pending', 'done', 'stuck')),
    attempts        integer NOT NULL CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL,
    last_error      text,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    CONSTRAINT follow_up PRIMARY KEY (kind, subject_id)
);

CREATE INDEX follow_ups_due ON follow_ups (next_attempt_at) WHERE state = 'pending';
CREATE INDEX follow_ups_by_state ON follow_ups (state, updated_at DESC, subject_id DESC);

-- Holds expire; the job releases them. Holds placed before this migration get a week.
ALTER TABLE holds ADD COLUMN expires_at timestamptz;
UPDATE holds SET expires_at = created_at + interval '7 days';
ALTER TABLE holds ALTER COLUMN expires_at SET NOT NULL;
CREATE INDEX holds_pending_by_expiry ON holds (expires_at) WHERE status = 'pending';

-- Active calls, for the job that extends their authorisation or ends them.
CREATE INDEX call_sessions_active ON call_sessions (started_at) WHERE status = 'active';

-- One row per committed transaction that wrote anything, inserted in the transaction itself. When
-- the connection dies while COMMIT is in flight, the server looks the id up on a fresh connection
-- (inserting it there, which waits for the original transaction and fences it out) to learn
-- whether the transaction committed. Rows older than a day are pruned.
CREATE TABLE commit_markers (
    id         uuid PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- A deleted product is archived: never on sale again and gone from the API, while the orders
-- that sold it keep their copy of its name and price.
ALTER TABLE products ADD COLUMN archived_at timestamptz;
