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

/// Posts `minor` (signed) to `wallet` against the adjustments account, as one journal transaction
/// of `kind` dated `at`.
async fn post_dated<U: UnitOfWork>(store: &U, wallet: WalletId, kind: TransactionKind, minor: i64, at: time::OffsetDateTime) {
    let mut tx = begin(store).await;
    let system = expect(
        tx.ensure_system_wallet(&SystemAccount::Adjustments, Currency::Usd, id(), now())
            .await,
        "system",
    );
    let entries = vec![Entry::credit(wallet, usd(minor)), Entry::credit(system, usd(-minor))];
    let journal = JournalTransaction::new(id(), kind, format!("{} {minor}", kind.as_str()), entries, at).expect("journal");
    let mut wallets = expect(tx.lock_wallets(&journal.wallet_ids()).await, "lock");
    let postings = ledger::post(&journal, &mut wallets).expect("post");
    expect(tx.update_wallets(&wallets).await, "update");
    expect(tx.append_journal(&journal, &postings).await, "append");
    commit(tx).await;
}

pub async fn statement_totals_sum_a_wallets_postings_by_kind_and_period<U: UnitOfWork>(store: U) {
    let (merchant, other) = (user(Role::Merchant), user(Role::Merchant));
    let mut tx = begin(&store).await;
    expect(tx.insert_user(&merchant).await, "merchant");
    expect(tx.insert_user(&other).await, "other");
    let wallet = expect(tx.ensure_user_wallet(merchant.id, Currency::Usd, id(), now()).await, "wallet");
    let other_wallet = expect(tx.ensure_user_wallet(other.id, Currency::Usd, id(), now()).await, "other wallet");
    commit(tx).await;
    let (from, to) = (now() - Duration::days(1), now() + Duration::days(1));
    let dated = [
        (TransactionKind::Adjustment, 1_000, now() - Duration::days(10)),
        (TransactionKind::Purchase, 500, now() - Duration::days(9)),
        // The start is in the period; the end is not.
        (TransactionKind::Purchase, 2_000, from),
        (TransactionKind::Purchase, 300, now() + Duration::hours(1)),
        (TransactionKind::Refund, -400, now() + Duration::hours(2)),
        (TransactionKind::Transfer, -100, now() + Duration::hours(3)),
        (TransactionKind::Transfer, 50, now() + Duration::hours(4)),
        (TransactionKind::Withdrawal, -200, to),
    ];
    for (kind, minor, at) in dated {
        post_dated(&store, wallet, kind, minor, at).await;
    }
    post_dated(&store, other_wallet, TransactionKind::Purchase, 7_000, now()).await;

    let mut tx = begin(&store).await;
    let period = expect(tx.statement_totals(&[wallet], Some(from), Some(to)).await, "period");
    assert_eq!(period.len(), 1, "{period:?}");
    let totals = &period[0];
    assert_eq!(totals.wallet_id, wallet);
    assert_eq!(totals.opening_minor, 1_500, "postings before the period");
    assert_eq!(totals.closing_minor, 3_350, "postings before the period's end");
    assert_eq!(
        totals.cached_balance_minor, 3_150,
        "the withdrawal after the period is in the balance"
    );
    assert_eq!(totals.latest_balance_after_minor, Some(3_150));
    let mut kinds = totals.kinds.clone();
    kinds.sort_by_key(|kind| kind.kind.as_str());
    let summary: Vec<_> = kinds
        .iter()
        .map(|k| (k.kind, k.credits_minor, k.credit_count, k.debits_minor, k.debit_count))
        .collect();
    assert_eq!(
        summary,
        vec![
            (TransactionKind::Purchase, 2_300, 2, 0, 0),
            (TransactionKind::Refund, 0, 0, -400, 1),
            (TransactionKind::Transfer, 50, 1, -100, 1),
        ]
    );

    let mut all_time = expect(tx.statement_totals(&[other_wallet, wallet], None, None).await, "all time");
    all_time.sort_by_key(|totals| totals.wallet_id != wallet);
    assert_eq!(all_time.len(), 2, "one per wallet");
    assert_eq!((all_time[0].opening_minor, all_time[0].closing_minor), (0, 3_150));
    assert_eq!(all_time[0].kinds.iter().map(|k| k.credit_count + k.debit_count).sum::<u64>(), 8);
    assert_eq!(all_time[1].wallet_id, other_wallet);
    assert_eq!((all_time[1].closing_minor, all_time[1].cached_balance_minor), (7_000, 7_000));

    let empty_period = expect(tx.statement_totals(&[wallet], Some(to + Duration::days(1)), None).await, "later");
    assert!(empty_period[0].kinds.is_empty(), "{empty_period:?}");
    assert_eq!((empty_period[0].opening_minor, empty_period[0].closing_minor), (3_150, 3_150));

    let missing: WalletId = id();
    assert!(
        tx.statement_totals(&[missing], None, None).await.is_err(),
        "a wallet that does not exist"
    );
}

