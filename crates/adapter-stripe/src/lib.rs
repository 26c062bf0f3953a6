//! The Stripe card gateway, through async-stripe.
//!
//! Checkout Sessions pay orders and wallet top-ups (inline prices, our payment id as
//! `client_reference_id` and in the metadata of the session and of its PaymentIntent, so every
//! later event names our payment). Refunds go through the Refunds API with our refund id in their
//! metadata. Every write carries an idempotency key, and only failures that are safe to repeat
//! (429, 5xx, a lost connection) are retried, with the same key. Webhooks are verified against
//! every configured secret (rotation) before anything in them is believed.

mod errors;
mod events;
#[cfg(feature = "testing")]
pub mod testing;

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use application::ports::gateway::{
    CheckoutClosure, CheckoutRequest, CheckoutSession, GatewayError, GatewayEvent, GatewayRefund, PaymentGateway, RefundRequest,
    WebhookError, WebhookHeaders,
};
use async_trait::async_trait;
use domain::money::Currency;
use domain::payment::ProviderName;
use stripe::{IdempotencyKey, RequestStrategy, StripeRequest};
use stripe_checkout::CheckoutSessionMode;
use stripe_checkout::CheckoutSessionStatus;
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionLineItems, CreateCheckoutSessionLineItemsPriceData, CreateCheckoutSessionPaymentIntentData,
    ExpireCheckoutSession, ProductData, RetrieveCheckoutSession,
};
use stripe_core::refund::{CreateRefund, CreateRefundReason};
use time::OffsetDateTime;

use crate::errors::{is_retryable, to_gateway_error};

pub const PROVIDER: &str = "stripe";

/// Stripe's shortest Checkout Session lifetime is 30 minutes, its longest 24 hours.
const SESSION_LIFETIME_MIN_SECS: i64 = 31 * 60;
const SESSION_LIFETIME_MAX_SECS: i64 = 24 * 3600 - 60;

#[derive(Clone)]
pub struct StripeSettings {
    pub secret_key: String,
    /// Every accepted webhook signing secret: more than one while a secret is being rolled.
    pub webhook_secrets: Vec<String>,
    /// `https://api.stripe.com/` in production; a local double in tests.
    pub api_base: String,
    pub success_url: String,
    pub cancel_url: String,
    pub webhook_tolerance_secs: i64,
    pub request_timeout: Duration,
    /// Attempts per write when the failure is safe to repeat.
    pub attempts_max: u32,
}

impl std::fmt::Debug for StripeSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeSettings")
            .field("secret_key", &"***")
            .field("webhook_secrets", &self.webhook_secrets.len())
            .field("api_base", &self.api_base)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StripeSetupError {
    #[error("STRIPE_SECRET_KEY must start with sk_ or rk_")]
    SecretKey,
    #[error("STRIPE_WEBHOOK_SECRET must list at least one whsec_ secret")]
    WebhookSecret,
    #[error("the Stripe client cannot be built: {0}")]
    Client(String),
}

pub struct StripeGateway {
    provider: ProviderName,
    client: stripe::Client,
    settings: StripeSettings,
}

impl std::fmt::Debug for StripeGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeGateway")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl StripeGateway {
    /// # Errors
    /// Broken configuration: the server refuses to start rather than fail on the first payment.
    pub fn new(settings: StripeSettings) -> Result<StripeGateway, StripeSetupError> {
        if !(settings.secret_key.starts_with("sk_") || settings.secret_key.starts_with("rk_")) {
            return Err(StripeSetupError::SecretKey);
        }
        if settings.webhook_secrets.is_empty() || settings.webhook_secrets.iter().any(|s| s.trim().is_empty()) {
            return Err(StripeSetupError::WebhookSecret);
        }
        let client = stripe::ClientBuilder::new(settings.secret_key.clone())
            .url(settings.api_base.clone())
            .timeout(settings.request_timeout)
            .build()
            .map_err(|e| StripeSetupError::Client(e.to_string()))?;
        let provider = ProviderName::parse(PROVIDER).map_err(|e| StripeSetupError::Client(e.to_string()))?;
        Ok(StripeGateway {
            provider,
            client,
            settings,
        })
    }

    /// Sends a read, repeating it while the failure is one that may pass.
    async fn read<R>(&self, request: R) -> Result<R::Output, GatewayError>
    where
        R: StripeRequest + Clone,
        R::Output: miniserde::Deserialize,
    {
        let mut attempt = 1;
        loop {
            match request.clone().customize().send(&self.client).await {
                Ok(output) => return Ok(output),
                Err(error) if is_retryable(&error) && attempt < self.settings.attempts_max => {
                    tracing::warn!(%error, attempt, "Stripe read failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * 2u64.pow(attempt - 1))).await;
                    attempt += 1;
                }
                Err(error) => return Err(to_gateway_error(&error)),
            }
        }
    }

    /// Sends a write with our idempotency key, repeating it (same key) while the failure is one
    /// Stripe documents as safe to retry.
    async fn send<R>(&self, request: R, key: &str) -> Result<R::Output, GatewayError>
    where
        R: StripeRequest + Clone,
        R::Output: miniserde::Deserialize,
    {
        let key = IdempotencyKey::new(key).map_err(|e| GatewayError::Unexpected(e.to_string()))?;
        let mut attempt = 1;
        loop {
            let sent = request
                .clone()
                .customize()
                .request_strategy(RequestStrategy::Idempotent(key.clone()))
                .send(&self.client)
                .await;
            match sent {
                Ok(output) => return Ok(output),
                Err(error) if is_retryable(&error) && attempt < self.settings.attempts_max => {
                    tracing::warn!(%error, attempt, "Stripe request failed; retrying with the same idempotency key");
                    tokio::time::sleep(Duration::from_millis(200 * 2u64.pow(attempt - 1))).await;
                    attempt += 1;
                }
                Err(error) => return Err(to_gateway_error(&error)),
            }
        }
    }
}

