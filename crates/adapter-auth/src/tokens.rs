//! JWT access tokens and random refresh tokens.

use application::ports::security::{AccessClaims, AccessToken, RefreshSecret, SecurityError, TokenError, TokenIssuer};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::ids::UserId;
use domain::user::{Role, User};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

/// How access tokens are signed and checked.
#[derive(Clone)]
pub struct JwtSettings {
    /// The HMAC key; at least 32 bytes.
    pub secret: Vec<u8>,
    pub issuer: String,
    pub audience: String,
    pub access_ttl: Duration,
}

impl std::fmt::Debug for JwtSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtSettings")
            .field("secret", &"***")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("access_ttl", &self.access_ttl)
            .finish()
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    role: String,
    iss: String,
    aud: String,
    iat: i64,
    exp: i64,
}

pub struct JwtIssuer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    settings: JwtSettings,
}

impl std::fmt::Debug for JwtIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtIssuer")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl JwtIssuer {
    pub const SECRET_LEN_MIN: usize = 32;

    /// # Errors
    /// A secret shorter than 32 bytes.
    pub fn new(settings: JwtSettings) -> Result<JwtIssuer, SecurityError> {
        if settings.secret.len() < JwtIssuer::SECRET_LEN_MIN {
            return Err(SecurityError::Signing(format!(
                "the JWT secret must have at least {} bytes",
                JwtIssuer::SECRET_LEN_MIN
            )));
        }
        // The algorithm is pinned: a token naming any other (or `none`) fails verification.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[settings.issuer.as_str()]);
        validation.set_audience(&[settings.audience.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // Expiry is checked against the application's clock below, so tests can move time.
        validation.validate_exp = false;
        Ok(JwtIssuer {
            encoding: EncodingKey::from_secret(&settings.secret),
            decoding: DecodingKey::from_secret(&settings.secret),
            validation,
            settings,
        })
    }

    /// A random secret for demo mode.
    pub fn random_secret() -> Vec<u8> {
        random_bytes::<48>().to_vec()
    }
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // The operating system's generator does not fail on supported platforms; if it ever did,
    // continuing with predictable secrets would be worse than stopping.
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut bytes).expect("the operating system's random generator failed");
    bytes
}

impl TokenIssuer for JwtIssuer {
    fn issue_access_token(&self, user: &User, now: OffsetDateTime) -> Result<AccessToken, SecurityError> {
        let expires_at = now + self.settings.access_ttl;
        let claims = Claims {
            sub: user.id.to_string(),
            role: user.role.as_str().to_owned(),
            iss: self.settings.issuer.clone(),
            aud: self.settings.audience.clone(),
            iat: now.unix_timestamp(),
            exp: expires_at.unix_timestamp(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| SecurityError::Signing(e.to_string()))?;
        Ok(AccessToken { token, expires_at })
    }

    fn verify_access_token(&self, token: &str, now: OffsetDateTime) -> Result<AccessClaims, TokenError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).map_err(|_| TokenError::Invalid)?;
        let claims = data.claims;
        if claims.exp <= now.unix_timestamp() {
            return Err(TokenError::Expired);
        }
        Ok(AccessClaims {
            user_id: UserId::parse(&claims.sub).map_err(|_| TokenError::Invalid)?,
            role: Role::parse(&claims.role).ok_or(TokenError::Invalid)?,
            expires_at: OffsetDateTime::from_unix_timestamp(claims.exp).map_err(|_| TokenError::Invalid)?,
        })
    }

    fn new_refresh_secret(&self) -> RefreshSecret {
        let secret = URL_SAFE_NO_PAD.encode(random_bytes::<32>());
        RefreshSecret {
            hash: self.hash_refresh_secret(&secret),
            secret,
        }
    }

    fn hash_refresh_secret(&self, secret: &str) -> String {
        hex::encode(Sha256::digest(secret.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::user::{Email, PasswordHash};
    use uuid::Uuid;

    fn settings(secret: &[u8]) -> JwtSettings {
        JwtSettings {
            secret: secret.to_vec(),
            issuer: "payments".into(),
            audience: "payments-api".into(),
            access_ttl: Duration::minutes(15),
        }
    }

    fn user() -> User {
        User {
            id: UserId::from_uuid(Uuid::from_u128(7)),
            email: Email::parse("ann@example.com").unwrap_or_else(|e| panic!("{e}")),
            password_hash: PasswordHash::new(String::new()),
            role: Role::Merchant,
            created_at: OffsetDateTime::UNIX_EPOCH,
            suspended_at: None,
        }
    }

    fn issuer() -> JwtIssuer {
        JwtIssuer::new(settings(&[7u8; 32])).unwrap_or_else(|e| panic!("{e}"))
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_750_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    #[test]
    fn a_token_carries_the_user_and_role_until_it_expires() -> Result<(), Box<dyn std::error::Error>> {
        let issuer = issuer();
        let token = issuer.issue_access_token(&user(), now())?;
        let claims = issuer.verify_access_token(&token.token, now() + Duration::minutes(14))?;
        assert_eq!((claims.user_id, claims.role), (user().id, Role::Merchant));
        assert_eq!(
            issuer.verify_access_token(&token.token, now() + Duration::minutes(15)),
            Err(TokenError::Expired)
        );
        Ok(())
    }

    #[test]
    fn forged_tampered_and_foreign_tokens_are_refused() -> Result<(), Box<dyn std::error::Error>> {
        let issuer = issuer();
        let token = issuer.issue_access_token(&user(), now())?.token;
        let other_key = JwtIssuer::new(settings(&[8u8; 32]))?;
        let forged = other_key.issue_access_token(&user(), now())?.token;
        assert_eq!(issuer.verify_access_token(&forged, now()), Err(TokenError::Invalid));
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let admin_claims = URL_SAFE_NO_PAD.encode(format!(
            r#"{{"sub":"{}","role":"admin","iss":"payments","aud":"payments-api","iat":0,"exp":9999999999}}"#,
            user().id
        ));
        parts[1] = admin_claims;
        assert_eq!(issuer.verify_access_token(&parts.join("."), now()), Err(TokenError::Invalid));
        let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let unsigned = format!("{none_header}.{}.", token.split('.').nth(1).unwrap_or_default());
        assert_eq!(issuer.verify_access_token(&unsigned, now()), Err(TokenError::Invalid));
        let wrong_audience = JwtIssuer::new(JwtSettings {
            audience: "elsewhere".into(),
            ..settings(&[7u8; 32])
        })?;
        let foreign = wrong_audience.issue_access_token(&user(), now())?.token;
        assert_eq!(issuer.verify_access_token(&foreign, now()), Err(TokenError::Invalid));
        assert_eq!(issuer.verify_access_token("garbage", now()), Err(TokenError::Invalid));
        Ok(())
    }

    #[test]
    fn short_secrets_are_refused_and_refresh_secrets_are_random() {
        assert!(JwtIssuer::new(settings(b"short")).is_err());
        let issuer = issuer();
        let (a, b) = (issuer.new_refresh_secret(), issuer.new_refresh_secret());
        assert_ne!(a.secret, b.secret);
        assert_eq!(issuer.hash_refresh_secret(&a.secret), a.hash);
        assert_eq!(a.hash.len(), 64);
    }
}
