//! The contract of products and stock (`ProductRepository`).

use crate::prelude::*;

use domain::catalog::{Product, ProductSearch, Stock};
use domain::ids::{ProductId, UserId};

type ProductWithStock = (Product, Stock);

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

/// A purchase locks its cart and the wallets it pays between in one call: the buyer's and each
/// merchant's in the cart's currency, those that exist, in wallet id order. A store that keeps
/// the trait's default locks no wallet here, which the contract allows; a store that locks them
/// runs `a_cart_is_locked_with_exactly_the_wallets_of_its_buyer_and_merchants` as well.
pub async fn a_cart_is_locked_with_the_wallets_of_its_buyer_and_merchants<U: UnitOfWork>(store: U) {
    let (locked, expected) = cart_and_wallets_locked(store).await;
    assert!(
        locked == expected || locked.is_empty(),
        "locked {locked:?}, expected {expected:?} or none"
    );
}

/// As above, for a store that implements `lock_cart_and_wallets` itself: the wallets must be
/// exactly the buyer's and the merchants' that exist.
pub async fn a_cart_is_locked_with_exactly_the_wallets_of_its_buyer_and_merchants<U: UnitOfWork>(store: U) {
    let (locked, expected) = cart_and_wallets_locked(store).await;
    assert_eq!(locked, expected, "the buyer's and the merchant's wallets, in id order");
}

/// The wallets `lock_cart_and_wallets` locked for a cart of three products (two merchants, one
/// without a wallet) and the ones it should have, in id order.
async fn cart_and_wallets_locked<U: UnitOfWork>(store: U) -> (Vec<WalletId>, Vec<WalletId>) {
    let ((a, _), (b, _)) = two_products_of_one_merchant(&store, 100, 250).await;
    let (walletless, buyer, stranger) = (user(Role::Merchant), user(Role::Customer), user(Role::Customer));
    let (c, c_stock) = product(walletless.id, 300, now());
    let mut euro = product(walletless.id, 400, now());
    euro.0.price = Money::from_minor(400, Currency::Eur);
    let mut tx = begin(&store).await;
    for someone in [&walletless, &buyer, &stranger] {
        expect(tx.insert_user(someone).await, "user");
    }
    expect(tx.insert_product(&c, &c_stock).await, "c");
    expect(tx.insert_product(&euro.0, &euro.1).await, "euro");
    let merchant_wallet = expect(
        tx.ensure_user_wallet(a.merchant_id, Currency::Usd, id(), now()).await,
        "merchant's wallet",
    );
    let buyer_wallet = expect(tx.ensure_user_wallet(buyer.id, Currency::Usd, id(), now()).await, "buyer's wallet");
    expect(
        tx.ensure_user_wallet(buyer.id, Currency::Eur, id(), now()).await,
        "buyer's euro wallet",
    );
    expect(
        tx.ensure_user_wallet(stranger.id, Currency::Usd, id(), now()).await,
        "stranger's wallet",
    );
    commit(tx).await;

    let mut tx = begin(&store).await;
    let LockedCart { entries: cart, wallets } = expect(
        tx.lock_cart_and_wallets(&[c.id, b.id, a.id, id(), b.id], buyer.id).await,
        "cart and wallets",
    );
    let mut products: Vec<ProductId> = vec![a.id, b.id, c.id];
    products.sort();
    assert_eq!(cart.iter().map(|(stock, _)| stock.product_id).collect::<Vec<_>>(), products);
    assert!(cart.iter().all(|(stock, product)| stock.product_id == product.id));
    // The merchant without a wallet is left out, and so is everyone outside the purchase.
    let mut expected = vec![merchant_wallet, buyer_wallet];
    expected.sort();
    let locked: Vec<WalletId> = wallets.iter().map(Wallet::id).collect();
    assert!(wallets.iter().all(|wallet| wallet.currency() == Currency::Usd));
    expect(tx.rollback().await, "rollback");

    let mut tx = begin(&store).await;
    let LockedCart { entries: cart, wallets } = expect(tx.lock_cart_and_wallets(&[id()], buyer.id).await, "an unknown product");
    assert!(cart.is_empty() && wallets.is_empty());
    expect(tx.rollback().await, "rollback");
    (locked, expected)
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
        search: None,
    };
    let first = expect(tx.list_products(active.clone(), &PageRequest::first(2)).await, "first");
    assert_eq!(names(&first), vec![created[3].id, created[2].id]);
    let second = expect(
        tx.list_products(
            active.clone(),
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
                search: None,
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
        search: None,
    };
    let bobs = expect(tx.list_products(bobs, &PageRequest::first(10)).await, "bob");
    assert_eq!(names(&bobs), vec![created[3].id], "a deleted product is listed to no one");
}

