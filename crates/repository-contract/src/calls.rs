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

pub async fn admins_list_every_call_by_status_party_and_start<U: UnitOfWork>(store: U) {
    let (alice, bob, carol) = (user(Role::Customer), user(Role::Customer), user(Role::Customer));
    let at = |seconds| now() + Duration::seconds(seconds);
    let first = CallSession::start(id(), alice.id, bob.id, usd(50), id(), 10, at(0)).expect("call");
    let second = CallSession::start(id(), carol.id, alice.id, usd(50), id(), 10, at(1)).expect("call");
    let third = CallSession::start(id(), bob.id, carol.id, usd(50), id(), 10, at(2)).expect("call");
    let first = first.end(at(90)).expect("end");
    let mut tx = begin(&store).await;
    for u in [&alice, &bob, &carol] {
        expect(tx.insert_user(u).await, "user");
    }
    for call in [&first, &second, &third] {
        expect(tx.insert_call(call).await, "call");
    }
    commit(tx).await;
    let ids = |page: &Page<CallSession>| page.items.iter().map(|c| c.id).collect::<Vec<_>>();
    let mut tx = begin(&store).await;
    let all = CallFilter::default();
    let page = expect(tx.list_every_call(all, &PageRequest::first(2)).await, "first page");
    assert_eq!(ids(&page), vec![third.id, second.id], "newest first by start");
    let next = PageRequest {
        limit: 2,
        after: page.next_cursor,
    };
    let rest = expect(tx.list_every_call(all, &next).await, "next page");
    assert_eq!((ids(&rest), rest.next_cursor), (vec![first.id], None));
    let alices = CallFilter {
        user: Some(alice.id),
        ..all
    };
    assert_eq!(
        ids(&expect(tx.list_every_call(alices, &PageRequest::first(10)).await, "alice's")),
        vec![second.id, first.id]
    );
    let ended = CallFilter {
        status: Some(domain::call::CallStatus::Ended),
        ..all
    };
    assert_eq!(
        ids(&expect(tx.list_every_call(ended, &PageRequest::first(10)).await, "ended")),
        vec![first.id]
    );
    let started = CallFilter {
        started: CreatedWithin {
            from: Some(at(1)),
            to: Some(at(2)),
        },
        ..all
    };
    assert_eq!(
        ids(&expect(tx.list_every_call(started, &PageRequest::first(10)).await, "period")),
        vec![second.id]
    );
    assert_eq!(expect(tx.find_call(first.id).await, "find"), Some(first));
    assert_eq!(expect(tx.find_call(id()).await, "unknown"), None);
}
