//! Prints the trace of one seed: `cargo run -p simulation --example trace -- <seed> <steps>`
//! (`SIM_STORE=postgres` for the PostgreSQL variant).

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<u64>().unwrap_or(0));
    let seed = args.next().unwrap_or(0);
    let steps = args.next().unwrap_or(200);
    let trace = if std::env::var("SIM_STORE").as_deref() == Ok("postgres") {
        simulation::postgres::trace(seed, steps)
    } else {
        simulation::trace(seed, steps)
    };
    for line in trace {
        println!("{line}");
    }
}
