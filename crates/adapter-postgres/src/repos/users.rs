//! Users and refresh tokens.
//!
//! Inserts that may collide with a unique e-mail address or token hash use `ON CONFLICT DO
//! NOTHING` and report the collision as `Duplicate`, rather than letting the statement fail: a
//! failed statement would abort the whole PostgreSQL transaction, while the port promises (like
//! the in-memory store) that a refused insert leaves the transaction usable.

use application::auth::RefreshToken;
use application::pagination::{Cursor, Page, PageRequest};
use application::ports::store::{AdminAuditRepository, RefreshTokenRepository, StoreError, StoreResult, UserFilter, UserRepository};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Bool, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use domain::ids::{AdminActionId, RefreshTokenId, TokenFamilyId, UserId};
use domain::user::{AdminAction, AdminActionKind, Email, PasswordHash, Role, User};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{REFRESH_TOKENS_HASH, USERS_EMAIL};
use crate::mapping::{corrupt, limit_plus_one, position_after, word};
use crate::schema::{admin_actions, refresh_tokens, users};
use crate::sql::{Read, Write};
use crate::tx::{DomainRow, Expect, PgTx};

#[derive(QueryableByName)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
struct UserRow {
    id: Uuid,
    email: String,
    password_hash: String,
    role: String,
    created_at: OffsetDateTime,
    suspended_at: Option<OffsetDateTime>,
}

impl DomainRow for UserRow {
    type Domain = User;

    fn into_domain(self) -> StoreResult<User> {
        Ok(User {
            id: UserId::from_uuid(self.id),
            email: Email::parse(&self.email).map_err(corrupt)?,
            password_hash: PasswordHash::new(self.password_hash),
            role: word("role", &self.role, Role::parse)?,
            created_at: self.created_at,
            suspended_at: self.suspended_at,
        })
    }
}

impl UserRepository for PgTx {
    async fn insert_user(&mut self, user: &User) -> StoreResult<()> {
        let statement = Write::new(
            "INSERT INTO users (id, email, password_hash, role, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (email) DO NOTHING",
        )
        .bind::<SqlUuid, _>(user.id.as_uuid())
        .bind::<Text, _>(user.email.as_str())
        .bind::<Text, _>(user.password_hash.as_str())
        .bind::<Text, _>(user.role.as_str())
        .bind::<Timestamptz, _>(user.created_at);
        match self.execute(statement).await? {
            0 => Err(StoreError::Duplicate(USERS_EMAIL.to_owned())),
            _ => Ok(()),
        }
    }

    async fn find_user(&mut self, id: UserId) -> StoreResult<Option<User>> {
        let statement = Read::new("SELECT id, email, password_hash, role, created_at, suspended_at FROM users WHERE id = $1")
            .bind::<SqlUuid, _>(id.as_uuid());
        self.select_first::<UserRow>(statement).await
    }

    async fn find_user_by_email(&mut self, email: &Email) -> StoreResult<Option<User>> {
        let statement = Read::new("SELECT id, email, password_hash, role, created_at, suspended_at FROM users WHERE email = $1")
            .bind::<Text, _>(email.as_str());
        self.select_first::<UserRow>(statement).await
    }

    async fn list_users(&mut self, filter: &UserFilter, page: &PageRequest) -> StoreResult<Page<User>> {
        let (at, id) = position_after(page);
        let statement = Read::new(
            "SELECT id, email, password_hash, role, created_at, suspended_at FROM users \
             WHERE ($4::text IS NULL OR role = $4) AND (created_at, id) < ($1, $2) \
               AND ($5::boolean IS NULL OR (suspended_at IS NOT NULL) = $5) AND ($6::text IS NULL OR email = $6) \
               AND ($7::timestamptz IS NULL OR created_at >= $7) AND ($8::timestamptz IS NULL OR created_at < $8) \
             ORDER BY created_at DESC, id DESC LIMIT $3",
        )
        .bind::<Timestamptz, _>(at)
        .bind::<SqlUuid, _>(id)
        .bind::<BigInt, _>(limit_plus_one(page.limit))
        .bind::<Nullable<Text>, _>(filter.role.map(Role::as_str))
        .bind::<Nullable<Bool>, _>(filter.suspended)
        .bind::<Nullable<Text>, _>(filter.email.as_ref().map(Email::as_str))
        .bind::<Nullable<Timestamptz>, _>(filter.created.from)
        .bind::<Nullable<Timestamptz>, _>(filter.created.to);
        let users = self.select::<UserRow>(statement).await?;
        Ok(Page::from_rows(users, page.limit, |user| Cursor::Position {
            at: user.created_at,
            id: user.id.as_uuid(),
        }))
    }

    async fn set_user_suspended(&mut self, id: UserId, at: Option<OffsetDateTime>) -> StoreResult<()> {
        let statement = Write::new("UPDATE users SET suspended_at = $2 WHERE id = $1")
            .bind::<SqlUuid, _>(id.as_uuid())
            .bind::<Nullable<Timestamptz>, _>(at);
        self.defer(statement, Expect::Rows(1, "user"))
    }
}

#[derive(QueryableByName)]
#[diesel(table_name = admin_actions, check_for_backend(diesel::pg::Pg))]
struct AdminActionRow {
    id: Uuid,
    admin_id: Uuid,
    kind: String,
    subject: String,
    reason: String,
    details: String,
    at: OffsetDateTime,
}

impl DomainRow for AdminActionRow {
    type Domain = AdminAction;

