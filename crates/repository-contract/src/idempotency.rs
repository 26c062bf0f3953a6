//! The contract of idempotency keys (`IdempotencyRepository`).

use crate::prelude::*;

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
