UPDATE refund_requests SET status = 'approved' WHERE status = 'refund_failed';
ALTER TABLE refund_requests DROP CONSTRAINT refund_requests_refund_named;
ALTER TABLE refund_requests ADD CONSTRAINT refund_requests_check1 CHECK ((status = 'approved') = (refund_id IS NOT NULL));
ALTER TABLE refund_requests DROP CONSTRAINT refund_requests_status_check;
ALTER TABLE refund_requests ADD CONSTRAINT refund_requests_status_check
    CHECK (status IN ('open', 'approved', 'declined', 'withdrawn'));
