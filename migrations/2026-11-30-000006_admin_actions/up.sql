-- Admins suspend and reactivate users: a suspended user cannot sign in or act on the API, and
-- their refresh tokens are revoked. Every admin action is recorded with the acting admin, what it
-- was done to, why and when.
ALTER TABLE users ADD COLUMN suspended_at timestamptz;

CREATE TABLE admin_actions (
    id       uuid PRIMARY KEY,
    admin_id uuid NOT NULL REFERENCES users (id),
    kind     text NOT NULL CHECK (kind IN ('user.suspended', 'user.reactivated', 'wallet.adjusted')),
    subject  text NOT NULL,
    reason   text NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    details  text NOT NULL,
    at       timestamptz NOT NULL
);

CREATE INDEX admin_actions_newest ON admin_actions (at DESC, id DESC);
CREATE INDEX admin_actions_by_subject ON admin_actions (subject, at DESC, id DESC);
CREATE INDEX refresh_tokens_live_by_user ON refresh_tokens (user_id) WHERE revoked_at IS NULL;
