use application::adjustments::{AdjustmentError, AdjustmentRequest};
use application::pagination::PageRequest;
use application::transfers::{Recipient, TransferError, TransferRequest};
use application::withdrawals::{WithdrawalError, WithdrawalRequest};
use domain::money::Currency;
use domain::user::Role;

use crate::support::{Harness, usd};

#[tokio::test]
async fn a_transfer_moves_money_by_id_or_by_e_mail() -> Result<(), Box<dyn std::error::Error>> {
    let h = Harness::new();
    let alice = h.funded_customer(10_000).await;
    let bob = h.user(Role::Customer).await;
    let by_id = TransferRequest {
        to: Recipient::Id(bob.user_id),
        amount: usd(2_500),
        note: "lunch".into(),
    };
    let transfer = h.app.transfer(&alice, by_id, None).await?;
    assert_eq!(
        (transfer.from_user_id, transfer.to_user_id, transfer.amount),
        (alice.user_id, bob.user_id, usd(2_500))
    );
    let bob_email = h.app.profile(bob.user_id).await?.email;
    let by_email = TransferRequest {
        to: Recipient::Email(bob_email.as_str().to_uppercase()),
        amount: usd(500),
        note: String::new(),
    };
    h.app.transfer(&alice, by_email, None).await?;
    assert_eq!((h.balance(&alice).await, h.balance(&bob).await), (7_000, 3_000));
    assert_eq!(h.app.transfer_details(&bob, transfer.id).await?.id, transfer.id);
    let stranger = h.user(Role::Customer).await;
    assert!(matches!(
        h.app.transfer_details(&stranger, transfer.id).await,
        Err(TransferError::NotFound)
    ));
    h.assert_ledger_ok().await;
    Ok(())
}

#[tokio::test]
async fn a_negative_or_zero_transfer_takes_nothing_from_the_receiver() -> Result<(), Box<dyn std::error::Error>> {
    let h = Harness::new();
    let alice = h.funded_customer(1_000).await;
    let bob = h.funded_customer(500).await;
    for minor in [-307, 0] {
        let reversed = TransferRequest {
            to: Recipient::Id(bob.user_id),
            amount: usd(minor),
            note: String::new(),
        };
        let refused = h.app.transfer(&alice, reversed, None).await;
        assert!(matches!(refused, Err(TransferError::NonPositiveAmount)), "{minor}: {refused:?}");
    }
    assert_eq!((h.balance(&alice).await, h.balance(&bob).await), (1_000, 500));
    h.assert_ledger_ok().await;
    Ok(())
}

#[tokio::test]
async fn a_transfer_beyond_the_balance_changes_nothing() -> Result<(), Box<dyn std::error::Error>> {
    let h = Harness::new();
    let alice = h.funded_customer(1_000).await;
    let bob = h.user(Role::Customer).await;
    let too_much = TransferRequest {
        to: Recipient::Id(bob.user_id),
        amount: usd(1_001),
        note: String::new(),
    };
    let refused = h.app.transfer(&alice, too_much, None).await;
    assert!(matches!(refused, Err(TransferError::InsufficientFunds { available }) if available == usd(1_000)));
    let to_self = TransferRequest {
        to: Recipient::Id(alice.user_id),
        amount: usd(1),
        note: String::new(),
    };
    assert!(matches!(
        h.app.transfer(&alice, to_self, None).await,
        Err(TransferError::SelfTransfer)
    ));
    let nobody = TransferRequest {
        to: Recipient::Email("nobody@example.com".into()),
        amount: usd(1),
        note: String::new(),
    };
    assert!(matches!(
        h.app.transfer(&alice, nobody, None).await,
        Err(TransferError::RecipientNotFound)
    ));
    assert_eq!((h.balance(&alice).await, h.balance(&bob).await), (1_000, 0));
    h.assert_ledger_ok().await;
    Ok(())
}

#[tokio::test]
async fn a_thousand_transfers_each_way_conserve_the_total() -> Result<(), Box<dyn std::error::Error>> {
    let h = Harness::new();
    let alice = h.funded_customer(100_000).await;
    let bob = h.funded_customer(100_000).await;
    let mut tasks = Vec::new();
    for n in 0..2_000 {
        let (app, from, to) = if n % 2 == 0 {
            (h.app.clone(), alice, bob)
        } else {
            (h.app.clone(), bob, alice)
        };
        tasks.push(tokio::spawn(async move {
            let request = TransferRequest {
                to: Recipient::Id(to.user_id),
                amount: usd(7),
                note: String::new(),
            };
            app.transfer(&from, request, None).await
        }));
    }
    for task in tasks {
        task.await??;
    }
    assert_eq!(h.balance(&alice).await + h.balance(&bob).await, 200_000);
    h.assert_ledger_ok().await;
    Ok(())
}

