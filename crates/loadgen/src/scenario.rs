//! The scenarios: what one client does in a loop.

use std::num::NonZeroU64;

use api_client::types;

use crate::api::{Answer, Api, PASSWORD, parse, timed};
use crate::world::World;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// Wallet purchases of random products from many merchants.
    Purchase,
    /// Every client buys the same product of one merchant.
    FlashSale,
    /// Person-to-person transfers between random funded users.
    Transfer,
    /// Every client sends a cent to the same user (a fundraiser): transfers on one hot wallet.
    TransferToOne,
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
            Scenario::TransferToOne => "transfer-to-one",
            Scenario::Browse => "browse",
            Scenario::Mixed => "mixed",
            Scenario::AuthoriseCapture => "authorise-capture",
            Scenario::AuthoriseCaptureOrder => "authorise-capture-order",
        }
    }
}

/// The index that stands for the flash-sale product.
pub const HOT: usize = usize::MAX;

/// A request the load generator builds from values it made itself (ids, fixed amounts): one that
/// does not parse is a bug here, answered as a transport failure would be.
fn unbuildable(why: &anyhow::Error) -> Answer {
    eprintln!("loadgen could not build a request: {why}");
    Answer {
        status: 0,
        elapsed: std::time::Duration::ZERO,
        body: None,
    }
}

fn items(product: uuid::Uuid, quantity: u64) -> Vec<types::OrderItemRequest> {
    vec![types::OrderItemRequest {
        product_id: product,
        quantity: NonZeroU64::new(quantity).unwrap_or(NonZeroU64::MIN),
    }]
}

async fn purchase(api: &Api, world: &World, client: usize, product: usize) -> Answer {
    let buyer = &world.buyers[client % world.buyers.len()];
    let id = if product == HOT {
        world.hot_product.id
    } else {
        world.products[product].id
    };
    let order = types::OrderRequest {
        capture: None,
        items: items(id, 1),
        payment_method: types::PaymentMethodChoice::Wallet,
        provider: None,
    };
    let client = api.client(world.base_for(client), buyer);
    timed(client.orders_create(None, &order)).await.status_only()
}

fn transfer_of_a_cent(to: uuid::Uuid) -> anyhow::Result<types::TransferRequestBody> {
    // The generated body has one variant per way of naming the recipient: by id (0) or e-mail (1).
    Ok(types::TransferRequestBody::Variant0 {
        amount: parse("0.01")?,
        currency: parse("USD")?,
        note: None,
        to_user_id: to,
    })
}

async fn transfer(api: &Api, world: &World, client: usize, rng: &mut fastrand::Rng) -> Answer {
    let from = client % world.buyers.len();
    let mut to = rng.usize(..world.buyers.len());
    if to == from {
        to = (to + 1) % world.buyers.len();
    }
    transfer_between(api, world, client, from, to).await
}

/// The first buyer receives from all the others.
async fn transfer_to_one(api: &Api, world: &World, client: usize) -> Answer {
    let from = 1 + client % (world.buyers.len() - 1).max(1);
    transfer_between(api, world, client, from % world.buyers.len(), 0).await
}

async fn transfer_between(api: &Api, world: &World, client: usize, from: usize, to: usize) -> Answer {
    let body = match transfer_of_a_cent(world.buyers[to].id) {
        Ok(body) => body,
        Err(why) => return unbuildable(&why),
    };
    let client = api.client(world.base_for(client), &world.buyers[from]);
    timed(client.wallets_transfer(None, &body)).await.status_only()
}

async fn browse(api: &Api, world: &World, client: usize, rng: &mut fastrand::Rng) -> Answer {
    let client = api.anonymous(world.base_for(client));
    if rng.bool() {
        timed(client.catalog_list(None, NonZeroU64::new(20), None, None))
            .await
            .status_only()
    } else {
        let product = &world.products[rng.usize(..world.products.len())];
        timed(client.catalog_show(&product.id)).await.status_only()
    }
}

/// What a capture takes of each 1.00 hold, in cents.
pub const CAPTURED_MINOR: i64 = 60;

