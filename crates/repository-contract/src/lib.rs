//! The repository contract: what every storage adapter must do, written once against the ports.
//!
//! Each test is a generic async function taking a fresh, empty store. An adapter's test suite runs
//! them all with `repository_contract::contract_tests!(make_store)`, where `make_store` is an
//! expression giving a future of `(store, guard)`; the guard lives until the test ends (the
//! PostgreSQL adapter drops its test database then).

pub mod fixtures;

use application::auth::RefreshToken;
use application::idempotency::{IdempotencyKey, IdempotencyRecord, IdempotencyScope, IdempotencyState, RecoveryPoint, StoredResponse};
use application::pagination::{Page, PageRequest};
use application::ports::store::{
    CallRepository, ClaimOutcome, EventOutbox, FollowUpRepository, HoldRepository, IdempotencyRepository, LedgerRepository, OrderFilter,
    OrderRepository, PaymentLookup, PaymentRepository, ProductFilter, ProductRepository, RefreshTokenRepository, RefundRepository,
    StoreError, Transaction, TransferRepository, UnitOfWork, UserRepository, WalletRepository, WebhookInbox,
};
use domain::call::CallSession;
use domain::events::{DomainEvent, OutboxEvent};
use domain::follow_up::{FollowUp, FollowUpState, FollowUpTask};
use domain::ids::{HoldId, TransactionId, WalletId};
use domain::ledger::{self, Entry, JournalTransaction, TransactionKind};
use domain::money::Currency;
use domain::order::{Actor, OrderStatus};
use domain::payment::{PaymentPurpose, PaymentStatus, Refund, RefundTerms};
use domain::user::Role;
use domain::wallet::{Hold, HoldStatus, HoldTerms, SystemAccount, Transfer, Wallet, WalletOwner, Withdrawal};
use time::Duration;

use crate::fixtures::*;

/// Generates one `#[tokio::test]` per contract test.
#[macro_export]
macro_rules! contract_tests {
    ($make_store:expr) => {
        $crate::contract_tests!($make_store;
            users_are_found_by_id_and_by_email,
            an_e_mail_address_belongs_to_one_user,
            refresh_tokens_rotate_and_families_revoke,
            a_user_has_one_wallet_per_currency,
            system_accounts_are_unique_per_code_and_currency,
            wallets_are_locked_in_id_order_and_must_exist,
            user_wallets_are_created_if_missing_and_locked_in_id_order,
            a_cart_is_locked_with_its_products,
            an_overdrawn_user_wallet_is_refused,
            postings_list_newest_first_and_paginate,
            the_audit_of_a_consistent_ledger_is_clean,
            the_audit_finds_a_cached_balance_that_disagrees,
            holds_are_stored_and_updated,
            products_list_newest_first_with_filters_and_cursors,
            stock_is_locked_in_product_order,
            orders_keep_their_items_and_list_by_party,
            the_audit_trail_lists_newest_first,
            payments_are_found_by_every_reference,
            expired_pending_payments_are_found_oldest_first,
            refunds_are_found_by_id_provider_reference_and_order,
            transfers_and_withdrawals_are_stored,
            calls_are_stored_updated_and_listed_for_both_parties,
            an_idempotency_key_is_claimed_once,
            a_refusal_settles_a_missing_or_in_progress_key,
            follow_ups_are_recorded_once_and_taken_when_due,
            expired_holds_are_found_except_those_of_active_calls,
            a_webhook_event_is_recorded_once_per_provider,
            outbox_events_are_published_once,
            a_rolled_back_transaction_leaves_nothing,
            a_dropped_transaction_leaves_nothing,
            committed_writes_are_visible_to_the_next_transaction,
        );
    };
    ($make_store:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let (store, _guard) = $make_store.await;
                $crate::$name(store).await;
            }
        )*
    };
}

async fn begin<U: UnitOfWork>(store: &U) -> U::Tx {
    store.begin().await.expect("begin")
}

async fn commit<T: Transaction>(tx: T) {
    tx.commit().await.expect("commit");
}

fn expect<T>(result: Result<T, StoreError>, what: &str) -> T {
    result.unwrap_or_else(|error| panic!("{what}: {error}"))
}

pub async fn users_are_found_by_id_and_by_email<U: UnitOfWork>(store: U) {
    let user = user(Role::Customer);
    let mut tx = begin(&store).await;
    expect(tx.insert_user(&user).await, "insert");
    commit(tx).await;
    let mut tx = begin(&store).await;
    assert_eq!(expect(tx.find_user(user.id).await, "find"), Some(user.clone()));
    assert_eq!(expect(tx.find_user_by_email(&user.email).await, "by email"), Some(user.clone()));
    assert_eq!(expect(tx.find_user(id()).await, "unknown"), None);
}

pub async fn an_e_mail_address_belongs_to_one_user<U: UnitOfWork>(store: U) {
    let first = user(Role::Customer);
    let second = domain::user::User { id: id(), ..first.clone() };
    let mut tx = begin(&store).await;
    expect(tx.insert_user(&first).await, "insert");
    commit(tx).await;
    let mut tx = begin(&store).await;
    let duplicate = tx.insert_user(&second).await;
    assert!(
        matches!(duplicate, Err(StoreError::Duplicate(ref name)) if name == "users_email"),
        "{duplicate:?}"
    );
}

