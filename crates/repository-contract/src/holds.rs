//! The contract of holds on wallets (`HoldRepository`).

use crate::ledger::fund;
use crate::prelude::*;

pub async fn holds_are_stored_and_updated<U: UnitOfWork>(store: U) {
    let alice = user(Role::Customer);
    let shop = user(Role::Merchant);
    let wallet_id = fund(&store, &alice, &[1000]).await;
    let mut tx = begin(&store).await;
    expect(tx.insert_user(&shop).await, "merchant");
    let mut wallets = expect(tx.lock_wallets(&[wallet_id]).await, "lock");
    let hold_id: HoldId = id();
    let terms = HoldTerms {
        reference: "test".into(),
        order_id: None,
        payee: Some(shop.id),
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
    let part = locked.capture_part(&mut wallets[0], usd(150), false, now()).expect("capture");
    expect(tx.update_wallets(&wallets).await, "update");
    expect(tx.update_hold(&part).await, "update hold");
    commit(tx).await;
    let mut tx = begin(&store).await;
    assert_eq!(expect(tx.find_hold(hold_id).await, "find"), Some(part.clone()));
    let audit = expect(tx.audit_ledger().await, "audit");
    assert!(
        audit.held_mismatches.is_empty(),
        "a pending hold holds what was not captured: {audit:?}"
    );
    let mut wallets = expect(tx.lock_wallets(&[wallet_id]).await, "lock");
    assert_eq!(wallets[0].held(), usd(250));
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

pub async fn expired_holds_are_found_except_those_of_active_calls<U: UnitOfWork>(store: U) {
    let alice = user(Role::Customer);
    let bob = user(Role::Customer);
    let wallet_id = fund(&store, &alice, &[1000]).await;
    let mut tx = begin(&store).await;
    expect(tx.insert_user(&bob).await, "bob");
    let mut wallets = expect(tx.lock_wallets(&[wallet_id]).await, "lock");
    let terms = |minutes| HoldTerms {
        reference: "test".into(),
        order_id: None,
        payee: None,
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
