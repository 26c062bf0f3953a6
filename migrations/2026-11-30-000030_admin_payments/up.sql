-- The admins' payment listing (GET /api/v1/admin/payments), newest first: all of them, or those
-- in one status (a payer's use payments_by_payer).
CREATE INDEX payments_newest ON payments (created_at DESC, id DESC);
CREATE INDEX payments_by_status ON payments (status, created_at DESC, id DESC);
