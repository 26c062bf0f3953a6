//! A deterministic simulation of the whole application, faults included (issue 19).
//!
//! `App` runs over the in-memory store with a manual clock, counting ids and a simulated card
//! provider. A seeded PRNG chooses every step: which actor acts (buyers, merchants, the admin,
//! the provider and its webhooks, the background jobs, the clock), with what input, valid or
//! not; which fault strikes (the provider fails, times out after acting, or refuses; a commit
//! conflicts, fails, or fails after taking effect; an update fails; the process restarts); and
//! in which order the use-case futures in flight are polled. The invariants are checked after
//! every step. The same seed gives the same run, so a failure replays from its seed and step.
//! The same world runs on PostgreSQL too (`postgres`), where a seed does not replay exactly.
//! See `docs/simulation.md`.

pub mod executor;
pub mod gateway;
pub mod invariants;
pub mod limbo;
pub mod postgres;
pub mod receiver;
pub mod requests;
pub mod rng;
pub mod store;
pub mod world;

use std::hash::{DefaultHasher, Hash, Hasher};
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::store::SimStore;
pub use crate::world::Bug;
use crate::world::World;

/// Trace lines a failure report shows: the last steps before it.
const TRACE_TAIL: usize = 40;

/// Ticks a run's end may take to let the tasks still in flight finish.
const DRAIN_TICKS_MAX: u32 = 10_000;

/// A broken invariant, with what it takes to replay it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub seed: u64,
    /// The step after which the invariants were found broken (1-based): the shortest failing
    /// prefix of the run, since they are checked after every step.
    pub step: u64,
    pub broken: Vec<String>,
    pub trace_tail: Vec<String>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "simulation failed: seed {} at step {}", self.seed, self.step)?;
        writeln!(f, "replay: SIM_SEED={} SIM_STEPS={} make simulate", self.seed, self.step)?;
        for broken in &self.broken {
            writeln!(f, "  broken: {broken}")?;
        }
        writeln!(f, "last steps:")?;
        for line in &self.trace_tail {
            writeln!(f, "  {line}")?;
        }
        Ok(())
    }
}

/// What a passing run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub steps: u64,
    /// Lines of the trace: requests, webhooks, jobs, faults, clock moves.
    pub events: usize,
    /// Requests that succeeded: a run that reaches none exercises little.
    pub requests_succeeded: usize,
    /// Requests, webhooks and jobs that failed on an injected store fault: a run whose faults
    /// never reach the application tests no failure.
    pub store_faults_seen: usize,
    /// A hash of the whole trace: equal for two runs of a seed when the run is deterministic.
    pub fingerprint: u64,
}

/// Runs `steps` steps from `seed`, with `bug` switched on if given; then lets the world quiesce
/// and reconciles the application with the provider (`invariants::reconcile`).
///
/// # Errors
/// The first step after which an invariant is broken, or at which the application panicked; or
/// the end of the run, if the reconciliation finds a difference.
pub fn run(seed: u64, steps: u64, bug: Option<Bug>) -> Result<Summary, Failure> {
    run_world(World::new(seed, bug), seed, steps)
}

/// Runs `world` for `steps` steps (see `run`).
fn run_world<S: SimStore>(mut world: World<S>, seed: u64, steps: u64) -> Result<Summary, Failure> {
    for step in 1..=steps {
        let stepped = catch_unwind(AssertUnwindSafe(|| world.step()));
        let broken = match stepped {
            Ok(()) => invariants::check(&mut world),
            Err(panic) => vec![format!("panicked: {}", panic_text(panic.as_ref()))],
        };
        if !broken.is_empty() {
            return Err(failure(&world, seed, step, broken));
        }
    }
    // The end of a run lets what is in flight finish, so that its effects are checked too.
    let mut ticks = 0;
    while !world.tasks.is_empty() && ticks < DRAIN_TICKS_MAX {
        if let Some((label, finished)) = world.tasks.tick(&mut world.rng, world.backend.driver()) {
            world.finish(&label, finished);
        }
        ticks += 1;
    }
    world.quiesce();
    let mut broken = invariants::check(&mut world);
    broken.extend(invariants::reconcile(&world));
    if !broken.is_empty() {
        return Err(failure(&world, seed, steps, broken));
    }
    let mut hasher = DefaultHasher::new();
    world.trace.hash(&mut hasher);
    Ok(Summary {
        steps,
        events: world.trace.len(),
        requests_succeeded: world
            .trace
            .iter()
            .filter(|line| line.starts_with("done") && line.contains(" => ok "))
            .count(),
        store_faults_seen: world
            .trace
            .iter()
            .filter(|line| line.starts_with("done") && line.contains("injected"))
            .count(),
        fingerprint: hasher.finish(),
    })
}

/// The trace of a run of `steps` steps from `seed`, failing or not: to see what a seed does.
pub fn trace(seed: u64, steps: u64) -> Vec<String> {
    trace_world(World::new(seed, None), steps)
}

fn trace_world<S: SimStore>(mut world: World<S>, steps: u64) -> Vec<String> {
    for _ in 0..steps {
        world.step();
    }
    std::mem::take(&mut world.trace)
}

fn failure<S: SimStore>(world: &World<S>, seed: u64, step: u64, broken: Vec<String>) -> Failure {
    let skip = world.trace.len().saturating_sub(TRACE_TAIL);
    Failure {
        seed,
        step,
        broken,
        trace_tail: world.trace[skip..].to_vec(),
    }
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        return (*text).to_owned();
    }
    panic
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_else(|| "a panic without a message".into())
}
