DROP INDEX webhook_deliveries_queue;
