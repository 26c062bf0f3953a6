-- An approved request whose card refund the provider refused says so (`refund_failed`), still
-- naming the refund.
ALTER TABLE refund_requests DROP CONSTRAINT refund_requests_status_check;
ALTER TABLE refund_requests ADD CONSTRAINT refund_requests_status_check
    CHECK (status IN ('open', 'approved', 'declined', 'withdrawn', 'refund_failed'));
ALTER TABLE refund_requests DROP CONSTRAINT refund_requests_check1;
ALTER TABLE refund_requests ADD CONSTRAINT refund_requests_refund_named
    CHECK ((status IN ('approved', 'refund_failed')) = (refund_id IS NOT NULL));
