//! The contract of transfers and withdrawals (`TransferRepository`).

use crate::ledger::fund;
use crate::prelude::*;
use domain::withdrawal::{Settlement, WithdrawalRecord, WithdrawalStatus, WithdrawalTerms};

/// A withdrawal as they were before they had a lifecycle: paid at once, without a hold.
fn paid_withdrawal(owner: &domain::user::User, amount: domain::money::Money, at: time::OffsetDateTime) -> Withdrawal {
    Withdrawal::restore(WithdrawalRecord {
        id: id(),
        user_id: owner.id,
        amount,
        destination: "IBAN ...1234".into(),
        status: WithdrawalStatus::Paid,
        hold_id: None,
        decided_by: None,
        decided_at: None,
        reason: None,
        settlement: None,
        provider_reference: None,
        failure_reason: None,
        settled_by: None,
        transaction_id: Some(id()),
        created_at: at,
        updated_at: at,
    })
}

pub async fn transfers_and_withdrawals_are_stored<U: UnitOfWork>(store: U) {
    let (alice, bob) = (user(Role::Customer), user(Role::Customer));
    let transfer = Transfer {
        id: id(),
        from_user_id: alice.id,
        to_user_id: bob.id,
        amount: usd(500),
        transaction_id: id(),
        note: "lunch".into(),
        created_at: now(),
    };
    let withdrawal = paid_withdrawal(&alice, usd(200), now());
    let mut tx = begin(&store).await;
    expect(tx.insert_user(&alice).await, "alice");
    expect(tx.insert_user(&bob).await, "bob");
    expect(tx.insert_transfer(&transfer).await, "transfer");
    expect(tx.insert_withdrawal(&withdrawal).await, "withdrawal");
    commit(tx).await;
    let mut tx = begin(&store).await;
    assert_eq!(expect(tx.find_transfer(transfer.id).await, "transfer"), Some(transfer));
    assert_eq!(expect(tx.find_withdrawal(withdrawal.id()).await, "withdrawal"), Some(withdrawal));
    assert_eq!(expect(tx.find_transfer(id()).await, "none"), None);
}

pub async fn a_users_withdrawals_list_newest_first<U: UnitOfWork>(store: U) {
    let (alice, bob) = (user(Role::Customer), user(Role::Customer));
    let withdrawal =
        |owner: &domain::user::User, seconds: i64| paid_withdrawal(owner, usd(100 + seconds), now() + Duration::seconds(seconds));
    let (first, second, third, theirs) = (
        withdrawal(&alice, 1),
        withdrawal(&alice, 2),
        withdrawal(&alice, 3),
        withdrawal(&bob, 4),
    );
    let mut tx = begin(&store).await;
    expect(tx.insert_user(&alice).await, "alice");
    expect(tx.insert_user(&bob).await, "bob");
    for w in [&first, &second, &third, &theirs] {
        expect(tx.insert_withdrawal(w).await, "withdrawal");
    }
    commit(tx).await;
    let mut tx = begin(&store).await;
    let page = expect(tx.list_user_withdrawals(alice.id, &PageRequest::first(2)).await, "first page");
    assert_eq!(page.items, vec![third.clone(), second.clone()], "newest first, hers only");
    let next = PageRequest {
        limit: 2,
        after: page.next_cursor,
    };
    let rest = expect(tx.list_user_withdrawals(alice.id, &next).await, "next page");
    assert_eq!((rest.items, rest.next_cursor), (vec![first], None));
}

