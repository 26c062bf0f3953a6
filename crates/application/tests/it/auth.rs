use application::auth::{LoginError, RefreshError, RegisterError, Registration};
use domain::money::Currency;
use domain::user::{PasswordError, Role};

use crate::support::Harness;

fn registration(email: &str, role: Role) -> Registration {
    Registration {
        email: email.into(),
        password: "correct horse 9".into(),
        role,
    }
}

#[tokio::test]
async fn a_registered_user_logs_in_and_has_an_empty_wallet() -> Result<(), Box<dyn std::error::Error>> {
    let h = Harness::new();
    let user = h.app.register(registration(" Ann@Example.com ", Role::Merchant), None).await?;
    assert_eq!(user.email.as_str(), "ann@example.com");
    assert_eq!(user.role, Role::Merchant);
    let session = h.app.login("ANN@example.com", "correct horse 9").await?;
    assert_eq!(session.user.id, user.id);
    let caller = application::auth::Caller {
        user_id: user.id,
        role: user.role,
    };
    let wallet = h.app.wallet(&caller, Currency::Usd).await?;
    assert_eq!(wallet.balance().amount_minor(), 0);
    Ok(())
}

#[tokio::test]
async fn nobody_registers_as_admin_and_e_mails_are_unique() -> Result<(), Box<dyn std::error::Error>> {
    let h = Harness::new();
    let admin = h.app.register(registration("boss@example.com", Role::Admin), None).await;
    assert!(matches!(admin, Err(RegisterError::RoleNotAllowed(Role::Admin))));
    h.app.register(registration("ann@example.com", Role::Customer), None).await?;
    let again = h.app.register(registration("ANN@example.com", Role::Merchant), None).await;
    assert!(matches!(again, Err(RegisterError::EmailTaken)));
    let weak = Registration {
        password: "short".into(),
        ..registration("bob@example.com", Role::Customer)
    };
    assert!(matches!(
        h.app.register(weak, None).await,
        Err(RegisterError::Password(PasswordError::TooShort { .. }))
    ));
    Ok(())
}

#[tokio::test]
async fn wrong_passwords_and_unknown_addresses_look_the_same() -> Result<(), Box<dyn std::error::Error>> {
    let h = Harness::new();
    h.app.register(registration("ann@example.com", Role::Customer), None).await?;
    assert!(matches!(
        h.app.login("ann@example.com", "wrong password 1").await,
        Err(LoginError::InvalidCredentials)
    ));
    assert!(matches!(
        h.app.login("nobody@example.com", "correct horse 9").await,
        Err(LoginError::InvalidCredentials)
    ));
    assert!(matches!(
        h.app.login("not an address", "correct horse 9").await,
        Err(LoginError::InvalidCredentials)
    ));
    Ok(())
}

#[tokio::test]
async fn refresh_rotates_and_a_reused_token_revokes_the_family() -> Result<(), Box<dyn std::error::Error>> {
    let h = Harness::new();
    h.app.register(registration("ann@example.com", Role::Customer), None).await?;
    let first = h.app.login("ann@example.com", "correct horse 9").await?;
    let second = h.app.refresh(&first.refresh_token).await?;
    assert_ne!(second.refresh_token, first.refresh_token);
    // The first token was used: presenting it again means it leaked.
    assert!(matches!(h.app.refresh(&first.refresh_token).await, Err(RefreshError::Reused)));
    // The whole family is now revoked, the legitimate successor included.
    assert!(matches!(h.app.refresh(&second.refresh_token).await, Err(RefreshError::Invalid)));
    // Another login opens a fresh family that works.
    let third = h.app.login("ann@example.com", "correct horse 9").await?;
    assert!(h.app.refresh(&third.refresh_token).await.is_ok());
    Ok(())
}

#[tokio::test]
async fn logout_revokes_the_session_and_expired_tokens_do_not_refresh() -> Result<(), Box<dyn std::error::Error>> {
    let h = Harness::new();
    h.app.register(registration("ann@example.com", Role::Customer), None).await?;
    let session = h.app.login("ann@example.com", "correct horse 9").await?;
    h.app.logout(&session.refresh_token).await?;
    h.app.logout(&session.refresh_token).await?;
    assert!(matches!(h.app.refresh(&session.refresh_token).await, Err(RefreshError::Invalid)));
    let later = h.app.login("ann@example.com", "correct horse 9").await?;
    h.clock.advance(time::Duration::days(31));
    assert!(matches!(h.app.refresh(&later.refresh_token).await, Err(RefreshError::Invalid)));
    assert!(matches!(h.app.refresh("never issued").await, Err(RefreshError::Invalid)));
    Ok(())
}
