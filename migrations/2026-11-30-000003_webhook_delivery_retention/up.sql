-- Deliveries that ended are kept 30 days (domain::webhook::DELIVERY_HISTORY_KEPT); the job prunes
-- them in batches, oldest first found through this index.
CREATE INDEX webhook_deliveries_settled ON webhook_deliveries (updated_at) WHERE status <> 'pending';
