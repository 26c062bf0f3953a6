//! The Paystack gateway: hosted checkout in naira, cedis, shillings, rand and dollars.
//!
//! Paystack's API answers in an envelope (`status`, `message`, `data`) and takes the secret key as
//! a bearer token. A checkout is a transaction initialised under our own reference (the payment
//! id), so a retried initialisation cannot open a second transaction: Paystack refuses a reference
//! it has seen. Webhooks are signed with HMAC-SHA512 of the raw body keyed with the secret key
//! (`x-paystack-signature`) but carry no timestamp and no event id, so every success is confirmed
//! with the verify API before it is applied, and event ids are derived from what the event is
//! about. Paystack's refunds take no idempotency key: our provider key goes in the refund's
//! `merchant_note`, and a refund is looked up by it before one is created, so a retry (or the
//! follow-up job asking again) never refunds twice and learns the refund's status instead.

mod api;
mod events;
#[cfg(feature = "testing")]
pub mod testing;

use std::time::Duration;

use application::ports::gateway::{
    CheckoutRequest, CheckoutSession, ConfirmedPayment, GatewayError, GatewayEvent, GatewayRefund, PaymentGateway, PaymentReference,
    RefundRequest, WebhookError, WebhookHeaders,
};
use async_trait::async_trait;
use domain::money::{Currency, Money};
use domain::payment::ProviderName;
use time::OffsetDateTime;

use crate::api::Api;

pub const PROVIDER: &str = "paystack";
pub const SIGNATURE_HEADER: &str = "x-paystack-signature";
/// The currencies Paystack settles that this backend knows (all in hundredths).
pub const CURRENCIES: [Currency; 5] = [Currency::Ngn, Currency::Ghs, Currency::Kes, Currency::Zar, Currency::Usd];
/// How many of Paystack's refunds of one transaction a lookup reads.
const REFUNDS_PAGE: u32 = 100;

#[derive(Clone)]
pub struct PaystackSettings {
    /// `sk_test_...` or `sk_live_...`: authenticates calls and keys webhook signatures.
    pub secret_key: String,
    /// `https://api.paystack.co`.
    pub base_url: String,
    /// Where Paystack sends the customer after checkout.
    pub callback_url: String,
    pub request_timeout: Duration,
    /// Attempts per call when the failure is safe to repeat.
    pub attempts_max: u32,
}

impl std::fmt::Debug for PaystackSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaystackSettings")
            .field("secret_key", &"***")
            .field("base_url", &self.base_url)
            .field("callback_url", &self.callback_url)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PaystackSetupError {
    #[error("PAYSTACK_SECRET_KEY must be a Paystack secret key (sk_test_... or sk_live_...)")]
    SecretKey,
    #[error("PAYSTACK_BASE_URL must be an http(s) URL")]
    BaseUrl,
    #[error("the HTTP client cannot be built: {0}")]
    Client(String),
}

pub struct PaystackGateway {
    provider: ProviderName,
    api: Api,
    secret_key: String,
}

impl std::fmt::Debug for PaystackGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaystackGateway").field("api", &self.api).finish_non_exhaustive()
    }
}

impl PaystackGateway {
    /// # Errors
    /// A missing or malformed secret key or base URL.
    pub fn new(settings: PaystackSettings) -> Result<PaystackGateway, PaystackSetupError> {
        let key = settings.secret_key.trim();
        if !(key.starts_with("sk_test_") || key.starts_with("sk_live_")) || key.len() <= "sk_test_".len() {
            return Err(PaystackSetupError::SecretKey);
        }
        if !(settings.base_url.starts_with("https://") || settings.base_url.starts_with("http://")) {
            return Err(PaystackSetupError::BaseUrl);
        }
        ensure_crypto_provider();
        let secret_key = settings.secret_key.clone();
        let api = Api::new(settings).map_err(|e| PaystackSetupError::Client(e.to_string()))?;
        let provider = ProviderName::parse(PROVIDER).map_err(|e| PaystackSetupError::Client(e.to_string()))?;
        Ok(PaystackGateway { provider, api, secret_key })
    }

    /// Our refund at Paystack, found by the provider key in its merchant note.
    async fn find_refund(&self, transaction: &str, key: &str) -> Result<Option<api::Refund>, GatewayError> {
        let path = format!("/refund?reference={}&perPage={REFUNDS_PAGE}", api::encode(transaction));
        let refunds: Vec<api::Refund> = self.api.get(&path).await?;
        Ok(refunds
            .into_iter()
            .find(|r| r.merchant_note.as_deref().is_some_and(|note| note_key(note) == Some(key))))
    }

    fn answer(refund: &api::Refund) -> GatewayRefund {
        GatewayRefund {
            provider_refund_id: refund.id(),
            status: events::refund_status(&refund.status),
        }
    }
}

/// The provider key a merchant note of ours carries (`key: reason`).
fn note_key(note: &str) -> Option<&str> {
    note.split_once(": ").map(|(key, _)| key).or(Some(note))
}

