//! The PostgreSQL adapter against a real server: the repository contract, the use cases under
//! concurrency, the database's own guarantees, and failures. Every test gets a database of its own
//! (`adapter_postgres::testing::TestDatabase`).

mod captures;
mod constraints;
mod contract;
mod failures;
mod group_commit;
mod pgbouncer;
mod plans;
mod replica;
mod statements;
mod stock_gates;
mod support;
mod use_cases;
mod withdrawals;
