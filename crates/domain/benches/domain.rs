//! The pure paths every request takes: reading an amount and moving an order through its states.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use domain::catalog::{Product, Quantity};
use domain::ids::{OrderId, ProductId, UserId};
use domain::money::{Currency, Money};
use domain::order::{Actor, Order, PaymentMethod};
use time::OffsetDateTime;
use uuid::Uuid;

fn money_parsing(c: &mut Criterion) {
    let mut group = c.benchmark_group("money");
    for text in ["12.50", "1234567.89", "0.01"] {
        group.bench_function(format!("parse {text} USD"), |b| {
            b.iter(|| Money::parse_positive(black_box(text), Currency::Usd));
        });
    }
    group.bench_function("refuse 1.005 USD", |b| {
        b.iter(|| Money::parse_positive(black_box("1.005"), Currency::Usd))
    });
    group.bench_function("format", |b| {
        let amount = Money::from_minor(123_456_789, Currency::Usd);
        b.iter(|| black_box(amount).to_major_string());
    });
    group.finish();
}

fn order_lifecycle(c: &mut Criterion) {
    let at = OffsetDateTime::UNIX_EPOCH;
    let user = |n: u128| UserId::from_uuid(Uuid::from_u128(n));
    let products: Vec<Product> = (0..3u128)
        .map(|n| {
            let price = Money::from_minor(250 * (n as i64 + 1), Currency::Usd);
            Product::new(ProductId::from_uuid(Uuid::from_u128(n)), user(10 + n), "Thing", "", price, at)
        })
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{e}"));
    let quantity = Quantity::new(2).unwrap_or_else(|e| panic!("{e}"));
    let cart: Vec<(&Product, Quantity)> = products.iter().map(|p| (p, quantity)).collect();
    let buyer = Actor::User(user(1));

    c.bench_function("order: place, pay and fulfil a three-line cart", |b| {
        b.iter(|| {
            let (order, _) = Order::place(
                OrderId::from_uuid(Uuid::from_u128(5)),
                user(1),
                black_box(&cart),
                PaymentMethod::Wallet,
                at,
            )?;
            let (order, _) = order.await_payment(buyer.clone(), at)?;
            let (order, _) = order.mark_paid(buyer.clone(), at)?;
            let shares = order.merchant_totals()?;
            let (order, _) = order.fulfil(Actor::User(user(10)), at)?;
            Ok::<_, Box<dyn std::error::Error>>((order, shares))
        });
    });
}

criterion_group!(benches, money_parsing, order_lifecycle);
criterion_main!(benches);
