//! Time and identifiers, as ports so that tests control them.

use std::fmt::Debug;
use std::sync::Mutex;

use domain::ids::Id;
use time::OffsetDateTime;
use uuid::Uuid;

/// The time, as a port: tests and the simulation move it by hand; nothing here reads the system
/// clock.
pub trait Clock: Send + Sync + Debug + 'static {
    /// The current time, in UTC.
    fn now(&self) -> OffsetDateTime;
}

/// Ids, as a port: tests and the simulation count them; production uses UUID version 7.
pub trait IdGenerator: Send + Sync + Debug + 'static {
    /// A new, unique UUID.
    fn uuid(&self) -> Uuid;
}

/// Mints a typed id: `ids.next::<OrderId>()`.
pub fn next_id<T: Id>(ids: &dyn IdGenerator) -> T {
    T::from_uuid(ids.uuid())
}

/// The real clock, truncated to microseconds because that is what PostgreSQL stores.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        let now = OffsetDateTime::now_utc();
        now.replace_nanosecond(now.nanosecond() / 1000 * 1000).unwrap_or(now)
    }
}

/// UUID version 7: time-ordered, so new rows land at the end of B-tree indexes.
#[derive(Debug, Clone, Copy, Default)]
pub struct UuidV7Generator;

impl IdGenerator for UuidV7Generator {
    fn uuid(&self) -> Uuid {
        Uuid::now_v7()
    }
}

/// A clock that only moves when told to, for tests of expiry and billing.
#[derive(Debug)]
pub struct ManualClock(Mutex<OffsetDateTime>);

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: OffsetDateTime) -> ManualClock {
        ManualClock(Mutex::new(start))
    }

    /// Moves the clock forward (or back, with a negative duration).
    pub fn advance(&self, by: time::Duration) {
        let mut now = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
