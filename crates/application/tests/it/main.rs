//! Use-case tests of the application on the in-memory store, with test doubles for the other ports
//! (mockall where a port must fail on cue).

mod administration;
mod auth;
mod calls;
mod captures;
mod failures;
mod flows;
mod holds;
mod idempotency;
mod orders;
mod pay_again;
mod payments;
mod refund_requests;
mod statements;
mod support;
mod wallets;
mod webhooks;
mod withdrawals;
