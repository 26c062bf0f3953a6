//! The contract of journal transactions, postings and the ledger audit (`LedgerRepository`).

use crate::prelude::*;

pub async fn an_overdrawn_user_wallet_is_refused<U: UnitOfWork>(store: U) {
    let alice = user(Role::Customer);
    let mut tx = begin(&store).await;
    expect(tx.insert_user(&alice).await, "alice");
    let wallet_id = expect(tx.ensure_user_wallet(alice.id, Currency::Usd, id(), now()).await, "wallet");
    commit(tx).await;
    for (balance, held) in [(-1, 0), (100, 101)] {
        let mut tx = begin(&store).await;
        let overdrawn = Wallet::restore(wallet_id, WalletOwner::User(alice.id), Currency::Usd, balance, held, now());
        // An adapter may report a write's failure at once or, if it defers writes, at the commit.
        let refused = match tx.update_wallets(&[overdrawn]).await {
            Err(_) => true,
            Ok(()) => tx.commit().await.is_err(),
        };
        assert!(refused, "balance {balance}, held {held}");
    }
    let mut tx = begin(&store).await;
    let wallet = expect(tx.find_user_wallet(alice.id, Currency::Usd).await, "find").expect("wallet");
    assert_eq!(
        (wallet.balance(), wallet.held()),
        (usd(0), usd(0)),
        "nothing of a refused write remains"
    );
}

/// Funds `user`'s USD wallet from the adjustments account with `amounts` (one transaction each).
pub(crate) async fn fund<U: UnitOfWork>(store: &U, user: &domain::user::User, amounts: &[i64]) -> WalletId {
    let mut tx = begin(store).await;
    expect(tx.insert_user(user).await, "user");
    let wallet = expect(tx.ensure_user_wallet(user.id, Currency::Usd, id(), now()).await, "wallet");
    let system = expect(
        tx.ensure_system_wallet(&SystemAccount::Adjustments, Currency::Usd, id(), now())
            .await,
        "system",
    );
    commit(tx).await;
    for (n, minor) in amounts.iter().enumerate() {
        let mut tx = begin(store).await;
        let transaction_id: TransactionId = id();
        let journal = JournalTransaction::new(
            transaction_id,
            TransactionKind::Adjustment,
            format!("fund {n}"),
            vec![Entry::credit(wallet, usd(*minor)), Entry::credit(system, usd(-minor))],
            now() + Duration::seconds(n as i64),
        )
        .expect("journal");
        let mut wallets = expect(tx.lock_wallets(&journal.wallet_ids()).await, "lock");
        let postings = ledger::post(&journal, &mut wallets).expect("post");
        expect(tx.update_wallets(&wallets).await, "update");
        expect(tx.append_journal(&journal, &postings).await, "append");
        commit(tx).await;
    }
    wallet
}

pub async fn postings_list_newest_first_and_paginate<U: UnitOfWork>(store: U) {
    let alice = user(Role::Customer);
    let wallet = fund(&store, &alice, &[100, 200, 300, 400, 500]).await;
    let mut tx = begin(&store).await;
    let first = expect(tx.wallet_history(wallet, None, 3).await, "first page");
    assert_eq!(
        first.iter().map(|r| r.posting.amount.amount_minor()).collect::<Vec<_>>(),
        vec![500, 400, 300]
    );
    assert_eq!(
        first.iter().map(|r| r.posting.balance_after_minor).collect::<Vec<_>>(),
        vec![1500, 1000, 600]
    );
    assert!(first.windows(2).all(|pair| pair[0].sequence > pair[1].sequence));
    let rest = expect(tx.wallet_history(wallet, first.last().map(|r| r.sequence), 3).await, "second page");
    assert_eq!(
        rest.iter().map(|r| r.posting.amount.amount_minor()).collect::<Vec<_>>(),
        vec![200, 100]
    );
    assert_eq!(rest[0].posting.kind, TransactionKind::Adjustment);
    assert_eq!(rest[0].posting.reference, "fund 1");
    let wallet_now = expect(tx.lock_wallets(&[wallet]).await, "wallet");
    assert_eq!(wallet_now[0].balance(), usd(1500));
}

pub async fn the_audit_of_a_consistent_ledger_is_clean<U: UnitOfWork>(store: U) {
    let alice = user(Role::Customer);
    fund(&store, &alice, &[700, 300]).await;
    let mut tx = begin(&store).await;
    let audit = expect(tx.audit_ledger().await, "audit");
    assert_eq!(audit.transaction_count, 2);
    assert_eq!(audit.posting_count, 4);
    assert!(audit.unbalanced_transactions.is_empty(), "{audit:?}");
    assert!(audit.balance_mismatches.is_empty(), "{audit:?}");
    assert!(audit.held_mismatches.is_empty(), "{audit:?}");
    assert!(audit.overdrawn_wallets.is_empty(), "{audit:?}");
    assert!(audit.broken_chains.is_empty(), "{audit:?}");
    assert_eq!(audit.totals_by_currency, vec![(Currency::Usd, 0)]);
}

pub async fn the_audit_finds_a_cached_balance_that_disagrees<U: UnitOfWork>(store: U) {
    let alice = user(Role::Customer);
    let wallet = fund(&store, &alice, &[700]).await;
    let mut tx = begin(&store).await;
    let tampered = Wallet::restore(wallet, WalletOwner::User(alice.id), Currency::Usd, 900, 0, now());
    expect(tx.update_wallets(&[tampered]).await, "tamper");
    let audit = expect(tx.audit_ledger().await, "audit");
    assert_eq!(audit.balance_mismatches.len(), 1, "{audit:?}");
    assert_eq!(audit.balance_mismatches[0].wallet_id, wallet);
    assert_eq!(
        (audit.balance_mismatches[0].cached_minor, audit.balance_mismatches[0].posted_minor),
        (900, 700)
    );
}
