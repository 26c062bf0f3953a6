//! Stripe's errors as gateway errors, and which of them may be retried.

use application::ports::gateway::GatewayError;
use stripe::StripeError;

/// Stripe documents 409 (a concurrent request with the same key), 429 and 5xx as retryable, and a
/// request that never got an answer may simply be repeated under the same idempotency key.
pub(crate) fn is_retryable(error: &StripeError) -> bool {
    match error {
        StripeError::Stripe(_, status) => matches!(status, 409 | 429 | 500..=599),
        StripeError::ClientError(_) | StripeError::Timeout => true,
        StripeError::JSONDeserialize(_) | StripeError::ConfigError(_) => false,
    }
}

pub(crate) fn to_gateway_error(error: &StripeError) -> GatewayError {
    match error {
        StripeError::Stripe(details, status) => {
            let message = details.message.clone().unwrap_or_else(|| details.type_.as_str().to_owned());
            match (status, details.type_.as_str()) {
                (429, _) => GatewayError::RateLimited,
                (401 | 403, _) => GatewayError::Authentication,
                (402, _) | (_, "card_error") => {
                    let code = details
                        .decline_code
                        .clone()
                        .or_else(|| details.code.as_ref().map(|c| c.as_str().to_owned()));
                    GatewayError::Declined(code.map_or(message.clone(), |code| format!("{code}: {message}")))
                }
                (500..=599 | 409, _) => GatewayError::Unavailable(format!("Stripe answered {status}: {message}")),
                _ => GatewayError::InvalidRequest(message),
            }
        }
        StripeError::ClientError(reason) => GatewayError::Unavailable(reason.clone()),
        StripeError::Timeout => GatewayError::Unavailable("Stripe did not answer in time".to_owned()),
        StripeError::JSONDeserialize(reason) | StripeError::ConfigError(reason) => GatewayError::Unexpected(reason.clone()),
    }
}
