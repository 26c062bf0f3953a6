//! The background job that finishes what multi-step flows started, safe to run on every server
//! instance at once: each unit of work is claimed with row locks that other instances skip (or
//! re-checked under its lock), so instances share the work and never do it twice.
//!
//! Every `interval` it expires abandoned checkouts, retries the provider calls that follow-ups
//! still owe, extends or ends calls at the end of their authorisation, releases expired holds and
//! lets the store do its upkeep, each a batch at a time until less than a full batch is left.
//! Webhooks are relayed by a loop of their own, more often (`spawn_webhook_relay`), and the
//! ledger is verified by another, rarely (`spawn_ledger_verification`).
//!
//! Each round of each loop is the root span of a trace of its own (`job_round`,
//! `webhook_relay`, `ledger_verification`), under which the use cases and their transactions
//! are spans as they are under a request's.
//!
//! Each round is counted in the metrics (`job_rounds_total`, and by `task` (not `job`, which
//! Prometheus keeps for the scrape job) `job_items_total` and `job_failures_total`, `job_last_round_timestamp_seconds`), with the follow-ups left stuck
//! (`follow_ups_stuck`) and the ledger's last verification (`ledger_problems`,
//! `ledger_verifications_total`): the alerts of deploy/prometheus read them.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use application::App;
use application::ports::store::{StoreError, UnitOfWork};
use tokio::sync::watch;
use tracing::Instrument;

/// Runs the job every `interval` until told to stop.
pub fn spawn_flows<U: UnitOfWork>(
    app: Arc<App<U>>,
    interval: Duration,
    round: Round,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = stop.changed() => return,
            }
            // A use case is never cancelled midway: only the sleep above races the stop signal.
            run_once(&app, &round, &stop).await;
        }
    })
}

/// When the relay gives way to the API: with at least `busy_at` requests in flight, while the
/// outbox's lag is under `lag_max`. Deliveries are asynchronous by nature; purchases are not, so
/// under load the relay waits (a bounded lag) rather than take the CPU the requests need.
#[derive(Debug, Clone)]
pub struct RelayYield {
    pub in_flight: http_actix::state::InFlight,
    pub busy_at: usize,
    pub lag_max: Duration,
}

impl RelayYield {
    fn busy(&self) -> bool {
        self.in_flight.now() >= self.busy_at
    }
}

/// Whether a relay round waits: the API is busy and the outbox is not too far behind.
fn gives_way(busy: bool, lag: Duration, lag_max: Duration) -> bool {
    busy && lag < lag_max
}

/// Relays webhooks every `interval` (more often than the flows job: receivers expect events
/// within seconds) until told to stop, and records the relay's metrics; gives way to requests as
/// `yielding` says.
pub fn spawn_webhook_relay<U: UnitOfWork>(
    app: Arc<App<U>>,
    interval: Duration,
    yielding: Option<RelayYield>,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = stop.changed() => return,
            }
            relay_webhooks(&app, yielding.as_ref(), &stop)
                .instrument(tracing::info_span!(parent: None, "webhook_relay"))
                .await;
        }
    })
}

/// How long the oldest event has waited; none known counts as no lag.
async fn outbox_lag<U: UnitOfWork>(app: &App<U>) -> Duration {
    match app.webhook_backlog().await {
        Ok(backlog) => backlog.outbox_lag.try_into().unwrap_or(Duration::ZERO),
        Err(error) => {
            log_failure("webhook backlog", &error);
            Duration::ZERO
        }
    }
}

