//! Users, the admins' audit trail and refresh tokens.
//!
//! A taken e-mail address or token hash is refused with `ON CONFLICT DO NOTHING` on that very
//! constraint and reported as `Duplicate` under the PostgreSQL store's name for it, which use cases
//! match on; the transaction goes on as if the insert had not been tried.

use application::pagination::{Cursor, Page, PageRequest};
use application::ports::records::RefreshToken;
use application::ports::store::{AdminAuditRepository, RefreshTokenRepository, StoreError, StoreResult, UserFilter, UserRepository};
use domain::ids::{AdminActionId, RefreshTokenId, TokenFamilyId, UserId};
use domain::user::{AdminAction, AdminActionKind, Email, PasswordHash, Role, User};
use rusqlite::{Row, params};
use time::OffsetDateTime;

use crate::SqliteTx;
use crate::codec;

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    id            TEXT NOT NULL PRIMARY KEY,
    email         TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('customer', 'merchant', 'admin')),
    created_at    INTEGER NOT NULL,
    suspended_at  INTEGER,
    CONSTRAINT users_email UNIQUE (email)
) STRICT;
-- The admins' list, newest first.
CREATE INDEX IF NOT EXISTS users_newest ON users (created_at DESC, id DESC);

-- Only a hash of each refresh secret is stored. A reused token revokes its family, a suspension
-- every token of the user: hence the indexes on the tokens still valid.
CREATE TABLE IF NOT EXISTS refresh_tokens (
    id         TEXT NOT NULL PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id),
    family_id  TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    revoked_at INTEGER,
    CONSTRAINT refresh_tokens_hash UNIQUE (token_hash)
) STRICT;
CREATE INDEX IF NOT EXISTS refresh_tokens_by_family ON refresh_tokens (family_id) WHERE revoked_at IS NULL;
CREATE INDEX IF NOT EXISTS refresh_tokens_live_by_user ON refresh_tokens (user_id) WHERE revoked_at IS NULL;

CREATE TABLE IF NOT EXISTS admin_actions (
    id       TEXT NOT NULL PRIMARY KEY,
    admin_id TEXT NOT NULL REFERENCES users (id),
    kind     TEXT NOT NULL CHECK (kind IN ('user.suspended', 'user.reactivated', 'wallet.adjusted', 'order.cancelled',
                                           'order.refunded', 'withdrawal.approved', 'withdrawal.rejected',
                                           'withdrawal.marked_paid', 'withdrawal.marked_failed')),
    subject  TEXT NOT NULL,
    reason   TEXT NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    details  TEXT NOT NULL,
    at       INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS admin_actions_newest ON admin_actions (at DESC, id DESC);
CREATE INDEX IF NOT EXISTS admin_actions_by_subject ON admin_actions (subject, at DESC, id DESC);
";

/// The columns `user_from_row` reads, in its order.
const USER_COLUMNS: &str = "id, email, password_hash, role, created_at, suspended_at";

fn user_from_row(row: &Row<'_>) -> StoreResult<User> {
    let email: String = codec::get(row, 1)?;
    let role: String = codec::get(row, 3)?;
    Ok(User {
        id: UserId::from_uuid(codec::uuid(row, 0)?),
        email: Email::parse(&email).map_err(codec::corrupt)?,
        password_hash: PasswordHash::new(codec::get(row, 2)?),
        role: codec::word("role", &role, Role::parse)?,
        created_at: codec::instant(row, 4)?,
        suspended_at: codec::instant_opt(row, 5)?,
    })
}

impl UserRepository for SqliteTx {
    async fn insert_user(&mut self, user: &User) -> StoreResult<()> {
        let inserted = self.execute(
            "INSERT INTO users (id, email, password_hash, role, created_at, suspended_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
             ON CONFLICT (email) DO NOTHING",
            params![
                codec::id_text(user.id.as_uuid()),
                user.email.as_str(),
                user.password_hash.as_str(),
                user.role.as_str(),
                codec::nanos(user.created_at),
                codec::nanos_opt(user.suspended_at),
            ],
        )?;
        match inserted {
            0 => Err(StoreError::Duplicate("users_email".to_owned())),
            _ => Ok(()),
        }
    }

    async fn find_user(&mut self, id: UserId) -> StoreResult<Option<User>> {
        self.query_opt(
            &format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"),
            params![codec::id_text(id.as_uuid())],
            user_from_row,
        )
    }

    async fn find_user_by_email(&mut self, email: &Email) -> StoreResult<Option<User>> {
        self.query_opt(
            &format!("SELECT {USER_COLUMNS} FROM users WHERE email = ?1"),
            params![email.as_str()],
            user_from_row,
        )
    }

    async fn list_users(&mut self, filter: &UserFilter, page: &PageRequest) -> StoreResult<Page<User>> {
        let (at, id) = codec::position_after(page);
        let users = self.query(
            &format!(
                "SELECT {USER_COLUMNS} FROM users \
                 WHERE (created_at, id) < (?1, ?2) AND (?4 IS NULL OR role = ?4) \
                   AND (?5 IS NULL OR (suspended_at IS NOT NULL) = ?5) AND (?6 IS NULL OR email = ?6) \
                   AND (?7 IS NULL OR created_at >= ?7) AND (?8 IS NULL OR created_at < ?8) \
                 ORDER BY created_at DESC, id DESC LIMIT ?3"
            ),
            params![
                at,
                id,
                codec::limit_plus_one(page.limit),
                filter.role.map(Role::as_str),
                filter.suspended,
                filter.email.as_ref().map(Email::as_str),
                codec::nanos_opt(filter.created.from),
                codec::nanos_opt(filter.created.to),
            ],
            user_from_row,
        )?;
        Ok(Page::from_rows(users, page.limit, |user| Cursor::Position {
            at: user.created_at,
            id: user.id.as_uuid(),
        }))
    }

    async fn set_user_suspended(&mut self, id: UserId, at: Option<OffsetDateTime>) -> StoreResult<()> {
        self.execute_one(
            "UPDATE users SET suspended_at = ?2 WHERE id = ?1",
            params![codec::id_text(id.as_uuid()), codec::nanos_opt(at)],
            "user",
        )
    }
}

fn admin_action_from_row(row: &Row<'_>) -> StoreResult<AdminAction> {
    let kind: String = codec::get(row, 2)?;
    Ok(AdminAction {
        id: AdminActionId::from_uuid(codec::uuid(row, 0)?),
        admin_id: UserId::from_uuid(codec::uuid(row, 1)?),
        kind: codec::word("admin action", &kind, AdminActionKind::parse)?,
        subject: codec::get(row, 3)?,
        reason: codec::get(row, 4)?,
        details: codec::get(row, 5)?,
        at: codec::instant(row, 6)?,
    })
}

impl AdminAuditRepository for SqliteTx {
    async fn record_admin_action(&mut self, action: &AdminAction) -> StoreResult<()> {
        self.execute_one(
            "INSERT INTO admin_actions (id, admin_id, kind, subject, reason, details, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                codec::id_text(action.id.as_uuid()),
                codec::id_text(action.admin_id.as_uuid()),
                action.kind.as_str(),
                action.subject,
                action.reason,
                action.details,
                codec::nanos(action.at),
            ],
            "admin action",
        )
    }

    async fn list_admin_actions(&mut self, subject: Option<&str>, page: &PageRequest) -> StoreResult<Page<AdminAction>> {
        let (at, id) = codec::position_after(page);
        let actions = self.query(
            "SELECT id, admin_id, kind, subject, reason, details, at FROM admin_actions \
             WHERE (?4 IS NULL OR subject = ?4) AND (at, id) < (?1, ?2) ORDER BY at DESC, id DESC LIMIT ?3",
            params![at, id, codec::limit_plus_one(page.limit), subject],
            admin_action_from_row,
        )?;
        Ok(Page::from_rows(actions, page.limit, |action| Cursor::Position {
            at: action.at,
            id: action.id.as_uuid(),
        }))
    }
}

