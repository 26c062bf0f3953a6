-- An endpoint's due deliveries are taken oldest first; with thousands pending for one endpoint
-- (the platform's, under load), sorting them all at every turn cost more than delivering them.
CREATE INDEX webhook_deliveries_queue ON webhook_deliveries (endpoint_id, queued_at, id) WHERE status = 'pending';
