//! The simulation as a test: short runs of fixed seeds hold every invariant, a seed replays
//! exactly, and a deliberately injected bug is found and replays from its seed.

use simulation::{Bug, run};

/// Long enough to reach restarts, expiries and late webhooks; short enough for `make test`.
const STEPS: u64 = 400;

#[test]
fn short_runs_of_fixed_seeds_break_no_invariant() {
    for seed in 0..10 {
        if let Err(failure) = run(seed, STEPS, None) {
            panic!("{failure}");
        }
    }
}

#[test]
fn a_run_reaches_the_flows_it_is_meant_to() {
    let trace: Vec<String> = (1..=4).flat_map(|seed| simulation::trace(seed, 2_000)).collect();
    let done = |needle: &str| {
        trace
            .iter()
            .filter(|line| line.starts_with("done") && line.contains(needle))
            .count()
    };
    let succeeded = |request: &str| {
        trace
            .iter()
            .filter(|line| line.starts_with(&format!("done {request}")) && line.contains(" => ok "))
            .count()
    };
    for request in [
        "TopUp",
        "Checkout",
        "Refund",
        "Transfer",
        "Withdraw",
        "Cancel",
        "Capture",
        "PayAgain",
        "AskRefund",
        "DecideRefund",
    ] {
        assert!(succeeded(request) > 0, "no {request} succeeded");
    }
    assert!(done("Applied") > 0, "no webhook was applied");
    assert!(trace.iter().any(|line| line.starts_with("restart")), "no restart");
}

#[test]
fn a_seed_replays_exactly() {
    let first = run(42, STEPS, None).unwrap_or_else(|failure| panic!("{failure}"));
    let second = run(42, STEPS, None).unwrap_or_else(|failure| panic!("{failure}"));
    assert_eq!(first, second);
    let other = run(43, STEPS, None).unwrap_or_else(|failure| panic!("{failure}"));
    assert_ne!(first.fingerprint, other.fingerprint);
}

#[test]
fn a_forgotten_idempotency_claim_is_found_within_the_ci_budget_and_replays_from_its_seed() {
    let found = (0..100).find_map(|seed| run(seed, 1_000, Some(Bug::ForgetIdempotencyClaims)).err());
    let Some(failure) = found else {
        panic!("the deliberate bug was not found in 100 seeds of 1000 steps");
    };
    assert!(
        failure.broken.iter().any(|b| b.contains("idempotency key")),
        "found something else: {failure}"
    );
    let replayed = run(failure.seed, failure.step, Some(Bug::ForgetIdempotencyClaims));
    assert_eq!(replayed.err(), Some(failure), "the failure did not replay");
}
