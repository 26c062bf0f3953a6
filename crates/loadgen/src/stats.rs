//! Latency histograms and status counts, and the report.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

#[derive(Debug)]
pub struct Stats {
    latencies: Histogram<u64>,
    statuses: BTreeMap<u16, u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: String,
    pub clients: usize,
    pub seconds: f64,
    pub requests: u64,
    pub requests_per_second: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Count of answers by status; 0 stands for a transport failure (no answer).
    pub statuses: BTreeMap<u16, u64>,
    /// What the webhook receiver saw, with `--webhooks`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhooks: Option<crate::webhooks::WebhookReport>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new()
    }
}

impl Stats {
    pub fn new() -> Stats {
        // Microseconds, up to a minute, three significant figures.
        let latencies =
            Histogram::new_with_bounds(1, 60_000_000, 3).unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable!()));
        Stats {
            latencies,
            statuses: BTreeMap::new(),
        }
    }

    pub fn record(&mut self, status: u16, elapsed: Duration) {
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX).clamp(1, 60_000_000);
        let _ = self.latencies.record(micros);
        *self.statuses.entry(status).or_default() += 1;
    }

    /// Answers with this status.
    pub fn count(&self, status: u16) -> u64 {
        self.statuses.get(&status).copied().unwrap_or(0)
    }

    pub fn merge(&mut self, other: &Stats) {
        let _ = self.latencies.add(&other.latencies);
        for (status, count) in &other.statuses {
            *self.statuses.entry(*status).or_default() += count;
        }
    }

    pub fn report(&self, scenario: &str, clients: usize, elapsed: Duration) -> Report {
        let ms = |q: f64| self.latencies.value_at_quantile(q) as f64 / 1000.0;
        let requests = self.latencies.len();
        Report {
            scenario: scenario.to_owned(),
            clients,
            seconds: elapsed.as_secs_f64(),
            requests,
            requests_per_second: requests as f64 / elapsed.as_secs_f64().max(f64::EPSILON),
            p50_ms: ms(0.5),
            p90_ms: ms(0.9),
            p99_ms: ms(0.99),
            max_ms: self.latencies.max() as f64 / 1000.0,
            statuses: self.statuses.clone(),
            webhooks: None,
        }
    }
}

impl Report {
    pub fn print(&self) {
        println!("scenario {} with {} clients for {:.1} s", self.scenario, self.clients, self.seconds);
        println!("  requests: {} ({:.0} per second)", self.requests, self.requests_per_second);
        println!(
            "  latency ms: p50 {:.2}, p90 {:.2}, p99 {:.2}, max {:.2}",
            self.p50_ms, self.p90_ms, self.p99_ms, self.max_ms
        );
        let others: Vec<String> = self
            .statuses
            .iter()
            .filter(|(s, _)| !(200..300).contains(*s))
            .map(|(s, n)| format!("{s}: {n}"))
            .collect();
        if others.is_empty() {
            println!("  every answer was 2xx");
        } else {
            println!("  non-2xx answers (0 = no answer): {}", others.join(", "));
        }
    }

    pub fn server_errors(&self) -> u64 {
        self.statuses.iter().filter(|(s, _)| **s >= 500 || **s == 0).map(|(_, n)| n).sum()
    }
}
