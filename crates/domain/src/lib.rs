//! The payment domain: pure types and rules with no I/O, no async and no framework.
//!
//! Everything here is synchronous and deterministic: time and identifiers are passed in, never
//! read from the system. The `application` crate orchestrates these rules behind ports, and the
//! adapters persist them.

#![warn(missing_docs)]

pub mod call;
pub mod catalog;
pub mod events;
pub mod follow_up;
pub mod ids;
pub mod ledger;
pub mod money;
pub mod order;
pub mod payment;
pub mod refund_request;
pub mod user;
pub mod wallet;
pub mod webhook;
pub mod withdrawal;

pub use time::OffsetDateTime;
