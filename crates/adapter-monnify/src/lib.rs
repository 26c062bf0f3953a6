//! The Monnify gateway: the card and bank-transfer checkout Nigerian (NGN) wallet funding is built
//! on.
//!
//! Monnify's API answers in an envelope (`requestSuccessful`, `responseMessage`, `responseCode`,
//! `responseBody`) behind a bearer token obtained with the API and secret keys. Its webhooks are
//! signed with HMAC-SHA512 of the raw body (`monnify-signature`) but carry no timestamp and no
//! event id, so every success is also confirmed with the transaction-status API before it is
//! applied, and event ids are derived from the transaction or refund reference.

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
use domain::money::Currency;
use domain::payment::ProviderName;
use time::OffsetDateTime;

use crate::api::Api;

pub const PROVIDER: &str = "monnify";
pub const SIGNATURE_HEADER: &str = "monnify-signature";

#[derive(Clone)]
pub struct MonnifySettings {
    pub api_key: String,
    pub secret_key: String,
    pub contract_code: String,
    /// `https://api.monnify.com` live, `https://sandbox.monnify.com` for the sandbox.
    pub base_url: String,
    /// Where Monnify sends the customer after checkout.
    pub redirect_url: String,
    pub request_timeout: Duration,
    /// Attempts per call when the failure is safe to repeat.
    pub attempts_max: u32,
}

impl std::fmt::Debug for MonnifySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MonnifySettings")
            .field("api_key", &self.api_key)
            .field("secret_key", &"***")
            .field("contract_code", &self.contract_code)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MonnifySetupError {
    #[error("MONNIFY_API_KEY, MONNIFY_SECRET_KEY and MONNIFY_CONTRACT_CODE must all be set")]
    Incomplete,
    #[error("MONNIFY_BASE_URL must be an http(s) URL")]
    BaseUrl,
    #[error("the HTTP client cannot be built: {0}")]
    Client(String),
}

pub struct MonnifyGateway {
    provider: ProviderName,
    api: Api,
    secret_key: String,
}

impl std::fmt::Debug for MonnifyGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MonnifyGateway").field("api", &self.api).finish_non_exhaustive()
    }
}

impl MonnifyGateway {
    /// # Errors
    /// Incomplete or malformed configuration.
    pub fn new(settings: MonnifySettings) -> Result<MonnifyGateway, MonnifySetupError> {
        if [&settings.api_key, &settings.secret_key, &settings.contract_code]
            .iter()
            .any(|v| v.trim().is_empty())
        {
            return Err(MonnifySetupError::Incomplete);
        }
        if !(settings.base_url.starts_with("https://") || settings.base_url.starts_with("http://")) {
            return Err(MonnifySetupError::BaseUrl);
        }
        ensure_crypto_provider();
        let secret_key = settings.secret_key.clone();
        let api = Api::new(settings).map_err(|e| MonnifySetupError::Client(e.to_string()))?;
        let provider = ProviderName::parse(PROVIDER).map_err(|e| MonnifySetupError::Client(e.to_string()))?;
        Ok(MonnifyGateway { provider, api, secret_key })
    }
}

/// Installs ring as the process's rustls crypto provider, unless one is installed already.
/// reqwest is built without a provider of its own (to share ring with the Stripe client instead of
/// compiling aws-lc), and Cargo unifies that choice for every reqwest client in the binary, so the
/// server calls this before it builds any HTTP client.
pub fn ensure_crypto_provider() {
    // Err only means a provider is installed already, which is what is wanted.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// HMAC-SHA512 of the raw body with the client secret key, hex-encoded, as Monnify signs.
pub fn sign(secret_key: &str, body: &[u8]) -> String {
    stripe_signature::hex_sha512::sign(secret_key, body)
}

fn verify_signature(secret_key: &str, header: &str, body: &[u8]) -> Result<(), WebhookError> {
    stripe_signature::hex_sha512::verify(secret_key, header, body)
}

#[async_trait]
impl PaymentGateway for MonnifyGateway {
    fn provider(&self) -> &ProviderName {
        &self.provider
    }

    fn supports_currency(&self, currency: Currency) -> bool {
        currency == Currency::Ngn
    }

    async fn create_checkout(&self, request: CheckoutRequest) -> Result<CheckoutSession, GatewayError> {
        if !self.supports_currency(request.amount.currency()) {
            return Err(GatewayError::InvalidRequest(format!(
                "Monnify only takes NGN, not {}",
                request.amount.currency()
            )));
        }
        let body = api::InitRequest {
            amount: api::amount(request.amount)?,
            customer_name: request.customer_email.split('@').next().unwrap_or("Customer").to_owned(),
            customer_email: request.customer_email.clone(),
            payment_reference: request.payment_id.to_string(),
            payment_description: request.description.clone(),
            currency_code: "NGN",
            contract_code: self.api.contract_code().to_owned(),
            redirect_url: self.api.redirect_url().to_owned(),
            payment_methods: ["CARD", "ACCOUNT_TRANSFER"],
        };
        let answer: api::InitTransaction = self.api.post("/api/v1/merchant/transactions/init-transaction", &body).await?;
        Ok(CheckoutSession {
            session_id: answer.transaction_reference,
            checkout_url: answer.checkout_url,
        })
    }

    async fn refund(&self, request: RefundRequest) -> Result<GatewayRefund, GatewayError> {
        // Monnify refuses a refund reference it has seen, which would read as a refusal and give
        // the merchant the money back while the customer is refunded too: a retry (after a lost
        // answer, or the follow-up job asking again) first looks the refund up by our reference.
        let reference = request.refund_id.to_string();
        if let Some(existing) = self.api.find_refund(&reference).await? {
            return Ok(GatewayRefund {
                provider_refund_id: existing.refund_reference,
                status: events::refund_status(&existing.refund_status),
            });
        }
        let reason: String = request.reason.chars().take(64).collect();
        let body = api::RefundRequestBody {
            transaction_reference: request.provider_payment_id.clone(),
            refund_reference: reference,
            refund_amount: api::amount(request.amount)?,
            refund_reason: if reason.is_empty() { "CUSTOMER_REQUEST".to_owned() } else { reason },
            customer_note: "Refund",
        };
        let answer: api::Refund = self.api.post("/api/v1/refunds/initiate-refund", &body).await?;
        Ok(GatewayRefund {
            provider_refund_id: answer.refund_reference,
            status: events::refund_status(&answer.refund_status),
        })
    }

    async fn confirm_payment(&self, reference: &PaymentReference) -> Result<Option<ConfirmedPayment>, GatewayError> {
        let transaction = reference
            .session_id
            .clone()
            .or_else(|| reference.provider_payment_id.clone())
            .ok_or_else(|| GatewayError::InvalidRequest("the event names no Monnify transaction".into()))?;
        let status: api::TransactionStatus = self
            .api
            .get(&format!("/api/v2/transactions/{}", api::encode_path(&transaction)))
            .await?;
        Ok(Some(events::confirmed(&status)?))
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
        let body = br#"{"eventType":"SUCCESSFUL_TRANSACTION"}"#;
        let header = sign("secret", body);
        assert_eq!(header.len(), 128);
        assert_eq!(verify_signature("secret", &header, body), Ok(()));
        assert_eq!(verify_signature("other", &header, body), Err(WebhookError::BadSignature));
        assert_eq!(
            verify_signature("secret", &header, br#"{"eventType":"FAILED"}"#),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(verify_signature("secret", "zz", body), Err(WebhookError::MalformedSignature));
    }
}
