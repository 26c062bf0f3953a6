//! Cursor pagination: `limit` items after an opaque cursor, newest first.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::OffsetDateTime;
use uuid::Uuid;

/// A position in a listing: after the item created at `at` with id `id` (ties broken by id), or
/// after a ledger sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    /// After the item created at `at` with id `id`.
    Position {
        /// The creation time of the last item seen.
        at: OffsetDateTime,
        /// Its id, which breaks ties between items created at one time.
        id: Uuid,
    },
    /// After this ledger sequence number (a wallet's history).
    Sequence(i64),
}

/// Why a page cannot be served as asked; the HTTP layer answers 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    /// `limit` is below 1 or above [`PageRequest::LIMIT_MAX`].
    #[error("limit must be between 1 and {max}")]
    Limit {
        /// The limit, [`PageRequest::LIMIT_MAX`].
        max: u32,
    },
    /// The cursor was not handed out by this API (or was tampered with).
    #[error("the cursor is not one this API handed out")]
    Cursor,
}

impl Cursor {
    /// The opaque text form handed to clients.
    pub fn encode(&self) -> String {
        let plain = match self {
            Cursor::Position { at, id } => format!("p.{}.{}", at.unix_timestamp_nanos(), id.simple()),
            Cursor::Sequence(sequence) => format!("s.{sequence}"),
        };
        URL_SAFE_NO_PAD.encode(plain)
    }

    /// Reads a cursor a client sent back.
    ///
    /// # Errors
    ///
    /// [`PageError::Cursor`] if it is not one this API encoded.
    pub fn decode(text: &str) -> Result<Cursor, PageError> {
        if text.len() > 128 {
            return Err(PageError::Cursor);
        }
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| PageError::Cursor)?;
        let plain = String::from_utf8(bytes).map_err(|_| PageError::Cursor)?;
        let mut parts = plain.split('.');
        let cursor = match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some("p"), Some(nanos), Some(id), None) => {
                let nanos: i128 = nanos.parse().map_err(|_| PageError::Cursor)?;
                let at = OffsetDateTime::from_unix_timestamp_nanos(nanos).map_err(|_| PageError::Cursor)?;
                // Every time this API hands out lies in these years, and every store can hold
                // them (PostgreSQL cannot hold years before 4713 BC).
                if !(1..=9999).contains(&at.year()) {
                    return Err(PageError::Cursor);
                }
                let id = Uuid::try_parse(id).map_err(|_| PageError::Cursor)?;
                Cursor::Position { at, id }
            }
            (Some("s"), Some(sequence), None, None) => Cursor::Sequence(sequence.parse().map_err(|_| PageError::Cursor)?),
            _ => return Err(PageError::Cursor),
        };
        Ok(cursor)
    }

    /// The creation time and id of a position cursor.
    pub fn position(&self) -> Option<(OffsetDateTime, Uuid)> {
        match self {
            Cursor::Position { at, id } => Some((*at, *id)),
            Cursor::Sequence(_) => None,
        }
    }

    /// The sequence number of a sequence cursor.
    pub fn sequence(&self) -> Option<i64> {
        match self {
            Cursor::Sequence(sequence) => Some(*sequence),
            Cursor::Position { .. } => None,
        }
    }
}

/// What a listing asks for: at most `limit` items, after `after` (from the start when `None`).
///
/// ```
/// use application::pagination::{Cursor, PageRequest};
/// use uuid::Uuid;
///
/// let cursor = Cursor::Position { at: domain::OffsetDateTime::UNIX_EPOCH, id: Uuid::from_u128(7) };
/// let page = PageRequest::parse(Some(50), Some(&cursor.encode())).unwrap();
/// assert_eq!((page.limit, page.after), (50, Some(cursor)));
/// assert!(PageRequest::parse(Some(101), None).is_err());
/// assert!(PageRequest::parse(None, Some("not-a-cursor")).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// The most items to return.
    pub limit: usize,
    /// Where the previous page ended.
    pub after: Option<Cursor>,
}

impl PageRequest {
    /// The page size when a client names none.
    pub const LIMIT_DEFAULT: u32 = 20;
    /// The largest page size a client may ask for.
    pub const LIMIT_MAX: u32 = 100;

    /// Validates what a client asked for.
    pub fn parse(limit: Option<i64>, cursor: Option<&str>) -> Result<PageRequest, PageError> {
        let limit = limit.unwrap_or(i64::from(PageRequest::LIMIT_DEFAULT));
        if !(1..=i64::from(PageRequest::LIMIT_MAX)).contains(&limit) {
            return Err(PageError::Limit {
                max: PageRequest::LIMIT_MAX,
            });
        }
        let after = cursor.filter(|c| !c.is_empty()).map(Cursor::decode).transpose()?;
        Ok(PageRequest {
            limit: usize::try_from(limit).unwrap_or(20),
            after,
        })
    }

    /// The first `limit` items, for internal reads.
    pub fn first(limit: usize) -> PageRequest {
        PageRequest { limit, after: None }
    }
}

/// One page of a listing, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Where the next page starts; `None` on the last page.
    pub next_cursor: Option<Cursor>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows: the extra row only says that more exist.
    pub fn from_rows(mut rows: Vec<T>, limit: usize, cursor_of: impl Fn(&T) -> Cursor) -> Page<T> {
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next_cursor = if more { rows.last().map(cursor_of) } else { None };
        Page { items: rows, next_cursor }
    }

    /// The same page with each item converted.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_outside_the_years_a_store_can_hold_is_refused() {
        let far_past = OffsetDateTime::from_unix_timestamp(-200_000_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        assert!(far_past.year() < 0);
        let forged = Cursor::Position {
            at: far_past,
            id: Uuid::nil(),
        }
        .encode();
        assert_eq!(Cursor::decode(&forged), Err(PageError::Cursor));
        let min = URL_SAFE_NO_PAD.encode(format!("p.{}.{}", i128::MIN, Uuid::nil().simple()));
        assert_eq!(Cursor::decode(&min), Err(PageError::Cursor));
    }

    #[test]
    fn cursors_round_trip_and_reject_tampering() {
        let at = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_000).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        for cursor in [
            Cursor::Position {
                at,
                id: Uuid::from_u128(42),
            },
            Cursor::Sequence(77),
        ] {
            assert_eq!(Cursor::decode(&cursor.encode()), Ok(cursor));
        }
        assert_eq!(Cursor::decode("not a cursor"), Err(PageError::Cursor));
        assert_eq!(Cursor::decode(&URL_SAFE_NO_PAD.encode("s.x")), Err(PageError::Cursor));
    }

    #[test]
    fn limits_default_to_twenty_and_stop_at_a_hundred() {
        assert_eq!(PageRequest::parse(None, None).map(|p| p.limit), Ok(20));
        assert_eq!(PageRequest::parse(Some(100), None).map(|p| p.limit), Ok(100));
        assert_eq!(PageRequest::parse(Some(0), None), Err(PageError::Limit { max: 100 }));
        assert_eq!(PageRequest::parse(Some(101), None), Err(PageError::Limit { max: 100 }));
    }
}
