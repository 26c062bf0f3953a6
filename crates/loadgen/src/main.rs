//! `loadgen`: seeds its own users, merchants, products and funded wallets through the public API,
//! runs a scenario for a fixed time (or request count) at a given concurrency against one or more
//! server instances, prints throughput, latency percentiles and every non-2xx by status, then
//! checks the books and fails loudly if anything does not add up.

mod api;
mod books;
mod scenario;
mod stats;
mod webhooks;
mod world;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;

use crate::api::Api;
use crate::scenario::Scenario;
use crate::stats::Stats;
use crate::world::{Shape, World};

#[derive(Debug, Parser)]
#[command(name = "loadgen", about = "Load generator and books checker for the payment API")]
struct Args {
    /// Base URL of a server instance; repeat to spread clients over several.
    #[arg(long = "url", default_value = "http://127.0.0.1:8080")]
    urls: Vec<String>,
    #[arg(long, value_enum, default_value = "purchase")]
    scenario: Scenario,
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Seconds to run (after the warm-up).
    #[arg(long, default_value_t = 20)]
    duration: u64,
    /// Stop after this many requests instead.
    #[arg(long)]
    requests: Option<u64>,
    /// Seconds of unrecorded warm-up.
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    #[arg(long, env = "ADMIN_EMAIL", default_value = "admin@example.com")]
    admin_email: String,
    #[arg(long, env = "ADMIN_PASSWORD", default_value = "bench password 1")]
    admin_password: String,
    #[arg(long, default_value_t = 64)]
    merchants: usize,
    #[arg(long, default_value_t = 4)]
    products_per_merchant: usize,
    /// Units of each ordinary product.
    #[arg(long, default_value_t = 1_000_000)]
    stock: i64,
    /// Units of the flash-sale product.
    #[arg(long, default_value_t = 1_000_000)]
    hot_stock: i64,
    /// Write the report as JSON here too.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Skip the books check.
    #[arg(long)]
    no_check: bool,
    /// Do not fail on 5xx or unanswered requests (for runs that kill an instance on purpose).
    #[arg(long)]
    allow_failed_requests: bool,
    /// Subscribe a local receiver to the server's webhooks (the platform to every event, each
    /// merchant to `order.paid`) and report their lag; the server must allow plain http to
    /// loopback (`WEBHOOK_ALLOW_HTTP`, `WEBHOOK_ALLOW_PRIVATE_ADDRESSES`).
    #[arg(long)]
    webhooks: bool,
}

/// Runs every client until the deadline (or the request budget) and merges their statistics.
async fn run(api: &Api, world: Arc<World>, args: &Args, seconds: u64, record: bool) -> anyhow::Result<(Stats, Duration)> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let budget = Arc::new(AtomicU64::new(if record { args.requests.unwrap_or(u64::MAX) } else { u64::MAX }));
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..args.clients {
        let (api, world, budget, scenario) = (api.clone(), Arc::clone(&world), Arc::clone(&budget), args.scenario);
        tasks.spawn(async move {
            let mut stats = Stats::new();
            let mut rng = fastrand::Rng::with_seed(client as u64 + 1);
            while Instant::now() < deadline
                && budget
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok()
            {
                let answer = scenario::step(scenario, &api, &world, client, &mut rng).await;
                stats.record(answer.status, answer.elapsed);
                if answer.status == 0 {
                    // The instance is down: do not spin on a refused connection.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            stats
        });
    }
    let mut stats = Stats::new();
    while let Some(client) = tasks.join_next().await {
        stats.merge(&client?);
    }
    Ok((stats, started.elapsed()))
}

async fn main_inner(args: Args) -> anyhow::Result<()> {
    let api = Api::new(args.clients.max(8))?;
    let shape = Shape {
        merchants: args.merchants,
        products_per_merchant: args.products_per_merchant,
        buyers: args.clients,
        stock: args.stock,
        hot_stock: args.hot_stock,
        funds_minor: 10_000_000,
    };
    eprintln!(
        "seeding {} merchants, {} products and {} funded buyers",
        shape.merchants,
        shape.merchants * shape.products_per_merchant,
        shape.buyers
    );
    let world = Arc::new(World::seed(&api, args.urls.clone(), (&args.admin_email, &args.admin_password), &shape).await?);
    let mut receiver = None;
    if args.webhooks {
        let mut started = webhooks::Receiver::start().await?;
        started.subscribe(&api, &world).await?;
        receiver = Some(started);
    }
    let mut warm = Stats::new();
    if args.warmup > 0 {
        warm = run(&api, Arc::clone(&world), &args, args.warmup, false).await?.0;
    }
    let (stats, elapsed) = run(&api, Arc::clone(&world), &args, args.duration, true).await?;
    let load_ended = Instant::now();
    let mut report = stats.report(args.scenario.name(), args.clients, elapsed);
    report.print();
    if let Some(receiver) = receiver {
        let webhooks = receiver.drain(load_ended, Duration::from_secs(3), Duration::from_secs(120)).await;
        webhooks.print();
        receiver.close(&api, &world).await?;
        check_webhooks(&webhooks, args.scenario, warm.count(201) + stats.count(201))?;
        report.webhooks = Some(webhooks);
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)?;
    }
    let failed = report.server_errors();
    if failed > 0 && !args.allow_failed_requests {
        anyhow::bail!("{failed} requests got a 5xx or no answer");
    }
    if args.no_check {
        return Ok(());
    }
    // Lists may come from a read replica (DATABASE_REPLICA_URL) a moment behind the primary:
    // books that do not add up are read again, for a few seconds, before they count.
    let mut books = books::check(&api, &world).await?;
    for _ in 0..BOOKS_SETTLE_RETRIES {
        if books.problems.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        books = books::check(&api, &world).await?;
    }
    println!(
        "  books: {} orders, {} units sold, {} problems",
        books.orders,
        books.units_sold,
        books.problems.len()
    );
    books::fail_on_problems(&books)
}

/// How often books that do not add up are read again, half a second apart.
const BOOKS_SETTLE_RETRIES: u32 = 10;

/// Every delivery verified and, where each success is a paid order, every order's `order.paid`
/// reached its merchant.
fn check_webhooks(report: &webhooks::WebhookReport, scenario: Scenario, created: u64) -> anyhow::Result<()> {
    if report.unverified > 0 {
        anyhow::bail!("{} webhook deliveries did not verify", report.unverified);
    }
    let orders_only = matches!(scenario, Scenario::Purchase | Scenario::FlashSale);
    if orders_only && report.merchant_orders_paid as u64 != created {
        anyhow::bail!(
            "{} orders were paid but merchants received {} order.paid events",
            created,
            report.merchant_orders_paid
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match main_inner(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("loadgen: {error:#}");
            ExitCode::FAILURE
        }
    }
}
