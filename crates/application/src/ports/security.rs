//! Password hashing and token ports.

use async_trait::async_trait;
use domain::ids::UserId;
use domain::user::{Password, PasswordHash, Role, User};
use time::OffsetDateTime;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecurityError {
    #[error("password hashing failed: {0}")]
    Hashing(String),
    #[error("token signing failed: {0}")]
    Signing(String),
}

#[async_trait]
pub trait PasswordHasher: Send + Sync + std::fmt::Debug + 'static {
    /// Hashes off the async executor: a bcrypt hash takes hundreds of milliseconds of CPU.
    async fn hash(&self, password: &Password) -> Result<PasswordHash, SecurityError>;

    async fn verify(&self, password: &Password, hash: &PasswordHash) -> Result<bool, SecurityError>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessToken {
    pub token: String,
    pub expires_at: OffsetDateTime,
}

/// What a verified access token says about its bearer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessClaims {
    pub user_id: UserId,
    pub role: Role,
    pub expires_at: OffsetDateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token has expired")]
    Expired,
    #[error("the token is invalid")]
    Invalid,
}

/// A new refresh token: the secret goes to the client, only its hash is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshSecret {
    pub secret: String,
    pub hash: String,
}

pub trait TokenIssuer: Send + Sync + std::fmt::Debug + 'static {
    fn issue_access_token(&self, user: &User, now: OffsetDateTime) -> Result<AccessToken, SecurityError>;

    /// # Errors
    /// `Expired` or `Invalid`; the caller answers 401 either way.
    fn verify_access_token(&self, token: &str, now: OffsetDateTime) -> Result<AccessClaims, TokenError>;

    fn new_refresh_secret(&self) -> RefreshSecret;

    fn hash_refresh_secret(&self, secret: &str) -> String;
}