fn stripe_currency(currency: Currency) -> stripe_types::Currency {
    let code = currency.code().to_ascii_lowercase();
    match stripe_types::Currency::from_str(&code) {
        Ok(currency) => currency,
        Err(never) => match never {},
    }
}

/// When the session should expire: ours, within the bounds Stripe accepts.
fn session_expiry(expires_at: OffsetDateTime, now: OffsetDateTime) -> i64 {
    let now = now.unix_timestamp();
    expires_at
        .unix_timestamp()
        .clamp(now + SESSION_LIFETIME_MIN_SECS, now + SESSION_LIFETIME_MAX_SECS)
}

#[async_trait]
impl PaymentGateway for StripeGateway {
    fn provider(&self) -> &ProviderName {
        &self.provider
    }

    fn supports_currency(&self, _currency: Currency) -> bool {
        true
    }

    async fn create_checkout(&self, request: CheckoutRequest) -> Result<CheckoutSession, GatewayError> {
        let currency = stripe_currency(request.amount.currency());
        let items: Vec<CreateCheckoutSessionLineItems> = request
            .lines
            .iter()
            .map(|line| CreateCheckoutSessionLineItems {
                price_data: Some(CreateCheckoutSessionLineItemsPriceData {
                    unit_amount: Some(line.unit_amount.amount_minor()),
                    product_data: Some(ProductData::new(line.name.clone())),
                    ..CreateCheckoutSessionLineItemsPriceData::new(currency.clone())
                }),
                quantity: Some(u64::from(line.quantity)),
                ..Default::default()
            })
            .collect();
        let payment_id = request.payment_id.to_string();
        let metadata = HashMap::from([("payment_id".to_owned(), payment_id.clone())]);
        let payment_intent = CreateCheckoutSessionPaymentIntentData {
            metadata: Some(metadata.clone()),
            ..CreateCheckoutSessionPaymentIntentData::new()
        };
        let create = CreateCheckoutSession::new()
            .mode(CheckoutSessionMode::Payment)
            .line_items(items)
            .client_reference_id(payment_id)
            .metadata(metadata)
            .payment_intent_data(payment_intent)
            .customer_email(request.customer_email.clone())
            .success_url(self.settings.success_url.clone())
            .cancel_url(self.settings.cancel_url.clone())
            .expires_at(session_expiry(request.expires_at, OffsetDateTime::now_utc()));
        let session = self.send(create, &request.idempotency_key).await?;
        if let Some(total) = session.amount_total.filter(|total| *total != request.amount.amount_minor()) {
            return Err(GatewayError::Unexpected(format!(
                "Stripe priced the session at {total}, not {}",
                request.amount.amount_minor()
            )));
        }
        let checkout_url = session
            .url
            .clone()
            .ok_or_else(|| GatewayError::Unexpected("the session has no URL".into()))?;
        Ok(CheckoutSession {
            session_id: session.id.as_str().to_owned(),
            checkout_url,
        })
    }

    async fn refund(&self, request: RefundRequest) -> Result<GatewayRefund, GatewayError> {
        let metadata = HashMap::from([
            ("refund_id".to_owned(), request.refund_id.to_string()),
            ("payment_id".to_owned(), request.payment_id.to_string()),
        ]);
        let create = CreateRefund::new()
            .payment_intent(request.provider_payment_id.clone())
            .amount(request.amount.amount_minor())
            .reason(CreateRefundReason::RequestedByCustomer)
            .metadata(metadata);
        let refund = self.send(create, &request.idempotency_key).await?;
        Ok(GatewayRefund {
            provider_refund_id: refund.id.as_str().to_owned(),
            status: events::refund_status(refund.status.as_deref()),
        })
    }

    async fn expire_checkout(&self, session_id: &str) -> Result<CheckoutClosure, GatewayError> {
        let expire = ExpireCheckoutSession::new(session_id);
        match self.send(expire, &format!("expire-{session_id}")).await {
            Ok(_) => Ok(CheckoutClosure::Closed),
            // Only an open session can be expired: ask what became of this one.
            Err(GatewayError::InvalidRequest(_)) => {
                let session = self.read(RetrieveCheckoutSession::new(session_id)).await?;
                match session.status {
                    Some(CheckoutSessionStatus::Complete) => Ok(CheckoutClosure::Completed),
                    Some(CheckoutSessionStatus::Expired) => Ok(CheckoutClosure::AlreadyClosed),
                    other => Err(GatewayError::Unexpected(format!(
                        "Stripe would not expire session {session_id}, whose status is {}",
                        other.as_ref().map_or("unknown", CheckoutSessionStatus::as_str)
                    ))),
                }
            }
            Err(error) => Err(error),
        }
    }

    fn verify_webhook(&self, headers: &WebhookHeaders, body: &[u8], now: OffsetDateTime) -> Result<GatewayEvent, WebhookError> {
        let header = headers.get(stripe_signature::HEADER).ok_or(WebhookError::MissingSignature)?;
        let secrets: Vec<Vec<u8>> = self.settings.webhook_secrets.iter().map(|s| s.as_bytes().to_vec()).collect();
        stripe_signature::verify(&secrets, header, body, now.unix_timestamp(), self.settings.webhook_tolerance_secs)?;
        events::parse(body)
    }
}
