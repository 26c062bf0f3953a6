//! Conversions between stored values and domain values, and from SQLite's errors to the port's.
//!
//! Ids are stored as hyphenated lower-case UUID text, which sorts as PostgreSQL sorts `uuid`.
//! Instants are integer nanoseconds since the Unix epoch (exact, and ordered as numbers); the
//! years this covers (1677 to 2262) are the ones a payment system sees. Anything stored that does
//! not read back into a domain value is `StoreError::Corrupt`.

use std::fmt::Display;

use application::pagination::PageRequest;
use application::ports::store::{StoreError, StoreResult};
use domain::money::{Currency, Money};
use domain::payment::ProviderName;
use rusqlite::Row;
use rusqlite::types::FromSql;
use time::OffsetDateTime;
use uuid::Uuid;

/// SQLite's errors as the port's. A unique or primary-key failure is `Duplicate` with SQLite's
/// message; repositories whose `Duplicate` a use case reads by name (`users_email`, ...) check
/// for it themselves (`ON CONFLICT DO NOTHING`) rather than relying on this.
pub(crate) fn store_error(error: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    use rusqlite::ffi::{SQLITE_CONSTRAINT_PRIMARYKEY, SQLITE_CONSTRAINT_UNIQUE};
    match &error {
        rusqlite::Error::SqliteFailure(failure, message) => match failure.code {
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => StoreError::Timeout,
            ErrorCode::ConstraintViolation if matches!(failure.extended_code, SQLITE_CONSTRAINT_UNIQUE | SQLITE_CONSTRAINT_PRIMARYKEY) => {
                StoreError::Duplicate(message.clone().unwrap_or_else(|| "unique constraint".to_owned()))
            }
            // A CHECK, foreign-key or NOT NULL rule refused a write: the caller asked for a state
            // the schema forbids, as PostgreSQL's store reports it.
            ErrorCode::ConstraintViolation => StoreError::Corrupt(error.to_string()),
            ErrorCode::CannotOpen | ErrorCode::SystemIoFailure | ErrorCode::DiskFull | ErrorCode::ReadOnly => {
                StoreError::Unavailable(error.to_string())
            }
            _ => StoreError::Unexpected(Box::new(error)),
        },
        _ => StoreError::Unexpected(Box::new(error)),
    }
}

pub(crate) fn corrupt(what: impl Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

/// An update or lock found no row where the caller said there was one.
pub(crate) fn missing(what: &str) -> StoreError {
    StoreError::Corrupt(format!("{what} does not exist"))
}

/// Column `index` of `row`, as any type rusqlite reads.
pub(crate) fn get<T: FromSql>(row: &Row<'_>, index: usize) -> StoreResult<T> {
    row.get(index).map_err(|error| corrupt(format!("column {index}: {error}")))
}

/// An id column.
pub(crate) fn uuid(row: &Row<'_>, index: usize) -> StoreResult<Uuid> {
    let text: String = get(row, index)?;
    Uuid::parse_str(&text).map_err(|error| corrupt(format!("column {index}: `{text}` is not a UUID: {error}")))
}

/// A nullable id column.
pub(crate) fn uuid_opt(row: &Row<'_>, index: usize) -> StoreResult<Option<Uuid>> {
    let text: Option<String> = get(row, index)?;
    text.map(|text| Uuid::parse_str(&text).map_err(|error| corrupt(format!("column {index}: `{text}` is not a UUID: {error}"))))
        .transpose()
}

/// An instant column.
pub(crate) fn instant(row: &Row<'_>, index: usize) -> StoreResult<OffsetDateTime> {
    from_nanos(get(row, index)?)
}

/// A nullable instant column.
pub(crate) fn instant_opt(row: &Row<'_>, index: usize) -> StoreResult<Option<OffsetDateTime>> {
    get::<Option<i64>>(row, index)?.map(from_nanos).transpose()
}

/// An id as it is stored.
pub(crate) fn id_text(id: Uuid) -> String {
    id.hyphenated().to_string()
}

/// A list of ids as a JSON array, for `IN (SELECT value FROM json_each(?))`: SQLite has no array
/// parameters.
pub(crate) fn id_list(ids: impl IntoIterator<Item = Uuid>) -> String {
    let quoted: Vec<String> = ids.into_iter().map(|id| format!("\"{}\"", id.hyphenated())).collect();
    format!("[{}]", quoted.join(","))
}

/// An instant as it is stored: nanoseconds since the Unix epoch.
pub(crate) fn nanos(at: OffsetDateTime) -> i64 {
    // Saturating keeps an instant outside 1677..2262 ordered at the ends rather than wrapping.
    i64::try_from(at.unix_timestamp_nanos()).unwrap_or(if at.year() < 1970 { i64::MIN } else { i64::MAX })
}

/// A nullable instant as it is stored.
pub(crate) fn nanos_opt(at: Option<OffsetDateTime>) -> Option<i64> {
    at.map(nanos)
}

pub(crate) fn from_nanos(nanos: i64) -> StoreResult<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos)).map_err(corrupt)
}

