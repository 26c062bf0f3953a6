ALTER TABLE products DROP COLUMN archived_at;
DROP TABLE commit_markers;
DROP INDEX call_sessions_active;
DROP INDEX holds_pending_by_expiry;
ALTER TABLE holds DROP COLUMN expires_at;
DROP TABLE follow_ups;
DROP INDEX refunds_by_payment;
ALTER TABLE refunds ALTER COLUMN requested_by SET NOT NULL;
ALTER TABLE idempotency_keys DROP COLUMN recovery_point;
