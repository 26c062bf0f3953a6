//! The scenarios: what one client does in a loop.

use serde_json::json;

use crate::api::{Answer, Api, PASSWORD};
use crate::world::World;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// Wallet purchases of random products from many merchants.
    Purchase,
    /// Every client buys the same product of one merchant.
    FlashSale,
    /// Person-to-person transfers between random funded users.
    Transfer,
    /// Product list and detail reads.
    Browse,
    /// Browsing, purchases, transfers, history reads and logins together.
    Mixed,
    /// A buyer authorises a random merchant to take 1.00, which captures 0.60 and releases the
    /// rest: two requests per step.
    AuthoriseCapture,
    /// A buyer orders two units of a random product with manual capture; its merchant captures
    /// one and the other goes back on sale: two requests per step.
    AuthoriseCaptureOrder,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Purchase => "purchase",
            Scenario::FlashSale => "flash-sale",
            Scenario::Transfer => "transfer",
            Scenario::Browse => "browse",
            Scenario::Mixed => "mixed",
            Scenario::AuthoriseCapture => "authorise-capture",
            Scenario::AuthoriseCaptureOrder => "authorise-capture-order",
        }
    }
}

/// The index that stands for the flash-sale product.
pub const HOT: usize = usize::MAX;

async fn purchase(api: &Api, world: &World, client: usize, product: usize) -> Answer {
    let buyer = &world.buyers[client % world.buyers.len()];
    let id = if product == HOT {
        &world.hot_product.id
    } else {
        &world.products[product].id
    };
    let body = json!({"items": [{"product_id": id, "quantity": 1}], "payment_method": "wallet"});
    api.post(&format!("{}/api/v1/orders", world.base_for(client)), Some(&buyer.token), &body)
        .await
}

async fn transfer(api: &Api, world: &World, client: usize, rng: &mut fastrand::Rng) -> Answer {
    let from = client % world.buyers.len();
    let mut to = rng.usize(..world.buyers.len());
    if to == from {
        to = (to + 1) % world.buyers.len();
    }
    let body = json!({"to_user_id": world.buyers[to].id, "amount": "0.01", "currency": "USD"});
    api.post(
        &format!("{}/api/v1/transfers", world.base_for(client)),
        Some(&world.buyers[from].token),
        &body,
    )
    .await
}

async fn browse(api: &Api, world: &World, client: usize, rng: &mut fastrand::Rng) -> Answer {
    let base = world.base_for(client);
    if rng.bool() {
        api.get(&format!("{base}/api/v1/products?limit=20"), None).await
    } else {
        let product = &world.products[rng.usize(..world.products.len())];
        api.get(&format!("{base}/api/v1/products/{}", product.id), None).await
    }
}

/// What a capture takes of each 1.00 hold, in cents.
pub const CAPTURED_MINOR: i64 = 60;

async fn authorise_and_capture(api: &Api, world: &World, client: usize, rng: &mut fastrand::Rng) -> Answer {
    let base = world.base_for(client);
    let buyer = &world.buyers[client % world.buyers.len()];
    let merchant = rng.usize(..world.merchants.len());
    let body = json!({"merchant_id": world.merchants[merchant].id, "amount": "1.00", "currency": "USD", "description": "load test"});
    let authorised = api.post(&format!("{base}/api/v1/holds"), Some(&buyer.token), &body).await;
    if authorised.status != 201 {
        return authorised;
    }
    let id = authorised.body["id"].as_str().unwrap_or_default();
    let capture = json!({"amount": "0.60", "final": true});
    let mut captured = api
        .post(
            &format!("{base}/api/v1/holds/{id}/capture"),
            Some(&world.merchants[merchant].token),
            &capture,
        )
        .await;
    if captured.status == 200 {
        world.captured_minor[merchant].fetch_add(CAPTURED_MINOR, std::sync::atomic::Ordering::Relaxed);
    }
    captured.elapsed += authorised.elapsed;
    captured
}

async fn authorise_and_capture_order(api: &Api, world: &World, client: usize, rng: &mut fastrand::Rng) -> Answer {
    let base = world.base_for(client);
    let buyer = &world.buyers[client % world.buyers.len()];
    let product = &world.products[rng.usize(..world.products.len())];
    let body = json!({"items": [{"product_id": product.id, "quantity": 2}], "payment_method": "wallet", "capture": "manual"});
    let authorised = api.post(&format!("{base}/api/v1/orders"), Some(&buyer.token), &body).await;
    if authorised.status != 201 {
        return authorised;
    }
    let id = authorised.body["id"].as_str().unwrap_or_default();
    let one = json!({"items": [{"product_id": product.id, "quantity": 1}]});
    let merchant = &world.merchants[product.merchant];
    let mut captured = api
        .post(&format!("{base}/api/v1/orders/{id}/capture"), Some(&merchant.token), &one)
        .await;
    captured.elapsed += authorised.elapsed;
    captured
}

pub async fn step(scenario: Scenario, api: &Api, world: &World, client: usize, rng: &mut fastrand::Rng) -> Answer {
    match scenario {
        Scenario::Purchase => purchase(api, world, client, rng.usize(..world.products.len())).await,
        Scenario::FlashSale => purchase(api, world, client, HOT).await,
        Scenario::Transfer => transfer(api, world, client, rng).await,
        Scenario::Browse => browse(api, world, client, rng).await,
        Scenario::AuthoriseCapture => authorise_and_capture(api, world, client, rng).await,
        Scenario::AuthoriseCaptureOrder => authorise_and_capture_order(api, world, client, rng).await,
        Scenario::Mixed => {
            let roll = rng.u32(..100);
            let buyer = &world.buyers[client % world.buyers.len()];
            let base = world.base_for(client);
            match roll {
                0..55 => browse(api, world, client, rng).await,
                55..75 => purchase(api, world, client, rng.usize(..world.products.len())).await,
                75..85 => transfer(api, world, client, rng).await,
                85..95 => {
                    api.get(&format!("{base}/api/v1/wallets/USD/transactions?limit=20"), Some(&buyer.token))
                        .await
                }
                _ => {
                    let body = json!({"email": buyer.email, "password": PASSWORD});
                    api.post(&format!("{base}/api/v1/auth/login"), None, &body).await
                }
            }
        }
    }
}
