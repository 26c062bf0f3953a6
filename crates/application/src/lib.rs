//! Use cases of the payment backend, and the ports (traits) they need from the outside world.
//!
//! `App<U>` is the entry point: one struct, generic over the storage `UnitOfWork`, whose methods
//! are the use cases, grouped by module (`auth`, `wallets`, `catalog`, `orders`, `payments`,
//! `calls`, `ledger`). Each use case has its own error enum. Nothing here knows HTTP, SQL, JSON,
//! Redis or a payment provider.

pub mod auth;
pub mod calls;
pub mod catalog;
pub mod context;
pub mod follow_ups;
pub mod idempotency;
pub mod ledger;
pub mod orders;
pub mod pagination;
pub mod payments;
pub mod ports;
pub mod refunds;
#[cfg(feature = "testing")]
pub mod testing;
pub mod transact;
pub mod wallets;

pub use context::{App, Settings};