#[tokio::test]
async fn history_lists_postings_newest_first_in_pages() -> Result<(), Box<dyn std::error::Error>> {
    let h = Harness::new();
    let alice = h.funded_customer(10_000).await;
    let bob = h.user(Role::Customer).await;
    for minor in [100, 200, 300] {
        h.app
            .transfer(
                &alice,
                TransferRequest {
                    to: Recipient::Id(bob.user_id),
                    amount: usd(minor),
                    note: String::new(),
                },
                None,
            )
            .await?;
    }
    let first = h.app.wallet_history(&alice, Currency::Usd, &PageRequest::first(2)).await?;
    let amounts: Vec<i64> = first.items.iter().map(|r| r.posting.amount.amount_minor()).collect();
    assert_eq!(amounts, vec![-300, -200]);
    assert_eq!(first.items[0].posting.balance_after_minor, 9_400);
    let rest = h
        .app
        .wallet_history(
            &alice,
            Currency::Usd,
            &PageRequest {
                limit: 2,
                after: first.next_cursor,
            },
        )
        .await?;
    let amounts: Vec<i64> = rest.items.iter().map(|r| r.posting.amount.amount_minor()).collect();
    assert_eq!(amounts, vec![-100, 10_000]);
    assert!(rest.next_cursor.is_none());
    Ok(())
}

#[tokio::test]
async fn withdrawals_leave_the_platform_through_the_payouts_account() -> Result<(), Box<dyn std::error::Error>> {
    let h = Harness::with_payouts(std::sync::Arc::new(crate::support::PayoutDesk::new(vec![])));
    let alice = h.funded_customer(5_000).await;
    let request = WithdrawalRequest {
        amount: usd(1_500),
        destination: "NL91 ABNA 0417 1643 00".into(),
    };
    let withdrawal = h.app.withdraw(&alice, request, None).await?;
    assert_eq!(h.balance(&alice).await, 3_500);
    assert_eq!(h.app.withdrawal(&alice, withdrawal.id()).await?.amount(), usd(1_500));
    let too_much = WithdrawalRequest {
        amount: usd(3_501),
        destination: "x".into(),
    };
    assert!(matches!(
        h.app.withdraw(&alice, too_much, None).await,
        Err(WithdrawalError::InsufficientFunds { .. })
    ));
    let nowhere = WithdrawalRequest {
        amount: usd(1),
        destination: "  ".into(),
    };
    assert!(matches!(
        h.app.withdraw(&alice, nowhere, None).await,
        Err(WithdrawalError::Destination)
    ));
    h.assert_ledger_ok().await;
    Ok(())
}

#[tokio::test]
async fn only_admins_adjust_and_a_debit_cannot_overdraw() -> Result<(), Box<dyn std::error::Error>> {
    let h = Harness::new();
    let alice = h.funded_customer(1_000).await;
    let admin = h.admin().await;
    let request = |minor| AdjustmentRequest {
        user_id: alice.user_id,
        amount: usd(minor),
        reason: "correction".into(),
    };
    assert!(matches!(
        h.app.adjust_wallet(&alice, request(100), None).await,
        Err(AdjustmentError::Forbidden)
    ));
    let debit = h.app.adjust_wallet(&admin, request(-400), None).await?;
    assert_eq!(debit.balance_after, usd(600));
    assert!(matches!(
        h.app.adjust_wallet(&admin, request(-601), None).await,
        Err(AdjustmentError::InsufficientFunds { .. })
    ));
    assert!(matches!(
        h.app.adjust_wallet(&admin, request(0), None).await,
        Err(AdjustmentError::Zero)
    ));
    let unknown = AdjustmentRequest {
        user_id: domain::ids::UserId::from_uuid(uuid::Uuid::now_v7()),
        amount: usd(1),
        reason: "x".into(),
    };
    assert!(matches!(
        h.app.adjust_wallet(&admin, unknown, None).await,
        Err(AdjustmentError::UserNotFound)
    ));
    h.assert_ledger_ok().await;
    Ok(())
}

/// Found by the simulation (seed 7, `simulation::trace(7, 2000)`): a top-up of zero or less
/// opened a checkout, and the provider's completion of a negative one moved money out of the
/// wallet. The HTTP and web layers refuse such amounts; the use case now does too.
#[tokio::test]
async fn a_top_up_of_zero_or_less_is_refused_before_any_checkout_opens() -> Result<(), Box<dyn std::error::Error>> {
    use application::top_ups::{TopUpError, TopUpRequest};
    let h = Harness::new();
    let alice = h.funded_customer(1_000).await;
    for minor in [0, -479] {
        let request = TopUpRequest {
            amount: usd(minor),
            provider: None,
        };
        let refused = h.app.start_top_up(&alice, request, None).await;
        assert!(matches!(refused, Err(TopUpError::Amount)), "{minor}: {refused:?}");
    }
    assert_eq!(h.balance(&alice).await, 1_000);
    h.assert_ledger_ok().await;
    Ok(())
}
