//! The contract of follow-ups (`FollowUpRepository`).

use crate::prelude::*;

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
