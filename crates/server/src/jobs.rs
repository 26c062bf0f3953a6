//! Background jobs, safe to run on every server instance at once: each unit of work is claimed
//! with row locks that other instances skip.

use std::sync::Arc;
use std::time::Duration;

use application::App;
use application::ports::store::UnitOfWork;
use tokio::sync::watch;

/// Expires abandoned card checkouts every `interval`, a batch at a time, until told to stop.
pub fn spawn_expiry<U: UnitOfWork>(
    app: Arc<App<U>>,
    interval: Duration,
    batch: usize,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = stop.changed() => return,
            }
            // A use case is never cancelled midway: only the sleep above races the stop signal.
            loop {
                let count = match app.expire_abandoned_checkouts(batch).await {
                    Ok(count) => count,
                    Err(error) => {
                        tracing::warn!(%error, "the expiry job failed; it will try again");
                        0
                    }
                };
                if count > 0 {
                    tracing::info!(count, "expired abandoned checkouts");
                }
                // A full batch means more may be waiting; otherwise sleep until the next round.
                if count < batch || *stop.borrow() {
                    break;
                }
            }
        }
    })
}
