//! Registration, login, token refresh with rotation, and logout.
//!
//! Access tokens are short-lived JWTs. Refresh tokens are random secrets of which only a hash is
//! stored; each use rotates it (the old one is marked used, a new one of the same *family* is
//! issued). Presenting a token that was already used means it leaked: the whole family is revoked
//! and the user must log in again.

use domain::events::DomainEvent;
use domain::ids::{RefreshTokenId, TokenFamilyId, UserId, WalletId};
use domain::user::{Email, EmailError, Password, PasswordError, Role, User};
use time::OffsetDateTime;

pub use crate::caller::Caller;
use crate::context::App;
use crate::effects::publish;
use crate::idempotency::{IdempotencyError, Idempotent};

pub use crate::ports::records::RefreshToken;
use crate::ports::security::{AccessToken, SecurityError};
use crate::ports::store::{RefreshTokenRepository, StoreError, UnitOfWork, UserRepository, WalletRepository};
use crate::transact::{Retryable, transact, work};
use crate::{keyed, retryable};

/// What someone signing up gives.
#[derive(Debug, Clone)]
pub struct Registration {
    /// Their e-mail address, normalised before it is stored.
    pub email: String,
    /// Their new password, checked against the policy.
    pub password: String,
    /// Customer or merchant; admins are created by an operator (`create_admin`).
    pub role: Role,
}

