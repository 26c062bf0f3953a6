//! The schema: each repository module declares its own tables (`SCHEMA`), and `migrate` creates
//! whatever does not exist yet, so opening an existing file is safe.

use application::ports::store::StoreResult;
use rusqlite::Connection;

use crate::codec::store_error;

/// Every module's tables, in an order where each table comes after those it refers to.
const SCHEMAS: &[&str] = &[
    crate::users::SCHEMA,
    crate::wallets::SCHEMA,
    crate::ledger::SCHEMA,
    crate::catalog::SCHEMA,
    crate::orders::SCHEMA,
    crate::payments::SCHEMA,
    crate::refunds::SCHEMA,
    crate::holds::SCHEMA,
    crate::transfers::SCHEMA,
    crate::calls::SCHEMA,
    crate::idempotency::SCHEMA,
    crate::messages::SCHEMA,
    crate::follow_ups::SCHEMA,
    crate::webhooks::SCHEMA,
];

pub(crate) fn migrate(connection: &Connection) -> StoreResult<()> {
    for schema in SCHEMAS {
        connection.execute_batch(schema).map_err(store_error)?;
    }
    Ok(())
}
