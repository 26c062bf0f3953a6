use application::idempotency::{Admission, IdempotencyError, IdempotencyKey, IdempotencyScope, Idempotent, StoredResponse};
use application::wallets::{Recipient, TransferRequest};
use domain::user::Role;

use crate::support::{Harness, usd};

fn scope(caller: &application::auth::Caller, key: &str) -> IdempotencyScope {
    IdempotencyScope {
        principal: Some(caller.user_id),
        key: IdempotencyKey::parse(key).unwrap_or_else(|e| panic!("{e}")),
    }
}

fn render(transfer: &domain::wallet::Transfer) -> StoredResponse {
    StoredResponse {
        status: 201,
        body: transfer.id.to_string().into_bytes(),
        location: None,
    }
}

#[tokio::test]
async fn a_completed_key_replays_and_moves_money_once() -> Result<(), Box<dyn std::error::Error>> {
    let h = Harness::new();
    let alice = h.funded_customer(1_000).await;
    let bob = h.user(Role::Customer).await;
    let Admission::Proceed(claim) = h.app.admit_idempotent(scope(&alice, "k1"), "fp".into()).await? else {
        panic!("a new key must proceed");
    };
    let request = TransferRequest {
        to: Recipient::Id(bob.user_id),
        amount: usd(300),
        note: String::new(),
    };
    let transfer = h
        .app
        .transfer(
            &alice,
            request,
            Some(Idempotent {
                claim: claim.clone(),
                render,
            }),
        )
        .await?;
    let replay = h.app.admit_idempotent(scope(&alice, "k1"), "fp".into()).await?;
    assert_eq!(replay, Admission::Replay(render(&transfer)));
    assert!(matches!(
        h.app.admit_idempotent(scope(&alice, "k1"), "other".into()).await,
        Err(IdempotencyError::Mismatch)
    ));
    assert!(matches!(
        h.app.admit_idempotent(scope(&bob, "k1"), "fp".into()).await?,
        Admission::Proceed(_)
    ));
    assert_eq!(h.balance(&alice).await, 700);
    Ok(())
}

#[tokio::test]
async fn a_running_key_conflicts_until_released_or_its_lease_ends() -> Result<(), Box<dyn std::error::Error>> {
    let h = Harness::new();
    let alice = h.user(Role::Customer).await;
    let Admission::Proceed(claim) = h.app.admit_idempotent(scope(&alice, "k1"), "fp".into()).await? else {
        panic!("a new key must proceed");
    };
    assert!(matches!(
        h.app.admit_idempotent(scope(&alice, "k1"), "fp".into()).await,
        Err(IdempotencyError::InProgress)
    ));
    h.app.release_idempotent(&claim).await?;
    assert!(matches!(
        h.app.admit_idempotent(scope(&alice, "k1"), "fp".into()).await?,
        Admission::Proceed(_)
    ));
    assert!(matches!(
        h.app.admit_idempotent(scope(&alice, "k1"), "fp".into()).await,
        Err(IdempotencyError::InProgress)
    ));
    // The process that held the claim died: after the lease, another attempt takes over.
    h.clock.advance(time::Duration::seconds(61));
    assert!(matches!(
        h.app.admit_idempotent(scope(&alice, "k1"), "fp".into()).await?,
        Admission::Proceed(_)
    ));
    Ok(())
}

#[tokio::test]
async fn a_failed_use_case_does_not_complete_its_key() -> Result<(), Box<dyn std::error::Error>> {
    let h = Harness::new();
    let alice = h.funded_customer(100).await;
    let bob = h.user(Role::Customer).await;
    let Admission::Proceed(claim) = h.app.admit_idempotent(scope(&alice, "k1"), "fp".into()).await? else {
        panic!("a new key must proceed");
    };
    let request = TransferRequest {
        to: Recipient::Id(bob.user_id),
        amount: usd(300),
        note: String::new(),
    };
    assert!(
        h.app
            .transfer(
                &alice,
                request,
                Some(Idempotent {
                    claim: claim.clone(),
                    render
                })
            )
            .await
            .is_err()
    );
    assert!(matches!(
        h.app.admit_idempotent(scope(&alice, "k1"), "fp".into()).await,
        Err(IdempotencyError::InProgress)
    ));
    Ok(())
}
