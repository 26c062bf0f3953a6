use application::calls::{CallUseError, StartCall};
use application::pagination::PageRequest;
use domain::call::{CallError, CallStatus};
use domain::money::Currency;
use domain::user::Role;

use crate::support::{Harness, usd};

#[tokio::test]
async fn a_call_is_charged_per_started_minute_and_credits_the_receiver() -> Result<(), Box<dyn std::error::Error>> {
    let h = Harness::new();
    let caller = h.funded_customer(1_000).await;
    let receiver = h.user(Role::Merchant).await;
    let call = h
        .app
        .start_call(
            &caller,
            StartCall {
                receiver_id: receiver.user_id,
                rate_per_minute: usd(150),
            },
            None,
        )
        .await?;
    assert_eq!(call.authorized_minutes, 6);
    assert_eq!(h.app.wallet(&caller, Currency::Usd).await?.held(), usd(900));
    h.clock.advance(time::Duration::seconds(125));
    let ended = h.app.end_call(&receiver, call.id, None).await?;
    assert_eq!(
        (ended.status, ended.billed_minutes, ended.charged),
        (CallStatus::Ended, 3, usd(450))
    );
    let wallet = h.app.wallet(&caller, Currency::Usd).await?;
    assert_eq!((wallet.balance(), wallet.held()), (usd(550), usd(0)));
    assert_eq!(h.balance(&receiver).await, 450);
    assert!(matches!(
        h.app.end_call(&caller, call.id, None).await,
        Err(CallUseError::Call(CallError::AlreadyEnded))
    ));
    assert_eq!(h.app.list_calls(&receiver, &PageRequest::first(10)).await?.items.len(), 1);
    h.assert_ledger_ok().await;
    Ok(())
}

#[tokio::test]
async fn a_caller_who_cannot_cover_the_first_minute_is_refused() -> Result<(), Box<dyn std::error::Error>> {
    let h = Harness::new();
    let caller = h.funded_customer(99).await;
    let receiver = h.user(Role::Customer).await;
    let start = StartCall {
        receiver_id: receiver.user_id,
        rate_per_minute: usd(100),
    };
    assert!(matches!(
        h.app.start_call(&caller, start.clone(), None).await,
        Err(CallUseError::Call(CallError::CannotAffordFirstMinute { .. }))
    ));
    let to_self = StartCall {
        receiver_id: caller.user_id,
        ..start.clone()
    };
    assert!(matches!(
        h.app.start_call(&caller, to_self, None).await,
        Err(CallUseError::Call(CallError::SelfCall))
    ));
    let free = StartCall {
        rate_per_minute: usd(0),
        ..start
    };
    assert!(matches!(
        h.app.start_call(&caller, free, None).await,
        Err(CallUseError::Call(CallError::Rate))
    ));
    assert_eq!(h.app.wallet(&caller, Currency::Usd).await?.held(), usd(0));
    Ok(())
}

#[tokio::test]
async fn a_call_that_runs_past_its_authorisation_is_charged_the_authorised_minutes() -> Result<(), Box<dyn std::error::Error>> {
    let h = Harness::new();
    let caller = h.funded_customer(300).await;
    let receiver = h.user(Role::Customer).await;
    let call = h
        .app
        .start_call(
            &caller,
            StartCall {
                receiver_id: receiver.user_id,
                rate_per_minute: usd(100),
            },
            None,
        )
        .await?;
    h.clock.advance(time::Duration::minutes(10));
    let stranger = h.user(Role::Customer).await;
    assert!(matches!(
        h.app.end_call(&stranger, call.id, None).await,
        Err(CallUseError::NotFound)
    ));
    let ended = h.app.end_call(&caller, call.id, None).await?;
    assert_eq!((ended.billed_minutes, ended.charged), (3, usd(300)));
    assert_eq!((h.balance(&caller).await, h.balance(&receiver).await), (0, 300));
    h.assert_ledger_ok().await;
    Ok(())
}

#[tokio::test]
async fn a_caller_names_the_receiver_by_e_mail_address() -> Result<(), Box<dyn std::error::Error>> {
    let h = Harness::new();
    let caller = h.user(Role::Customer).await;
    let receiver = h.user(Role::Merchant).await;
    let email = h.app.profile(receiver.user_id).await?.email;
    let written = format!("  {}  ", email.as_str().to_uppercase());
    assert_eq!(h.app.call_receiver_by_email(&caller, &written).await?, receiver.user_id);
    for unknown in ["nobody@example.com", "not an address", ""] {
        assert!(matches!(
            h.app.call_receiver_by_email(&caller, unknown).await,
            Err(CallUseError::ReceiverNotFound)
        ));
    }
    let own = h.app.profile(caller.user_id).await?.email;
    assert!(matches!(
        h.app.call_receiver_by_email(&caller, own.as_str()).await,
        Err(CallUseError::Call(CallError::SelfCall))
    ));
    Ok(())
}
