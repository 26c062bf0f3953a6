//! Runs the simulation: `SIM_SEED` replays one seed; otherwise seeds follow one another from a
//! random start until `SIM_TOTAL_STEPS` steps have run. `SIM_STEPS` is each seed's length.
//! `SIM_STORE=postgres` runs on PostgreSQL (a fresh database per seed, at `DATABASE_URL`), with
//! shorter defaults. Exits with status 1 at the first failure, after printing its seed, step and
//! last steps.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

fn env_u64(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    match text.parse() {
        Ok(value) => Some(value),
        Err(_) => {
            eprintln!("{name} must be a whole number, not {text:?}");
            std::process::exit(2);
        }
    }
}

fn main() {
    let postgres = match std::env::var("SIM_STORE").as_deref() {
        Ok("postgres") => true,
        Ok("memory") | Err(_) => false,
        Ok(other) => {
            eprintln!("SIM_STORE must be memory or postgres, not {other:?}");
            std::process::exit(2);
        }
    };
    // Real IO is about a hundred times slower than the in-memory store.
    let (steps_default, total_default) = if postgres { (300, 3_000) } else { (1_000, 1_000_000) };
    let steps_per_seed = env_u64("SIM_STEPS").unwrap_or(steps_default);
    let replay = env_u64("SIM_SEED");
    let total = replay.map_or_else(|| env_u64("SIM_TOTAL_STEPS").unwrap_or(total_default), |_| steps_per_seed);
    // The only use of real randomness: where a run of random seeds starts. Each seed is printed
    // on failure, and replays without it.
    let first = replay.unwrap_or_else(|| {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        u64::try_from(nanos % u128::from(u64::MAX)).unwrap_or(0)
    });
    let started = Instant::now();
    let (mut done, mut seeds) = (0_u64, 0_u64);
    while done < total {
        let seed = first.wrapping_add(seeds);
        let steps = steps_per_seed.min(total - done);
        let run = if postgres {
            simulation::postgres::run(seed, steps)
        } else {
            simulation::run(seed, steps, None)
        };
        if let Err(failure) = run {
            eprintln!("{failure}");
            std::process::exit(1);
        }
        done += steps;
        seeds += 1;
    }
    let seconds = started.elapsed().as_secs_f64();
    let rate = done as f64 / seconds.max(1e-9);
    println!(
        "{done} steps over {seeds} seeds from seed {first} in {seconds:.1} s ({rate:.0} steps/s) on {}: no invariant broken",
        if postgres { "PostgreSQL" } else { "the in-memory store" }
    );
}