pub async fn refresh_tokens_rotate_and_families_revoke<U: UnitOfWork>(store: U) {
    let user = user(Role::Customer);
    let family = id();
    let token = |hash: &str| RefreshToken {
        id: id(),
        user_id: user.id,
        family_id: family,
        token_hash: hash.to_owned(),
        created_at: now(),
        expires_at: now() + Duration::days(1),
        used_at: None,
        revoked_at: None,
    };
    let (first, second) = (token("hash-1"), token("hash-2"));
    let mut tx = begin(&store).await;
    expect(tx.insert_user(&user).await, "user");
    expect(tx.insert_refresh_token(&first).await, "first");
    let used = RefreshToken {
        used_at: Some(now()),
        ..first.clone()
    };
    expect(tx.update_refresh_token(&used).await, "use");
    expect(tx.insert_refresh_token(&second).await, "second");
    assert!(matches!(
        tx.insert_refresh_token(&token("hash-1")).await,
        Err(StoreError::Duplicate(_))
    ));
    commit(tx).await;

    let mut tx = begin(&store).await;
    assert_eq!(expect(tx.lock_refresh_token("hash-1").await, "lock"), Some(used));
    expect(tx.revoke_token_family(family, now()).await, "revoke");
    commit(tx).await;
    let mut tx = begin(&store).await;
    for hash in ["hash-1", "hash-2"] {
        let revoked = expect(tx.lock_refresh_token(hash).await, "lock").and_then(|t| t.revoked_at);
        assert_eq!(revoked, Some(now()), "{hash}");
    }
    assert_eq!(expect(tx.lock_refresh_token("unknown").await, "unknown"), None);
}

pub async fn a_user_has_one_wallet_per_currency<U: UnitOfWork>(store: U) {
    let user = user(Role::Customer);
    let mut tx = begin(&store).await;
    expect(tx.insert_user(&user).await, "user");
    let first: WalletId = expect(tx.ensure_user_wallet(user.id, Currency::Usd, id(), now()).await, "ensure");
    let again = expect(tx.ensure_user_wallet(user.id, Currency::Usd, id(), now()).await, "ensure again");
    let euros = expect(tx.ensure_user_wallet(user.id, Currency::Eur, id(), now()).await, "ensure eur");
    commit(tx).await;
    assert_eq!(first, again);
    assert_ne!(first, euros);
    let mut tx = begin(&store).await;
    let wallets = expect(tx.list_user_wallets(user.id).await, "list");
    assert_eq!(
        wallets.iter().map(Wallet::currency).collect::<Vec<_>>(),
        vec![Currency::Eur, Currency::Usd]
    );
    let wallet = expect(tx.find_user_wallet(user.id, Currency::Usd).await, "find").expect("wallet");
    assert_eq!((wallet.id(), wallet.balance(), wallet.held()), (first, usd(0), usd(0)));
    assert_eq!(wallet.owner(), &WalletOwner::User(user.id));
    assert_eq!(expect(tx.find_user_wallet(user.id, Currency::Jpy).await, "none"), None);
}

pub async fn system_accounts_are_unique_per_code_and_currency<U: UnitOfWork>(store: U) {
    let stripe = SystemAccount::GatewayClearing(provider("stripe"));
    let mut tx = begin(&store).await;
    let a = expect(tx.ensure_system_wallet(&stripe, Currency::Usd, id(), now()).await, "a");
    let b = expect(tx.ensure_system_wallet(&stripe, Currency::Usd, id(), now()).await, "b");
    let c = expect(
        tx.ensure_system_wallet(&SystemAccount::Payouts, Currency::Usd, id(), now()).await,
        "c",
    );
    let d = expect(tx.ensure_system_wallet(&stripe, Currency::Ngn, id(), now()).await, "d");
    commit(tx).await;
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_ne!(a, d);
    let mut tx = begin(&store).await;
    let locked = expect(tx.lock_wallets(&[a]).await, "lock");
    assert_eq!(locked[0].owner(), &WalletOwner::System(stripe));
    assert!(locked[0].may_go_negative());
}

pub async fn wallets_are_locked_in_id_order_and_must_exist<U: UnitOfWork>(store: U) {
    let (alice, bob) = (user(Role::Customer), user(Role::Customer));
    let mut tx = begin(&store).await;
    expect(tx.insert_user(&alice).await, "alice");
    expect(tx.insert_user(&bob).await, "bob");
    let a = expect(tx.ensure_user_wallet(alice.id, Currency::Usd, id(), now()).await, "a");
    let b = expect(tx.ensure_user_wallet(bob.id, Currency::Usd, id(), now()).await, "b");
    commit(tx).await;
    let mut tx = begin(&store).await;
    let locked = expect(tx.lock_wallets(&[b, a]).await, "lock");
    let mut sorted = vec![a, b];
    sorted.sort();
    assert_eq!(locked.iter().map(Wallet::id).collect::<Vec<_>>(), sorted);
    drop(tx);
    let mut tx = begin(&store).await;
    assert!(tx.lock_wallets(&[a, id()]).await.is_err());
}

