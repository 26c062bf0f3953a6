//! After a run: do the books add up? Checked against the server alone, so the check also holds
//! when requests failed without an answer (a killed instance): ledger verification, stock against
//! paid orders (no oversell, no lost unit), no half-written order, and money conserved among the
//! run's accounts.

use std::collections::HashMap;

use anyhow::{Context, bail};

use crate::api::Api;
use crate::world::World;

#[derive(Debug, Default)]
pub struct Books {
    pub orders: usize,
    pub units_sold: i64,
    pub problems: Vec<String>,
}

fn minor(text: &str) -> i64 {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, "0"));
    let negative = whole.starts_with('-');
    let whole: i64 = whole.trim_start_matches('-').parse().unwrap_or(0);
    let cents: i64 = format!("{fraction:0<2}")[..2].parse().unwrap_or(0);
    let value = whole * 100 + cents;
    if negative { -value } else { value }
}

/// Units sold per product of this run, from every order the admin can see.
async fn sold_units(api: &Api, world: &World, books: &mut Books) -> anyhow::Result<HashMap<String, i64>> {
    let ours: HashMap<&str, ()> = world
        .products
        .iter()
        .map(|p| (p.id.as_str(), ()))
        .chain([(world.hot_product.id.as_str(), ())])
        .collect();
    let mut sold: HashMap<String, i64> = HashMap::new();
    let mut cursor: Option<String> = None;
    let base = &world.bases[0];
    loop {
        let url = match &cursor {
            Some(c) => format!("{base}/api/v1/admin/orders?limit=100&cursor={c}"),
            None => format!("{base}/api/v1/admin/orders?limit=100"),
        };
        let page = api.expect(api.get(&url, Some(&world.admin.token)).await, "listing orders").await?;
        for order in page["items"].as_array().context("orders")? {
            let items = order["items"].as_array().context("items")?;
            if !items
                .iter()
                .any(|i| ours.contains_key(i["product_id"].as_str().unwrap_or_default()))
            {
                continue;
            }
            books.orders += 1;
            if order["status"] != "paid" {
                books
                    .problems
                    .push(format!("order {} is {}, not paid", order["id"], order["status"]));
            }
            for item in items {
                // A manual-capture order sells what its merchant captured.
                let bought = item["captured_quantity"].as_i64().or_else(|| item["quantity"].as_i64());
                *sold.entry(item["product_id"].as_str().unwrap_or_default().to_owned()).or_default() += bought.unwrap_or(0);
            }
        }
        cursor = page["next_cursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            return Ok(sold);
        }
    }
}

async fn balance(api: &Api, base: &str, token: &str) -> anyhow::Result<i64> {
    let wallet = api
        .expect(api.get(&format!("{base}/api/v1/wallets/USD"), Some(token)).await, "a wallet")
        .await?;
    Ok(minor(wallet["balance"].as_str().unwrap_or("0")))
}

/// What the buyers' wallets still hold: every hold of a run is captured with `final`.
async fn held_by_buyers(api: &Api, world: &World) -> anyhow::Result<i64> {
    let base = &world.bases[0];
    let mut held = 0;
    for buyer in &world.buyers {
        let wallet = api
            .expect(api.get(&format!("{base}/api/v1/wallets/USD"), Some(&buyer.token)).await, "a wallet")
            .await?;
        held += minor(wallet["held"].as_str().unwrap_or("0"));
    }
    Ok(held)
}

pub async fn check(api: &Api, world: &World) -> anyhow::Result<Books> {
    let base = &world.bases[0];
    let mut books = Books::default();
    let verdict = api
        .expect(
            api.get(&format!("{base}/api/v1/admin/ledger/verify"), Some(&world.admin.token))
                .await,
            "ledger verification",
        )
        .await?;
    if verdict["ok"] != true {
        books.problems.push(format!("the ledger does not verify: {}", verdict["problems"]));
    }
    let sold = sold_units(api, world, &mut books).await?;
    let mut merchant_sales: HashMap<usize, i64> = HashMap::new();
    for product in world.products.iter().chain([&world.hot_product]) {
        let body = api
            .expect(
                api.get(&format!("{base}/api/v1/products/{}", product.id), Some(&world.admin.token))
                    .await,
                "a product",
            )
            .await?;
        let (available, reserved) = (
            body["stock"]["available"].as_i64().unwrap_or(-1),
            body["stock"]["reserved"].as_i64().unwrap_or(-1),
        );
        let units = sold.get(&product.id).copied().unwrap_or(0);
        books.units_sold += units;
        *merchant_sales.entry(product.merchant).or_default() += units * 100;
        if available != product.initial_available - units || reserved != 0 {
            books.problems.push(format!(
                "product {}: {available} available and {reserved} reserved, but {} - {units} sold",
                product.id, product.initial_available
            ));
        }
        if available < 0 {
            books.problems.push(format!("product {} is oversold", product.id));
        }
    }
    let mut total = 0;
    for (index, merchant) in world.merchants.iter().enumerate() {
        let held = balance(api, base, &merchant.token).await?;
        total += held;
        let captured = world.captured_minor[index].load(std::sync::atomic::Ordering::Relaxed);
        let expected = merchant_sales.get(&index).copied().unwrap_or(0) + captured;
        if held != expected {
            books
                .problems
                .push(format!("merchant {index} holds {held} cents but sold and captured {expected}"));
        }
    }
    for buyer in &world.buyers {
        total += balance(api, base, &buyer.token).await?;
    }
    let held = held_by_buyers(api, world).await?;
    if held != 0 {
        books
            .problems
            .push(format!("buyers' wallets still hold {held} cents after every hold was captured"));
    }
    let funded = world.funds_minor * world.buyers.len() as i64;
    if total != funded {
        books
            .problems
            .push(format!("the run's accounts hold {total} cents, but {funded} were put in"));
    }
    Ok(books)
}

pub fn fail_on_problems(books: &Books) -> anyhow::Result<()> {
    if books.problems.is_empty() {
        return Ok(());
    }
    for problem in &books.problems {
        eprintln!("BOOKS PROBLEM: {problem}");
    }
    bail!("{} problems with the books", books.problems.len())
}

#[cfg(test)]
mod tests {
    #[test]
    fn amounts_read_as_cents() {
        assert_eq!(super::minor("12.50"), 1250);
        assert_eq!(super::minor("-0.05"), -5);
        assert_eq!(super::minor("7.5"), 750);
        assert_eq!(super::minor("100000.00"), 10_000_000);
    }
}
