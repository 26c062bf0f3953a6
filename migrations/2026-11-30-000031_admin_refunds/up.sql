-- The admins' refund listing (GET /api/v1/admin/refunds), newest first: all of them, or one
-- merchant's.
CREATE INDEX refunds_newest ON refunds (created_at DESC, id DESC);
CREATE INDEX refunds_by_merchant ON refunds (merchant_id, created_at DESC, id DESC);
