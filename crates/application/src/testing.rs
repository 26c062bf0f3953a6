//! Test doubles for the security ports, for the tests of this crate and of crates that run the
//! real application (`testing` feature): fast, and transparent about what they hold.

use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use domain::ids::UserId;
use domain::user::{Password, PasswordHash, Role, User};
use time::OffsetDateTime;

use crate::ports::security::{AccessClaims, AccessToken, PasswordHasher, RefreshSecret, SecurityError, TokenError, TokenIssuer};

/// Stores the password in the clear behind a marker: fast, and enough to test the use cases.
/// The real bcrypt hasher has its own tests.
#[derive(Debug, Default)]
pub struct PlainHasher;

#[async_trait]
impl PasswordHasher for PlainHasher {
    async fn hash(&self, password: &Password) -> Result<PasswordHash, SecurityError> {
        Ok(PasswordHash::new(format!("plain:{}", password.expose())))
    }

    async fn verify(&self, password: &Password, hash: &PasswordHash) -> Result<bool, SecurityError> {
        Ok(hash.as_str() == format!("plain:{}", password.expose()))
    }
}

/// Tokens that spell out their claims. The JWT issuer has its own tests.
#[derive(Debug, Default)]
pub struct SpelledTokens {
    counter: AtomicU64,
}

impl TokenIssuer for SpelledTokens {
    fn issue_access_token(&self, user: &User, now: OffsetDateTime) -> Result<AccessToken, SecurityError> {
        Ok(AccessToken {
            token: format!("{}|{}", user.id, user.role.as_str()),
            expires_at: now + time::Duration::minutes(15),
        })
    }

    fn verify_access_token(&self, token: &str, now: OffsetDateTime) -> Result<AccessClaims, TokenError> {
        let (id, role) = token.split_once('|').ok_or(TokenError::Invalid)?;
        Ok(AccessClaims {
            user_id: UserId::parse(id).map_err(|_| TokenError::Invalid)?,
            role: Role::parse(role).ok_or(TokenError::Invalid)?,
            expires_at: now,
        })
    }

    fn new_refresh_secret(&self) -> RefreshSecret {
        let secret = format!("refresh-{}", self.counter.fetch_add(1, Ordering::SeqCst));
        RefreshSecret {
            hash: self.hash_refresh_secret(&secret),
            secret,
        }
    }

    fn hash_refresh_secret(&self, secret: &str) -> String {
        format!("hashed:{secret}")
    }
}

/// A webhook receiver in memory: records every attempt and answers with the statuses it was given,
/// in turn (200 once they run out), or with a `SendError`. The HTTP sender has its own tests
/// against real receivers.
#[derive(Debug, Default)]
pub struct RecordingWebhooks {
    received: std::sync::Mutex<Vec<crate::ports::webhooks::OutgoingWebhook>>,
    answers: std::sync::Mutex<std::collections::VecDeque<Result<u16, crate::ports::webhooks::SendError>>>,
    slow: std::sync::Mutex<Option<SlowReceiver>>,
}

/// A receiver that takes its time: each request to `url` moves `clock` on by `per_request`.
#[derive(Debug)]
struct SlowReceiver {
    url: String,
    clock: std::sync::Arc<crate::ports::system::ManualClock>,
    per_request: time::Duration,
}

impl RecordingWebhooks {
    /// The next attempts are answered with these, in order.
    pub fn answer_with(&self, answers: impl IntoIterator<Item = Result<u16, crate::ports::webhooks::SendError>>) {
        self.answers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(answers);
    }

    /// Forgets the answers not given yet: every attempt succeeds again.
    pub fn answer_ok(&self) {
        self.answers.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    }

    /// Requests to `url` take `per_request` of `clock`'s time from now on.
    pub fn slow_at(&self, url: &str, clock: std::sync::Arc<crate::ports::system::ManualClock>, per_request: time::Duration) {
        *self.slow.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(SlowReceiver {
            url: url.to_owned(),
            clock,
            per_request,
        });
    }

    /// Every attempt so far, in the order made.
    pub fn received(&self) -> Vec<crate::ports::webhooks::OutgoingWebhook> {
        self.received.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

#[async_trait]
impl crate::ports::webhooks::WebhookSender for RecordingWebhooks {
    async fn send(
        &self,
        webhook: &crate::ports::webhooks::OutgoingWebhook,
    ) -> Result<crate::ports::webhooks::WebhookAnswer, crate::ports::webhooks::SendError> {
        self.received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(webhook.clone());
        if let Some(slow) = self
            .slow
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .filter(|slow| slow.url == webhook.url)
        {
            slow.clock.advance(slow.per_request);
        }
        let answer = self.answers.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop_front();
        let status = answer.unwrap_or(Ok(200))?;
        Ok(crate::ports::webhooks::WebhookAnswer {
            status,
            body: String::new(),
            retry_after: None,
            latency: std::time::Duration::from_millis(1),
        })
    }
}
