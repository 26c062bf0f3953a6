//! The withdrawal lifecycle on the in-memory store: the amount held, approved at once or by an
//! admin, paid out through the gateway (or by hand), failed or rejected with the hold released.

use std::sync::Arc;

use application::pagination::PageRequest;
use application::ports::gateway::{GatewayError, PayoutStatus};
use application::ports::store::WithdrawalFilter;
use application::withdrawals::{WithdrawalDecision, WithdrawalError, WithdrawalRequest};
use domain::follow_up::FollowUpState;
use domain::user::Role;
use domain::withdrawal::{Settlement, WithdrawalStatus};
use time::Duration;

use crate::support::{Harness, PayoutDesk, usd};

fn request(minor: i64) -> WithdrawalRequest {
    WithdrawalRequest {
        amount: usd(minor),
        destination: "NL91 ABNA 0417 1643 00".into(),
    }
}

fn because(reason: &str) -> WithdrawalDecision {
    WithdrawalDecision {
        reason: Some(reason.into()),
        reference: None,
    }
}

/// The default threshold is 1,000.00 USD: at or below it a withdrawal is approved at once.
const SMALL: i64 = 100_000;
const LARGE: i64 = 100_001;

#[tokio::test]
async fn a_withdrawal_at_the_threshold_is_paid_out_at_once_through_the_gateway() -> Result<(), Box<dyn std::error::Error>> {
    let desk = Arc::new(PayoutDesk::new(vec![]));
    let h = Harness::with_payouts(desk.clone());
    let alice = h.funded_customer(150_000).await;
    let withdrawal = h.app.withdraw(&alice, request(SMALL), None).await?;
    assert_eq!(withdrawal.status(), WithdrawalStatus::Paid);
    assert_eq!(withdrawal.decided_by(), None, "approved by the threshold, not a person");
    assert!(matches!(withdrawal.settlement(), Some(Settlement::Payout(_))));
    assert!(withdrawal.transaction_id().is_some());
    assert_eq!(
        withdrawal.provider_reference(),
        Some(format!("po_{}", withdrawal.id().as_uuid().simple()).as_str())
    );
    assert_eq!(h.wallet(&alice).await, (50_000, 0), "the money left and nothing stays held");
    let asked = desk.asked();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].idempotency_key, format!("payout-{}", withdrawal.id()));
    assert_eq!(asked[0].amount, usd(SMALL));
    let types = h.event_types().await;
    let withdrawal_events: Vec<&str> = types.into_iter().filter(|t| t.starts_with("withdrawal.")).collect();
    assert_eq!(
        withdrawal_events,
        vec!["withdrawal.requested", "withdrawal.approved", "withdrawal.completed"]
    );
    assert_eq!(h.app.withdrawal(&alice, withdrawal.id()).await?, withdrawal);
    h.assert_ledger_ok().await;
    Ok(())
}

#[tokio::test]
async fn a_large_withdrawal_is_held_until_an_admin_approves_it_then_paid() -> Result<(), Box<dyn std::error::Error>> {
    let desk = Arc::new(PayoutDesk::new(vec![]));
    let h = Harness::with_payouts(desk.clone());
    let alice = h.funded_customer(200_000).await;
    let withdrawal = h.app.withdraw(&alice, request(LARGE), None).await?;
    assert_eq!(withdrawal.status(), WithdrawalStatus::Requested);
    assert_eq!(h.wallet(&alice).await, (200_000, LARGE), "held, not gone");
    assert!(desk.asked().is_empty(), "nothing is paid out before approval");
    assert!(matches!(
        h.app.withdraw(&alice, request(200_000 - LARGE + 1), None).await,
        Err(WithdrawalError::InsufficientFunds { .. })
    ));
    assert!(matches!(
        h.app
            .approve_withdrawal(&alice, withdrawal.id(), WithdrawalDecision::default(), None)
            .await,
        Err(WithdrawalError::Forbidden)
    ));
    let admin = h.admin().await;
    let waiting = h
        .app
        .admin_withdrawals(
            &admin,
            WithdrawalFilter {
                status: Some(WithdrawalStatus::Requested),
                ..WithdrawalFilter::default()
            },
            &PageRequest::first(10),
        )
        .await?;
    assert_eq!(waiting.items, vec![withdrawal.clone()]);
    let paid = h
        .app
        .approve_withdrawal(&admin, withdrawal.id(), because("known customer"), None)
        .await?;
    assert_eq!(paid.status(), WithdrawalStatus::Paid);
    assert_eq!((paid.decided_by(), paid.reason()), (Some(admin.user_id), Some("known customer")));
    assert_eq!(h.wallet(&alice).await, (200_000 - LARGE, 0));
    let again = h
        .app
        .approve_withdrawal(&admin, withdrawal.id(), WithdrawalDecision::default(), None)
        .await?;
    assert_eq!(again, paid, "approving again changes nothing");
    assert_eq!(desk.asked().len(), 1, "and pays nothing twice");
    h.assert_ledger_ok().await;
    Ok(())
}

