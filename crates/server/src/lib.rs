//! The server: configuration, wiring and background jobs.
//!
//! `Application::build` binds the listener, connects the configured adapters (PostgreSQL or the
//! in-memory demo store, the card gateways, cache and rate limiter), starts the background jobs,
//! and returns the running server; `main` only parses the command line.

pub mod config;
mod jobs;
mod pool_metrics;
pub mod seed;
pub mod telemetry;
mod wiring;

#[cfg(feature = "testing")]
pub use crate::jobs::JobRound;
pub use crate::wiring::{Application, Backend, Services, migrate};