    fn into_domain(self) -> StoreResult<AdminAction> {
        Ok(AdminAction {
            id: AdminActionId::from_uuid(self.id),
            admin_id: UserId::from_uuid(self.admin_id),
            kind: word("admin action", &self.kind, AdminActionKind::parse)?,
            subject: self.subject,
            reason: self.reason,
            details: self.details,
            at: self.at,
        })
    }
}

impl AdminAuditRepository for PgTx {
    async fn record_admin_action(&mut self, action: &AdminAction) -> StoreResult<()> {
        let statement =
            Write::new("INSERT INTO admin_actions (id, admin_id, kind, subject, reason, details, at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                .bind::<SqlUuid, _>(action.id.as_uuid())
                .bind::<SqlUuid, _>(action.admin_id.as_uuid())
                .bind::<Text, _>(action.kind.as_str())
                .bind::<Text, _>(action.subject.clone())
                .bind::<Text, _>(action.reason.clone())
                .bind::<Text, _>(action.details.clone())
                .bind::<Timestamptz, _>(action.at);
        self.defer(statement, Expect::Rows(1, "admin action"))
    }

    async fn list_admin_actions(&mut self, subject: Option<&str>, page: &PageRequest) -> StoreResult<Page<AdminAction>> {
        let (at, id) = position_after(page);
        let statement = Read::new(
            "SELECT id, admin_id, kind, subject, reason, details, at FROM admin_actions \
             WHERE ($4::text IS NULL OR subject = $4) AND (at, id) < ($1, $2) ORDER BY at DESC, id DESC LIMIT $3",
        )
        .bind::<Timestamptz, _>(at)
        .bind::<SqlUuid, _>(id)
        .bind::<BigInt, _>(limit_plus_one(page.limit))
        .bind::<Nullable<Text>, _>(subject.map(str::to_owned));
        let actions = self.select::<AdminActionRow>(statement).await?;
        Ok(Page::from_rows(actions, page.limit, |action| Cursor::Position {
            at: action.at,
            id: action.id.as_uuid(),
        }))
    }
}

#[derive(QueryableByName)]
#[diesel(table_name = refresh_tokens, check_for_backend(diesel::pg::Pg))]
struct RefreshTokenRow {
    id: Uuid,
    user_id: Uuid,
    family_id: Uuid,
    token_hash: String,
    created_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    used_at: Option<OffsetDateTime>,
    revoked_at: Option<OffsetDateTime>,
}

impl From<RefreshTokenRow> for RefreshToken {
    fn from(row: RefreshTokenRow) -> RefreshToken {
        RefreshToken {
            id: RefreshTokenId::from_uuid(row.id),
            user_id: UserId::from_uuid(row.user_id),
            family_id: TokenFamilyId::from_uuid(row.family_id),
            token_hash: row.token_hash,
            created_at: row.created_at,
            expires_at: row.expires_at,
            used_at: row.used_at,
            revoked_at: row.revoked_at,
        }
    }
}

impl RefreshTokenRepository for PgTx {
    async fn insert_refresh_token(&mut self, token: &RefreshToken) -> StoreResult<()> {
        let statement = Write::new(
            "INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, created_at, expires_at, used_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (token_hash) DO NOTHING",
        )
        .bind::<SqlUuid, _>(token.id.as_uuid())
        .bind::<SqlUuid, _>(token.user_id.as_uuid())
        .bind::<SqlUuid, _>(token.family_id.as_uuid())
        .bind::<Text, _>(token.token_hash.as_str())
        .bind::<Timestamptz, _>(token.created_at)
        .bind::<Timestamptz, _>(token.expires_at)
        .bind::<Nullable<Timestamptz>, _>(token.used_at)
        .bind::<Nullable<Timestamptz>, _>(token.revoked_at);
        match self.execute(statement).await? {
            0 => Err(StoreError::Duplicate(REFRESH_TOKENS_HASH.to_owned())),
            _ => Ok(()),
        }
    }

    async fn lock_refresh_token(&mut self, token_hash: &str) -> StoreResult<Option<RefreshToken>> {
        let statement = Read::new(
            "SELECT id, user_id, family_id, token_hash, created_at, expires_at, used_at, revoked_at \
             FROM refresh_tokens WHERE token_hash = $1 FOR NO KEY UPDATE",
        )
        .bind::<Text, _>(token_hash);
        Ok(self.read_first::<RefreshTokenRow>(statement).await?.map(RefreshToken::from))
    }

    /// Writes what changes over a token's life: its use, revocation and expiry.
    async fn update_refresh_token(&mut self, token: &RefreshToken) -> StoreResult<()> {
        let statement = Write::new("UPDATE refresh_tokens SET used_at = $2, revoked_at = $3, expires_at = $4 WHERE id = $1")
            .bind::<SqlUuid, _>(token.id.as_uuid())
            .bind::<Nullable<Timestamptz>, _>(token.used_at)
            .bind::<Nullable<Timestamptz>, _>(token.revoked_at)
            .bind::<Timestamptz, _>(token.expires_at);
        self.defer(statement, Expect::Rows(1, "refresh token"))
    }

    async fn revoke_token_family(&mut self, family: TokenFamilyId, at: OffsetDateTime) -> StoreResult<()> {
        let statement = Write::new("UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL")
            .bind::<SqlUuid, _>(family.as_uuid())
            .bind::<Timestamptz, _>(at);
        self.defer(statement, Expect::Any)
    }

    async fn revoke_user_tokens(&mut self, user: UserId, at: OffsetDateTime) -> StoreResult<()> {
        let statement = Write::new("UPDATE refresh_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL")
            .bind::<SqlUuid, _>(user.as_uuid())
            .bind::<Timestamptz, _>(at);
        self.defer(statement, Expect::Any)
    }
}
