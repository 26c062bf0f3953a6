-- The inbox keeps, beside each provider event's id, what admins need to read it back
-- (GET /api/v1/admin/webhook-events): an id of ours, the payment it names and what applying it
-- did. Events received before this migration get an id and no outcome.
ALTER TABLE processed_webhook_events
    ADD COLUMN id uuid NOT NULL DEFAULT gen_random_uuid(),
    ADD COLUMN payment_id uuid,
    ADD COLUMN provider_reference text,
    ADD COLUMN outcome text CHECK (outcome IN ('applied', 'ignored', 'late_success', 'refused')),
    ADD COLUMN outcome_detail text;
ALTER TABLE processed_webhook_events ALTER COLUMN id DROP DEFAULT;
CREATE UNIQUE INDEX processed_webhook_events_id ON processed_webhook_events (id);
CREATE INDEX processed_webhook_events_newest ON processed_webhook_events (received_at DESC, id DESC);
CREATE INDEX processed_webhook_events_by_payment ON processed_webhook_events (payment_id, received_at DESC, id DESC)
    WHERE payment_id IS NOT NULL;
