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
