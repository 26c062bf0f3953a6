//! Reading the endpoint's answer: the start of its body and its `Retry-After`.

use std::time::{Duration, SystemTime};

use domain::webhook::RESPONSE_CHARS_MAX;

/// At most this much of a body is read: enough for `RESPONSE_CHARS_MAX` characters of any UTF-8,
/// and no more of a body that may be huge.
const BODY_BYTES_MAX: usize = 4 * 1024;

/// The longest `Retry-After` honoured; an endpoint cannot park its deliveries for longer.
pub const RETRY_AFTER_MAX: Duration = Duration::from_secs(24 * 60 * 60);

/// The first `RESPONSE_CHARS_MAX` characters of the body, invalid UTF-8 replaced.
pub async fn read_start(response: &mut reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < BODY_BYTES_MAX {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            // The status has arrived: the answer stands with what came of its body.
            Ok(None) | Err(_) => break,
        }
    }
    bytes.truncate(BODY_BYTES_MAX);
    String::from_utf8_lossy(&bytes).chars().take(RESPONSE_CHARS_MAX).collect()
}

/// `Retry-After` as delta-seconds or an HTTP date, from `now`, capped at `RETRY_AFTER_MAX`; a
/// date in the past means now.
pub fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let delay = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Only overflow fails here, and it still means "a long time".
        Duration::from_secs(value.parse().unwrap_or(u64::MAX))
    } else {
        let date = httpdate::parse_http_date(value).ok()?;
        date.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(delay.min(RETRY_AFTER_MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(unix: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(unix)
    }

    #[test]
    fn delta_seconds_are_read_and_capped() {
        let now = at(1_700_000_000);
        assert_eq!(retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(retry_after("86401", now), Some(RETRY_AFTER_MAX));
        assert_eq!(retry_after("99999999999999999999999", now), Some(RETRY_AFTER_MAX));
    }

    #[test]
    fn http_dates_count_from_now() {
        // Tue, 14 Nov 2023 22:13:20 GMT is 1_700_000_000.
        let now = at(1_700_000_000);
        assert_eq!(retry_after("Tue, 14 Nov 2023 22:15:20 GMT", now), Some(Duration::from_secs(120)));
        assert_eq!(retry_after("Tue, 14 Nov 2023 22:00:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(retry_after("Fri, 01 Dec 2023 00:00:00 GMT", now), Some(RETRY_AFTER_MAX));
    }

    #[test]
    fn anything_else_is_ignored() {
        let now = at(1_700_000_000);
        for value in ["", "soon", "-5", "1.5", "120s"] {
            assert_eq!(retry_after(value, now), None, "{value}");
        }
    }
}
