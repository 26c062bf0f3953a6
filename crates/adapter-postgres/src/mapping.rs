//! Small conversions shared by the repositories: stored text back into domain values, integer
//! widths, and pagination bounds.
//!
//! Anything stored that does not parse back into a domain value is `StoreError::Corrupt`: the
//! migrations' CHECK constraints and the domain agree on every vocabulary, so a mismatch means the
//! data was written by something else.

use std::fmt::Display;

use application::pagination::PageRequest;
use application::ports::store::{StoreError, StoreResult};
use domain::money::{Currency, Money};
use domain::payment::ProviderName;
use time::{OffsetDateTime, PrimitiveDateTime};
use uuid::Uuid;

pub(crate) fn corrupt(what: impl Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

/// An update or lock found no row where the caller said there was one.
pub(crate) fn missing(what: &str) -> StoreError {
    StoreError::Corrupt(format!("{what} does not exist"))
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

/// A `u32` count (minutes, quantities) as the `integer` column that stores it.
pub(crate) fn to_i32(value: u32, what: &str) -> StoreResult<i32> {
    i32::try_from(value).map_err(|_| StoreError::Unexpected(format!("{what} {value} is too large to store").into()))
}

pub(crate) fn to_u32(value: i32, what: &str) -> StoreResult<u32> {
    u32::try_from(value).map_err(|_| corrupt(format!("negative {what} {value}")))
}

/// `limit + 1` rows: the extra one tells `Page::from_rows` that another page exists.
pub(crate) fn limit_plus_one(limit: usize) -> i64 {
    i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX)
}

pub(crate) fn limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// The (time, id) a newest-first listing resumes after. Without a cursor, a position after
/// everything, so that every listing query has the same shape and uses its index the same way.
pub(crate) fn position_after(page: &PageRequest) -> (OffsetDateTime, Uuid) {
    page.after
        .and_then(|cursor| cursor.position())
        .unwrap_or((PrimitiveDateTime::MAX.assume_utc(), Uuid::max()))
}

/// The sequence a newest-first listing resumes below; without a cursor, above everything.
pub(crate) fn sequence_before(page: &PageRequest) -> i64 {
    page.after.and_then(|cursor| cursor.sequence()).unwrap_or(i64::MAX)
}