pub async fn user_wallets_are_created_if_missing_and_locked_in_id_order<U: UnitOfWork>(store: U) {
    let (alice, bob, carol) = (user(Role::Customer), user(Role::Customer), user(Role::Merchant));
    let mut tx = begin(&store).await;
    for u in [&alice, &bob, &carol] {
        expect(tx.insert_user(u).await, "user");
    }
    let alices = expect(tx.ensure_user_wallet(alice.id, Currency::Usd, id(), now()).await, "alice");
    commit(tx).await;
    let mut tx = begin(&store).await;
    let owners = [(carol.id, id()), (alice.id, id()), (bob.id, id()), (alice.id, id())];
    let wallets = expect(tx.lock_user_wallets(&owners, Currency::Usd, now()).await, "lock");
    assert_eq!(wallets.len(), 3, "one wallet per user");
    assert!(wallets.windows(2).all(|pair| pair[0].id() < pair[1].id()), "in id order");
    assert!(wallets.iter().any(|w| w.id() == alices), "an existing wallet keeps its id");
    let mut owners_seen: Vec<_> = wallets.iter().filter_map(Wallet::user_id).collect();
    owners_seen.sort();
    let mut expected = vec![alice.id, bob.id, carol.id];
    expected.sort();
    assert_eq!(owners_seen, expected);
    commit(tx).await;
    let mut tx = begin(&store).await;
    let again = expect(tx.lock_user_wallets(&[(bob.id, id())], Currency::Usd, now()).await, "again");
    assert_eq!(
        again.iter().map(Wallet::id).collect::<Vec<_>>(),
        wallets
            .iter()
            .filter(|w| w.user_id() == Some(bob.id))
            .map(Wallet::id)
            .collect::<Vec<_>>()
    );
    assert_eq!(expect(tx.lock_user_wallets(&[], Currency::Usd, now()).await, "none"), Vec::new());
}

type ProductWithStock = (domain::catalog::Product, domain::catalog::Stock);

/// A merchant with two products priced `price_a` and `price_b`, committed.
async fn two_products_of_one_merchant<U: UnitOfWork>(store: &U, price_a: i64, price_b: i64) -> (ProductWithStock, ProductWithStock) {
    let ann = user(Role::Merchant);
    let (a, a_stock) = product(ann.id, price_a, now());
    let (b, b_stock) = product(ann.id, price_b, now());
    let mut tx = begin(store).await;
    expect(tx.insert_user(&ann).await, "ann");
    expect(tx.insert_product(&a, &a_stock).await, "a");
    expect(tx.insert_product(&b, &b_stock).await, "b");
    commit(tx).await;
    ((a, a_stock), (b, b_stock))
}