/// Installs ring as the process's rustls crypto provider, unless one is installed already.
pub fn ensure_crypto_provider() {
    // Err only means a provider is installed already, which is what is wanted.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// HMAC-SHA512 of the raw body with the secret key, hex-encoded, as Paystack signs.
pub fn sign(secret_key: &str, body: &[u8]) -> String {
    stripe_signature::hex_sha512::sign(secret_key, body)
}

fn verify_signature(secret_key: &str, header: &str, body: &[u8]) -> Result<(), WebhookError> {
    stripe_signature::hex_sha512::verify(secret_key, header, body)
}

/// An amount in Paystack's subunits, for a currency it takes.
fn subunits(money: Money) -> Result<(i64, &'static str), GatewayError> {
    let currency = money.currency();
    if !CURRENCIES.contains(&currency) {
        return Err(GatewayError::InvalidRequest(format!("Paystack does not take {currency}")));
    }
    if !money.is_positive() {
        return Err(GatewayError::InvalidRequest("the amount must be positive".into()));
    }
    Ok((money.amount_minor(), currency.code()))
}

#[async_trait]
impl PaymentGateway for PaystackGateway {
    fn provider(&self) -> &ProviderName {
        &self.provider
    }

    fn supports_currency(&self, currency: Currency) -> bool {
        CURRENCIES.contains(&currency)
    }

    async fn create_checkout(&self, request: CheckoutRequest) -> Result<CheckoutSession, GatewayError> {
        let (amount, currency) = subunits(request.amount)?;
        let reference = request.payment_id.to_string();
        let body = api::InitRequest {
            email: request.customer_email.clone(),
            amount,
            currency,
            reference: reference.clone(),
            callback_url: self.api.callback_url().to_owned(),
            metadata: serde_json::json!({"payment_id": reference, "description": request.description}),
        };
        match self.api.post::<api::Initialized, _>("/transaction/initialize", &body).await {
            Ok(answer) if answer.reference == reference => Ok(CheckoutSession {
                session_id: answer.reference,
                checkout_url: answer.authorization_url,
            }),
            Ok(answer) => Err(GatewayError::Unexpected(format!(
                "Paystack initialised {} when asked for {reference}",
                answer.reference
            ))),
            // An earlier attempt whose answer was lost took the reference: Paystack will not say
            // the checkout link again, so this checkout cannot be offered (nobody can pay it).
            Err(GatewayError::InvalidRequest(message)) if message.to_ascii_lowercase().contains("duplicate") => {
                Err(GatewayError::InvalidRequest(format!(
                    "Paystack already holds a transaction with reference {reference} whose checkout link was lost ({message})"
                )))
            }
            Err(error) => Err(error),
        }
    }

    async fn refund(&self, request: RefundRequest) -> Result<GatewayRefund, GatewayError> {
        let (amount, currency) = subunits(request.amount)?;
        let key = request.idempotency_key.clone();
        let reason: String = request.reason.chars().take(200).collect();
        let body = api::RefundRequestBody {
            transaction: request.provider_payment_id.clone(),
            amount,
            currency,
            customer_note: if reason.is_empty() { "Refund".to_owned() } else { reason.clone() },
            merchant_note: format!("{key}: {reason}"),
        };
        let mut attempt = 1;
        loop {
            // A refund made by an earlier attempt (whose answer may have been lost) is found,
            // never made again.
            if let Some(existing) = self.find_refund(&request.provider_payment_id, &key).await? {
                return Ok(PaystackGateway::answer(&existing));
            }
            match self.api.post_once::<api::Refund, _>("/refund", &body).await {
                Ok(refund) => return Ok(PaystackGateway::answer(&refund)),
                Err(error) if api::retryable(&error) && attempt < self.api.attempts_max() => {
                    tracing::warn!(%error, attempt, "Paystack refund failed; looking it up before retrying");
                    Api::back_off(attempt).await;
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn confirm_payment(&self, reference: &PaymentReference) -> Result<Option<ConfirmedPayment>, GatewayError> {
        let transaction = reference
            .session_id
            .clone()
            .or_else(|| reference.provider_payment_id.clone())
            .or_else(|| reference.payment_id.map(|id| id.to_string()))
            .ok_or_else(|| GatewayError::InvalidRequest("the event names no Paystack transaction".into()))?;
        let verified: api::Transaction = self.api.get(&format!("/transaction/verify/{}", api::encode(&transaction))).await?;
        Ok(Some(events::confirmed(&verified, &transaction)?))
    }

    fn verify_webhook(&self, headers: &WebhookHeaders, body: &[u8], _now: OffsetDateTime) -> Result<GatewayEvent, WebhookError> {
        let header = headers.get(SIGNATURE_HEADER).ok_or(WebhookError::MissingSignature)?;
        verify_signature(&self.secret_key, header, body)?;
        events::parse(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_only_for_their_secret_and_body() {
        let body = br#"{"event":"charge.success"}"#;
        let header = sign("sk_test_1", body);
        assert_eq!(header.len(), 128);
        assert_eq!(verify_signature("sk_test_1", &header, body), Ok(()));
        assert_eq!(verify_signature("sk_test_2", &header, body), Err(WebhookError::BadSignature));
        assert_eq!(
            verify_signature("sk_test_1", &header, br#"{"event":"charge.failed"}"#),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(verify_signature("sk_test_1", "zz", body), Err(WebhookError::MalformedSignature));
        assert_eq!(verify_signature("sk_test_1", "", body), Err(WebhookError::BadSignature));
    }

    #[test]
    fn merchant_notes_carry_the_provider_key() {
        assert_eq!(note_key("refund-123: damaged"), Some("refund-123"));
        assert_eq!(note_key("refund-123"), Some("refund-123"));
    }
}