/// A withdrawal in flight keeps its hold from the expiry job; its transitions are stored whole;
/// admins list withdrawals by status.
pub async fn a_withdrawal_moves_through_its_states_and_lists_by_status<U: UnitOfWork>(store: U) {
    let alice = user(Role::Customer);
    let admin = user(Role::Admin);
    let wallet_id = fund(&store, &alice, &[1000]).await;
    let mut tx = begin(&store).await;
    expect(tx.insert_user(&admin).await, "admin");
    let mut wallets = expect(tx.lock_wallets(&[wallet_id]).await, "lock");
    let terms = HoldTerms {
        reference: "withdrawal".into(),
        order_id: None,
        payee: None,
        placed_at: now(),
        expires_at: now() + Duration::minutes(1),
    };
    let hold = Hold::place(id(), &mut wallets[0], usd(300), terms).expect("hold");
    expect(tx.update_wallets(&wallets).await, "held");
    expect(tx.insert_hold(&hold).await, "hold");
    let terms = WithdrawalTerms {
        user_id: alice.id,
        amount: usd(300),
        destination: "IBAN ...9".into(),
        hold_id: hold.id,
    };
    let requested = Withdrawal::request(id(), terms, now());
    expect(tx.insert_withdrawal(&requested).await, "requested");
    commit(tx).await;

    let later = now() + Duration::minutes(5);
    let mut tx = begin(&store).await;
    let expired = expect(tx.find_expired_holds(later, 10).await, "expired");
    assert!(expired.is_empty(), "a withdrawal's hold is left to the withdrawal: {expired:?}");
    let locked = expect(tx.lock_withdrawal(requested.id()).await, "lock").expect("found");
    assert_eq!(locked, requested);
    let provider = domain::payment::ProviderName::parse("simulated").expect("name");
    let approved = locked
        .approve(Some(admin.id), Some("checked"), Settlement::Payout(provider), later)
        .expect("approve")
        .record_provider_reference("po_1", later)
        .expect("reference");
    expect(tx.update_withdrawal(&approved).await, "approved");
    commit(tx).await;

    let mut tx = begin(&store).await;
    assert_eq!(expect(tx.find_withdrawal(approved.id()).await, "find"), Some(approved.clone()));
    let listed = expect(
        tx.list_withdrawals(
            WithdrawalFilter {
                status: Some(WithdrawalStatus::Approved),
                ..WithdrawalFilter::default()
            },
            &PageRequest::first(10),
        )
        .await,
        "approved",
    );
    assert_eq!(listed.items, vec![approved.clone()]);
    let none = expect(
        tx.list_withdrawals(
            WithdrawalFilter {
                status: Some(WithdrawalStatus::Requested),
                ..WithdrawalFilter::default()
            },
            &PageRequest::first(10),
        )
        .await,
        "requested",
    );
    assert!(none.items.is_empty());
    let failed = approved.fail("the bank refused", None, later).expect("fail");
    expect(tx.update_withdrawal(&failed).await, "failed");
    let mut wallets = expect(tx.lock_wallets(&[wallet_id]).await, "lock");
    let released = expect(tx.lock_hold(hold.id).await, "hold")
        .expect("hold")
        .release(&mut wallets[0], later)
        .expect("release");
    expect(tx.update_wallets(&wallets).await, "released");
    expect(tx.update_hold(&released).await, "hold");
    commit(tx).await;

    let mut tx = begin(&store).await;
    let all = expect(
        tx.list_withdrawals(WithdrawalFilter::default(), &PageRequest::first(10)).await,
        "all",
    );
    assert_eq!(all.items, vec![failed.clone()]);
    let owners = WithdrawalFilter {
        user: Some(failed.user_id()),
        currency: Some(failed.amount().currency()),
        created: CreatedWithin {
            from: Some(failed.created_at()),
            to: Some(failed.created_at() + Duration::seconds(1)),
        },
        ..WithdrawalFilter::default()
    };
    assert_eq!(
        expect(tx.list_withdrawals(owners, &PageRequest::first(10)).await, "owner's").items,
        vec![failed.clone()]
    );
    let elsewhere = [
        WithdrawalFilter {
            user: Some(id()),
            ..owners
        },
        WithdrawalFilter {
            currency: Some(Currency::Eur),
            ..owners
        },
        WithdrawalFilter {
            created: CreatedWithin {
                from: None,
                to: Some(failed.created_at()),
            },
            ..owners
        },
    ];
    for filter in elsewhere {
        let found = expect(tx.list_withdrawals(filter, &PageRequest::first(10)).await, "none");
        assert!(found.items.is_empty(), "{filter:?}");
    }
    assert_eq!(
        expect(tx.find_withdrawal(failed.id()).await, "find").map(|w| (w.status(), w.failure_reason().map(str::to_owned))),
        Some((WithdrawalStatus::Failed, Some("the bank refused".to_owned())))
    );
    let audit = expect(tx.audit_ledger().await, "audit");
    assert!(audit.held_mismatches.is_empty(), "{audit:?}");
}

pub async fn admins_list_every_transfer_by_party_currency_and_period<U: UnitOfWork>(store: U) {
    let (alice, bob, carol) = (user(Role::Customer), user(Role::Customer), user(Role::Customer));
    let transfer = |from: &domain::user::User, to: &domain::user::User, amount, seconds| Transfer {
        id: id(),
        from_user_id: from.id,
        to_user_id: to.id,
        amount,
        transaction_id: id(),
        note: String::new(),
        created_at: now() + Duration::seconds(seconds),
    };
    let a = transfer(&alice, &bob, usd(100), 0);
    let b = transfer(&bob, &carol, usd(200), 1);
    let c = transfer(&carol, &alice, Money::from_minor(300, Currency::Eur), 2);
    let mut tx = begin(&store).await;
    for u in [&alice, &bob, &carol] {
        expect(tx.insert_user(u).await, "user");
    }
    for t in [&a, &b, &c] {
        expect(tx.insert_transfer(t).await, "transfer");
    }
    commit(tx).await;
    let ids = |page: &Page<Transfer>| page.items.iter().map(|t| t.id).collect::<Vec<_>>();
    let mut tx = begin(&store).await;
    let all = TransferFilter::default();
    let page = expect(tx.list_transfers(all, &PageRequest::first(2)).await, "first page");
    assert_eq!(ids(&page), vec![c.id, b.id], "newest first");
    let next = PageRequest {
        limit: 2,
        after: page.next_cursor,
    };
    let rest = expect(tx.list_transfers(all, &next).await, "next page");
    assert_eq!(rest.items, vec![a.clone()]);
    assert_eq!(rest.next_cursor, None);
    let alices = TransferFilter {
        user: Some(alice.id),
        ..all
    };
    assert_eq!(
        ids(&expect(
            tx.list_transfers(alices, &PageRequest::first(10)).await,
            "sent or received"
        )),
        vec![c.id, a.id]
    );
    let dollars = TransferFilter {
        currency: Some(Currency::Usd),
        created: CreatedWithin {
            from: Some(now() + Duration::seconds(1)),
            to: None,
        },
        ..all
    };
    assert_eq!(
        ids(&expect(tx.list_transfers(dollars, &PageRequest::first(10)).await, "usd since 1s")),
        vec![b.id]
    );
}
