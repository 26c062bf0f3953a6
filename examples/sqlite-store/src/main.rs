//! Runs a purchase and a refund through the payment core over a SQLite file, then prints what
//! happened and whether the ledger is exact.
//!
//! `cargo run -p example-sqlite-store -- [path]` (default `sqlite-store-example.db`). Every run
//! adds its own users, product and order to the file, so running it again shows the store reopened
//! with earlier runs' books intact. `BCRYPT_COST` (default 12) sets the password hashing cost.

use std::process::ExitCode;
use std::sync::Arc;

use adapter_auth::{BcryptHasher, JwtIssuer, JwtSettings};
use adapter_memory::MemoryCache;
use adapter_webhooks::{HttpWebhookSender, WebhookSenderSettings};
use application::context::{App, Settings};
use application::ports::gateway::Gateways;
use application::ports::system::{SystemClock, UuidV7Generator};
use example_sqlite_store::SqliteStore;
use example_sqlite_store::shop::{Receipt, purchase_and_refund};

const DEFAULT_PATH: &str = "sqlite-store-example.db";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let path = std::env::args().nth(1).unwrap_or_else(|| DEFAULT_PATH.to_owned());
    match run(&path).await {
        Ok(receipt) => {
            print!("{}", describe(&path, &receipt));
            if receipt.ledger_problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(path: &str) -> Result<Receipt, Box<dyn std::error::Error>> {
    let store = SqliteStore::open(path)?;
    let bcrypt_cost = match std::env::var("BCRYPT_COST") {
        Ok(cost) => cost.parse().map_err(|_| format!("BCRYPT_COST `{cost}` is not a number"))?,
        Err(_) => 12,
    };
    let tokens = JwtIssuer::new(JwtSettings {
        // Nobody signs in during the run, so a key that dies with the process is enough.
        secret: JwtIssuer::random_secret(),
        issuer: "sqlite-store-example".into(),
        audience: "sqlite-store-example".into(),
        access_ttl: time::Duration::minutes(15),
    })?;
    let app = App {
        store,
        clock: Arc::new(SystemClock),
        ids: Arc::new(UuidV7Generator),
        hasher: Arc::new(BcryptHasher::new(bcrypt_cost)),
        tokens: Arc::new(tokens),
        // Wallet payments only: no card provider is configured.
        gateways: Gateways::new(),
        cache: Arc::new(MemoryCache::new()),
        webhooks: Arc::new(HttpWebhookSender::new(WebhookSenderSettings::default())?),
        settings: Settings::default(),
    };
    // One run's users are told apart from earlier runs' by the time it started.
    let run = time::OffsetDateTime::now_utc().unix_timestamp_nanos().to_string();
    Ok(purchase_and_refund(&app, &run).await?)
}

fn describe(path: &str, receipt: &Receipt) -> String {
    let dollars = |minor: i64| format!("{}.{:02} USD", minor / 100, minor % 100);
    let ledger = if receipt.ledger_problems.is_empty() {
        "exact".to_owned()
    } else {
        receipt.ledger_problems.join("; ")
    };
    format!(
        "store: {path}\n\
         order {}: {} for {}, {:?} after a refund of {}\n\
         checkout retried under its idempotency key: {}\n\
         customer wallet: {}\n\
         merchant wallet: {}\n\
         lamps left on sale: {}\n\
         ledger: {ledger}\n",
        receipt.order,
        "2 lamps",
        dollars(receipt.order_total),
        receipt.order_status,
        dollars(receipt.refunded),
        if receipt.retry_answered_with_the_same_order {
            "answered with the same order"
        } else {
            "NOT answered with the same order"
        },
        dollars(receipt.customer_balance),
        dollars(receipt.merchant_balance),
        receipt.stock_left,
    )
}
