//! Use cases of the payment backend, and the ports (traits) they need from the outside world.
//!
//! `App<U>` is the entry point: one struct, generic over the storage `UnitOfWork`, whose methods
//! are the use cases, one module per capability. Each use case is a short method that runs named
//! `async fn`s in a transaction (`transact`); effects several capabilities share live in `effects`.
//! Each use case has its own error enum. Nothing here knows HTTP, SQL, JSON, Redis or a payment
//! provider.

#![warn(missing_docs)]

pub mod adjustments;
pub mod admin_reads;
pub mod administration;
pub mod auth;
pub mod caller;
pub mod calls;
pub mod cancellation;
pub mod captures;
pub mod catalog;
pub mod checkout;
pub mod context;
mod effects;
mod follow_up_job;
pub mod follow_ups;
pub mod holds;
pub mod idempotency;
mod late_success;
pub mod ledger;
pub mod orders;
pub mod pagination;
pub mod payments;
pub mod ports;
pub mod refund_requests;
pub mod refunds;
pub mod settlement;
pub mod statements;
#[cfg(feature = "testing")]
pub mod testing;
pub mod top_ups;
pub mod transact;
pub mod transfers;
pub mod wallets;
mod webhook_relay;
pub mod webhooks;
pub mod withdrawals;

pub use context::{App, Settings, WebhookSettings};
pub use webhook_relay::RelayRound;