pub async fn a_cart_is_locked_with_its_products<U: UnitOfWork>(store: U) {
    let ((a, a_stock), (b, b_stock)) = two_products_of_one_merchant(&store, 100, 250).await;
    let mut tx = begin(&store).await;
    let cart = expect(tx.lock_cart(&[b.id, a.id, id(), b.id]).await, "cart");
    let mut expected = vec![(a_stock, a.clone()), (b_stock, b.clone())];
    expected.sort_by_key(|(stock, _)| stock.product_id);
    assert_eq!(cart, expected);
}

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
async fn fund<U: UnitOfWork>(store: &U, user: &domain::user::User, amounts: &[i64]) -> WalletId {
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

pub async fn holds_are_stored_and_updated<U: UnitOfWork>(store: U) {
    let alice = user(Role::Customer);
    let wallet_id = fund(&store, &alice, &[1000]).await;
    let mut tx = begin(&store).await;
    let mut wallets = expect(tx.lock_wallets(&[wallet_id]).await, "lock");
    let hold_id: HoldId = id();
    let terms = HoldTerms {
        reference: "test".into(),
        placed_at: now(),
        expires_at: now() + Duration::hours(1),
    };
    let hold = Hold::place(hold_id, &mut wallets[0], usd(400), terms).expect("hold");
    expect(tx.update_wallets(&wallets).await, "update");
    expect(tx.insert_hold(&hold).await, "insert");
    commit(tx).await;
    let mut tx = begin(&store).await;
    assert_eq!(expect(tx.find_hold(hold_id).await, "find"), Some(hold.clone()));
    let mut wallets = expect(tx.lock_wallets(&[wallet_id]).await, "lock");
    assert_eq!(wallets[0].held(), usd(400));
    let locked = expect(tx.lock_hold(hold_id).await, "lock hold").expect("hold");
    let released = locked.release(&mut wallets[0], now()).expect("release");
    expect(tx.update_wallets(&wallets).await, "update");
    expect(tx.update_hold(&released).await, "update hold");
    commit(tx).await;
    let mut tx = begin(&store).await;
    assert_eq!(
        expect(tx.find_hold(hold_id).await, "find").map(|h| h.status),
        Some(HoldStatus::Released)
    );
    let audit = expect(tx.audit_ledger().await, "audit");
    assert!(audit.held_mismatches.is_empty(), "{audit:?}");
}

pub async fn products_list_newest_first_with_filters_and_cursors<U: UnitOfWork>(store: U) {
    let (ann, bob) = (user(Role::Merchant), user(Role::Merchant));
    let mut tx = begin(&store).await;
    expect(tx.insert_user(&ann).await, "ann");
    expect(tx.insert_user(&bob).await, "bob");
    let mut created = Vec::new();
    for n in 0..5 {
        let merchant = if n % 2 == 0 { ann.id } else { bob.id };
        let (mut product, stock) = product(merchant, 100 + n, now() + Duration::seconds(n));
        if n == 4 {
            product.active = false;
        }
        expect(tx.insert_product(&product, &stock).await, "insert");
        created.push(product);
    }
    commit(tx).await;
    let mut tx = begin(&store).await;
    let active = ProductFilter {
        merchant: None,
        active_only: true,
    };
    let first = expect(tx.list_products(active, &PageRequest::first(2)).await, "first");
    assert_eq!(names(&first), vec![created[3].id, created[2].id]);
    let second = expect(
        tx.list_products(
            active,
            &PageRequest {
                limit: 2,
                after: first.next_cursor,
            },
        )
        .await,
        "second",
    );
    assert_eq!(names(&second), vec![created[1].id, created[0].id]);
    assert_eq!(second.next_cursor, None, "the last page has no next cursor");
    let anns_all = expect(
        tx.list_products(
            ProductFilter {
                merchant: Some(ann.id),
                active_only: false,
            },
            &PageRequest::first(10),
        )
        .await,
        "ann",
    );
    assert_eq!(names(&anns_all), vec![created[4].id, created[2].id, created[0].id]);
    assert!(anns_all.next_cursor.is_none());
    let (found, stock) = expect(tx.find_product(created[1].id).await, "find").expect("product");
    assert_eq!((found, stock.available()), (created[1].clone(), 10));
    let updated = created[1].clone().archive(now() + Duration::hours(1));
    expect(tx.update_product(&updated).await, "update");
    assert_eq!(expect(tx.lock_product(created[1].id).await, "lock"), Some(updated));
    let bobs = ProductFilter {
        merchant: Some(bob.id),
        active_only: false,
    };
    let bobs = expect(tx.list_products(bobs, &PageRequest::first(10)).await, "bob");
    assert_eq!(names(&bobs), vec![created[3].id], "a deleted product is listed to no one");
}

fn names(page: &Page<ProductWithStock>) -> Vec<domain::ids::ProductId> {
    page.items.iter().map(|(p, _)| p.id).collect()
}

pub async fn stock_is_locked_in_product_order<U: UnitOfWork>(store: U) {
    let ((a, _), (b, _)) = two_products_of_one_merchant(&store, 100, 100).await;
    let mut tx = begin(&store).await;
    let mut locked = expect(tx.lock_stock(&[b.id, a.id, id()]).await, "lock");
    let mut expected = vec![a.id, b.id];
    expected.sort();
    assert_eq!(locked.iter().map(|s| s.product_id).collect::<Vec<_>>(), expected);
    locked[0].reserve(quantity(4)).expect("reserve");
    expect(tx.update_stock(&locked[..1]).await, "update");
    commit(tx).await;
    let mut tx = begin(&store).await;
    let row = expect(tx.lock_stock(&[expected[0]]).await, "lock");
    assert_eq!((row[0].available(), row[0].reserved()), (6, 4));
    let untouched = expect(tx.lock_stock(&[expected[1]]).await, "lock");
    assert_eq!((untouched[0].available(), untouched[0].reserved()), (10, 0));
}

pub async fn orders_keep_their_items_and_list_by_party<U: UnitOfWork>(store: U) {
    let (ann, bob, carol) = (user(Role::Merchant), user(Role::Merchant), user(Role::Customer));
    let (mug, mug_stock) = product(ann.id, 250, now());
    let (pen, pen_stock) = product(bob.id, 100, now());
    let mut tx = begin(&store).await;
    for u in [&ann, &bob, &carol] {
        expect(tx.insert_user(u).await, "user");
    }
    expect(tx.insert_product(&mug, &mug_stock).await, "mug");
    expect(tx.insert_product(&pen, &pen_stock).await, "pen");
    let (first, _) = fixtures::order(carol.id, &mug, now());
    let (second, _) = fixtures::order(carol.id, &pen, now() + Duration::seconds(1));
    expect(tx.insert_order(&first).await, "first");
    expect(tx.insert_order(&second).await, "second");
    commit(tx).await;
    let mut tx = begin(&store).await;
    assert_eq!(expect(tx.find_order(first.id()).await, "find"), Some(first.clone()));
    let (pending, _) = first
        .clone()
        .await_payment(Actor::System, now() + Duration::minutes(1))
        .expect("transition");
    expect(tx.update_order(&pending).await, "update");
    assert_eq!(expect(tx.lock_order(first.id()).await, "lock"), Some(pending.clone()));
    let mine = expect(tx.list_orders(OrderFilter::Buyer(carol.id), &PageRequest::first(10)).await, "mine");
    assert_eq!(mine.items.iter().map(|o| o.id()).collect::<Vec<_>>(), vec![second.id(), first.id()]);
    let anns = expect(tx.list_orders(OrderFilter::Merchant(ann.id), &PageRequest::first(10)).await, "ann");
    assert_eq!(anns.items.iter().map(|o| o.id()).collect::<Vec<_>>(), vec![first.id()]);
    let pending_only = OrderFilter::All {
        status: Some(OrderStatus::PaymentPending),
    };
    let all_pending = expect(tx.list_orders(pending_only, &PageRequest::first(10)).await, "pending");
    assert_eq!(all_pending.items, vec![pending]);
    let page = expect(
        tx.list_orders(OrderFilter::All { status: None }, &PageRequest::first(1)).await,
        "page",
    );
    let next = expect(
        tx.list_orders(
            OrderFilter::All { status: None },
            &PageRequest {
                limit: 1,
                after: page.next_cursor,
            },
        )
        .await,
        "next",
    );
    assert_eq!((page.items[0].id(), next.items[0].id()), (second.id(), first.id()));
    assert!(next.next_cursor.is_none());
}

pub async fn the_audit_trail_lists_newest_first<U: UnitOfWork>(store: U) {
    let (ann, carol) = (user(Role::Merchant), user(Role::Customer));
    let (mug, stock) = product(ann.id, 250, now());
    let (order, created) = fixtures::order(carol.id, &mug, now());
    let (order, pending) = order.await_payment(Actor::User(carol.id), now()).expect("pending");
    let (_, paid) = order.mark_paid(Actor::Gateway(provider("stripe")), now()).expect("paid");
    let (other, other_created) = fixtures::order(carol.id, &mug, now());
    let mut tx = begin(&store).await;
    expect(tx.insert_user(&ann).await, "ann");
    expect(tx.insert_user(&carol).await, "carol");
    expect(tx.insert_product(&mug, &stock).await, "mug");
    expect(tx.insert_order(&order_for_insert(&created, &mug, &carol)).await, "order");
    expect(tx.insert_order(&other).await, "other");
    expect(tx.append_status_changes(&[created.clone(), pending.clone()]).await, "changes");
    expect(tx.append_status_changes(&[other_created.clone(), paid.clone()]).await, "more");
    commit(tx).await;
    let mut tx = begin(&store).await;
    let trail = expect(
        tx.list_status_changes(Some(created.order_id), &PageRequest::first(2)).await,
        "trail",
    );
    assert_eq!(trail.items, vec![paid.clone(), pending.clone()]);
    let rest = expect(
        tx.list_status_changes(
            Some(created.order_id),
            &PageRequest {
                limit: 2,
                after: trail.next_cursor,
            },
        )
        .await,
        "rest",
    );
    assert_eq!(rest.items, vec![created.clone()]);
    assert!(rest.next_cursor.is_none());
    let everything = expect(tx.list_status_changes(None, &PageRequest::first(10)).await, "all");
    assert_eq!(everything.items.len(), 4);
    assert_eq!(everything.items[0].actor, Actor::Gateway(provider("stripe")));
}

/// The order a status change belongs to, as first placed.
fn order_for_insert(
    created: &domain::order::StatusChange,
    mug: &domain::catalog::Product,
    buyer: &domain::user::User,
) -> domain::order::Order {
    fixtures::order_with_id(created.order_id, buyer.id, mug, now()).0
}

pub async fn payments_are_found_by_every_reference<U: UnitOfWork>(store: U) {
    let (ann, carol) = (user(Role::Merchant), user(Role::Customer));
    let (mug, stock) = product(ann.id, 250, now());
    let (order, _) = fixtures::order(carol.id, &mug, now());
    let older = payment(&order, "stripe", Duration::minutes(30));
    let newer = fixtures::payment_opened_at(&order, "stripe", now() + Duration::seconds(5), Duration::minutes(30));
    let newer = newer.attach_session("cs_123".into(), "https://pay.example/cs_123".into(), now());
    let mut tx = begin(&store).await;
    expect(tx.insert_user(&ann).await, "ann");
    expect(tx.insert_user(&carol).await, "carol");
    expect(tx.insert_product(&mug, &stock).await, "mug");
    expect(tx.insert_order(&order).await, "order");
    expect(tx.insert_payment(&older).await, "older");
    expect(tx.insert_payment(&newer).await, "newer");
    commit(tx).await;
    let stripe = provider("stripe");
    let mut tx = begin(&store).await;
    assert_eq!(
        expect(tx.find_order_payment(order.id()).await, "latest").map(|p| p.id()),
        Some(newer.id())
    );
    assert_eq!(
        expect(tx.lock_payment(&stripe, &PaymentLookup::Ours(older.id())).await, "ours"),
        Some(older.clone())
    );
    let by_session = expect(tx.lock_payment(&stripe, &PaymentLookup::Session("cs_123".into())).await, "session");
    assert_eq!(by_session.as_ref().map(|p| p.id()), Some(newer.id()));
    assert_eq!(
        expect(
            tx.lock_payment(&provider("monnify"), &PaymentLookup::Session("cs_123".into()))
                .await,
            "other provider"
        ),
        None
    );
    let paid = newer.clone().succeed(Some("pi_9".into()), now()).expect("succeed");
    expect(tx.update_payment(&paid).await, "update");
    let by_payment = expect(tx.lock_payment(&stripe, &PaymentLookup::ProviderPayment("pi_9".into())).await, "pi");
    assert_eq!(by_payment, Some(paid.clone()));
    assert_eq!(
        expect(tx.find_payment(paid.id()).await, "find").map(|p| p.status()),
        Some(PaymentStatus::Succeeded)
    );
    assert_eq!(paid.purpose(), PaymentPurpose::Order(order.id()));
}

pub async fn expired_pending_payments_are_found_oldest_first<U: UnitOfWork>(store: U) {
    let (ann, carol) = (user(Role::Merchant), user(Role::Customer));
    let (mug, stock) = product(ann.id, 250, now());
    let (order, _) = fixtures::order(carol.id, &mug, now());
    let soon = payment(&order, "stripe", Duration::minutes(5));
    let sooner = payment(&order, "stripe", Duration::minutes(1));
    let later = payment(&order, "stripe", Duration::hours(2));
    let settled = payment(&order, "stripe", Duration::minutes(1)).fail(now()).expect("fail");
    let mut tx = begin(&store).await;
    expect(tx.insert_user(&ann).await, "ann");
    expect(tx.insert_user(&carol).await, "carol");
    expect(tx.insert_product(&mug, &stock).await, "mug");
    expect(tx.insert_order(&order).await, "order");
    for p in [&soon, &sooner, &later, &settled] {
        expect(tx.insert_payment(p).await, "payment");
    }
    commit(tx).await;
    let mut tx = begin(&store).await;
    let expired = expect(tx.lock_expired_payments(now() + Duration::minutes(10), 10).await, "expired");
    assert_eq!(expired.iter().map(|p| p.id()).collect::<Vec<_>>(), vec![sooner.id(), soon.id()]);
    let one = expect(tx.lock_expired_payments(now() + Duration::minutes(10), 1).await, "one");
    assert_eq!(one.len(), 1);
}

pub async fn refunds_are_found_by_id_provider_reference_and_order<U: UnitOfWork>(store: U) {
    let (ann, carol) = (user(Role::Merchant), user(Role::Customer));
    let (mug, stock) = product(ann.id, 250, now());
    let (order, _) = fixtures::order(carol.id, &mug, now());
    let terms = RefundTerms {
        order_id: order.id(),
        payment_id: None,
        merchant_id: ann.id,
        amount: usd(100),
        reason: "damaged".into(),
        requested_by: Some(ann.id),
    };
    let refund = Refund::open(id(), terms, now());
    let mut tx = begin(&store).await;
    expect(tx.insert_user(&ann).await, "ann");
    expect(tx.insert_user(&carol).await, "carol");
    expect(tx.insert_product(&mug, &stock).await, "mug");
    expect(tx.insert_order(&order).await, "order");
    expect(tx.insert_refund(&refund).await, "refund");
    commit(tx).await;
    let mut tx = begin(&store).await;
    assert_eq!(expect(tx.find_refund(refund.id()).await, "find"), Some(refund.clone()));
    let settled = refund
        .clone()
        .record_provider_refund_id("re_1", now())
        .succeed(now())
        .expect("succeed");
    expect(tx.update_refund(&settled).await, "update");
    assert_eq!(
        expect(tx.find_refund_by_provider_id("re_1").await, "by provider"),
        Some(settled.clone())
    );
    assert_eq!(expect(tx.lock_refund(refund.id()).await, "lock"), Some(settled.clone()));
    assert_eq!(expect(tx.list_order_refunds(order.id()).await, "list"), vec![settled]);
    assert_eq!(expect(tx.find_refund_by_provider_id("re_404").await, "none"), None);
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
    let withdrawal = Withdrawal {
        id: id(),
        user_id: alice.id,
        amount: usd(200),
        destination: "IBAN ...1234".into(),
        transaction_id: id(),
        created_at: now(),
    };
    let mut tx = begin(&store).await;
    expect(tx.insert_user(&alice).await, "alice");
    expect(tx.insert_user(&bob).await, "bob");
    expect(tx.insert_transfer(&transfer).await, "transfer");
    expect(tx.insert_withdrawal(&withdrawal).await, "withdrawal");
    commit(tx).await;
    let mut tx = begin(&store).await;
    assert_eq!(expect(tx.find_transfer(transfer.id).await, "transfer"), Some(transfer));
    assert_eq!(expect(tx.find_withdrawal(withdrawal.id).await, "withdrawal"), Some(withdrawal));
    assert_eq!(expect(tx.find_transfer(id()).await, "none"), None);
}

pub async fn calls_are_stored_updated_and_listed_for_both_parties<U: UnitOfWork>(store: U) {
    let (alice, bob, carol) = (user(Role::Customer), user(Role::Customer), user(Role::Customer));
    let first = CallSession::start(id(), alice.id, bob.id, usd(50), id(), 10, now()).expect("call");
    let second = CallSession::start(id(), carol.id, alice.id, usd(50), id(), 10, now() + Duration::seconds(1)).expect("call");
    let mut tx = begin(&store).await;
    for u in [&alice, &bob, &carol] {
        expect(tx.insert_user(u).await, "user");
    }
    expect(tx.insert_call(&first).await, "first");
    expect(tx.insert_call(&second).await, "second");
    commit(tx).await;
    let mut tx = begin(&store).await;
    let ended = expect(tx.lock_call(first.id).await, "lock")
        .expect("call")
        .end(now() + Duration::seconds(90))
        .expect("end");
    expect(tx.update_call(&ended).await, "update");
    commit(tx).await;
    let mut tx = begin(&store).await;
    assert_eq!(expect(tx.lock_call(first.id).await, "lock"), Some(ended.clone()));
    let alices = expect(tx.list_calls(alice.id, &PageRequest::first(10)).await, "alice");
    assert_eq!(alices.items, vec![second.clone(), ended]);
    let bobs = expect(tx.list_calls(bob.id, &PageRequest::first(10)).await, "bob");
    assert_eq!(bobs.items.len(), 1);
}

pub async fn an_idempotency_key_is_claimed_once<U: UnitOfWork>(store: U) {
    let alice = user(Role::Customer);
    let scope = IdempotencyScope {
        principal: Some(alice.id),
        key: IdempotencyKey::parse("key-1").expect("key"),
    };
    let record = IdempotencyRecord {
        scope: scope.clone(),
        fingerprint: "abc".into(),
        state: IdempotencyState::InProgress {
            locked_until: now() + Duration::minutes(1),
            recovery: None,
        },
        created_at: now(),
    };
    let mut tx = begin(&store).await;
    expect(tx.insert_user(&alice).await, "alice");
    assert_eq!(expect(tx.claim_idempotency_key(&record).await, "claim"), ClaimOutcome::Claimed);
    let point = RecoveryPoint::Payment(id());
    expect(tx.set_idempotency_recovery_point(&scope, &point).await, "recovery point");
    commit(tx).await;
    let mut tx = begin(&store).await;
    let with_point = IdempotencyRecord {
        state: IdempotencyState::InProgress {
            locked_until: now() + Duration::minutes(1),
            recovery: Some(point.clone()),
        },
        ..record.clone()
    };
    assert_eq!(
        expect(tx.claim_idempotency_key(&record).await, "again"),
        ClaimOutcome::Existing(with_point.clone())
    );
    expect(tx.end_idempotency_lease(&scope, now()).await, "end lease");
    let later = now() + Duration::minutes(5);
    expect(tx.renew_idempotency_lease(&scope, later).await, "renew");
    let renewed = expect(tx.find_idempotency_record(&scope).await, "find");
    assert_eq!(
        renewed.map(|r| r.state),
        Some(IdempotencyState::InProgress {
            locked_until: later,
            recovery: Some(point)
        }),
        "a renewed lease keeps the recovery point"
    );
    let response = StoredResponse {
        status: 201,
        body: b"{\"id\":1}".to_vec(),
        location: Some("/api/v1/things/1".into()),
    };
    expect(tx.complete_idempotency_key(&scope, &response, now()).await, "complete");
    commit(tx).await;
    let mut tx = begin(&store).await;
    let completed = IdempotencyRecord {
        state: IdempotencyState::Completed(response.clone()),
        ..record.clone()
    };
    expect(
        tx.end_idempotency_lease(&scope, now()).await,
        "ending the lease of a completed key changes nothing",
    );
    let refusal = IdempotencyRecord {
        state: IdempotencyState::Completed(StoredResponse {
            status: 422,
            body: b"{}".to_vec(),
            location: None,
        }),
        ..record.clone()
    };
    expect(
        tx.settle_idempotency_key(&refusal, now()).await,
        "a completed key keeps its response",
    );
    assert_eq!(
        expect(tx.claim_idempotency_key(&record).await, "completed"),
        ClaimOutcome::Existing(completed.clone())
    );
    assert_eq!(expect(tx.find_idempotency_record(&scope).await, "find"), Some(completed));
    commit(tx).await;
}

pub async fn a_refusal_settles_a_missing_or_in_progress_key<U: UnitOfWork>(store: U) {
    let scope = IdempotencyScope {
        principal: None,
        key: IdempotencyKey::parse("register-1").expect("key"),
    };
    let refusal = IdempotencyRecord {
        scope: scope.clone(),
        fingerprint: "abc".into(),
        state: IdempotencyState::Completed(StoredResponse {
            status: 409,
            body: b"{}".to_vec(),
            location: None,
        }),
        created_at: now(),
    };
    let mut tx = begin(&store).await;
    assert_eq!(expect(tx.find_idempotency_record(&scope).await, "none yet"), None);
    expect(tx.settle_idempotency_key(&refusal, now()).await, "settle a missing key");
    commit(tx).await;
    let mut tx = begin(&store).await;
    assert_eq!(expect(tx.find_idempotency_record(&scope).await, "stored"), Some(refusal.clone()));
    let other_scope = IdempotencyScope {
        principal: None,
        key: IdempotencyKey::parse("register-2").expect("key"),
    };
    let in_progress = IdempotencyRecord {
        scope: other_scope.clone(),
        state: IdempotencyState::InProgress {
            locked_until: now(),
            recovery: None,
        },
        ..refusal.clone()
    };
    assert_eq!(expect(tx.claim_idempotency_key(&in_progress).await, "claim"), ClaimOutcome::Claimed);
    let someone_elses = IdempotencyRecord {
        scope: other_scope.clone(),
        fingerprint: "another request".into(),
        ..refusal.clone()
    };
    expect(tx.settle_idempotency_key(&someone_elses, now()).await, "another request's refusal");
    assert_eq!(
        expect(tx.find_idempotency_record(&other_scope).await, "untouched").map(|r| r.state),
        Some(in_progress.state.clone())
    );
    let same = IdempotencyRecord {
        scope: other_scope.clone(),
        ..refusal.clone()
    };
    expect(tx.settle_idempotency_key(&same, now()).await, "its own refusal");
    assert_eq!(
        expect(tx.find_idempotency_record(&other_scope).await, "settled").map(|r| r.state),
        Some(refusal.state)
    );
    commit(tx).await;
}

pub async fn follow_ups_are_recorded_once_and_taken_when_due<U: UnitOfWork>(store: U) {
    let first = FollowUp::schedule(FollowUpTask::Refund(id()), now(), now());
    let later = FollowUp::schedule(FollowUpTask::LateSuccessRefund(id()), now() + Duration::minutes(5), now());
    let stuck = FollowUp::needs_attention(FollowUpTask::RecoverShortfall(id()), "owes 5.00".into(), now());
    let mut tx = begin(&store).await;
    for follow_up in [&first, &later, &stuck] {
        expect(tx.insert_follow_up(follow_up).await, "insert");
    }
    let again = FollowUp {
        attempts: 7,
        ..first.clone()
    };
    expect(tx.insert_follow_up(&again).await, "a task is recorded once");
    commit(tx).await;
    let mut tx = begin(&store).await;
    assert_eq!(expect(tx.lock_follow_up(&first.task).await, "lock"), Some(first.clone()));
    assert_eq!(expect(tx.lock_due_follow_ups(now(), 10).await, "due now"), vec![first.clone()]);
    let both = expect(tx.lock_due_follow_ups(now() + Duration::minutes(5), 10).await, "due later");
    assert_eq!(both, vec![first.clone(), later.clone()]);
    let claimed = first.clone().begin_attempt(now(), Duration::minutes(2));
    expect(tx.update_follow_up(&claimed).await, "claim");
    commit(tx).await;
    let mut tx = begin(&store).await;
    assert_eq!(expect(tx.lock_due_follow_ups(now(), 10).await, "leased"), Vec::<FollowUp>::new());
    let stuck_page = expect(tx.list_follow_ups(FollowUpState::Stuck, &PageRequest::first(10)).await, "stuck");
    assert_eq!(stuck_page.items, vec![stuck]);
    let pending = expect(tx.list_follow_ups(FollowUpState::Pending, &PageRequest::first(1)).await, "pending");
    assert_eq!(pending.items.len(), 1);
    assert!(pending.next_cursor.is_some());
}

pub async fn expired_holds_are_found_except_those_of_active_calls<U: UnitOfWork>(store: U) {
    let alice = user(Role::Customer);
    let bob = user(Role::Customer);
    let wallet_id = fund(&store, &alice, &[1000]).await;
    let mut tx = begin(&store).await;
    expect(tx.insert_user(&bob).await, "bob");
    let mut wallets = expect(tx.lock_wallets(&[wallet_id]).await, "lock");
    let terms = |minutes| HoldTerms {
        reference: "test".into(),
        placed_at: now(),
        expires_at: now() + Duration::minutes(minutes),
    };
    let soon = Hold::place(id(), &mut wallets[0], usd(100), terms(1)).expect("hold");
    let late = Hold::place(id(), &mut wallets[0], usd(100), terms(60)).expect("hold");
    let calls = Hold::place(id(), &mut wallets[0], usd(100), terms(1)).expect("hold");
    let call = CallSession::start(id(), alice.id, bob.id, usd(100), calls.id, 1, now()).expect("call");
    expect(tx.update_wallets(&wallets).await, "update");
    for hold in [&soon, &late, &calls] {
        expect(tx.insert_hold(hold).await, "insert");
    }
    expect(tx.insert_call(&call).await, "call");
    commit(tx).await;
    let mut tx = begin(&store).await;
    let expired = expect(tx.find_expired_holds(now() + Duration::minutes(2), 10).await, "expired");
    assert_eq!(expired, vec![soon.clone()], "the active call's hold is left to its call");
    let due = expect(tx.find_calls_authorized_until(now() + Duration::minutes(1), 10).await, "due calls");
    assert_eq!(due, vec![call.id]);
    assert_eq!(expect(tx.find_calls_authorized_until(now(), 10).await, "not yet"), Vec::new());
    let ended = call.end(now()).expect("end");
    expect(tx.update_call(&ended).await, "end");
    commit(tx).await;
    let mut tx = begin(&store).await;
    let expired = expect(tx.find_expired_holds(now() + Duration::minutes(2), 10).await, "expired");
    assert_eq!(expired.len(), 2, "an ended call's hold may expire");
    assert_eq!(
        expect(tx.find_calls_authorized_until(now() + Duration::hours(1), 10).await, "ended"),
        Vec::new()
    );
}

pub async fn a_webhook_event_is_recorded_once_per_provider<U: UnitOfWork>(store: U) {
    let mut tx = begin(&store).await;
    assert!(expect(
        tx.record_webhook_event(&provider("stripe"), "evt_1", "checkout.session.completed", now())
            .await,
        "first"
    ));
    commit(tx).await;
    let mut tx = begin(&store).await;
    assert!(!expect(
        tx.record_webhook_event(&provider("stripe"), "evt_1", "checkout.session.completed", now())
            .await,
        "again"
    ));
    assert!(expect(
        tx.record_webhook_event(&provider("monnify"), "evt_1", "SUCCESSFUL_TRANSACTION", now())
            .await,
        "other provider"
    ));
}

pub async fn outbox_events_are_published_once<U: UnitOfWork>(store: U) {
    let events: Vec<OutboxEvent> = (0..3)
        .map(|n| OutboxEvent {
            id: id(),
            event: DomainEvent::StockChanged {
                product_id: id(),
                available: n,
            },
            occurred_at: now() + Duration::seconds(n),
        })
        .collect();
    let mut tx = begin(&store).await;
    expect(tx.enqueue_events(&events).await, "enqueue");
    commit(tx).await;
    let mut tx = begin(&store).await;
    let batch = expect(tx.lock_unpublished_events(2).await, "batch");
    assert_eq!(batch, events[..2].to_vec());
    expect(
        tx.mark_events_published(&batch.iter().map(|e| e.id).collect::<Vec<_>>(), now())
            .await,
        "mark",
    );
    commit(tx).await;
    let mut tx = begin(&store).await;
    assert_eq!(expect(tx.lock_unpublished_events(10).await, "rest"), events[2..].to_vec());
}

pub async fn a_rolled_back_transaction_leaves_nothing<U: UnitOfWork>(store: U) {
    let alice = user(Role::Customer);
    let mut tx = begin(&store).await;
    expect(tx.insert_user(&alice).await, "insert");
    expect(tx.ensure_user_wallet(alice.id, Currency::Usd, id(), now()).await, "wallet");
    tx.rollback().await.expect("rollback");
    let mut tx = begin(&store).await;
    assert_eq!(expect(tx.find_user(alice.id).await, "find"), None);
    assert_eq!(expect(tx.find_user_wallet(alice.id, Currency::Usd).await, "wallet"), None);
}

pub async fn a_dropped_transaction_leaves_nothing<U: UnitOfWork>(store: U) {
    let alice = user(Role::Customer);
    {
        let mut tx = begin(&store).await;
        expect(tx.insert_user(&alice).await, "insert");
    }
    let mut tx = begin(&store).await;
    assert_eq!(expect(tx.find_user(alice.id).await, "find"), None);
}

pub async fn committed_writes_are_visible_to_the_next_transaction<U: UnitOfWork>(store: U) {
    let alice = user(Role::Customer);
    let mut tx = begin(&store).await;
    expect(tx.insert_user(&alice).await, "insert");
    commit(tx).await;
    let mut tx = begin(&store).await;
    assert_eq!(expect(tx.find_user(alice.id).await, "find").map(|u| u.email), Some(alice.email));
}
