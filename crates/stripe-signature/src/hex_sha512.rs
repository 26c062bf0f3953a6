//! The other scheme card providers sign webhooks with (Monnify, Paystack): the hex-encoded
//! HMAC-SHA512 of the raw body, keyed with the merchant's secret key, in one header and without
//! a timestamp (so every success is confirmed with the provider's API before it counts).

use application::ports::gateway::WebhookError;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha512;

/// The signature of `body` under `secret_key`.
pub fn sign(secret_key: &str, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha512>::new_from_slice(secret_key.as_bytes()) else {
        return String::new();
    };
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Checks `header` against the signature of `body`, in constant time.
///
/// # Errors
/// `MalformedSignature` when the header is not hex, `BadSignature` when it does not match.
pub fn verify(secret_key: &str, header: &str, body: &[u8]) -> Result<(), WebhookError> {
    let expected = hex::decode(header.trim()).map_err(|_| WebhookError::MalformedSignature)?;
    let mut mac = Hmac::<Sha512>::new_from_slice(secret_key.as_bytes()).map_err(|_| WebhookError::BadSignature)?;
    mac.update(body);
    mac.verify_slice(&expected).map_err(|_| WebhookError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_verifies_with_its_key_only_and_untouched() {
        let signature = sign("sk_test_1", b"{\"event\":\"charge.success\"}");
        assert!(verify("sk_test_1", &signature, b"{\"event\":\"charge.success\"}").is_ok());
        assert!(matches!(
            verify("sk_test_2", &signature, b"{\"event\":\"charge.success\"}"),
            Err(WebhookError::BadSignature)
        ));
        assert!(matches!(
            verify("sk_test_1", &signature, b"{\"event\":\"charge.failed\"}"),
            Err(WebhookError::BadSignature)
        ));
        assert!(matches!(
            verify("sk_test_1", "not hex", b"{}"),
            Err(WebhookError::MalformedSignature)
        ));
    }
}
