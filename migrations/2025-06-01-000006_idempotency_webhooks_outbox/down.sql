DROP TABLE outbox_events;
DROP TABLE processed_webhook_events;
DROP TABLE idempotency_keys;
