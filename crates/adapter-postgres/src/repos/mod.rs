//! The repository ports, implemented on `PgTx`: one module per area, each holding its row structs
//! and their mapping to domain types.

mod audit;
mod calls;
mod catalog;
mod follow_ups;
mod idempotency;
mod ledger;
mod orders;
mod outbox;
mod payments;
mod statements;
mod transfers;
mod users;
mod wallets;
mod webhooks;
