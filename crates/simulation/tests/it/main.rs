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
        "AuthoriseHold",
        "CaptureHold",
        "VoidHold",
        "Adjust",
        "CreateEndpoint",
        "ManageEndpoint",
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

/// A few hundred steps a seed: enough for restarts, expiries and late webhooks on PostgreSQL,
/// whose steps wait for the database.
const POSTGRES_STEPS: u64 = 300;

#[test]
fn short_runs_on_postgresql_break_no_invariant_and_reach_their_flows_and_faults() {
    let mut faults_seen = 0;
    for seed in 0..3 {
        let summary = simulation::postgres::run(seed, POSTGRES_STEPS).unwrap_or_else(|failure| panic!("{failure}"));
        assert!(
            summary.requests_succeeded >= 20,
            "seed {seed}: only {} requests succeeded on PostgreSQL",
            summary.requests_succeeded
        );
        faults_seen += summary.store_faults_seen;
    }
    assert!(faults_seen > 0, "no injected store fault reached the application on PostgreSQL");
}

#[test]
fn a_card_checkout_left_pending_past_its_expiry_is_limbo_until_the_job_ends_it() {
    use simulation::executor::block_on;
    use simulation::requests::{Keyed, Pay, Request, start};
    use simulation::world::World;

    let mut world = World::new(7, None);
    let (buyer, product) = (world.buyers[0], world.products[0].0);
    // The simulated provider fails some calls: ask until a checkout opens.
    let opened = (0..20).find_map(|_| {
        let request = Request::Checkout {
            buyer,
            items: vec![(product, 1)],
            pay: Pay::Card,
        };
        let outcome = block_on(start(&world.app, Keyed { request, key: None }), 100)?;
        outcome.session.and(outcome.order)
    });
    assert!(opened.is_some(), "no card checkout opened in 20 attempts");
    let limbo = |world: &World<_>| -> Vec<String> {
        simulation::invariants::reconcile(world)
            .into_iter()
            .filter(|line| line.starts_with("limbo"))
            .collect()
    };

    world.clock.advance(time::Duration::hours(1));
    world.last_round = Some(world.now());
    let found = limbo(&world);
    assert!(
        found
            .iter()
            .any(|line| line.contains("payment") && line.contains("past its expiry")),
        "{found:?}"
    );
    assert!(found.iter().any(|line| line.contains("PaymentPending")), "{found:?}");

    let expired = block_on(world.app.expire_abandoned_checkouts(100), 100);
    assert!(matches!(expired, Some(Ok(n)) if n >= 1), "{expired:?}");
    let found = limbo(&world);
    assert!(found.is_empty(), "the expiry job ended the checkout, yet: {found:?}");
}