fn refresh_token_from_row(row: &Row<'_>) -> StoreResult<RefreshToken> {
    Ok(RefreshToken {
        id: RefreshTokenId::from_uuid(codec::uuid(row, 0)?),
        user_id: UserId::from_uuid(codec::uuid(row, 1)?),
        family_id: TokenFamilyId::from_uuid(codec::uuid(row, 2)?),
        token_hash: codec::get(row, 3)?,
        created_at: codec::instant(row, 4)?,
        expires_at: codec::instant(row, 5)?,
        used_at: codec::instant_opt(row, 6)?,
        revoked_at: codec::instant_opt(row, 7)?,
    })
}

impl RefreshTokenRepository for SqliteTx {
    async fn insert_refresh_token(&mut self, token: &RefreshToken) -> StoreResult<()> {
        let inserted = self.execute(
            "INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, created_at, expires_at, used_at, revoked_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (token_hash) DO NOTHING",
            params![
                codec::id_text(token.id.as_uuid()),
                codec::id_text(token.user_id.as_uuid()),
                codec::id_text(token.family_id.as_uuid()),
                token.token_hash,
                codec::nanos(token.created_at),
                codec::nanos(token.expires_at),
                codec::nanos_opt(token.used_at),
                codec::nanos_opt(token.revoked_at),
            ],
        )?;
        match inserted {
            0 => Err(StoreError::Duplicate("refresh_tokens_hash".to_owned())),
            _ => Ok(()),
        }
    }

    async fn lock_refresh_token(&mut self, token_hash: &str) -> StoreResult<Option<RefreshToken>> {
        self.query_opt(
            "SELECT id, user_id, family_id, token_hash, created_at, expires_at, used_at, revoked_at \
             FROM refresh_tokens WHERE token_hash = ?1",
            params![token_hash],
            refresh_token_from_row,
        )
    }

    /// Writes what changes over a token's life: its use, revocation and expiry.
    async fn update_refresh_token(&mut self, token: &RefreshToken) -> StoreResult<()> {
        self.execute_one(
            "UPDATE refresh_tokens SET used_at = ?2, revoked_at = ?3, expires_at = ?4 WHERE id = ?1",
            params![
                codec::id_text(token.id.as_uuid()),
                codec::nanos_opt(token.used_at),
                codec::nanos_opt(token.revoked_at),
                codec::nanos(token.expires_at),
            ],
            "refresh token",
        )
    }

    async fn revoke_token_family(&mut self, family: TokenFamilyId, at: OffsetDateTime) -> StoreResult<()> {
        self.execute(
            "UPDATE refresh_tokens SET revoked_at = ?2 WHERE family_id = ?1 AND revoked_at IS NULL",
            params![codec::id_text(family.as_uuid()), codec::nanos(at)],
        )?;
        Ok(())
    }

    async fn revoke_user_tokens(&mut self, user: UserId, at: OffsetDateTime) -> StoreResult<()> {
        self.execute(
            "UPDATE refresh_tokens SET revoked_at = ?2 WHERE user_id = ?1 AND revoked_at IS NULL",
            params![codec::id_text(user.as_uuid()), codec::nanos(at)],
        )?;
        Ok(())
    }
}