fn hold_and_capture(merchant: uuid::Uuid) -> anyhow::Result<(types::HoldRequestBody, types::CaptureRequestBody)> {
    let hold = types::HoldRequestBody {
        merchant_id: merchant,
        amount: parse("1.00")?,
        currency: parse("USD")?,
        customer_id: None,
        description: Some(parse("load test")?),
        expires_in_seconds: None,
    };
    let capture = types::CaptureRequestBody {
        amount: Some(parse("0.60")?),
        final_: Some(true),
    };
    Ok((hold, capture))
}

async fn authorise_and_capture(api: &Api, world: &World, client: usize, rng: &mut fastrand::Rng) -> Answer {
    let base = world.base_for(client);
    let buyer = &world.buyers[client % world.buyers.len()];
    let merchant = rng.usize(..world.merchants.len());
    let (hold, capture) = match hold_and_capture(world.merchants[merchant].id) {
        Ok(bodies) => bodies,
        Err(why) => return unbuildable(&why),
    };
    let authorised = timed(api.client(base, buyer).holds_authorise(None, &hold)).await;
    let Some(held) = authorised.body.as_ref().filter(|_| authorised.status == 201) else {
        return authorised.status_only();
    };
    let as_merchant = api.client(base, &world.merchants[merchant]);
    let mut captured = timed(as_merchant.holds_capture(&held.id, None, Some(&capture))).await;
    if captured.status == 200 {
        world.captured_minor[merchant].fetch_add(CAPTURED_MINOR, std::sync::atomic::Ordering::Relaxed);
    }
    captured.elapsed += authorised.elapsed;
    captured.status_only()
}

async fn authorise_and_capture_order(api: &Api, world: &World, client: usize, rng: &mut fastrand::Rng) -> Answer {
    let base = world.base_for(client);
    let buyer = &world.buyers[client % world.buyers.len()];
    let product = &world.products[rng.usize(..world.products.len())];
    let order = types::OrderRequest {
        capture: Some(types::CaptureChoice::Manual),
        items: items(product.id, 2),
        payment_method: types::PaymentMethodChoice::Wallet,
        provider: None,
    };
    let authorised = timed(api.client(base, buyer).orders_create(None, &order)).await;
    let Some(placed) = authorised.body.as_ref().filter(|_| authorised.status == 201) else {
        return authorised.status_only();
    };
    let one = types::OrderCaptureRequest {
        items: Some(items(product.id, 1)),
    };
    let as_merchant = api.client(base, &world.merchants[product.merchant]);
    let mut captured = timed(as_merchant.orders_capture(&placed.id, None, Some(&one))).await;
    captured.elapsed += authorised.elapsed;
    captured.status_only()
}

async fn history(api: &Api, world: &World, client: usize) -> Answer {
    let buyer = &world.buyers[client % world.buyers.len()];
    let client = api.client(world.base_for(client), buyer);
    timed(client.wallets_history(types::WalletsHistoryCurrency::Usd, None, NonZeroU64::new(20)))
        .await
        .status_only()
}

async fn login(api: &Api, world: &World, client: usize) -> Answer {
    let buyer = &world.buyers[client % world.buyers.len()];
    let request = match (parse(&buyer.email), parse(PASSWORD)) {
        (Ok(email), Ok(password)) => types::LoginRequest { email, password },
        (Err(why), _) | (_, Err(why)) => return unbuildable(&why),
    };
    timed(api.anonymous(world.base_for(client)).auth_login(&request))
        .await
        .status_only()
}

pub async fn step(scenario: Scenario, api: &Api, world: &World, client: usize, rng: &mut fastrand::Rng) -> Answer {
    match scenario {
        Scenario::Purchase => purchase(api, world, client, rng.usize(..world.products.len())).await,
        Scenario::FlashSale => purchase(api, world, client, HOT).await,
        Scenario::Transfer => transfer(api, world, client, rng).await,
        Scenario::TransferToOne => transfer_to_one(api, world, client).await,
        Scenario::Browse => browse(api, world, client, rng).await,
        Scenario::AuthoriseCapture => authorise_and_capture(api, world, client, rng).await,
        Scenario::AuthoriseCaptureOrder => authorise_and_capture_order(api, world, client, rng).await,
        Scenario::Mixed => match rng.u32(..100) {
            0..55 => browse(api, world, client, rng).await,
            55..75 => purchase(api, world, client, rng.usize(..world.products.len())).await,
            75..85 => transfer(api, world, client, rng).await,
            85..95 => history(api, world, client).await,
            _ => login(api, world, client).await,
        },
    }
}
