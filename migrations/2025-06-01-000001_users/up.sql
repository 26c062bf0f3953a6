-- Users and their refresh tokens.
--
-- E-mail addresses arrive normalised (trimmed, lower case) from the domain, so uniqueness is on
-- that form. The unique constraints are named because the adapter reports a broken one by name
-- (`users_email`, `refresh_tokens_hash`) and the application matches on it.

CREATE TABLE users (
    id            uuid PRIMARY KEY,
    email         text NOT NULL,
    password_hash text NOT NULL,
    role          text NOT NULL CHECK (role IN ('customer', 'merchant', 'admin')),
    created_at    timestamptz NOT NULL,
    CONSTRAINT users_email UNIQUE (email)
);

-- Only a hash of each refresh secret is stored. Tokens of one login form a family; a reused token
-- revokes its whole family, hence the index on the family of tokens still valid.
CREATE TABLE refresh_tokens (
    id         uuid PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id),
    family_id  uuid NOT NULL,
    token_hash text NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    revoked_at timestamptz,
    CONSTRAINT refresh_tokens_hash UNIQUE (token_hash)
);

CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id) WHERE revoked_at IS NULL;
