//! The data a run works on, created through the public API: merchants with products, funded
//! buyers, and one hot product for the flash sale.

use std::sync::Arc;

use anyhow::Context;
use api_client::types;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::api::{Account, Api, expect, parse};

#[derive(Debug, Clone)]
pub struct Product {
    pub id: uuid::Uuid,
    pub merchant: usize,
    pub initial_available: i64,
}

#[derive(Debug)]
pub struct World {
    pub bases: Vec<String>,
    pub admin: Account,
    pub merchants: Vec<Account>,
    pub products: Vec<Product>,
    pub hot_product: Product,
    pub buyers: Vec<Account>,
    /// What each buyer was given, in cents.
    pub funds_minor: i64,
    /// What each merchant captured from holds during the run, in cents.
    pub captured_minor: Vec<std::sync::atomic::AtomicI64>,
}

#[derive(Debug, Clone)]
pub struct Shape {
    pub merchants: usize,
    pub products_per_merchant: usize,
    pub buyers: usize,
    pub stock: i64,
    pub hot_stock: i64,
    pub funds_minor: i64,
}

/// Runs `make` for each index with at most `parallel` at once.
async fn in_parallel<T: Send + 'static, F, Fut>(count: usize, parallel: usize, make: F) -> anyhow::Result<Vec<T>>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(parallel));
    let mut tasks = JoinSet::new();
    for index in 0..count {
        let permit = Arc::clone(&permits).acquire_owned().await?;
        let future = make(index);
        tasks.spawn(async move {
            let result = future.await;
            drop(permit);
            result.map(|value| (index, value))
        });
    }
    let mut results: Vec<(usize, T)> = Vec::with_capacity(count);
    while let Some(joined) = tasks.join_next().await {
        results.push(joined??);
    }
    results.sort_by_key(|(index, _)| *index);
    Ok(results.into_iter().map(|(_, value)| value).collect())
}

async fn create_product(api: &Api, base: &str, merchant: &Account, name: String, stock: i64) -> anyhow::Result<uuid::Uuid> {
    let request = types::ProductRequest {
        name: parse(&name)?,
        description: Some(parse("load test")?),
        price: parse("1.00")?,
        currency: parse("USD")?,
        stock,
    };
    let product = expect(api.client(base, merchant).catalog_create(None, &request), "product creation").await?;
    Ok(product.id)
}

impl World {
    pub async fn seed(api: &Api, bases: Vec<String>, admin: (&str, &str), shape: &Shape) -> anyhow::Result<World> {
        let base = bases.first().context("no base URL")?.clone();
        let admin = api
            .login(&base, admin.0, admin.1)
            .await
            .context("the admin logs in (start the server with ADMIN_EMAIL and ADMIN_PASSWORD)")?;
        let run = uuid::Uuid::now_v7().simple().to_string();
        let merchants = in_parallel(shape.merchants, 8, |n| {
            let (api, base, email) = (api.clone(), base.clone(), format!("m{n}-{run}@load.test"));
            async move { api.register(&base, &email, "merchant").await }
        })
        .await?;
        let per = shape.products_per_merchant;
        let stock = shape.stock;
        let ids = in_parallel(merchants.len() * per, 8, |n| {
            let (api, base, merchant) = (api.clone(), base.clone(), merchants[n / per].clone());
            async move { create_product(&api, &base, &merchant, format!("Item {n}"), stock).await }
        })
        .await?;
        let products = ids
            .into_iter()
            .enumerate()
            .map(|(n, id)| Product {
                id,
                merchant: n / per,
                initial_available: stock,
            })
            .collect();
        let hot_id = create_product(api, &base, &merchants[0], "Flash sale item".to_owned(), shape.hot_stock).await?;
        let hot_product = Product {
            id: hot_id,
            merchant: 0,
            initial_available: shape.hot_stock,
        };
        let funds = format!("{}.{:02}", shape.funds_minor / 100, shape.funds_minor % 100);
        let buyers = in_parallel(shape.buyers, 8, |n| {
            let (api, base, admin, funds, email) = (
                api.clone(),
                base.clone(),
                admin.clone(),
                funds.clone(),
                format!("b{n}-{run}@load.test"),
            );
            async move {
                let buyer = api.register(&base, &email, "customer").await?;
                let adjustment = types::AdjustmentRequestBody {
                    amount: parse(&funds)?,
                    currency: parse("USD")?,
                    reason: parse("load test funds")?,
                };
                expect(api.client(&base, &admin).admin_adjust(&buyer.id, None, &adjustment), "funding").await?;
                Ok(buyer)
            }
        })
        .await?;
        Ok(World {
            bases,
            admin,
            merchants,
            products,
            hot_product,
            buyers,
            funds_minor: shape.funds_minor,
            captured_minor: (0..shape.merchants).map(|_| std::sync::atomic::AtomicI64::new(0)).collect(),
        })
    }

    /// The base URL a client uses: clients are spread evenly over the instances.
    pub fn base_for(&self, client: usize) -> &str {
        &self.bases[client % self.bases.len()]
    }
}
