-- The admins' wallet listing (GET /api/v1/admin/wallets), newest first; one user's wallets use
-- wallets_user_currency.
CREATE INDEX wallets_newest ON wallets (created_at DESC, id DESC);
