//! The contract of transactions themselves: rollback, drop and commit (`UnitOfWork`, `Transaction`).

use crate::prelude::*;

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
