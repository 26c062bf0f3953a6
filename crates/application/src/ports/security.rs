//! Password hashing and token ports.

use async_trait::async_trait;
use domain::ids::UserId;
use domain::user::{Password, PasswordHash, Role, User};
use time::OffsetDateTime;

/// Why a password could not be hashed or a token signed: a fault of the server, never of the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecurityError {
    /// The hasher failed (or its blocking task was lost).
    #[error("password hashing failed: {0}")]
    Hashing(String),
    /// The signer failed.
    #[error("token signing failed: {0}")]
    Signing(String),
}

/// Hashes passwords, and checks a password against a hash (bcrypt in production).
#[async_trait]
pub trait PasswordHasher: Send + Sync + std::fmt::Debug + 'static {
    /// Hashes off the async executor: a bcrypt hash takes hundreds of milliseconds of CPU.
    async fn hash(&self, password: &Password) -> Result<PasswordHash, SecurityError>;

    /// Whether `password` is the one `hash` was made from, in constant time and off the executor.
    ///
    /// # Errors
    /// `Hashing` when the hash cannot be read or the hasher failed.
    async fn verify(&self, password: &Password, hash: &PasswordHash) -> Result<bool, SecurityError>;
}

/// A signed access token, for the `Authorization: Bearer` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessToken {
    /// The token as the client sends it.
    pub token: String,
    /// When it stops being accepted (15 minutes after issue by default).
    pub expires_at: OffsetDateTime,
}

/// What a verified access token says about its bearer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessClaims {
    /// Who bears it.
    pub user_id: UserId,
    /// The role the token was issued with; the use cases read the user again for their standing.
    pub role: Role,
    /// When it stops being accepted.
    pub expires_at: OffsetDateTime,
}

/// Why an access token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Its time is up: the client should refresh.
    #[error("the token has expired")]
    Expired,
    /// Not signed by us, malformed, or of another algorithm.
    #[error("the token is invalid")]
    Invalid,
}

/// A new refresh token: the secret goes to the client, only its hash is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshSecret {
    /// What the client holds.
    pub secret: String,
    /// What is stored.
    pub hash: String,
}

/// Issues and verifies access tokens (JWT, algorithm pinned), and makes refresh secrets.
pub trait TokenIssuer: Send + Sync + std::fmt::Debug + 'static {
    /// A short-lived access token for `user`.
    ///
    /// # Errors
    /// `Signing` when the signer fails.
    fn issue_access_token(&self, user: &User, now: OffsetDateTime) -> Result<AccessToken, SecurityError>;

    /// # Errors
    /// `Expired` or `Invalid`; the caller answers 401 either way.
    fn verify_access_token(&self, token: &str, now: OffsetDateTime) -> Result<AccessClaims, TokenError>;

    /// A fresh, random refresh secret with its hash.
    fn new_refresh_secret(&self) -> RefreshSecret;

    /// The hash of a refresh secret a client presents, to look its token up.
    fn hash_refresh_secret(&self, secret: &str) -> String;
}
