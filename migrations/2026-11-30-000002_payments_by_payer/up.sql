-- A buyer's own payments and top-ups, newest first (GET /api/v1/payments).
CREATE INDEX payments_by_payer ON payments (payer_id, created_at DESC, id DESC);
