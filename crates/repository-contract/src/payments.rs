//! The contract of card payments and refunds (`PaymentRepository`, `RefundRepository`).

use crate::prelude::*;

pub async fn payments_are_found_by_every_reference<U: UnitOfWork>(store: U) {
    let (ann, carol) = (user(Role::Merchant), user(Role::Customer));
    let (mug, stock) = product(ann.id, 250, now());
    let (order, _) = fixtures::order(carol.id, &mug, now());
    let older = payment(&order, "stripe", Duration::minutes(30));
    let newer = fixtures::payment_opened_at(&order, "stripe", now() + Duration::seconds(5), Duration::minutes(30));
    let newer = newer.attach_session("cs_123".into(), "https://pay.example/cs_123".into(), now());
    let mut tx = begin(&store).await;
    expect(tx.insert_user(&ann).await, "ann");
    expect(tx.insert_user(&carol).await, "carol");
    expect(tx.insert_product(&mug, &stock).await, "mug");
    expect(tx.insert_order(&order).await, "order");
    expect(tx.insert_payment(&older).await, "older");
    expect(tx.insert_payment(&newer).await, "newer");
    commit(tx).await;
    let stripe = provider("stripe");
    let mut tx = begin(&store).await;
    assert_eq!(
        expect(tx.find_order_payment(order.id()).await, "latest").map(|p| p.id()),
        Some(newer.id())
    );
    assert_eq!(
        expect(tx.lock_payment(&stripe, &PaymentLookup::Ours(older.id())).await, "ours"),
        Some(older.clone())
    );
    let by_session = expect(tx.lock_payment(&stripe, &PaymentLookup::Session("cs_123".into())).await, "session");
    assert_eq!(by_session.as_ref().map(|p| p.id()), Some(newer.id()));
    assert_eq!(
        expect(
            tx.lock_payment(&provider("monnify"), &PaymentLookup::Session("cs_123".into()))
                .await,
            "other provider"
        ),
        None
    );
    let paid = newer.clone().succeed(Some("pi_9".into()), now()).expect("succeed");
    expect(tx.update_payment(&paid).await, "update");
    let by_payment = expect(tx.lock_payment(&stripe, &PaymentLookup::ProviderPayment("pi_9".into())).await, "pi");
    assert_eq!(by_payment, Some(paid.clone()));
    assert_eq!(
        expect(tx.find_payment(paid.id()).await, "find").map(|p| p.status()),
        Some(PaymentStatus::Succeeded)
    );
    assert_eq!(paid.purpose(), PaymentPurpose::Order(order.id()));
}

pub async fn expired_pending_payments_are_found_oldest_first<U: UnitOfWork>(store: U) {
    let (ann, carol) = (user(Role::Merchant), user(Role::Customer));
    let (mug, stock) = product(ann.id, 250, now());
    let (order, _) = fixtures::order(carol.id, &mug, now());
    let soon = payment(&order, "stripe", Duration::minutes(5));
    let sooner = payment(&order, "stripe", Duration::minutes(1));
    let later = payment(&order, "stripe", Duration::hours(2));
    let settled = payment(&order, "stripe", Duration::minutes(1)).fail(now()).expect("fail");
    let mut tx = begin(&store).await;
    expect(tx.insert_user(&ann).await, "ann");
    expect(tx.insert_user(&carol).await, "carol");
    expect(tx.insert_product(&mug, &stock).await, "mug");
    expect(tx.insert_order(&order).await, "order");
    for p in [&soon, &sooner, &later, &settled] {
        expect(tx.insert_payment(p).await, "payment");
    }
    commit(tx).await;
    let mut tx = begin(&store).await;
    let expired = expect(tx.lock_expired_payments(now() + Duration::minutes(10), 10).await, "expired");
    assert_eq!(expired.iter().map(|p| p.id()).collect::<Vec<_>>(), vec![sooner.id(), soon.id()]);
    let one = expect(tx.lock_expired_payments(now() + Duration::minutes(10), 1).await, "one");
    assert_eq!(one.len(), 1);
}

pub async fn refunds_are_found_by_id_provider_reference_and_order<U: UnitOfWork>(store: U) {
    let (ann, carol) = (user(Role::Merchant), user(Role::Customer));
    let (mug, stock) = product(ann.id, 250, now());
    let (order, _) = fixtures::order(carol.id, &mug, now());
    let terms = RefundTerms {
        order_id: order.id(),
        payment_id: None,
        merchant_id: ann.id,
        amount: usd(100),
        reason: "damaged".into(),
        requested_by: Some(ann.id),
    };
    let refund = Refund::open(id(), terms, now());
    let mut tx = begin(&store).await;
    expect(tx.insert_user(&ann).await, "ann");
    expect(tx.insert_user(&carol).await, "carol");
    expect(tx.insert_product(&mug, &stock).await, "mug");
    expect(tx.insert_order(&order).await, "order");
    expect(tx.insert_refund(&refund).await, "refund");
    commit(tx).await;
    let mut tx = begin(&store).await;
    assert_eq!(expect(tx.find_refund(refund.id()).await, "find"), Some(refund.clone()));
    let settled = refund
        .clone()
        .record_provider_refund_id("re_1", now())
        .succeed(now())
        .expect("succeed");
    expect(tx.update_refund(&settled).await, "update");
    assert_eq!(
        expect(tx.find_refund_by_provider_id("re_1").await, "by provider"),
        Some(settled.clone())
    );
    assert_eq!(expect(tx.lock_refund(refund.id()).await, "lock"), Some(settled.clone()));
    assert_eq!(expect(tx.list_order_refunds(order.id()).await, "list"), vec![settled]);
    assert_eq!(expect(tx.find_refund_by_provider_id("re_404").await, "none"), None);
}
