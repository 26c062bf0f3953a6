//! Translating driver errors into `StoreError` at the adapter boundary, and the errors of setting
//! the store up.
//!
//! Errors are classified by SQLSTATE wherever the driver exposes it: diesel-async maps the codes
//! of serialization failures (40001), unique, foreign-key, not-null and check violations, and a
//! lost connection to a `DatabaseErrorKind`; a write that missed its rows (`expect_changed` of the
//! migrations) raises a check violation of the constraint it names `expect_changed`. For the
//! other codes, diesel-async's PostgreSQL error wrapper exposes only the server's message, not
//! the code: deadlocks (40P01), lock timeouts (55P03), statement timeouts and cancellations
//! (57014) and administrator shutdowns (57P01) are recognised by the message PostgreSQL sends for
//! them. Those messages are translated when the server's `lc_messages` is not English, so
//! `PgStore::connect` warns when it finds another language; `C`, `POSIX` and `en_*` (the
//! defaults) are fine.

use application::ports::store::StoreError;
use diesel::result::{DatabaseErrorInformation, DatabaseErrorKind, Error as DieselError};

/// The stable names of unique constraints, as reported in `StoreError::Duplicate`. The migrations
/// name the constraints after them, so the constraint name is the stable name.
pub(crate) const USERS_EMAIL: &str = "users_email";
pub(crate) const REFRESH_TOKENS_HASH: &str = "refresh_tokens_hash";

/// Message prefixes of the errors diesel does not classify (see the module docs).
const DEADLOCK: &str = "deadlock detected";
const LOCK_TIMEOUT: &str = "canceling statement due to lock timeout";
const STATEMENT_TIMEOUT: &str = "canceling statement due to statement timeout";
const USER_CANCEL: &str = "canceling statement due to user request";
/// The constraint named by the migrations' `expect_changed` when a write missed the rows it had
/// to change (SQLSTATE 23514, check violation).
const EXPECT_CHANGED: &str = "expect_changed";
const GONE: [&str; 5] = [
    "terminating connection",
    "the database system is shutting down",
    "the database system is starting up",
    "the database system is in recovery mode",
    "connection closed",
];

/// Translates a diesel error into the port's vocabulary.
pub(crate) fn translate(error: DieselError) -> StoreError {
    match error {
        DieselError::DatabaseError(kind, info) => translate_database_error(kind, info),
        DieselError::NotFound => StoreError::Corrupt("an expected row is missing".into()),
        DieselError::DeserializationError(cause) => StoreError::Corrupt(format!("a row could not be decoded: {cause}")),
        DieselError::RollbackErrorOnCommit { commit_error, .. } => translate(*commit_error),
        other => StoreError::Unexpected(Box::new(other)),
    }
}

fn translate_database_error(kind: DatabaseErrorKind, info: Box<dyn DatabaseErrorInformation + Send + Sync>) -> StoreError {
    let message = info.message();
    match kind {
        DatabaseErrorKind::SerializationFailure => StoreError::Conflict,
        DatabaseErrorKind::UniqueViolation => StoreError::Duplicate(info.constraint_name().unwrap_or("unknown").to_owned()),
        DatabaseErrorKind::CheckViolation if info.constraint_name() == Some(EXPECT_CHANGED) => StoreError::Corrupt(message.to_owned()),
        DatabaseErrorKind::CheckViolation
        | DatabaseErrorKind::ForeignKeyViolation
        | DatabaseErrorKind::NotNullViolation
        | DatabaseErrorKind::ExclusionViolation => {
            StoreError::Corrupt(format!("{} ({})", message, info.constraint_name().unwrap_or("no constraint")))
        }
        DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand => StoreError::Unavailable(message.to_owned()),
        _ if message.starts_with(DEADLOCK) => StoreError::Conflict,
        _ if [LOCK_TIMEOUT, STATEMENT_TIMEOUT, USER_CANCEL]
            .iter()
            .any(|m| message.starts_with(m)) =>
        {
            StoreError::Timeout
        }
        _ if GONE.iter().any(|m| message.starts_with(m)) => StoreError::Unavailable(message.to_owned()),
        _ => StoreError::Unexpected(Box::new(DieselError::DatabaseError(kind, info))),
    }
}

/// Whether the error came from the server rejecting a statement, which aborts the PostgreSQL
/// transaction: every later statement of it fails, and `COMMIT` would quietly roll it back.
pub(crate) fn aborts_transaction(error: &DieselError) -> bool {
    matches!(error, DieselError::DatabaseError(..))
}

/// Why `PgStore::connect` or `run_migrations` failed.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("the database URL is not a valid PostgreSQL URL: {0}")]
    InvalidUrl(String),
    #[error("invalid database settings: {0}")]
    InvalidSettings(&'static str),
    #[error("cannot connect to PostgreSQL at {target}: {reason} (is the server running and is the URL right?)")]
    Unreachable { target: String, reason: String },
    #[error("could not set up the connection pool: {0}")]
    Pool(String),
    #[error("migrating the database failed: {0}")]
    Migration(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Info(&'static str, Option<&'static str>);

    impl DatabaseErrorInformation for Info {
        fn message(&self) -> &str {
            self.0
        }
        fn details(&self) -> Option<&str> {
            None
        }
        fn hint(&self) -> Option<&str> {
            None
        }
        fn table_name(&self) -> Option<&str> {
            None
        }
        fn column_name(&self) -> Option<&str> {
            None
        }
        fn constraint_name(&self) -> Option<&str> {
            self.1
        }
        fn statement_position(&self) -> Option<i32> {
            None
        }
    }

    fn database_error(kind: DatabaseErrorKind, message: &'static str, constraint: Option<&'static str>) -> StoreError {
        translate(DieselError::DatabaseError(kind, Box::new(Info(message, constraint))))
    }

    #[test]
    fn driver_errors_map_to_the_port_vocabulary() {
        use DatabaseErrorKind::*;
        assert!(matches!(
            database_error(SerializationFailure, "could not serialize access", None),
            StoreError::Conflict
        ));
        assert!(matches!(database_error(Unknown, "deadlock detected", None), StoreError::Conflict));
        assert!(matches!(
            database_error(UniqueViolation, "duplicate key", Some("users_email")),
            StoreError::Duplicate(name) if name == USERS_EMAIL
        ));
        assert!(matches!(
            database_error(CheckViolation, "new row violates", Some("wallets_user_funds")),
            StoreError::Corrupt(_)
        ));
        assert!(matches!(
            database_error(Unknown, "canceling statement due to lock timeout", None),
            StoreError::Timeout
        ));
        assert!(matches!(
            database_error(Unknown, "canceling statement due to statement timeout", None),
            StoreError::Timeout
        ));
        assert!(matches!(
            database_error(Unknown, "terminating connection due to administrator command", None),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            database_error(ClosedConnection, "connection closed", None),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            database_error(CheckViolation, "order does not exist (0 of 1 rows changed)", Some("expect_changed")),
            StoreError::Corrupt(reason) if reason == "order does not exist (0 of 1 rows changed)"
        ));
        assert!(matches!(database_error(Unknown, "syntax error", None), StoreError::Unexpected(_)));
    }
}