/// Why signing up fails.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// The address is not acceptable.
    #[error(transparent)]
    Email(#[from] EmailError),
    /// The password breaks the policy.
    #[error(transparent)]
    Password(#[from] PasswordError),
    /// The role cannot be chosen at sign-up (admin).
    #[error("nobody can register as {0}")]
    RoleNotAllowed(Role),
    /// Another account has the address.
    #[error("that e-mail address is already registered")]
    EmailTaken,
    /// Password hashing or token signing failed: a fault of the server.
    #[error(transparent)]
    Security(#[from] SecurityError),
    /// The idempotency key is held by a request still running, was used for a different request, or
    /// was completed by another request meanwhile (replay its response).
    #[error(transparent)]
    Idempotency(IdempotencyError),
    /// Storage failed: an outage, a timeout, a conflict that outlasted the retries, or a commit whose
    /// outcome is unknown (`StoreError::OutcomeUnknown`).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a successful login or refresh hands the client.
#[derive(Debug, Clone)]
pub struct Session {
    /// Who signed in.
    pub user: User,
    /// The short-lived access token.
    pub access_token: AccessToken,
    /// The refresh token's secret, for the client to keep; only its hash is stored.
    pub refresh_token: String,
    /// When the refresh token stops being accepted.
    pub refresh_expires_at: OffsetDateTime,
}

/// Why signing in fails.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// No account has the address, or the password is wrong; which one is not said.
    #[error("the e-mail address or password is wrong")]
    InvalidCredentials,
    /// An admin suspended the account.
    #[error("the account is suspended: contact support")]
    Suspended,
    /// Password hashing or token signing failed: a fault of the server.
    #[error(transparent)]
    Security(#[from] SecurityError),
    /// Storage failed: an outage, a timeout, a conflict that outlasted the retries, or a commit whose
    /// outcome is unknown (`StoreError::OutcomeUnknown`).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why exchanging a refresh token fails. The client must sign in again either way.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// The token is unknown, expired or revoked.
    #[error("the refresh token is unknown, expired or revoked")]
    Invalid,
    /// The token was already exchanged: it was copied, so its whole family is revoked.
    #[error("the refresh token was already used; every session of this login is revoked")]
    Reused,
    /// Password hashing or token signing failed: a fault of the server.
    #[error(transparent)]
    Security(#[from] SecurityError),
    /// Storage failed: an outage, a timeout, a conflict that outlasted the retries, or a commit whose
    /// outcome is unknown (`StoreError::OutcomeUnknown`).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a user cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// No user has the id.
    #[error("the user does not exist")]
    NotFound,
    /// Storage failed: an outage, a timeout, a conflict that outlasted the retries, or a commit whose
    /// outcome is unknown (`StoreError::OutcomeUnknown`).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Logging out fails only when storage does: an unknown or already revoked token is not an error.
#[derive(Debug, thiserror::Error)]
pub enum LogoutError {
    /// Storage failed: an outage, a timeout, a conflict that outlasted the retries, or a commit whose
    /// outcome is unknown (`StoreError::OutcomeUnknown`).
    #[error(transparent)]
    Store(#[from] StoreError),
}

retryable!(RegisterError, LoginError, RefreshError, ProfileError);
keyed!(RegisterError);

impl Retryable for LogoutError {
    fn store_error(&self) -> Option<&StoreError> {
        let LogoutError::Store(error) = self;
        Some(error)
    }
}

enum Rotation {
    Rotated(Box<(User, RefreshToken)>),
    Reused,
}

impl<U: UnitOfWork> App<U> {
    /// Creates a customer or merchant account with an empty wallet in the default currency.
    pub async fn register(&self, registration: Registration, idempotent: Option<Idempotent<User>>) -> Result<User, RegisterError> {
        if !registration.role.is_self_registrable() {
            return Err(RegisterError::RoleNotAllowed(registration.role));
        }
        let email = Email::parse(&registration.email)?;
        let password = Password::new(&registration.password, &email)?;
        let password_hash = self.hasher.hash(&password).await?;
        let now = self.clock.now();
        let user = User {
            id: self.next_id(),
            email,
            password_hash,
            role: registration.role,
            created_at: now,
            suspended_at: None,
        };
        self.create_user(user, idempotent.as_ref()).await
    }

    /// The user with this e-mail address, for the operator's commands (no caller to authorise).
    pub async fn user_by_email_unchecked(&self, email: &str) -> Result<Option<User>, RegisterError> {
        let email = Email::parse(email)?;
        let email = &email;
        Ok(transact(&self.store, |tx| work(tx.find_user_by_email(email))).await?)
    }

    /// Creates an admin, for the operator's `server create-admin`: admins cannot sign up.
    ///
    /// # Errors
    /// As [`App::register`], but any role is allowed.
    pub async fn create_admin(&self, email: &str, password: &str) -> Result<User, RegisterError> {
        let email = Email::parse(email)?;
        let password = Password::new(password, &email)?;
        let password_hash = self.hasher.hash(&password).await?;
        let user = User {
            id: self.next_id(),
            email,
            password_hash,
            role: Role::Admin,
            created_at: self.clock.now(),
            suspended_at: None,
        };
        self.create_user(user, None).await
    }

    async fn create_user(&self, user: User, idempotent: Option<&Idempotent<User>>) -> Result<User, RegisterError> {
        let wallet_id: WalletId = self.next_id();
        let currency = self.settings.default_currency;
        let (user, key, ids) = (&user, self.key(idempotent), self.ids.as_ref());
        transact(&self.store, |tx| {
            work(async move {
                key.claim(tx, user.created_at).await?;
                tx.insert_user(user).await.map_err(|error| match error {
                    StoreError::Duplicate(_) => RegisterError::EmailTaken,
                    other => RegisterError::Store(other),
                })?;
                tx.ensure_user_wallet(user.id, currency, wallet_id, user.created_at).await?;
                let registered = DomainEvent::UserRegistered {
                    user_id: user.id,
                    role: user.role,
                };
                publish(tx, ids, registered, user.created_at).await?;
                key.complete(tx, user, user.created_at).await?;
                Ok::<_, RegisterError>(user.clone())
            })
        })
        .await
    }

    /// Checks the credentials and opens a session (a new refresh-token family).
    pub async fn login(&self, email: &str, password: &str) -> Result<Session, LoginError> {
        let password = Password::presented(password);
        let Ok(email) = Email::parse(email) else {
            self.hasher.hash(&password).await?;
            return Err(LoginError::InvalidCredentials);
        };
        let email = &email;
        let found = transact(&self.store, |tx| work(tx.find_user_by_email(email))).await?;
        let Some(user) = found else {
            // Spend the time a verification would, so unknown addresses cannot be told apart.
            self.hasher.hash(&password).await?;
            return Err(LoginError::InvalidCredentials);
        };
        if !self.hasher.verify(&password, &user.password_hash).await? {
            return Err(LoginError::InvalidCredentials);
        }
        // Told only to whoever knows the password.
        if user.is_suspended() {
            return Err(LoginError::Suspended);
        }
        let family = self.next_id();
        self.open_session(user, family).await
    }

    async fn open_session(&self, user: User, family_id: TokenFamilyId) -> Result<Session, LoginError> {
        let now = self.clock.now();
        let secret = self.tokens.new_refresh_secret();
        let token = RefreshToken {
            id: self.next_id(),
            user_id: user.id,
            family_id,
            token_hash: secret.hash.clone(),
            created_at: now,
            expires_at: now + self.settings.refresh_token_ttl,
            used_at: None,
            revoked_at: None,
        };
        let token_ref = &token;
        transact(&self.store, |tx| work(tx.insert_refresh_token(token_ref))).await?;
        Ok(Session {
            access_token: self.tokens.issue_access_token(&user, now)?,
            user,
            refresh_token: secret.secret,
            refresh_expires_at: token.expires_at,
        })
    }

    /// Exchanges a refresh token for a new access token and a new refresh token.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Session, RefreshError> {
        let token_hash = self.tokens.hash_refresh_secret(refresh_token);
        let now = self.clock.now();
        let secret = self.tokens.new_refresh_secret();
        let successor_id: RefreshTokenId = self.next_id();
        let ttl = self.settings.refresh_token_ttl;
        let successor = Successor {
            id: successor_id,
            token_hash: &secret.hash,
            expires_at: now + ttl,
        };
        let (token_hash, successor) = (&token_hash, &successor);
        let rotation = transact(&self.store, |tx| work(rotate(tx, token_hash, successor, now))).await?;
        match rotation {
            Rotation::Reused => Err(RefreshError::Reused),
            Rotation::Rotated(rotated) => {
                let (user, successor) = *rotated;
                Ok(Session {
                    access_token: self.tokens.issue_access_token(&user, now)?,
                    user,
                    refresh_token: secret.secret,
                    refresh_expires_at: successor.expires_at,
                })
            }
        }
    }

    /// Ends the session the refresh token belongs to. Unknown tokens are ignored: logging out
    /// twice is not an error.
    pub async fn logout(&self, refresh_token: &str) -> Result<(), LogoutError> {
        let token_hash = self.tokens.hash_refresh_secret(refresh_token);
        let now = self.clock.now();
        let token_hash = &token_hash;
        transact(&self.store, |tx| {
            work(async move {
                if let Some(token) = tx.lock_refresh_token(token_hash).await? {
                    tx.revoke_token_family(token.family_id, now).await?;
                }
                Ok::<_, LogoutError>(())
            })
        })
        .await
    }

    /// The user with this id, as the API's `me` shows them.
    ///
    /// # Errors
    /// [`ProfileError::NotFound`] if no user has the id.
    pub async fn profile(&self, user_id: UserId) -> Result<User, ProfileError> {
        transact(&self.store, |tx| work(tx.find_user(user_id)))
            .await?
            .ok_or(ProfileError::NotFound)
    }
}

/// The refresh token that replaces a rotated one.
struct Successor<'a> {
    id: RefreshTokenId,
    token_hash: &'a str,
    expires_at: OffsetDateTime,
}

/// Rotates a refresh token: the presented one is used up and its successor takes its place in the
/// same family; a token used before revokes its whole family.
async fn rotate<Tx>(tx: &mut Tx, token_hash: &str, successor: &Successor<'_>, now: OffsetDateTime) -> Result<Rotation, RefreshError>
where
    Tx: RefreshTokenRepository + UserRepository + Send,
{
    let token = tx.lock_refresh_token(token_hash).await?.ok_or(RefreshError::Invalid)?;
    if token.revoked_at.is_some() || token.expires_at <= now {
        return Err(RefreshError::Invalid);
    }
    if token.used_at.is_some() {
        tx.revoke_token_family(token.family_id, now).await?;
        return Ok(Rotation::Reused);
    }
    let user = tx.find_user(token.user_id).await?.ok_or(RefreshError::Invalid)?;
    let used = RefreshToken {
        used_at: Some(now),
        ..token.clone()
    };
    tx.update_refresh_token(&used).await?;
    let successor = RefreshToken {
        id: successor.id,
        user_id: token.user_id,
        family_id: token.family_id,
        token_hash: successor.token_hash.to_owned(),
        created_at: now,
        expires_at: successor.expires_at,
        used_at: None,
        revoked_at: None,
    };
    tx.insert_refresh_token(&successor).await?;
    Ok(Rotation::Rotated(Box::new((user, successor))))
}
