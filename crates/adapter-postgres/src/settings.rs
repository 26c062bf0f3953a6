//! `PgSettings`: where the database is and every limit the adapter works within.
//!
//! Time is bounded by PostgreSQL itself (`statement_timeout`, `lock_timeout`, set on every
//! connection of the pool) rather than by cancelling futures: a transaction future that is
//! cancelled half-way leaves its transaction open on the connection.

use std::fmt;
use std::time::Duration;

use crate::error::SetupError;

/// Connection settings. Build with `PgSettings::new(url)` and adjust the public fields.
#[derive(Clone, PartialEq, Eq)]
pub struct PgSettings {
    /// `postgres://user[:password]@host[:port]/database[?options]`.
    pub url: String,
    /// Connections the pool opens at most; the server's `max_connections` is shared by every
    /// process.
    pub pool_max_size: u32,
    /// How long opening one connection may take.
    pub connect_timeout: Duration,
    /// How long `begin` waits for a free connection before reporting `Unavailable`.
    pub acquire_timeout: Duration,
    /// The longest any single statement may run (`statement_timeout`); it then fails with
    /// `StoreError::Timeout`. Zero lets statements run forever.
    pub statement_timeout: Duration,
    /// The longest a statement may wait for a row lock (`lock_timeout`); then `StoreError::Timeout`.
    /// Zero lets it wait forever.
    pub lock_timeout: Duration,
    /// How long a session may sit inside a transaction between statements
    /// (`idle_in_transaction_session_timeout`) before PostgreSQL ends it and releases its locks:
    /// a server process that hangs or is paused mid-transaction cannot hold a wallet or stock row
    /// forever. Use cases never wait on anything else inside a transaction. Zero disables it.
    pub idle_in_transaction_timeout: Duration,
    /// How many transactions of this process may queue in PostgreSQL for one product's stock row
    /// at once; the others wait in the process (see `gates`).
    pub stock_row_waiters: usize,
}

impl PgSettings {
    pub const POOL_MAX_SIZE_DEFAULT: u32 = 10;
    pub const CONNECT_TIMEOUT_DEFAULT: Duration = Duration::from_secs(5);
    pub const ACQUIRE_TIMEOUT_DEFAULT: Duration = Duration::from_secs(10);
    pub const STATEMENT_TIMEOUT_DEFAULT: Duration = Duration::from_secs(30);
    pub const LOCK_TIMEOUT_DEFAULT: Duration = Duration::from_secs(5);
    pub const IDLE_IN_TRANSACTION_TIMEOUT_DEFAULT: Duration = Duration::from_secs(60);
    pub const STOCK_ROW_WAITERS_DEFAULT: usize = 2;

    /// The defaults: 10 connections, 5 s to connect, 10 s to get a connection from the pool, 30 s
    /// per statement, 5 s per lock wait, 60 s idle inside a transaction and 2 transactions queued
    /// for one stock row.
    pub fn new(url: impl Into<String>) -> PgSettings {
        PgSettings {
            url: url.into(),
            pool_max_size: PgSettings::POOL_MAX_SIZE_DEFAULT,
            connect_timeout: PgSettings::CONNECT_TIMEOUT_DEFAULT,
            acquire_timeout: PgSettings::ACQUIRE_TIMEOUT_DEFAULT,
            statement_timeout: PgSettings::STATEMENT_TIMEOUT_DEFAULT,
            lock_timeout: PgSettings::LOCK_TIMEOUT_DEFAULT,
            idle_in_transaction_timeout: PgSettings::IDLE_IN_TRANSACTION_TIMEOUT_DEFAULT,
            stock_row_waiters: PgSettings::STOCK_ROW_WAITERS_DEFAULT,
        }
    }

    /// Refuses limits the pool cannot work with (it would panic on them).
    ///
    /// # Errors
    /// `SetupError::InvalidSettings` naming the first bad value.
    pub fn validate(&self) -> Result<(), SetupError> {
        if self.pool_max_size == 0 {
            return Err(SetupError::InvalidSettings("pool_max_size must be at least 1"));
        }
        if self.acquire_timeout.is_zero() {
            return Err(SetupError::InvalidSettings("acquire_timeout must be longer than zero"));
        }
        if self.connect_timeout.is_zero() {
            return Err(SetupError::InvalidSettings("connect_timeout must be longer than zero"));
        }
        if self.stock_row_waiters == 0 {
            return Err(SetupError::InvalidSettings("stock_row_waiters must be at least 1"));
        }
        Ok(())
    }

    /// The URL with any password replaced by `***`, for logs and error messages.
    pub fn redacted_url(&self) -> String {
        redact(&self.url)
    }
}

impl fmt::Debug for PgSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgSettings")
            .field("url", &self.redacted_url())
            .field("pool_max_size", &self.pool_max_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .field("lock_timeout", &self.lock_timeout)
            .field("idle_in_transaction_timeout", &self.idle_in_transaction_timeout)
            .field("stock_row_waiters", &self.stock_row_waiters)
            .finish()
    }
}

/// Replaces the password of `scheme://user:password@host/...` with `***`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((credentials, host)) => match credentials.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_debug_output() {
        let settings = PgSettings::new("postgres://app:s3cret@db.internal:5432/payments?sslmode=disable");
        let shown = format!("{settings:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(
            shown.contains("postgres://app:***@db.internal:5432/payments?sslmode=disable"),
            "{shown}"
        );
        assert_eq!(redact("postgres://postgres@127.0.0.1/x"), "postgres://postgres@127.0.0.1/x");
    }

    #[test]
    fn the_defaults_are_valid_and_an_empty_pool_is_not() {
        let defaults = PgSettings::new("postgres://localhost/payments");
        assert!(defaults.validate().is_ok());
        let empty = PgSettings {
            pool_max_size: 0,
            ..defaults
        };
        assert!(matches!(empty.validate(), Err(SetupError::InvalidSettings(_))));
    }

    #[test]
    fn a_stock_row_must_admit_at_least_one_waiter() {
        let closed = PgSettings {
            stock_row_waiters: 0,
            ..PgSettings::new("postgres://localhost/payments")
        };
        assert!(matches!(
            closed.validate(),
            Err(SetupError::InvalidSettings(reason)) if reason.contains("stock_row_waiters")
        ));
    }
}
