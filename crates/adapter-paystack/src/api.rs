//! Paystack's HTTP API: the bearer secret key, the `{status, message, data}` envelope, and
//! retries of what is safe to repeat.

use std::time::Duration;

use application::ports::gateway::GatewayError;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::PaystackSettings;

/// Every answer: `status` says whether the request succeeded, `message` what happened.
#[derive(Debug, Deserialize)]
struct Envelope<T> {
    status: bool,
    #[serde(default)]
    message: String,
    data: Option<T>,
}

/// `POST /transaction/initialize`. Amounts are integers in the currency's subunit (kobo,
/// pesewas, cents).
#[derive(Debug, Serialize)]
pub(crate) struct InitRequest {
    pub email: String,
    pub amount: i64,
    pub currency: &'static str,
    pub reference: String,
    pub callback_url: String,
    pub metadata: serde_json::Value,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Initialized {
    pub authorization_url: String,
    pub reference: String,
}

/// `GET /transaction/verify/:reference`, the fields this adapter reads.
#[derive(Debug, Deserialize)]
pub(crate) struct Transaction {
    pub status: String,
    pub reference: String,
    pub amount: i64,
    pub currency: String,
}

/// `POST /refund`. `transaction` takes the transaction's reference or id; `merchant_note`
/// carries our provider key, which is how a refund already made is found again.
#[derive(Debug, Serialize)]
pub(crate) struct RefundRequestBody {
    pub transaction: String,
    pub amount: i64,
    pub currency: &'static str,
    pub customer_note: String,
    pub merchant_note: String,
}

/// A refund as `POST /refund` and `GET /refund` describe it.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Refund {
    #[serde(default)]
    pub id: serde_json::Value,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub merchant_note: Option<String>,
}

impl Refund {
    /// Paystack's refund id, as text (it sends a number).
    pub(crate) fn id(&self) -> String {
        match &self.id {
            serde_json::Value::String(text) => text.clone(),
            other => other.to_string(),
        }
    }
}

/// Percent-encodes a path segment or query value.
pub(crate) fn encode(segment: &str) -> String {
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
    settings: PaystackSettings,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api").field("settings", &self.settings).finish_non_exhaustive()
    }
}

/// Whether a failed call may simply be made again.
pub(crate) fn retryable(error: &GatewayError) -> bool {
    matches!(error, GatewayError::RateLimited | GatewayError::Unavailable(_))
}

impl Api {
    pub(crate) fn new(settings: PaystackSettings) -> Result<Api, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(settings.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Api { http, settings })
    }

    pub(crate) fn callback_url(&self) -> &str {
        &self.settings.callback_url
    }

    pub(crate) fn attempts_max(&self) -> u32 {
        self.settings.attempts_max.max(1)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.settings.base_url.trim_end_matches('/'))
    }

    /// The pause before attempt `attempt + 1`.
    pub(crate) async fn back_off(attempt: u32) {
        tokio::time::sleep(Duration::from_millis(200 * 2u64.pow(attempt.saturating_sub(1).min(6)))).await;
    }

    /// One call, retried while the failure is safe to repeat. Only for calls that may be
    /// repeated: reads, and writes that Paystack dedupes (initialising under our reference).
    async fn call<T: DeserializeOwned>(&self, build: impl Fn() -> reqwest::RequestBuilder) -> Result<T, GatewayError> {
        let mut attempt = 1;
        loop {
            match self.once(build()).await {
                Err(error) if retryable(&error) && attempt < self.attempts_max() => {
                    tracing::warn!(%error, attempt, "Paystack call failed; retrying");
                    Api::back_off(attempt).await;
                    attempt += 1;
                }
                outcome => return outcome,
            }
        }
    }

    async fn once<T: DeserializeOwned>(&self, request: reqwest::RequestBuilder) -> Result<T, GatewayError> {
        unwrap(request.bearer_auth(&self.settings.secret_key).send().await).await
    }

    pub(crate) async fn post<T: DeserializeOwned, B: Serialize + Sync>(&self, path: &str, body: &B) -> Result<T, GatewayError> {
        let url = self.url(path);
        self.call(|| self.http.post(&url).json(body)).await
    }

    /// A write Paystack does not dedupe: sent once; the caller decides what a retry must check.
    pub(crate) async fn post_once<T: DeserializeOwned, B: Serialize + Sync>(&self, path: &str, body: &B) -> Result<T, GatewayError> {
        self.once(self.http.post(self.url(path)).json(body)).await
    }

    pub(crate) async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, GatewayError> {
        let url = self.url(path);
        self.call(|| self.http.get(&url)).await
    }
}

/// Turns an HTTP answer into the envelope's data, or a gateway error.
async fn unwrap<T: DeserializeOwned>(sent: Result<reqwest::Response, reqwest::Error>) -> Result<T, GatewayError> {
    let response = sent.map_err(|e| GatewayError::Unavailable(format!("Paystack did not answer: {e}")))?;
    let status = response.status().as_u16();
    let text = response.text().await.map_err(|e| GatewayError::Unavailable(e.to_string()))?;
    let envelope: Option<Envelope<T>> = serde_json::from_str(&text).ok();
    let message = match serde_json::from_str::<Envelope<serde_json::Value>>(&text) {
        Ok(e) if !e.message.is_empty() => e.message,
        _ => text.chars().take(200).collect(),
    };
    match status {
        401 | 403 => return Err(GatewayError::Authentication),
        429 => return Err(GatewayError::RateLimited),
        500..=599 => return Err(GatewayError::Unavailable(format!("Paystack answered {status}: {message}"))),
        _ => {}
    }
    match envelope {
        Some(Envelope {
            status: true,
            data: Some(data),
            ..
        }) if (200..300).contains(&status) => Ok(data),
        _ if (400..500).contains(&status) => Err(GatewayError::InvalidRequest(format!("Paystack answered {status}: {message}"))),
        Some(Envelope { status: false, .. }) => Err(GatewayError::InvalidRequest(format!("Paystack refused: {message}"))),
        _ => Err(GatewayError::Unexpected(format!(
            "Paystack answered {status} with an unreadable body"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_encoded_for_the_path() {
        assert_eq!(encode("0190f0a4-3b5c-7cde"), "0190f0a4-3b5c-7cde");
        assert_eq!(encode("a/b?c"), "a%2Fb%3Fc");
    }
}
