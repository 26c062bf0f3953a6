-- A user's own withdrawals, newest first (GET /api/v1/withdrawals).
CREATE INDEX withdrawals_by_user ON withdrawals (user_id, created_at DESC, id DESC);
