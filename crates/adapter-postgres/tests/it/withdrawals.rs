//! The withdrawal lifecycle on PostgreSQL: the amount held and then paid, failed or released, and
//! admins racing to decide one withdrawal: whoever locks it first decides, the other finds it
//! decided.

use application::auth::Caller;
use application::ports::store::{EventOutbox, Transaction, UnitOfWork};
use application::withdrawals::{WithdrawalDecision, WithdrawalError, WithdrawalRequest};
use domain::user::Role;
use domain::withdrawal::WithdrawalStatus;

use crate::support::{Harness, usd};

fn request(minor: i64, destination: &str) -> WithdrawalRequest {
    WithdrawalRequest {
        amount: usd(minor),
        destination: destination.into(),
    }
}

fn because(reason: &str) -> WithdrawalDecision {
    WithdrawalDecision {
        reason: Some(reason.into()),
        reference: None,
    }
}

async fn another_admin(h: &Harness) -> Caller {
    let email = format!("admin-{}@example.com", uuid::Uuid::now_v7().simple());
    let admin = h.app.create_admin(&email, "correct horse 9").await.expect("admin");
    Caller {
        user_id: admin.id,
        role: Role::Admin,
    }
}

async fn wallet(h: &Harness, caller: &Caller) -> (i64, i64) {
    let wallet = h.app.wallet(caller, domain::money::Currency::Usd).await.expect("wallet");
    (wallet.balance().amount_minor(), wallet.held().amount_minor())
}

async fn approvals(h: &Harness) -> usize {
    let store = h.database.store();
    let mut tx = store.begin().await.expect("begin");
    let events = tx.lock_unpublished_events(10_000).await.expect("outbox");
    tx.rollback().await.expect("rollback");
    events.iter().filter(|e| e.event.public_type() == "withdrawal.approved").count()
}

#[tokio::test]
async fn withdrawals_are_held_then_paid_or_failed_and_the_ledger_stays_exact() {
    let h = Harness::new().await;
    let alice = h.funded_customer(300_000).await;
    let small = h.app.withdraw(&alice, request(50_000, "IBAN 1"), None).await.expect("small");
    assert_eq!(small.status(), WithdrawalStatus::Paid);
    assert_eq!(wallet(&h, &alice).await, (250_000, 0));
    let refused = h.app.withdraw(&alice, request(10_000, "fail here"), None).await.expect("refused");
    assert_eq!(refused.status(), WithdrawalStatus::Failed);
    assert_eq!(wallet(&h, &alice).await, (250_000, 0), "a failed payout gives the hold back");
    let large = h.app.withdraw(&alice, request(200_000, "IBAN 2"), None).await.expect("large");
    assert_eq!(large.status(), WithdrawalStatus::Requested);
    assert_eq!(wallet(&h, &alice).await, (250_000, 200_000));
    let admin = h.admin_caller();
    let paid = h
        .app
        .approve_withdrawal(&admin, large.id(), because("verified"), None)
        .await
        .expect("approve");
    assert_eq!((paid.status(), paid.decided_by()), (WithdrawalStatus::Paid, Some(admin.user_id)));
    assert_eq!(h.app.withdrawal(&alice, large.id()).await.expect("find"), paid);
    assert_eq!(wallet(&h, &alice).await, (50_000, 0));
    h.assert_ledger_ok().await;
}

#[tokio::test]
async fn an_approval_racing_a_rejection_decides_exactly_once() {
    let h = Harness::new().await;
    let alice = h.funded_customer(1_000_000).await;
    let (first, second) = (h.admin_caller(), another_admin(&h).await);
    for _ in 0..4 {
        let withdrawal = h.app.withdraw(&alice, request(150_000, "IBAN 3"), None).await.expect("request");
        assert_eq!(withdrawal.status(), WithdrawalStatus::Requested);
        let (app1, app2, id) = (h.app.clone(), h.app.clone(), withdrawal.id());
        let approve = tokio::spawn(async move { app1.approve_withdrawal(&first, id, WithdrawalDecision::default(), None).await });
        let reject = tokio::spawn(async move { app2.reject_withdrawal(&second, id, because("suspicious"), None).await });
        let (approved, rejected) = (approve.await.expect("task"), reject.await.expect("task"));
        let after = h.app.withdrawal(&alice, id).await.expect("find");
        match (approved, rejected) {
            (Ok(w), Err(WithdrawalError::Transition(_))) => {
                assert_eq!((w.status(), after.status()), (WithdrawalStatus::Paid, WithdrawalStatus::Paid));
            }
            (Err(WithdrawalError::Transition(_)), Ok(w)) => {
                assert_eq!(
                    (w.status(), after.status()),
                    (WithdrawalStatus::Rejected, WithdrawalStatus::Rejected)
                );
                assert_eq!(after.decided_by(), Some(second.user_id));
            }
            other => panic!("exactly one decision must win: {other:?}"),
        }
    }
    let (balance, held) = wallet(&h, &alice).await;
    assert_eq!(held, 0, "every hold ended");
    assert_eq!(
        (1_000_000 - balance) % 150_000,
        0,
        "only whole approved withdrawals left the wallet"
    );
    h.assert_ledger_ok().await;
}

#[tokio::test]
async fn two_admins_approving_at_once_pay_out_once() {
    let h = Harness::new().await;
    let alice = h.funded_customer(500_000).await;
    let (first, second) = (h.admin_caller(), another_admin(&h).await);
    let withdrawal = h.app.withdraw(&alice, request(300_000, "IBAN 4"), None).await.expect("request");
    let (app1, app2, id) = (h.app.clone(), h.app.clone(), withdrawal.id());
    let one = tokio::spawn(async move { app1.approve_withdrawal(&first, id, WithdrawalDecision::default(), None).await });
    let two = tokio::spawn(async move { app2.approve_withdrawal(&second, id, WithdrawalDecision::default(), None).await });
    let (one, two) = (one.await.expect("task").expect("one"), two.await.expect("task").expect("two"));
    assert!(matches!(one.status(), WithdrawalStatus::Approved | WithdrawalStatus::Paid));
    assert!(matches!(two.status(), WithdrawalStatus::Approved | WithdrawalStatus::Paid));
    assert_eq!(approvals(&h).await, 1, "one approval recorded");
    let after = h.app.withdrawal(&alice, id).await.expect("find");
    assert_eq!(after.status(), WithdrawalStatus::Paid);
    assert_eq!(wallet(&h, &alice).await, (200_000, 0), "paid out once");
    h.assert_ledger_ok().await;
}
