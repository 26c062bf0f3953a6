//! Stripe's webhook signature scheme, as Stripe signs its webhooks and the simulator imitates:
//! `Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">[,v1=...]`. Several `v1` entries may appear (Stripe sends one per active
//! secret while a secret is being rolled), and several secrets may be accepted.

pub mod hex_sha512;

use application::ports::gateway::WebhookError;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

pub const HEADER: &str = "stripe-signature";

/// Stripe's default tolerance between the signature's timestamp and now, in seconds.
pub const TOLERANCE: i64 = 300;

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => return Vec::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// The header value for `body` signed at `timestamp`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    sign_all(&[secret], timestamp, body)
}

/// The header value for `body` signed at `timestamp` with each of `secrets`, in order: one `v1`
/// entry per secret, so a receiver that knows any one of them accepts it (as while a secret is
/// being rolled).
pub fn sign_all(secrets: &[&[u8]], timestamp: i64, body: &[u8]) -> String {
    let mut header = format!("t={timestamp}");
    for secret in secrets {
        header.push_str(",v1=");
        header.push_str(&hex::encode(mac(secret, timestamp, body)));
    }
    header
}

/// Checks `header` against the raw `body`: some `v1` signature must match some secret, and the
/// timestamp must be within `tolerance` seconds of `now` (either side).
pub fn verify(secrets: &[Vec<u8>], header: &str, body: &[u8], now: i64, tolerance: i64) -> Result<(), WebhookError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let (key, value) = part.trim().split_once('=').ok_or(WebhookError::MalformedSignature)?;
        match key {
            "t" => timestamp = Some(value.parse::<i64>().map_err(|_| WebhookError::MalformedSignature)?),
            "v1" => signatures.push(hex::decode(value).map_err(|_| WebhookError::MalformedSignature)?),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(WebhookError::MalformedSignature)?;
    if signatures.is_empty() {
        return Err(WebhookError::MalformedSignature);
    }
    let matches = secrets.iter().any(|secret| {
        let expected = mac(secret, timestamp, body);
        signatures
            .iter()
            .any(|candidate| bool::from(candidate.as_slice().ct_eq(expected.as_slice())))
    });
    if !matches {
        return Err(WebhookError::BadSignature);
    }
    if (now - timestamp).abs() > tolerance {
        return Err(WebhookError::StaleTimestamp);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"id":"evt_1"}"#;

    #[test]
    fn a_signature_verifies_with_its_secret_only() {
        let header = sign(b"whsec_a", 1000, BODY);
        assert_eq!(verify(&[b"whsec_a".to_vec()], &header, BODY, 1000, 300), Ok(()));
        assert_eq!(
            verify(&[b"whsec_b".to_vec()], &header, BODY, 1000, 300),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify(&[b"whsec_b".to_vec(), b"whsec_a".to_vec()], &header, BODY, 1000, 300),
            Ok(())
        );
    }

    #[test]
    fn a_tampered_body_or_timestamp_fails() {
        let header = sign(b"s", 1000, BODY);
        assert_eq!(
            verify(&[b"s".to_vec()], &header, br#"{"id":"evt_2"}"#, 1000, 300),
            Err(WebhookError::BadSignature)
        );
        let moved = header.replace("t=1000", "t=1001");
        assert_eq!(verify(&[b"s".to_vec()], &moved, BODY, 1000, 300), Err(WebhookError::BadSignature));
    }

    #[test]
    fn stale_and_future_timestamps_fail() {
        let header = sign(b"s", 1000, BODY);
        assert_eq!(
            verify(&[b"s".to_vec()], &header, BODY, 1301, 300),
            Err(WebhookError::StaleTimestamp)
        );
        assert_eq!(verify(&[b"s".to_vec()], &header, BODY, 699, 300), Err(WebhookError::StaleTimestamp));
        assert_eq!(verify(&[b"s".to_vec()], &header, BODY, 1300, 300), Ok(()));
    }

    #[test]
    fn any_of_several_v1_entries_may_match() {
        let good = sign(b"s", 1000, BODY);
        let v1 = good.split("v1=").nth(1).unwrap_or_default();
        let header = format!("t=1000,v1={},v0=abc,v1={v1}", "00".repeat(32));
        assert_eq!(verify(&[b"s".to_vec()], &header, BODY, 1000, 300), Ok(()));
    }

    #[test]
    fn signed_with_two_secrets_verifies_with_either() {
        let header = sign_all(&[b"whsec_old", b"whsec_new"], 1000, BODY);
        assert_eq!(header.matches(",v1=").count(), 2, "{header}");
        assert!(header.starts_with(&sign(b"whsec_old", 1000, BODY)), "{header}");
        assert!(
            header.ends_with(sign(b"whsec_new", 1000, BODY).trim_start_matches("t=1000")),
            "{header}"
        );
        for secret in [b"whsec_old".to_vec(), b"whsec_new".to_vec()] {
            assert_eq!(verify(&[secret], &header, BODY, 1000, 300), Ok(()));
        }
        assert_eq!(
            verify(&[b"whsec_other".to_vec()], &header, BODY, 1000, 300),
            Err(WebhookError::BadSignature)
        );
    }

    #[test]
    fn malformed_headers_are_named_as_such() {
        for header in ["", "garbage", "t=abc,v1=00", "v1=00", "t=1000", "t=1000,v1=zz"] {
            assert_eq!(
                verify(&[b"s".to_vec()], header, BODY, 1000, 300),
                Err(WebhookError::MalformedSignature),
                "{header}"
            );
        }
    }
}
