//! The contract of wallets and system accounts, and their locks (`WalletRepository`).

use crate::prelude::*;

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

pub async fn admins_list_every_wallet_and_many_users_wallets_at_once<U: UnitOfWork>(store: U) {
    let (carol, dave, erin) = (user(Role::Customer), user(Role::Customer), user(Role::Customer));
    let at = |seconds| now() + Duration::seconds(seconds);
    let mut tx = begin(&store).await;
    for u in [&carol, &dave, &erin] {
        expect(tx.insert_user(u).await, "user");
    }
    let carol_usd = expect(tx.ensure_user_wallet(carol.id, Currency::Usd, id(), at(1)).await, "carol usd");
    let payouts = expect(
        tx.ensure_system_wallet(&SystemAccount::Payouts, Currency::Usd, id(), at(2)).await,
        "payouts",
    );
    let dave_eur = expect(tx.ensure_user_wallet(dave.id, Currency::Eur, id(), at(3)).await, "dave eur");
    let carol_eur = expect(tx.ensure_user_wallet(carol.id, Currency::Eur, id(), at(4)).await, "carol eur");
    commit(tx).await;
    let ids = |page: &Page<Wallet>| page.items.iter().map(Wallet::id).collect::<Vec<_>>();
    let mut tx = begin(&store).await;
    let all = WalletFilter::default();
    let page = expect(tx.list_wallets(all, &PageRequest::first(3)).await, "first page");
    assert_eq!(ids(&page), vec![carol_eur, dave_eur, payouts], "newest first, system accounts too");
    let next = PageRequest {
        limit: 3,
        after: page.next_cursor,
    };
    let rest = expect(tx.list_wallets(all, &next).await, "next page");
    assert_eq!((ids(&rest), rest.next_cursor), (vec![carol_usd], None));
    let carols = WalletFilter {
        owner: Some(carol.id),
        ..all
    };
    assert_eq!(
        ids(&expect(tx.list_wallets(carols, &PageRequest::first(10)).await, "carol's")),
        vec![carol_eur, carol_usd]
    );
    let euros = WalletFilter {
        currency: Some(Currency::Eur),
        ..all
    };
    assert_eq!(
        ids(&expect(tx.list_wallets(euros, &PageRequest::first(10)).await, "euros")),
        vec![carol_eur, dave_eur]
    );
    let found = expect(tx.find_wallet(payouts).await, "find").expect("the payouts account");
    assert_eq!(found.owner(), &WalletOwner::System(SystemAccount::Payouts));
    assert_eq!(expect(tx.find_wallet(id()).await, "none"), None);
    let mut theirs = expect(tx.list_wallets_of_users(&[carol.id, erin.id, dave.id]).await, "at once");
    theirs.sort_by_key(|w| w.id());
    let mut expected = vec![carol_usd, carol_eur, dave_eur];
    expected.sort();
    assert_eq!(theirs.iter().map(Wallet::id).collect::<Vec<_>>(), expected);
    assert!(expect(tx.list_wallets_of_users(&[]).await, "nobody").is_empty());
}
