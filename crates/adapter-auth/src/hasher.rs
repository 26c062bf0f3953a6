//! bcrypt, run on the blocking thread pool: one hash at cost 12 takes a few hundred milliseconds
//! of CPU, which would stall every request sharing an async worker.

use application::ports::security::{PasswordHasher, SecurityError};
use async_trait::async_trait;
use domain::user::{Password, PasswordHash};

#[derive(Debug, Clone, Copy)]
pub struct BcryptHasher {
    cost: u32,
}

impl BcryptHasher {
    /// `cost` is bcrypt's work factor (4 to 31); 12 is a sound default for interactive logins.
    pub fn new(cost: u32) -> BcryptHasher {
        BcryptHasher {
            cost: cost.clamp(bcrypt::DEFAULT_COST.min(4), 31),
        }
    }
}

#[async_trait]
impl PasswordHasher for BcryptHasher {
    async fn hash(&self, password: &Password) -> Result<PasswordHash, SecurityError> {
        let (secret, cost) = (password.expose().to_owned(), self.cost);
        let hashed = tokio::task::spawn_blocking(move || bcrypt::hash(secret, cost))
            .await
            .map_err(|e| SecurityError::Hashing(e.to_string()))?
            .map_err(|e| SecurityError::Hashing(e.to_string()))?;
        Ok(PasswordHash::new(hashed))
    }

    async fn verify(&self, password: &Password, hash: &PasswordHash) -> Result<bool, SecurityError> {
        let (secret, hash) = (password.expose().to_owned(), hash.as_str().to_owned());
        let verified = tokio::task::spawn_blocking(move || bcrypt::verify(secret, &hash))
            .await
            .map_err(|e| SecurityError::Hashing(e.to_string()))?;
        // A malformed stored hash is a mismatch, not a server error: the login simply fails.
        Ok(verified.unwrap_or(false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::user::Email;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() -> Result<(), SecurityError> {
        let hasher = BcryptHasher::new(4);
        let email = Email::parse("ann@example.com").map_err(|e| SecurityError::Hashing(e.to_string()))?;
        let password = Password::new("correct horse 9", &email).map_err(|e| SecurityError::Hashing(e.to_string()))?;
        let hash = hasher.hash(&password).await?;
        assert!(hash.as_str().starts_with("$2b$04$"));
        assert!(hasher.verify(&password, &hash).await?);
        assert!(!hasher.verify(&Password::presented("correct horse 8"), &hash).await?);
        assert!(!hasher.verify(&password, &PasswordHash::new("not a bcrypt hash".into())).await?);
        Ok(())
    }
}
