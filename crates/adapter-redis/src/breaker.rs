//! A circuit breaker around Redis calls.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug)]
pub(crate) struct Breaker {
    open_until: Mutex<Option<Instant>>,
    retry_after: Duration,
    timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum CallError {
    #[error("Redis is marked down; not trying until the breaker closes")]
    Open,
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("Redis failed: {0}")]
    Failed(String),
}

impl Breaker {
    pub(crate) fn new(retry_after: Duration, timeout: Duration) -> Breaker {
        Breaker {
            open_until: Mutex::new(None),
            retry_after,
            timeout,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.open_until.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn is_open(&self) -> bool {
        self.state().is_some_and(|until| Instant::now() < until)
    }

    /// Closes the breaker after a probe that reached Redis: calls go through again at once.
    pub(crate) fn close(&self) {
        if self.state().take().is_some() {
            tracing::info!("Redis answered a probe; leaving degraded mode");
        }
    }

    /// Runs `call` unless the breaker is open; a failure or timeout opens it, a success closes it.
    /// Redis calls are safe to abandon: the multiplexed connection discards the late reply.
    pub(crate) async fn call<T, E: std::fmt::Display>(&self, call: impl Future<Output = Result<T, E>>) -> Result<T, CallError> {
        if self.is_open() {
            return Err(CallError::Open);
        }
        let outcome = match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(CallError::Failed(error.to_string())),
            Err(_) => Err(CallError::Timeout(self.timeout)),
        };
        let mut state = self.state();
        match &outcome {
            Ok(_) => {
                if state.take().is_some() {
                    tracing::info!("Redis is back; leaving degraded mode");
                }
            }
            Err(error) => {
                if state.is_none() {
                    tracing::warn!(%error, "Redis failed; degraded mode (cache bypassed, in-process rate limits)");
                }
                *state = Some(Instant::now() + self.retry_after);
            }
        }
        outcome
    }
}