/// Relays until a round finds nothing left to do, the server is stopping, or the API is busy
/// enough for the relay to give way (checked before every round: under load new events keep
/// coming, so the rounds would never end by themselves); then records the backlog.
async fn relay_webhooks<U: UnitOfWork>(app: &App<U>, yielding: Option<&RelayYield>, stop: &watch::Receiver<bool>) {
    loop {
        if let Some(yielding) = yielding
            && yielding.busy()
            && gives_way(true, outbox_lag(app).await, yielding.lag_max)
        {
            metrics::counter!("webhook_relay_yields_total").increment(1);
            break;
        }
        match app.relay_webhooks().await {
            Ok(round) => {
                for (outcome, count) in [
                    ("delivered", round.delivered),
                    ("retrying", round.retrying),
                    ("failed", round.failed),
                ] {
                    metrics::counter!("webhook_deliveries_total", "outcome" => outcome).increment(count as u64);
                }
                record_money_outcomes(&round.money_outcomes);
                let busy = round.events > 0 || round.delivered + round.retrying + round.failed > 0;
                if !busy || *stop.borrow() {
                    break;
                }
            }
            Err(error) => {
                log_failure("relay webhooks", &error);
                break;
            }
        }
    }
    match app.webhook_backlog().await {
        Ok(backlog) => {
            metrics::gauge!("webhook_outbox_lag_seconds").set(backlog.outbox_lag.as_seconds_f64());
            metrics::gauge!("webhook_deliveries_pending", "state" => "queued").set(backlog.deliveries.queued as f64);
            metrics::gauge!("webhook_deliveries_pending", "state" => "retrying").set(backlog.deliveries.retrying as f64);
        }
        Err(error) => log_failure("webhook backlog", &error),
    }
}

/// Payments and refunds by provider and outcome: `payment.succeeded` from provider `stripe`
/// counts as `payments_total{provider="stripe",outcome="succeeded"}`.
fn record_money_outcomes(outcomes: &std::collections::BTreeMap<(&'static str, String), usize>) {
    for ((event_type, provider), count) in outcomes {
        let labels = |outcome: &str| [("provider", provider.clone()), ("outcome", outcome.to_owned())];
        match event_type.split_once('.') {
            Some(("payment", outcome)) => metrics::counter!("payments_total", &labels(outcome)).increment(*count as u64),
            Some(("refund", outcome)) => metrics::counter!("refunds_total", &labels(outcome)).increment(*count as u64),
            _ => {}
        }
    }
}

/// Verifies every ledger invariant every `interval` until told to stop, and records the outcome
/// in the metrics; a broken invariant is also logged as an error, with what broke.
pub fn spawn_ledger_verification<U: UnitOfWork>(
    app: Arc<App<U>>,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // The first verification comes soon after start, so that the metrics have a reading
        // before the first interval is over.
        let mut wait = interval.min(FIRST_VERIFICATION_AFTER);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => return,
            }
            verify_ledger(&app)
                .instrument(tracing::info_span!(parent: None, "ledger_verification"))
                .await;
            wait = interval;
        }
    })
}

const FIRST_VERIFICATION_AFTER: Duration = Duration::from_secs(60);

/// Verifies the ledger once and records the outcome.
pub async fn verify_ledger<U: UnitOfWork>(app: &App<U>) {
    let result = match app.verify_ledger_unchecked().await {
        Ok(report) if report.is_ok() => {
            metrics::gauge!("ledger_problems").set(0.0);
            "ok"
        }
        Ok(report) => {
            metrics::gauge!("ledger_problems").set(report.problems.len() as f64);
            tracing::error!(problems = ?report.problems, "ledger verification found broken invariants");
            "broken"
        }
        Err(error) => {
            tracing::warn!(%error, "ledger verification could not run; it runs again next time");
            "error"
        }
    };
    metrics::counter!("ledger_verifications_total", "result" => result).increment(1);
    if result != "error" {
        metrics::gauge!("ledger_last_verification_timestamp_seconds").set(unix_now());
    }
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |elapsed| elapsed.as_secs_f64())
}

/// One round of the job on demand: tests move a manual clock past a deadline and run a round,
/// rather than wait for the job's timer.
#[cfg(feature = "testing")]
#[derive(Clone)]
pub struct JobRound(Arc<dyn Fn() -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>);

#[cfg(feature = "testing")]
impl JobRound {
    pub(crate) fn new<U: UnitOfWork>(app: Arc<App<U>>, round: Round, stop: watch::Receiver<bool>) -> JobRound {
        JobRound(Arc::new(move || {
            let (app, stop) = (Arc::clone(&app), stop.clone());
            let round = round.clone();
            Box::pin(async move { run_once(&app, &round, &stop).await })
        }))
    }

    /// Runs one round of every task of the job and waits for it to finish.
    pub async fn run(&self) {
        (self.0)().await;
    }
}

