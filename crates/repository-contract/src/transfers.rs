//! The contract of transfers and withdrawals (`TransferRepository`).

use crate::prelude::*;

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

pub async fn a_users_withdrawals_list_newest_first<U: UnitOfWork>(store: U) {
    let (alice, bob) = (user(Role::Customer), user(Role::Customer));
    let withdrawal = |owner: &domain::user::User, seconds: i64| Withdrawal {
        id: id(),
        user_id: owner.id,
        amount: usd(100 + seconds),
        destination: "IBAN ...1234".into(),
        transaction_id: id(),
        created_at: now() + Duration::seconds(seconds),
    };
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
