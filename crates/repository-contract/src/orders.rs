//! The contract of orders and their audit trail (`OrderRepository`).

use crate::prelude::*;

pub async fn orders_keep_their_items_and_list_by_party<U: UnitOfWork>(store: U) {
    let (ann, bob, carol) = (user(Role::Merchant), user(Role::Merchant), user(Role::Customer));
    let (mug, mug_stock) = product(ann.id, 250, now());
    let (pen, pen_stock) = product(bob.id, 100, now());
    let mut tx = begin(&store).await;
    for u in [&ann, &bob, &carol] {
        expect(tx.insert_user(u).await, "user");
    }
    expect(tx.insert_product(&mug, &mug_stock).await, "mug");
    expect(tx.insert_product(&pen, &pen_stock).await, "pen");
    let (first, _) = fixtures::order(carol.id, &mug, now());
    let (second, _) = fixtures::order(carol.id, &pen, now() + Duration::seconds(1));
    expect(tx.insert_order(&first).await, "first");
    expect(tx.insert_order(&second).await, "second");
    commit(tx).await;
    let mut tx = begin(&store).await;
    assert_eq!(expect(tx.find_order(first.id()).await, "find"), Some(first.clone()));
    let (pending, _) = first
        .clone()
        .await_payment(Actor::System, now() + Duration::minutes(1))
        .expect("transition");
    expect(tx.update_order(&pending).await, "update");
    assert_eq!(expect(tx.lock_order(first.id()).await, "lock"), Some(pending.clone()));
    let mine = expect(tx.list_orders(OrderFilter::Buyer(carol.id), &PageRequest::first(10)).await, "mine");
    assert_eq!(mine.items.iter().map(|o| o.id()).collect::<Vec<_>>(), vec![second.id(), first.id()]);
    let anns = expect(tx.list_orders(OrderFilter::Merchant(ann.id), &PageRequest::first(10)).await, "ann");
    assert_eq!(anns.items.iter().map(|o| o.id()).collect::<Vec<_>>(), vec![first.id()]);
    let pending_only = OrderFilter::All(AdminOrderFilter {
        status: Some(OrderStatus::PaymentPending),
        ..AdminOrderFilter::default()
    });
    let all_pending = expect(tx.list_orders(pending_only, &PageRequest::first(10)).await, "pending");
    assert_eq!(all_pending.items, vec![pending]);
    let bobs = AdminOrderFilter {
        merchant: Some(bob.id),
        buyer: Some(carol.id),
        currency: Some(Currency::Usd),
        ..AdminOrderFilter::default()
    };
    assert_eq!(
        admins_order_ids(&mut tx, bobs).await,
        vec![second.id()],
        "by merchant, buyer and currency"
    );
    let in_euros = AdminOrderFilter {
        currency: Some(Currency::Eur),
        ..AdminOrderFilter::default()
    };
    assert!(admins_order_ids(&mut tx, in_euros).await.is_empty());
    let before_second = AdminOrderFilter {
        created: CreatedWithin {
            from: Some(now()),
            to: Some(now() + Duration::seconds(1)),
        },
        ..AdminOrderFilter::default()
    };
    assert_eq!(
        admins_order_ids(&mut tx, before_second).await,
        vec![first.id()],
        "from included, to excluded"
    );
    let page = expect(
        tx.list_orders(OrderFilter::All(AdminOrderFilter::default()), &PageRequest::first(1))
            .await,
        "page",
    );
    let next = expect(
        tx.list_orders(
            OrderFilter::All(AdminOrderFilter::default()),
            &PageRequest {
                limit: 1,
                after: page.next_cursor,
            },
        )
        .await,
        "next",
    );
    assert_eq!((page.items[0].id(), next.items[0].id()), (second.id(), first.id()));
    assert!(next.next_cursor.is_none());
}

async fn admins_order_ids<Tx: OrderRepository + Send>(tx: &mut Tx, filter: AdminOrderFilter) -> Vec<domain::ids::OrderId> {
    let found = expect(tx.list_orders(OrderFilter::All(filter), &PageRequest::first(10)).await, "filtered");
    found.items.iter().map(|order| order.id()).collect()
}

pub async fn the_audit_trail_lists_newest_first<U: UnitOfWork>(store: U) {
    let (ann, carol) = (user(Role::Merchant), user(Role::Customer));
    let (mug, stock) = product(ann.id, 250, now());
    let (order, created) = fixtures::order(carol.id, &mug, now());
    let (order, pending) = order.await_payment(Actor::User(carol.id), now()).expect("pending");
    let (_, paid) = order.mark_paid(Actor::Gateway(provider("stripe")), now()).expect("paid");
    let (other, other_created) = fixtures::order(carol.id, &mug, now());
    let mut tx = begin(&store).await;
    expect(tx.insert_user(&ann).await, "ann");
    expect(tx.insert_user(&carol).await, "carol");
    expect(tx.insert_product(&mug, &stock).await, "mug");
    expect(tx.insert_order(&order_for_insert(&created, &mug, &carol)).await, "order");
    expect(tx.insert_order(&other).await, "other");
    expect(tx.append_status_changes(&[created.clone(), pending.clone()]).await, "changes");
    expect(tx.append_status_changes(&[other_created.clone(), paid.clone()]).await, "more");
    commit(tx).await;
    let mut tx = begin(&store).await;
    let trail = expect(
        tx.list_status_changes(Some(created.order_id), &PageRequest::first(2)).await,
        "trail",
    );
    assert_eq!(trail.items, vec![paid.clone(), pending.clone()]);
    let rest = expect(
        tx.list_status_changes(
            Some(created.order_id),
            &PageRequest {
                limit: 2,
                after: trail.next_cursor,
            },
        )
        .await,
        "rest",
    );
    assert_eq!(rest.items, vec![created.clone()]);
    assert!(rest.next_cursor.is_none());
    let everything = expect(tx.list_status_changes(None, &PageRequest::first(10)).await, "all");
    assert_eq!(everything.items.len(), 4);
    assert_eq!(everything.items[0].actor, Actor::Gateway(provider("stripe")));
}

/// The order a status change belongs to, as first placed.
fn order_for_insert(
    created: &domain::order::StatusChange,
    mug: &domain::catalog::Product,
    buyer: &domain::user::User,
) -> domain::order::Order {
    fixtures::order_with_id(created.order_id, buyer.id, mug, now()).0
}
