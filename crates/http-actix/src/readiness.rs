//! What `/health/ready` needs to answer an orchestrator in time: every dependency asked at once,
//! each within a short deadline, and a memory of each one's last answer so that a failing
//! dependency is logged when its state changes, not on every probe.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

/// How long readiness waits for the database. The checks run concurrently, so the answer comes
/// within the longest of these deadlines: well inside Kubernetes' default probe timeout of 1 s.
pub const STORE_CHECK_TIMEOUT: Duration = Duration::from_millis(500);

/// How long readiness waits for an optional dependency (the cache, the rate limiter): shorter,
/// since the service works without them.
pub const OPTIONAL_CHECK_TIMEOUT: Duration = Duration::from_millis(250);

/// Runs `check` within `deadline`; a check that did not answer in time has failed.
///
/// Abandoning a check is safe: the store's is a `SELECT 1` outside any transaction (a late reply
/// is discarded by the connection), and Redis' multiplexed connection discards late replies too.
pub async fn within<E>(deadline: Duration, check: impl Future<Output = Result<(), E>>) -> bool {
    matches!(tokio::time::timeout(deadline, check).await, Ok(Ok(())))
}

/// Each dependency's last readiness answer, shared by the workers.
#[derive(Debug, Default)]
pub struct DependencyStates {
    up: Mutex<BTreeMap<&'static str, bool>>,
}

impl DependencyStates {
    /// Records a check's outcome: logs when the dependency's state changed (the first failure,
    /// and the recovery), and counts every failed check in `readiness_check_failures_total`, so
    /// that an outage costs two log lines however often the probe asks. Returns whether the
    /// state changed (and so was logged).
    pub fn record(&self, dependency: &'static str, up: bool, required: bool) -> bool {
        metrics::gauge!("dependency_up", "dependency" => dependency).set(if up { 1.0 } else { 0.0 });
        if !up {
            metrics::counter!("readiness_check_failures_total", "dependency" => dependency).increment(1);
        }
        let before = self
            .up
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(dependency, up);
        match (before, up) {
            (Some(true) | None, false) if required => {
                tracing::error!(
                    dependency,
                    "readiness: a required dependency does not answer; this instance is unready"
                );
                true
            }
            (Some(true) | None, false) => {
                tracing::warn!(dependency, "readiness: an optional dependency does not answer; serving degraded");
                true
            }
            (Some(false), true) => {
                tracing::info!(dependency, "readiness: the dependency answers again");
                true
            }
            (None | Some(true), true) | (Some(false), false) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_that_does_not_answer_in_time_has_failed() -> std::io::Result<()> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build()?;
        runtime.block_on(async {
            let never = std::future::pending::<Result<(), ()>>();
            assert!(!within(Duration::from_millis(10), never).await);
            assert!(within(Duration::from_millis(10), async { Ok::<(), ()>(()) }).await);
            assert!(!within(Duration::from_millis(10), async { Err::<(), ()>(()) }).await);
        });
        Ok(())
    }

    #[test]
    fn a_failing_dependency_is_logged_when_it_fails_and_when_it_recovers_only() {
        let states = DependencyStates::default();
        assert!(!states.record("cache", true, false), "a first success is not news");
        assert!(states.record("cache", false, false), "the first failure is logged");
        for _ in 0..100 {
            assert!(!states.record("cache", false, false), "later failures are only counted");
        }
        assert!(!states.record("store", true, true), "each dependency has its own state");
        assert!(states.record("cache", true, false), "the recovery is logged");
        assert!(!states.record("cache", true, false));
        assert!(states.record("store", false, true), "a dependency failing from the start is logged");
    }
}
