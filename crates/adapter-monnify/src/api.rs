//! Monnify's HTTP API: authentication, the response envelope, retries.

use std::time::Duration;

use application::ports::gateway::GatewayError;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use domain::money::Money;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::MonnifySettings;

/// A token is renewed this long before Monnify says it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<T> {
    request_successful: bool,
    #[serde(default)]
    response_message: String,
    #[serde(default)]
    response_code: String,
    response_body: Option<T>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Login {
    access_token: String,
    expires_in: u64,
}

/// Serialised as a struct, not through `serde_json::Value`, which would turn the raw amount back
/// into a float.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct InitRequest {
    pub amount: Box<RawValue>,
    pub customer_name: String,
    pub customer_email: String,
    pub payment_reference: String,
    pub payment_description: String,
    pub currency_code: &'static str,
    pub contract_code: String,
    pub redirect_url: String,
    pub payment_methods: [&'static str; 2],
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RefundRequestBody {
    pub transaction_reference: String,
    pub refund_reference: String,
    pub refund_amount: Box<RawValue>,
    pub refund_reason: String,
    pub customer_note: &'static str,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct InitTransaction {
    pub transaction_reference: String,
    pub checkout_url: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Refund {
    pub refund_reference: String,
    #[serde(default)]
    pub refund_status: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TransactionStatus {
    pub payment_status: String,
    /// Monnify sends amounts as strings here and as numbers elsewhere.
    pub amount_paid: Option<serde_json::Value>,
    pub total_payable: Option<serde_json::Value>,
    pub currency: Option<String>,
}

/// An amount as the JSON number Monnify expects, written from the exact decimal text (never
/// through a float).
pub(crate) fn amount(money: Money) -> Result<Box<RawValue>, GatewayError> {
    RawValue::from_string(money.to_major_string()).map_err(|e| GatewayError::Unexpected(e.to_string()))
}

/// Percent-encodes a path segment (transaction references contain `|`).
pub(crate) fn encode_path(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

pub(crate) struct Api {
    http: reqwest::Client,
    settings: MonnifySettings,
    token: Mutex<Option<(String, Instant)>>,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api").field("settings", &self.settings).finish_non_exhaustive()
    }
}

/// Whether a failed call may simply be made again.
fn retryable(error: &GatewayError) -> bool {
    matches!(error, GatewayError::RateLimited | GatewayError::Unavailable(_))
}

impl Api {
    pub(crate) fn new(settings: MonnifySettings) -> Result<Api, reqwest::Error> {
        let http = reqwest::Client::builder().timeout(settings.request_timeout).build()?;
        Ok(Api {
            http,
            settings,
            token: Mutex::new(None),
        })
    }

    pub(crate) fn contract_code(&self) -> &str {
        &self.settings.contract_code
    }

    pub(crate) fn redirect_url(&self) -> &str {
        &self.settings.redirect_url
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.settings.base_url.trim_end_matches('/'))
    }

    async fn token(&self) -> Result<String, GatewayError> {
        let mut cached = self.token.lock().await;
        if let Some((token, until)) = cached.as_ref()
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let credentials = STANDARD.encode(format!("{}:{}", self.settings.api_key, self.settings.secret_key));
        let request = self
            .http
            .post(self.url("/api/v1/auth/login"))
            .header("authorization", format!("Basic {credentials}"))
            .json(&serde_json::json!({}));
        let login: Login = unwrap(request.send().await).await?;
        let lifetime = Duration::from_secs(login.expires_in).saturating_sub(TOKEN_MARGIN);
        *cached = Some((login.access_token.clone(), Instant::now() + lifetime));
        Ok(login.access_token)
    }

    async fn forget_token(&self) {
        *self.token.lock().await = None;
    }

    /// One authenticated call, retried while the failure is safe to repeat; a rejected token is
    /// renewed once.
    async fn call<T: DeserializeOwned>(&self, build: impl Fn(&str) -> reqwest::RequestBuilder) -> Result<T, GatewayError> {
        let mut attempt = 1;
        let mut renewed = false;
        loop {
            let token = self.token().await?;
            match unwrap(build(&token).send().await).await {
                Err(GatewayError::Authentication) if !renewed => {
                    self.forget_token().await;
                    renewed = true;
                }
                Err(error) if retryable(&error) && attempt < self.settings.attempts_max => {
                    tracing::warn!(%error, attempt, "Monnify call failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * 2u64.pow(attempt - 1))).await;
                    attempt += 1;
                }
                outcome => return outcome,
            }
        }
    }

    pub(crate) async fn post<T: DeserializeOwned, B: Serialize + Sync>(&self, path: &str, body: &B) -> Result<T, GatewayError> {
        let url = self.url(path);
        self.call(|token| self.http.post(&url).bearer_auth(token).json(body)).await
    }

    /// The refund made under our reference, if Monnify has one (it answers R7 when it has none).
    pub(crate) async fn find_refund(&self, reference: &str) -> Result<Option<Refund>, GatewayError> {
        match self.get::<Refund>(&format!("/api/v1/refunds/{}", encode_path(reference))).await {
            Ok(refund) => Ok(Some(refund)),
            Err(GatewayError::InvalidRequest(message)) if message.ends_with("(R7)") => Ok(None),
            Err(other) => Err(other),
        }
    }

    pub(crate) async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, GatewayError> {
        let url = self.url(path);
        self.call(|token| self.http.get(&url).bearer_auth(token)).await
    }
}

/// Turns an HTTP answer into the envelope's body, or a gateway error.
async fn unwrap<T: DeserializeOwned>(sent: Result<reqwest::Response, reqwest::Error>) -> Result<T, GatewayError> {
    let response = sent.map_err(|e| GatewayError::Unavailable(format!("Monnify did not answer: {e}")))?;
    let status = response.status().as_u16();
    let text = response.text().await.map_err(|e| GatewayError::Unavailable(e.to_string()))?;
    let envelope: Option<Envelope<T>> = serde_json::from_str(&text).ok();
    let message = envelope
        .as_ref()
        .map(|e| format!("{} ({})", e.response_message, e.response_code))
        .unwrap_or_else(|| text.chars().take(200).collect());
    match status {
        401 | 403 => return Err(GatewayError::Authentication),
        429 => return Err(GatewayError::RateLimited),
        500..=599 => return Err(GatewayError::Unavailable(format!("Monnify answered {status}: {message}"))),
        _ => {}
    }
    match envelope {
        Some(Envelope {
            request_successful: true,
            response_body: Some(body),
            ..
        }) => Ok(body),
        Some(_) => Err(GatewayError::InvalidRequest(message)),
        None => Err(GatewayError::Unexpected(format!(
            "Monnify answered {status} with an unreadable body"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::money::Currency;

    #[test]
    fn amounts_are_written_as_exact_decimal_numbers() -> Result<(), GatewayError> {
        assert_eq!(amount(Money::from_minor(1050, Currency::Ngn))?.get(), "10.50");
        assert_eq!(amount(Money::from_minor(10_000_001, Currency::Ngn))?.get(), "100000.01");
        Ok(())
    }

    #[test]
    fn references_are_encoded_for_the_path() {
        assert_eq!(encode_path("MNFY|20190915200044|000090"), "MNFY%7C20190915200044%7C000090");
    }
}
