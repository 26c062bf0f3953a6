//! After a run: do the books add up? Checked against the server alone, so the check also holds
//! when requests failed without an answer (a killed instance): ledger verification, stock against
//! paid orders (no oversell, no lost unit), no half-written order, and money conserved among the
//! run's accounts.

use std::collections::HashMap;

use std::num::NonZeroU64;

use anyhow::bail;
use api_client::types;

use crate::api::{Account, Api, expect, parse};
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
async fn sold_units(api: &Api, world: &World, books: &mut Books) -> anyhow::Result<HashMap<uuid::Uuid, i64>> {
    let ours: HashMap<uuid::Uuid, ()> = world
        .products
        .iter()
        .map(|p| (p.id, ()))
        .chain([(world.hot_product.id, ())])
        .collect();
    let mut sold: HashMap<uuid::Uuid, i64> = HashMap::new();
    let mut cursor: Option<types::AdminOrdersCursor> = None;
    let admin = api.client(&world.bases[0], &world.admin);
    loop {
        let listing = admin.admin_orders(None, None, cursor.as_ref(), None, NonZeroU64::new(100), None, None, None);
        let page = expect(listing, "listing orders").await?;
        for order in &page.items {
            if !order.items.iter().any(|item| ours.contains_key(&item.product_id)) {
                continue;
            }
            books.orders += 1;
            if order.status != "paid" {
                books.problems.push(format!("order {} is {}, not paid", order.id, order.status));
            }
            for item in &order.items {
                // A manual-capture order sells what its merchant captured.
                let bought = item.captured_quantity.unwrap_or(item.quantity);
                *sold.entry(item.product_id).or_default() += i64::from(bought);
            }
        }
        cursor = page.next_cursor.as_deref().map(parse).transpose()?;
        if cursor.is_none() {
            return Ok(sold);
        }
    }
}

/// An account's USD wallet: its balance and what its holds keep, in cents.
async fn wallet(api: &Api, base: &str, account: &Account) -> anyhow::Result<(i64, i64)> {
    let wallet = expect(api.client(base, account).wallets_show(types::WalletsShowCurrency::Usd), "a wallet").await?;
    Ok((minor(&wallet.balance), minor(&wallet.held)))
}

pub async fn check(api: &Api, world: &World) -> anyhow::Result<Books> {
    let base = &world.bases[0];
    let admin = api.client(base, &world.admin);
    let mut books = Books::default();
    let verdict = expect(admin.admin_verify_ledger(), "ledger verification").await?;
    if !verdict.ok {
        books.problems.push(format!("the ledger does not verify: {:?}", verdict.problems));
    }
    let sold = sold_units(api, world, &mut books).await?;
    let mut merchant_sales: HashMap<usize, i64> = HashMap::new();
    for product in world.products.iter().chain([&world.hot_product]) {
        let shown = expect(admin.catalog_show(&product.id), "a product").await?;
        let (available, reserved) = (shown.stock.available, shown.stock.reserved);
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
        let (held, _) = wallet(api, base, merchant).await?;
        total += held;
        let captured = world.captured_minor[index].load(std::sync::atomic::Ordering::Relaxed);
        let expected = merchant_sales.get(&index).copied().unwrap_or(0) + captured;
        if held != expected {
            books
                .problems
                .push(format!("merchant {index} holds {held} cents but sold and captured {expected}"));
        }
    }
    // Every hold of a run is captured with `final`, so the buyers' wallets hold nothing back.
    let mut held = 0;
    for buyer in &world.buyers {
        let (balance, kept) = wallet(api, base, buyer).await?;
        total += balance;
        held += kept;
    }
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
