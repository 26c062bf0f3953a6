//! The contract of metered call sessions (`CallRepository`).

use crate::prelude::*;

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