#[cfg(feature = "testing")]
impl std::fmt::Debug for JobRound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JobRound")
    }
}

/// What a round of the job does: how many items a task takes at a time, whether this instance
/// relays webhooks (`WEBHOOK_RELAY`), and when its relaying gives way to the API.
#[derive(Debug, Clone)]
pub struct Round {
    pub batch: usize,
    pub relay: bool,
    pub yielding: Option<RelayYield>,
}

/// One round of every task of the job, the root span of its own trace.
pub async fn run_once<U: UnitOfWork>(app: &App<U>, round: &Round, stop: &watch::Receiver<bool>) {
    run_round(app, round, stop)
        .instrument(tracing::info_span!(parent: None, "job_round"))
        .await;
}

async fn run_round<U: UnitOfWork>(app: &App<U>, round: &Round, stop: &watch::Receiver<bool>) {
    let batch = round.batch;
    drain("expire abandoned checkouts", batch, stop, || async {
        app.expire_abandoned_checkouts(batch).await.map_err(|e| e.to_string())
    })
    .await;
    drain("retry follow-ups", batch, stop, || async {
        app.run_follow_ups(batch).await.map_err(|e| e.to_string())
    })
    .await;
    drain("extend or end calls", batch, stop, || async {
        app.settle_due_calls(batch).await.map_err(|e| e.to_string())
    })
    .await;
    drain("release expired holds", batch, stop, || async {
        app.release_expired_holds(batch).await.map_err(|e| e.to_string())
    })
    .await;
    if round.relay {
        relay_webhooks(app, round.yielding.as_ref(), stop).await;
    }
    drain("prune webhook history", batch, stop, || async {
        app.prune_webhook_history(batch).await.map_err(|e| e.to_string())
    })
    .await;
    if let Err(error) = app.store_upkeep().await {
        log_failure("store upkeep", &error);
    }
    match app.stuck_follow_up_count(STUCK_COUNTED_MAX).await {
        Ok(stuck) => metrics::gauge!("follow_ups_stuck").set(stuck as f64),
        Err(error) => log_failure("count stuck follow-ups", &error),
    }
    metrics::counter!("job_rounds_total").increment(1);
    metrics::gauge!("job_last_round_timestamp_seconds").set(unix_now());
}

/// Stuck follow-ups are counted up to this many: past it the number no longer changes what to do.
const STUCK_COUNTED_MAX: usize = 1000;

/// Runs `task` until it handles less than a full batch (or the server is stopping).
async fn drain<F, Fut>(what: &'static str, batch: usize, stop: &watch::Receiver<bool>, task: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<usize, String>>,
{
    loop {
        let count = match task().await {
            Ok(count) => count,
            Err(error) => {
                tracing::warn!(job = what, %error, "a job task failed; it runs again next round");
                metrics::counter!("job_failures_total", "task" => what).increment(1);
                0
            }
        };
        if count > 0 {
            tracing::info!(job = what, count, "job task handled items");
            metrics::counter!("job_items_total", "task" => what).increment(count as u64);
        }
        if count < batch || *stop.borrow() {
            return;
        }
    }
}

fn log_failure(what: &'static str, error: &StoreError) {
    tracing::warn!(job = what, %error, "a job task failed; it runs again next round");
    metrics::counter!("job_failures_total", "task" => what).increment(1);
}

#[cfg(test)]
mod relay_yield_tests {
    use super::*;

    #[test]
    fn the_relay_gives_way_only_to_a_busy_api_and_only_up_to_its_lag_bound() {
        let max = Duration::from_secs(10);
        assert!(gives_way(true, Duration::from_secs(3), max));
        assert!(!gives_way(false, Duration::from_secs(3), max), "an idle API is never waited for");
        assert!(!gives_way(true, max, max), "past the bound it delivers however busy");
        let in_flight = http_actix::state::InFlight::default();
        let yielding = RelayYield {
            in_flight: in_flight.clone(),
            busy_at: 2,
            lag_max: max,
        };
        let first = in_flight.enter();
        assert!(!yielding.busy());
        let second = in_flight.enter();
        assert!(yielding.busy());
        drop((first, second));
        assert_eq!(in_flight.now(), 0, "a request counts until it ends");
    }
}