#[tokio::test]
async fn a_rejected_withdrawal_releases_the_money_and_records_who_and_why() -> Result<(), Box<dyn std::error::Error>> {
    let desk = Arc::new(PayoutDesk::new(vec![]));
    let h = Harness::with_payouts(desk.clone());
    let alice = h.funded_customer(200_000).await;
    let admin = h.admin().await;
    let withdrawal = h.app.withdraw(&alice, request(LARGE), None).await?;
    assert!(matches!(
        h.app
            .reject_withdrawal(&admin, withdrawal.id(), WithdrawalDecision::default(), None)
            .await,
        Err(WithdrawalError::ReasonRequired)
    ));
    let rejected = h
        .app
        .reject_withdrawal(&admin, withdrawal.id(), because("account name mismatch"), None)
        .await?;
    assert_eq!(rejected.status(), WithdrawalStatus::Rejected);
    assert_eq!(
        (rejected.decided_by(), rejected.reason()),
        (Some(admin.user_id), Some("account name mismatch"))
    );
    assert_eq!(h.wallet(&alice).await, (200_000, 0), "released, and nothing left the books");
    let again = h.app.reject_withdrawal(&admin, withdrawal.id(), because("again"), None).await?;
    assert_eq!(again, rejected, "rejecting again changes nothing");
    assert!(matches!(
        h.app
            .approve_withdrawal(&admin, withdrawal.id(), WithdrawalDecision::default(), None)
            .await,
        Err(WithdrawalError::Transition(_))
    ));
    assert!(desk.asked().is_empty());
    assert!(h.event_types().await.contains(&"withdrawal.rejected"));
    h.assert_ledger_ok().await;
    Ok(())
}

#[tokio::test]
async fn a_refused_payout_fails_the_withdrawal_and_gives_the_money_back() -> Result<(), Box<dyn std::error::Error>> {
    let refusal = Ok(PayoutStatus::Failed("account closed".into()));
    let h = Harness::with_payouts(Arc::new(PayoutDesk::new(vec![refusal])));
    let alice = h.funded_customer(10_000).await;
    let failed = h.app.withdraw(&alice, request(4_000), None).await?;
    assert_eq!(failed.status(), WithdrawalStatus::Failed);
    assert_eq!(failed.failure_reason(), Some("account closed"));
    assert_eq!(failed.transaction_id(), None, "the ledger was never touched");
    assert_eq!(h.wallet(&alice).await, (10_000, 0));
    let declined = Err(GatewayError::InvalidRequest("bad IBAN".into()));
    let h = Harness::with_payouts(Arc::new(PayoutDesk::new(vec![declined])));
    let bob = h.funded_customer(10_000).await;
    let failed = h.app.withdraw(&bob, request(4_000), None).await?;
    assert_eq!(failed.status(), WithdrawalStatus::Failed);
    assert!(failed.failure_reason().is_some_and(|r| r.contains("bad IBAN")));
    assert_eq!(h.wallet(&bob).await, (10_000, 0));
    assert!(h.event_types().await.contains(&"withdrawal.failed"));
    h.assert_ledger_ok().await;
    Ok(())
}

#[tokio::test]
async fn an_unanswered_payout_stays_held_until_the_job_asks_again_under_the_same_key() -> Result<(), Box<dyn std::error::Error>> {
    let script = vec![Err(GatewayError::Unavailable("down".into())), Ok(PayoutStatus::Pending)];
    let desk = Arc::new(PayoutDesk::new(script));
    let h = Harness::with_payouts(desk.clone());
    let alice = h.funded_customer(10_000).await;
    let approved = h.app.withdraw(&alice, request(4_000), None).await?;
    assert_eq!(approved.status(), WithdrawalStatus::Approved);
    assert_eq!(h.wallet(&alice).await, (10_000, 4_000));
    let admin = h.admin().await;
    let pending = h.app.follow_ups(&admin, FollowUpState::Pending, &PageRequest::first(10)).await?;
    assert_eq!(pending.items.len(), 1);
    assert_eq!(pending.items[0].last_error.as_deref(), Some("the gateway is unavailable: down"));
    // Far past the first retry; a still-pending answer keeps it approved (with the reference).
    h.clock.advance(Duration::hours(1));
    assert_eq!(h.app.run_follow_ups(10).await?, 1);
    let noted = h.app.withdrawal(&alice, approved.id()).await?;
    assert_eq!(noted.status(), WithdrawalStatus::Approved);
    assert!(noted.provider_reference().is_some());
    h.clock.advance(Duration::hours(3));
    assert_eq!(h.app.run_follow_ups(10).await?, 1);
    let paid = h.app.withdrawal(&alice, approved.id()).await?;
    assert_eq!(paid.status(), WithdrawalStatus::Paid);
    assert_eq!(h.wallet(&alice).await, (6_000, 0));
    let keys: Vec<String> = desk.asked().into_iter().map(|r| r.idempotency_key).collect();
    assert_eq!(keys, vec![format!("payout-{}", approved.id()); 3], "every attempt under one key");
    let done = h.app.follow_ups(&admin, FollowUpState::Done, &PageRequest::first(10)).await?;
    assert_eq!(done.items.len(), 1);
    h.clock.advance(Duration::days(4000));
    assert_eq!(h.app.run_follow_ups(10).await?, 0);
    h.assert_ledger_ok().await;
    Ok(())
}

