//! What admins do to accounts, and the audit trail of every admin action: suspending a user ends
//! their sessions and keeps them out (no sign-in, no request) until an admin reactivates them.
//! Each action is recorded with the acting admin, its subject, the reason and the time, in the
//! transaction of the action itself.

use domain::ids::UserId;
use domain::user::{AdminAction, AdminActionKind, Role, User};
use time::OffsetDateTime;

use crate::caller::Caller;
use crate::context::App;
use crate::pagination::{Page, PageRequest};
use crate::ports::store::{AdminAuditRepository, RefreshTokenRepository, StoreError, UnitOfWork, UserRepository};
use crate::ports::system::{IdGenerator, next_id};
use crate::retryable;
use crate::transact::{transact, transact_lagging, work};

/// The longest reason of an admin action, in characters.
pub const REASON_CHARS_MAX: usize = 500;

/// Why an admin action on a user fails.
#[derive(Debug, thiserror::Error)]
pub enum AdminActionError {
    /// The caller may not do this to this resource.
    #[error("only admins may do this")]
    Forbidden,
    /// The user does not exist.
    #[error("the user does not exist")]
    UserNotFound,
    /// The reason is empty or too long.
    #[error("the reason must have 1 to {REASON_CHARS_MAX} characters")]
    Reason,
    /// Admins cannot be suspended through the API.
    #[error("admins are suspended by the operator, not through the API")]
    AdminTarget,
    /// The user is already suspended (or already active).
    #[error("the user is already {0}")]
    Unchanged(&'static str),
    /// Storage failed: an outage, a timeout, a conflict that outlasted the retries, or a commit whose
    /// outcome is unknown (`StoreError::OutcomeUnknown`).
    #[error(transparent)]
    Store(#[from] StoreError),
}

retryable!(AdminActionError);

/// Suspending or reactivating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standing {
    Suspended,
    Active,
}

impl<U: UnitOfWork> App<U> {
    /// Suspends a user: their refresh tokens are revoked and every request of theirs is refused
    /// until an admin reactivates them.
    pub async fn suspend_user(&self, caller: &Caller, user_id: UserId, reason: &str) -> Result<User, AdminActionError> {
        self.set_standing(caller, user_id, reason, Standing::Suspended).await
    }

    /// Lets a suspended user sign in again.
    pub async fn reactivate_user(&self, caller: &Caller, user_id: UserId, reason: &str) -> Result<User, AdminActionError> {
        self.set_standing(caller, user_id, reason, Standing::Active).await
    }

    /// The audit trail, newest first: every admin action, or those on one subject (`user:<id>`).
    pub async fn admin_actions(
        &self,
        caller: &Caller,
        subject: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<AdminAction>, AdminActionError> {
        if !caller.is_admin() {
            return Err(AdminActionError::Forbidden);
        }
        Ok(transact_lagging(&self.store, |tx| work(tx.list_admin_actions(subject, page))).await?)
    }

    /// Whether the user may act on the API: false for a suspended or unknown user.
    pub async fn user_in_good_standing(&self, user_id: UserId) -> Result<bool, StoreError> {
        let user = transact(&self.store, |tx| work(tx.find_user(user_id))).await?;
        Ok(user.is_some_and(|user| !user.is_suspended()))
    }

    async fn set_standing(&self, caller: &Caller, user_id: UserId, reason: &str, standing: Standing) -> Result<User, AdminActionError> {
        if !caller.is_admin() {
            return Err(AdminActionError::Forbidden);
        }
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > REASON_CHARS_MAX {
            return Err(AdminActionError::Reason);
        }
        let (ids, now, admin) = (self.ids.as_ref(), self.clock.now(), caller.user_id);
        let user = transact(&self.store, |tx| {
            work(change_standing(tx, ids, admin, user_id, (reason, standing), now))
        })
        .await?;
        tracing::info!(%user_id, %admin, suspended = user.is_suspended(), "an admin changed a user's standing");
        Ok(user)
    }
}

async fn change_standing<Tx>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    admin: UserId,
    user_id: UserId,
    (reason, standing): (&str, Standing),
    now: OffsetDateTime,
) -> Result<User, AdminActionError>
where
    Tx: UserRepository + RefreshTokenRepository + AdminAuditRepository + Send,
{
    let mut user = tx.find_user(user_id).await?.ok_or(AdminActionError::UserNotFound)?;
    if user.role == Role::Admin {
        return Err(AdminActionError::AdminTarget);
    }
    let kind = match (standing, user.is_suspended()) {
        (Standing::Suspended, true) => return Err(AdminActionError::Unchanged("suspended")),
        (Standing::Active, false) => return Err(AdminActionError::Unchanged("active")),
        (Standing::Suspended, false) => {
            user.suspended_at = Some(now);
            tx.revoke_user_tokens(user_id, now).await?;
            AdminActionKind::UserSuspended
        }
        (Standing::Active, true) => {
            user.suspended_at = None;
            AdminActionKind::UserReactivated
        }
    };
    tx.set_user_suspended(user_id, user.suspended_at).await?;
    let action = AdminAction {
        id: next_id(ids),
        admin_id: admin,
        kind,
        subject: format!("user:{user_id}"),
        reason: reason.to_owned(),
        details: String::new(),
        at: now,
    };
    tx.record_admin_action(&action).await?;
    Ok(user)
}