pub async fn products_are_searched_by_name_and_description_whatever_the_case<U: UnitOfWork>(store: U) {
    let (ann, bob) = (user(Role::Merchant), user(Role::Merchant));
    let named = |merchant: UserId, name: &str, description: &str, seconds: i64| {
        let product = Product::new(id(), merchant, name, description, usd(100), now() + Duration::seconds(seconds)).expect("product");
        let stock = Stock::new(product.id, 1).expect("stock");
        (product, stock)
    };
    let mug = named(ann.id, "Blue MUG", "Holds coffee", 0);
    let kettle = named(ann.id, "Kettle", "Boils water for the mug", 1);
    let percent = named(bob.id, "100% cotton shirt", "Soft", 2);
    let (mut hidden, hidden_stock) = named(bob.id, "Mug, hidden", "Off sale", 3);
    hidden.active = false;
    let mut tx = begin(&store).await;
    expect(tx.insert_user(&ann).await, "ann");
    expect(tx.insert_user(&bob).await, "bob");
    for (product, stock) in [&mug, &kettle, &percent] {
        expect(tx.insert_product(product, stock).await, "insert");
    }
    expect(tx.insert_product(&hidden, &hidden_stock).await, "hidden");
    commit(tx).await;
    let mut tx = begin(&store).await;
    let search = |text: &str, merchant: Option<UserId>, active_only: bool| ProductFilter {
        merchant,
        active_only,
        search: Some(ProductSearch::parse(text).expect("a search")),
    };
    let found = expect(tx.list_products(search("mug", None, true), &PageRequest::first(10)).await, "mug");
    assert_eq!(
        names(&found),
        vec![kettle.0.id, mug.0.id],
        "name or description, any case, newest first"
    );
    let page = expect(tx.list_products(search("mug", None, true), &PageRequest::first(1)).await, "page");
    let rest = PageRequest {
        limit: 1,
        after: page.next_cursor,
    };
    let rest = expect(tx.list_products(search("mug", None, true), &rest).await, "rest");
    assert_eq!((names(&page), names(&rest)), (vec![kettle.0.id], vec![mug.0.id]));
    let literal = expect(tx.list_products(search("0%", None, true), &PageRequest::first(10)).await, "percent");
    assert_eq!(names(&literal), vec![percent.0.id], "a pattern character is taken literally");
    let any_one = expect(
        tx.list_products(search("_", None, true), &PageRequest::first(10)).await,
        "underscore",
    );
    assert!(any_one.items.is_empty(), "`_` matches itself, not any character");
    let bobs = expect(
        tx.list_products(search("MUG", Some(bob.id), false), &PageRequest::first(10)).await,
        "bob's",
    );
    assert_eq!(names(&bobs), vec![hidden.id], "a merchant's own, off sale too");
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

pub async fn the_inventory_lists_every_product_with_its_stock_archived_ones_too<U: UnitOfWork>(store: U) {
    let (ann, bob) = (user(Role::Merchant), user(Role::Merchant));
    let (a, _) = product(ann.id, 100, now());
    let a_stock = domain::catalog::Stock::restore(a.id, 2, 3).expect("stock");
    let (mut b, b_stock) = product(bob.id, 100, now() + Duration::seconds(1));
    b.active = false;
    let (c, c_stock) = product(ann.id, 100, now() + Duration::seconds(2));
    let c = c.archive(now() + Duration::seconds(3));
    let mut tx = begin(&store).await;
    expect(tx.insert_user(&ann).await, "ann");
    expect(tx.insert_user(&bob).await, "bob");
    for (p, s) in [(&a, &a_stock), (&b, &b_stock), (&c, &c_stock)] {
        expect(tx.insert_product(p, s).await, "product");
    }
    commit(tx).await;
    let mut tx = begin(&store).await;
    let ids = |page: &Page<ProductWithStock>| page.items.iter().map(|(p, _)| p.id).collect::<Vec<_>>();
    let all = InventoryFilter::default();
    let page = expect(tx.list_inventory(all, &PageRequest::first(2)).await, "first page");
    assert_eq!(ids(&page), vec![c.id, b.id], "newest first, the archived one too");
    let next = PageRequest {
        limit: 2,
        after: page.next_cursor,
    };
    let rest = expect(tx.list_inventory(all, &next).await, "next page");
    assert_eq!(rest.items, vec![(a.clone(), a_stock)], "with available and reserved units");
    assert_eq!(rest.next_cursor, None);
    let cases = [
        (
            InventoryFilter {
                merchant: Some(ann.id),
                ..all
            },
            vec![c.id, a.id],
        ),
        (
            InventoryFilter {
                active: Some(false),
                merchant: Some(bob.id),
                ..all
            },
            vec![b.id],
        ),
        (InventoryFilter { below: Some(3), ..all }, vec![a.id]),
        (InventoryFilter { below: Some(0), ..all }, vec![]),
    ];
    for (filter, expected) in cases {
        let found = expect(tx.list_inventory(filter, &PageRequest::first(10)).await, "filtered");
        assert_eq!(ids(&found), expected, "{filter:?}");
    }
}
