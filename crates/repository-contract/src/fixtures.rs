//! Builders of valid domain values for the contract tests.

use domain::catalog::{Product, Quantity, Stock};
use domain::ids::{Id, OrderId, PaymentId, UserId};
use domain::money::{Currency, Money};
use domain::order::{Order, PaymentMethod, StatusChange};
use domain::payment::{Payment, PaymentPurpose, ProviderName};
use domain::user::{Email, PasswordHash, Role, User};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

pub fn id<T: Id>() -> T {
    T::from_uuid(Uuid::now_v7())
}

/// A fixed instant, truncated to microseconds like the database stores it.
pub fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_750_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

pub fn usd(minor: i64) -> Money {
    Money::from_minor(minor, Currency::Usd)
}

pub fn provider(name: &str) -> ProviderName {
    ProviderName::parse(name).unwrap_or_else(|e| panic!("{e}"))
}

pub fn user(role: Role) -> User {
    let id: UserId = id();
    User {
        id,
        email: Email::parse(&format!("{}@example.com", id.as_uuid().simple())).unwrap_or_else(|e| panic!("{e}")),
        password_hash: PasswordHash::new("$2b$04$hash".into()),
        role,
        created_at: now(),
        suspended_at: None,
    }
}

pub fn product(merchant: UserId, price_minor: i64, created_at: OffsetDateTime) -> (Product, Stock) {
    let product = Product::new(id(), merchant, "Blue mug", "Holds coffee", usd(price_minor), created_at).unwrap_or_else(|e| panic!("{e}"));
    let stock = Stock::new(product.id, 10).unwrap_or_else(|e| panic!("{e}"));
    (product, stock)
}

pub fn quantity(units: i64) -> Quantity {
    Quantity::new(units).unwrap_or_else(|e| panic!("{e}"))
}

/// A placed order (status `created`) of one product, with the status change that created it.
pub fn order(buyer: UserId, product: &Product, created_at: OffsetDateTime) -> (Order, StatusChange) {
    order_with_id(id(), buyer, product, created_at)
}

/// An order of two units of `product`, with the id given.
pub fn order_with_id(order_id: OrderId, buyer: UserId, product: &Product, created_at: OffsetDateTime) -> (Order, StatusChange) {
    Order::place(order_id, buyer, &[(product, quantity(2))], PaymentMethod::Card, created_at).unwrap_or_else(|e| panic!("{e}"))
}

pub fn payment(order: &Order, provider_name: &str, expires_in: Duration) -> Payment {
    payment_opened_at(order, provider_name, now(), expires_in)
}

/// A pending card payment of `order`, opened at `at`.
pub fn payment_opened_at(order: &Order, provider_name: &str, at: OffsetDateTime, expires_in: Duration) -> Payment {
    let payment_id: PaymentId = id();
    Payment::open(
        payment_id,
        PaymentPurpose::Order(order.id()),
        order.buyer_id(),
        provider(provider_name),
        order.total(),
        at,
        now() + expires_in,
    )
}
