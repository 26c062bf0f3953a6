//! Ports: what the application needs from the outside world, as traits. Adapters implement them;
//! use cases only ever see these traits.

pub mod cache;
pub mod gateway;
pub mod rate_limit;
pub mod records;
pub mod security;
pub mod store;
pub mod system;
pub mod webhooks;