#[tokio::test]
async fn without_a_payout_provider_an_admin_settles_by_hand() -> Result<(), Box<dyn std::error::Error>> {
    let h = Harness::new();
    let alice = h.funded_customer(10_000).await;
    let admin = h.admin().await;
    let first = h.app.withdraw(&alice, request(3_000), None).await?;
    assert_eq!(
        (first.status(), first.settlement()),
        (WithdrawalStatus::Approved, Some(&Settlement::Manual))
    );
    let second = h.app.withdraw(&alice, request(2_000), None).await?;
    assert_eq!(h.wallet(&alice).await, (10_000, 5_000));
    assert!(matches!(
        h.app
            .mark_withdrawal_paid(&alice, first.id(), WithdrawalDecision::default(), None)
            .await,
        Err(WithdrawalError::Forbidden)
    ));
    let marked = WithdrawalDecision {
        reason: None,
        reference: Some("SEPA 42".into()),
    };
    let paid = h.app.mark_withdrawal_paid(&admin, first.id(), marked, None).await?;
    assert_eq!(
        (paid.status(), paid.settled_by(), paid.provider_reference()),
        (WithdrawalStatus::Paid, Some(admin.user_id), Some("SEPA 42"))
    );
    assert!(matches!(
        h.app
            .mark_withdrawal_failed(&admin, second.id(), WithdrawalDecision::default(), None)
            .await,
        Err(WithdrawalError::ReasonRequired)
    ));
    let failed = h
        .app
        .mark_withdrawal_failed(&admin, second.id(), because("bank returned it"), None)
        .await?;
    assert_eq!(
        (failed.status(), failed.failure_reason()),
        (WithdrawalStatus::Failed, Some("bank returned it"))
    );
    assert!(matches!(
        h.app
            .mark_withdrawal_paid(&admin, second.id(), WithdrawalDecision::default(), None)
            .await,
        Err(WithdrawalError::Transition(_))
    ));
    assert_eq!(h.wallet(&alice).await, (7_000, 0));
    let mine = h.app.my_withdrawals(&alice, &PageRequest::first(10)).await?;
    assert_eq!(mine.items, vec![failed, paid]);
    h.assert_ledger_ok().await;
    Ok(())
}

#[tokio::test]
async fn a_payout_through_a_provider_cannot_be_marked_by_hand_and_the_hold_job_leaves_it_alone() -> Result<(), Box<dyn std::error::Error>> {
    let desk = Arc::new(PayoutDesk::new(vec![Err(GatewayError::Unavailable("down".into()))]));
    let h = Harness::with_payouts(desk);
    let alice = h.funded_customer(200_000).await;
    let admin = h.admin().await;
    let approved = h.app.withdraw(&alice, request(1_000), None).await?;
    assert!(matches!(
        h.app
            .mark_withdrawal_paid(&admin, approved.id(), WithdrawalDecision::default(), None)
            .await,
        Err(WithdrawalError::NotManual { .. })
    ));
    let requested = h.app.withdraw(&alice, request(LARGE), None).await?;
    assert_eq!(requested.status(), WithdrawalStatus::Requested);
    h.clock.advance(Duration::days(4000));
    assert_eq!(
        h.app.release_expired_holds(100).await?,
        0,
        "withdrawals' holds end with the withdrawal"
    );
    assert_eq!(h.wallet(&alice).await.1, 1_000 + requested.amount().amount_minor());
    let stranger = h.user(Role::Customer).await;
    assert!(matches!(
        h.app.withdrawal(&stranger, approved.id()).await,
        Err(WithdrawalError::NotFound)
    ));
    assert!(matches!(
        h.app
            .admin_withdrawals(&alice, WithdrawalFilter::default(), &PageRequest::first(10))
            .await,
        Err(WithdrawalError::Forbidden)
    ));
    h.assert_ledger_ok().await;
    Ok(())
}
