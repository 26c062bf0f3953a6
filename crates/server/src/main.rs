//! The `server` binary. Without a subcommand it serves.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use server::config::{Settings, Storage};
use server::{Application, Backend, Services, migrate, seed, telemetry};

/// mimalloc instead of the system allocator: a request allocates and frees many small buffers
/// (JSON, SQL binds, HTTP headers) across threads, where glibc's malloc showed up in profiles.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "server",
    about = "The payment backend. Configuration comes from the environment (see the README)."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API (the default).
    Serve,
    /// Apply the database migrations (DATABASE_URL).
    Migrate,
    /// Create demo users, products and funded wallets (safe to run twice).
    Seed,
    /// Create an admin account.
    CreateAdmin {
        #[arg(long)]
        email: String,
        /// Read from ADMIN_PASSWORD when not given.
        #[arg(long, env = "ADMIN_PASSWORD", hide_env_values = true)]
        password: String,
    },
    /// Check the ledger's invariants; exits non-zero with a report if one is broken.
    VerifyLedger,
}

/// Runs `$body` with `$app` bound to the use cases on whichever backend is configured.
macro_rules! with_app {
    ($settings:expr, |$app:ident| $body:expr) => {{
        let backend = Backend::connect(&$settings).await?;
        match backend {
            Backend::Memory(store) => {
                tracing::warn!("no DATABASE_URL: running against an empty in-memory store");
                let $app = Services::new(store, &$settings, "").await?.app;
                $body
            }
            Backend::Postgres(store) => {
                let $app = Services::new(store, &$settings, "").await?.app;
                $body
            }
        }
    }};
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve => {
            Application::build(settings).await?.run_until_stopped().await?;
        }
        Command::Migrate => {
            let Storage::Postgres(postgres) = &settings.storage else {
                anyhow::bail!("set DATABASE_URL to migrate a database");
            };
            let applied = migrate(postgres).await?;
            println!(
                "migrations applied: {}",
                if applied.is_empty() {
                    "none (up to date)".to_owned()
                } else {
                    applied.join(", ")
                }
            );
        }
        Command::Seed => with_app!(settings, |app| {
            let report = seed::run(&app).await?;
            println!("seeded: {report:?} (password of every seeded account: {:?})", seed::SEED_PASSWORD);
        }),
        Command::CreateAdmin { email, password } => with_app!(settings, |app| {
            let (admin, created) = seed::ensure_admin(&app, &email, &password).await?;
            match created {
                true => println!("admin {} ({}) created", admin.email, admin.id),
                false => println!(
                    "admin {} ({}) exists already; its password is left as it was",
                    admin.email, admin.id
                ),
            }
        }),
        Command::VerifyLedger => with_app!(settings, |app| {
            let report = app.verify_ledger_unchecked().await?;
            let audit = &report.audit;
            println!(
                "transactions: {}, postings: {}, wallets: {}",
                audit.transaction_count, audit.posting_count, audit.wallet_count
            );
            for (currency, total) in &audit.totals_by_currency {
                println!("total {currency}: {total}");
            }
            println!("merchant statements checked: {}", report.statements_checked);
            if !report.is_ok() {
                for problem in &report.problems {
                    eprintln!("PROBLEM: {problem}");
                }
                return Ok(ExitCode::from(2));
            }
            println!("ledger OK");
        }),
    }
    Ok(ExitCode::SUCCESS)
}

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("configuration error: {error:#}");
            return ExitCode::from(78);
        }
    };
    let traces = match telemetry::init_with_traces(settings.log_json, settings.traces.as_ref()) {
        Ok(traces) => traces,
        Err(error) => {
            eprintln!("configuration error: {error:#}");
            return ExitCode::from(78);
        }
    };
    let code = match run(cli.command.unwrap_or(Command::Serve), settings).await {
        Ok(code) => code,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "fatal");
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    };
    // After the server and its jobs have stopped: their last spans are exported too.
    if let Some(traces) = traces {
        traces.shutdown().await;
    }
    code
}
