//! Admin actions on accounts through the use cases: suspension ends sessions and refuses sign-in,
//! reactivation lets the user back, and each action is in the audit trail with its admin.

use application::administration::AdminActionError;
use application::auth::{LoginError, RefreshError};
use application::pagination::PageRequest;
use domain::user::{AdminActionKind, Role};

use crate::support::Harness;

type Outcome = Result<(), Box<dyn std::error::Error>>;

#[tokio::test]
async fn a_suspension_ends_the_users_sessions_until_an_admin_reactivates_them() -> Outcome {
    let h = Harness::new();
    let (admin, customer) = (h.admin().await, h.user(Role::Customer).await);
    let email = h.app.profile(customer.user_id).await?.email.to_string();
    let session = h.app.login(&email, "correct horse 9").await?;

    let suspended = h.app.suspend_user(&admin, customer.user_id, " fraud ").await?;
    assert!(suspended.is_suspended());
    assert!(!h.app.user_in_good_standing(customer.user_id).await?);
    let refreshed = h.app.refresh(&session.refresh_token).await;
    assert!(matches!(refreshed, Err(RefreshError::Invalid)), "{refreshed:?}");
    let login = h.app.login(&email, "correct horse 9").await;
    assert!(matches!(login, Err(LoginError::Suspended)), "{login:?}");
    let twice = h.app.suspend_user(&admin, customer.user_id, "again").await;
    assert!(matches!(twice, Err(AdminActionError::Unchanged("suspended"))), "{twice:?}");

    h.app.reactivate_user(&admin, customer.user_id, "cleared").await?;
    assert!(h.app.user_in_good_standing(customer.user_id).await?);
    h.app.login(&email, "correct horse 9").await?;

    let subject = format!("user:{}", customer.user_id);
    let trail = h.app.admin_actions(&admin, Some(&subject), &PageRequest::first(10)).await?;
    let seen: Vec<_> = trail.items.iter().map(|a| (a.kind, a.admin_id, a.reason.as_str())).collect();
    assert_eq!(
        seen,
        vec![
            (AdminActionKind::UserReactivated, admin.user_id, "cleared"),
            (AdminActionKind::UserSuspended, admin.user_id, "fraud"),
        ]
    );
    Ok(())
}

#[tokio::test]
async fn only_admins_suspend_and_never_an_admin() -> Outcome {
    let h = Harness::new();
    let (admin, other_admin, merchant) = (h.admin().await, h.admin().await, h.user(Role::Merchant).await);
    let by_merchant = h.app.suspend_user(&merchant, admin.user_id, "spite").await;
    assert!(matches!(by_merchant, Err(AdminActionError::Forbidden)), "{by_merchant:?}");
    let an_admin = h.app.suspend_user(&admin, other_admin.user_id, "rivalry").await;
    assert!(matches!(an_admin, Err(AdminActionError::AdminTarget)), "{an_admin:?}");
    let no_reason = h.app.suspend_user(&admin, merchant.user_id, "").await;
    assert!(matches!(no_reason, Err(AdminActionError::Reason)), "{no_reason:?}");
    let listing = h.app.admin_actions(&merchant, None, &PageRequest::first(10)).await;
    assert!(matches!(listing, Err(AdminActionError::Forbidden)), "{listing:?}");
    Ok(())
}