pub async fn merchant_wallets_list_in_id_order_after_a_cursor<U: UnitOfWork>(store: U) {
    let customer = user(Role::Customer);
    let merchants = [user(Role::Merchant), user(Role::Merchant)];
    let mut tx = begin(&store).await;
    expect(tx.insert_user(&customer).await, "customer");
    expect(
        tx.ensure_user_wallet(customer.id, Currency::Usd, id(), now()).await,
        "customer wallet",
    );
    expect(
        tx.ensure_system_wallet(&SystemAccount::Adjustments, Currency::Usd, id(), now())
            .await,
        "system",
    );
    let mut expected = Vec::new();
    for merchant in &merchants {
        expect(tx.insert_user(merchant).await, "merchant");
        for currency in [Currency::Usd, Currency::Eur] {
            expected.push(expect(tx.ensure_user_wallet(merchant.id, currency, id(), now()).await, "wallet"));
        }
    }
    commit(tx).await;
    expected.sort();
    let mut tx = begin(&store).await;
    let all = expect(tx.list_merchant_wallets(None, 10).await, "all");
    assert_eq!(
        all.iter().map(Wallet::id).collect::<Vec<_>>(),
        expected,
        "merchants' wallets only, by id"
    );
    let first = expect(tx.list_merchant_wallets(None, 3).await, "first page");
    let rest = expect(tx.list_merchant_wallets(first.last().map(Wallet::id), 3).await, "second page");
    let paged: Vec<_> = first.iter().chain(&rest).map(Wallet::id).collect();
    assert_eq!(paged, expected);
}

pub async fn the_journal_lists_transactions_with_their_postings_newest_first<U: UnitOfWork>(store: U) {
    let (alice, bob) = (user(Role::Customer), user(Role::Customer));
    let alices = fund(&store, &alice, &[100, 200, 300]).await;
    let bobs = fund(&store, &bob, &[50]).await;
    let mut tx = begin(&store).await;
    let all = JournalFilter::default();
    let first = expect(tx.list_journal(all, &PageRequest::first(2)).await, "first page");
    let next = PageRequest {
        limit: 2,
        after: first.next_cursor,
    };
    let rest = expect(tx.list_journal(all, &next).await, "next page");
    assert_eq!(rest.next_cursor, None);
    let records: Vec<JournalRecord> = first.items.into_iter().chain(rest.items).collect();
    let references: Vec<&str> = records.iter().map(|r| r.reference.as_str()).collect();
    assert_eq!(references.len(), 4);
    assert_eq!(&references[..2], ["fund 2", "fund 1"], "newest first");
    let keys: Vec<_> = records.iter().map(|r| (r.created_at, r.id.as_uuid())).collect();
    assert!(
        keys.windows(2).all(|pair| pair[0] > pair[1]),
        "a stable order: (created_at, id) descending"
    );
    let newest = &records[0];
    assert_eq!(newest.kind, TransactionKind::Adjustment);
    let amounts: Vec<(WalletId, i64)> = newest
        .postings
        .iter()
        .map(|p| (p.posting.wallet_id, p.posting.amount.amount_minor()))
        .collect();
    assert_eq!((amounts.len(), amounts[0]), (2, (alices, 300)), "every posting, in the order made");
    assert_eq!(newest.postings[0].posting.balance_after_minor, 600);
    let alice_only = JournalFilter {
        wallet: Some(alices),
        ..all
    };
    let theirs = expect(tx.list_journal(alice_only, &PageRequest::first(10)).await, "alice's");
    assert_eq!(theirs.items.len(), 3);
    assert!(
        theirs.items.iter().all(|r| r.postings.len() == 2),
        "with all postings, not only the wallet's"
    );
    let later = JournalFilter {
        created: CreatedWithin {
            from: Some(now() + Duration::seconds(1)),
            to: Some(now() + Duration::seconds(2)),
        },
        ..all
    };
    let found = expect(tx.list_journal(later, &PageRequest::first(10)).await, "period");
    assert_eq!(found.items.iter().map(|r| r.reference.as_str()).collect::<Vec<_>>(), ["fund 1"]);
    let transfers = JournalFilter {
        kind: Some(TransactionKind::Transfer),
        wallet: Some(bobs),
        ..all
    };
    assert!(
        expect(tx.list_journal(transfers, &PageRequest::first(10)).await, "none")
            .items
            .is_empty()
    );
    assert_eq!(expect(tx.find_journal(newest.id).await, "find").as_ref(), Some(newest));
    assert_eq!(expect(tx.find_journal(id()).await, "unknown"), None);
}
