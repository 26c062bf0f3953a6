//! Whether a signed-in user may still act: a suspended user's access tokens are refused. The
//! suspending instance refuses them at once; other instances within `REMEMBER_ACTIVE`, for which
//! an active user's standing is remembered so that most requests cost no lookup.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use application::App;
use application::ports::store::{StoreError, UnitOfWork};
use domain::ids::UserId;
use futures::future::BoxFuture;

/// How long an instance trusts that a user it found active still is.
pub const REMEMBER_ACTIVE: Duration = Duration::from_secs(2);
/// Past this many remembered users, the stale ones are dropped.
const REMEMBERED_MAX: usize = 100_000;

type Lookup = Arc<dyn Fn(UserId) -> BoxFuture<'static, Result<bool, StoreError>> + Send + Sync>;

#[derive(Clone)]
pub struct StandingCheck {
    lookup: Lookup,
    found_active: Arc<Mutex<HashMap<UserId, Instant>>>,
}

impl std::fmt::Debug for StandingCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StandingCheck")
    }
}

impl StandingCheck {
    pub fn new<U: UnitOfWork + 'static>(app: Arc<App<U>>) -> StandingCheck {
        let lookup: Lookup = Arc::new(move |user| {
            let app = app.clone();
            Box::pin(async move { app.user_in_good_standing(user).await })
        });
        StandingCheck {
            lookup,
            found_active: Arc::default(),
        }
    }

    /// Whether the user may act: not suspended, and still there.
    pub async fn allows(&self, user: UserId) -> Result<bool, StoreError> {
        let remembered = self.remembered().get(&user).is_some_and(|at| at.elapsed() < REMEMBER_ACTIVE);
        if remembered {
            return Ok(true);
        }
        let active = (self.lookup)(user).await?;
        let mut remembered = self.remembered();
        if active {
            if remembered.len() >= REMEMBERED_MAX {
                remembered.retain(|_, at| at.elapsed() < REMEMBER_ACTIVE);
            }
            remembered.insert(user, Instant::now());
        } else {
            remembered.remove(&user);
        }
        Ok(active)
    }

    /// Forgets that the user was active, after suspending them here.
    pub fn forget(&self, user: UserId) {
        self.remembered().remove(&user);
    }

    fn remembered(&self) -> std::sync::MutexGuard<'_, HashMap<UserId, Instant>> {
        // A panic while holding the lock leaves a map that is still valid.
        self.found_active.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