/// Parses a stored vocabulary word (`status`, `role`, ...) with the domain's own parser.
pub(crate) fn word<T>(kind: &str, text: &str, parse: impl FnOnce(&str) -> Option<T>) -> StoreResult<T> {
    parse(text).ok_or_else(|| corrupt(format!("unknown {kind} `{text}`")))
}

pub(crate) fn currency(code: &str) -> StoreResult<Currency> {
    Currency::parse(code).map_err(corrupt)
}

pub(crate) fn money(amount_minor: i64, code: &str) -> StoreResult<Money> {
    Ok(Money::from_minor(amount_minor, currency(code)?))
}

pub(crate) fn provider(name: &str) -> StoreResult<ProviderName> {
    ProviderName::parse(name).map_err(corrupt)
}

/// A count (minutes, quantities) as the integer that stores it.
pub(crate) fn to_u32(value: i64, what: &str) -> StoreResult<u32> {
    u32::try_from(value).map_err(|_| corrupt(format!("{what} {value} is out of range")))
}

/// `limit + 1` rows: the extra one tells `Page::from_rows` that another page exists.
pub(crate) fn limit_plus_one(limit: usize) -> i64 {
    i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX)
}

pub(crate) fn limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// The (instant, id) a newest-first listing resumes after, as stored values. Without a cursor, a
/// position after everything, so that every listing query has one shape:
/// `WHERE (created_at, id) < (?, ?) ORDER BY created_at DESC, id DESC LIMIT ?`.
pub(crate) fn position_after(page: &PageRequest) -> (i64, String) {
    match page.after.and_then(|cursor| cursor.position()) {
        Some((at, id)) => (nanos(at), id_text(id)),
        None => (i64::MAX, id_text(Uuid::max())),
    }
}

/// The sequence a newest-first listing resumes below; without a cursor, above everything.
pub(crate) fn sequence_before(page: &PageRequest) -> i64 {
    page.after.and_then(|cursor| cursor.sequence()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_keep_every_nanosecond_and_their_order() {
        let earlier = from_nanos(1_796_040_000_000_000_001).expect("an instant in 2026");
        let later = from_nanos(1_796_040_000_000_000_002).expect("an instant in 2026");
        assert_eq!(from_nanos(nanos(earlier)).ok(), Some(earlier));
        assert!(nanos(earlier) < nanos(later));
    }

    #[test]
    fn uuid_text_sorts_as_the_uuids_do() {
        let low = Uuid::from_u128(0x0fff_ffff_ffff_ffff_ffff_ffff_ffff_ffff);
        let high = Uuid::from_u128(0xa000_0000_0000_0000_0000_0000_0000_0000);
        assert!(low < high);
        assert!(id_text(low) < id_text(high));
    }

    #[test]
    fn a_taken_primary_key_is_a_duplicate_and_a_refused_check_is_corrupt() {
        let connection = rusqlite::Connection::open_in_memory().expect("a database");
        connection
            .execute_batch("CREATE TABLE t (id TEXT PRIMARY KEY, n INTEGER CHECK (n >= 0)) STRICT; INSERT INTO t VALUES ('a', 1);")
            .expect("a table");
        let taken = connection.execute("INSERT INTO t VALUES ('a', 2)", []).map_err(store_error);
        assert!(matches!(taken, Err(StoreError::Duplicate(_))), "{taken:?}");
        let refused = connection.execute("UPDATE t SET n = -1", []).map_err(store_error);
        assert!(matches!(refused, Err(StoreError::Corrupt(_))), "{refused:?}");
    }
}
