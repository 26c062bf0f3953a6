//! Prints the trace of one seed: `cargo run -p simulation --example trace -- <seed> <steps>`.

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<u64>().unwrap_or(0));
    let seed = args.next().unwrap_or(0);
    let steps = args.next().unwrap_or(200);
    for line in simulation::trace(seed, steps) {
        println!("{line}");
    }
}
