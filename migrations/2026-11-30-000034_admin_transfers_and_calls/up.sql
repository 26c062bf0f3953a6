-- The admins' transfer and call listings (GET /api/v1/admin/transfers, /admin/calls), newest first;
-- a user's, as sender or recipient (caller or receiver), from one index per side.
CREATE INDEX transfers_newest ON transfers (created_at DESC, id DESC);
CREATE INDEX transfers_by_sender ON transfers (from_user_id, created_at DESC, id DESC);
CREATE INDEX transfers_by_recipient ON transfers (to_user_id, created_at DESC, id DESC);
CREATE INDEX call_sessions_newest ON call_sessions (started_at DESC, id DESC);
