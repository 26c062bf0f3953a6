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

pub async fn a_payers_payments_list_newest_first_with_filters<U: UnitOfWork>(store: U) {
    let (ann, carol, dave) = (user(Role::Merchant), user(Role::Customer), user(Role::Customer));
    let (mug, stock) = product(ann.id, 250, now());
    let (order, _) = fixtures::order(carol.id, &mug, now());
    let checkout = fixtures::payment_opened_at(&order, "stripe", now(), Duration::minutes(30));
    let top_up = |at| {
        Payment::open(
            id(),
            PaymentPurpose::TopUp(carol.id),
            carol.id,
            provider("stripe"),
            usd(5_000),
            at,
            at + Duration::minutes(30),
        )
    };
    let (first, second) = (top_up(now() + Duration::seconds(1)), top_up(now() + Duration::seconds(2)));
    let second = second.succeed(Some("pi_1".into()), now() + Duration::seconds(3)).expect("succeed");
    let theirs = Payment::open(
        id(),
        PaymentPurpose::TopUp(dave.id),
        dave.id,
        provider("stripe"),
        usd(100),
        now(),
        now() + Duration::minutes(30),
    );
    let mut tx = begin(&store).await;
    for u in [&ann, &carol, &dave] {
        expect(tx.insert_user(u).await, "user");
    }
    expect(tx.insert_product(&mug, &stock).await, "mug");
    expect(tx.insert_order(&order).await, "order");
    for p in [&checkout, &first, &second, &theirs] {
        expect(tx.insert_payment(p).await, "payment");
    }
    commit(tx).await;
    let mut tx = begin(&store).await;
    let ids = |page: &Page<Payment>| page.items.iter().map(Payment::id).collect::<Vec<_>>();
    let all = expect(
        tx.list_payer_payments(carol.id, PaymentFilter::default(), &PageRequest::first(10))
            .await,
        "all",
    );
    assert_eq!(
        ids(&all),
        vec![second.id(), first.id(), checkout.id()],
        "newest first, the payer's only"
    );
    let first_page = expect(
        tx.list_payer_payments(carol.id, PaymentFilter::default(), &PageRequest::first(2))
            .await,
        "page",
    );
    let next = PageRequest {
        limit: 2,
        after: first_page.next_cursor,
    };
    let rest = expect(tx.list_payer_payments(carol.id, PaymentFilter::default(), &next).await, "next page");
    assert_eq!((ids(&first_page), ids(&rest)), (vec![second.id(), first.id()], vec![checkout.id()]));
    let pending_top_ups = PaymentFilter {
        status: Some(PaymentStatus::Pending),
        top_ups: Some(true),
    };
    let filtered = expect(
        tx.list_payer_payments(carol.id, pending_top_ups, &PageRequest::first(10)).await,
        "filtered",
    );
    assert_eq!(ids(&filtered), vec![first.id()]);
    let checkouts = PaymentFilter {
        status: None,
        top_ups: Some(false),
    };
    let orders = expect(tx.list_payer_payments(carol.id, checkouts, &PageRequest::first(10)).await, "orders");
    assert_eq!(ids(&orders), vec![checkout.id()]);
}

pub async fn admins_list_every_payment_by_payer_provider_currency_and_period<U: UnitOfWork>(store: U) {
    let (carol, dave) = (user(Role::Customer), user(Role::Customer));
    let top_up = |payer: &domain::user::User, name: &str, amount: Money, seconds: i64| {
        let at = now() + Duration::seconds(seconds);
        Payment::open(
            id(),
            PaymentPurpose::TopUp(payer.id),
            payer.id,
            provider(name),
            amount,
            at,
            at + Duration::minutes(30),
        )
    };
    let eur = Money::from_minor(700, Currency::Eur);
    let a = top_up(&carol, "stripe", usd(100), 1);
    let b = top_up(&dave, "stripe", usd(200), 2);
    let c = top_up(&dave, "monnify", eur, 3)
        .succeed(Some("pi_c".into()), now() + Duration::seconds(4))
        .expect("succeed");
    let d = top_up(&carol, "stripe", usd(300), 3);
    let mut tx = begin(&store).await;
    for u in [&carol, &dave] {
        expect(tx.insert_user(u).await, "user");
    }
    for p in [&a, &b, &c, &d] {
        expect(tx.insert_payment(p).await, "payment");
    }
    commit(tx).await;
    let ids = |page: &Page<Payment>| page.items.iter().map(Payment::id).collect::<Vec<_>>();
    let mut tx = begin(&store).await;
    let (first, second) = if c.id().as_uuid() > d.id().as_uuid() {
        (c.id(), d.id())
    } else {
        (d.id(), c.id())
    };
    let all = AdminPaymentFilter::default();
    let page = expect(tx.list_payments(&all, &PageRequest::first(3)).await, "first page");
    assert_eq!(ids(&page), vec![first, second, b.id()], "newest first, ties by id");
    let next = PageRequest {
        limit: 3,
        after: page.next_cursor,
    };
    let rest = expect(tx.list_payments(&all, &next).await, "next page");
    assert_eq!((ids(&rest), rest.next_cursor), (vec![a.id()], None));
    let cases = [
        (
            AdminPaymentFilter {
                payer: Some(dave.id),
                ..AdminPaymentFilter::default()
            },
            vec![c.id(), b.id()],
        ),
        (
            AdminPaymentFilter {
                provider: Some(provider("monnify")),
                ..AdminPaymentFilter::default()
            },
            vec![c.id()],
        ),
        (
            AdminPaymentFilter {
                currency: Some(Currency::Usd),
                payer: Some(carol.id),
                ..AdminPaymentFilter::default()
            },
            vec![d.id(), a.id()],
        ),
        (
            AdminPaymentFilter {
                of: PaymentFilter {
                    status: Some(PaymentStatus::Pending),
                    top_ups: Some(true),
                },
                created: CreatedWithin {
                    from: Some(now() + Duration::seconds(2)),
                    to: Some(now() + Duration::seconds(3)),
                },
                ..AdminPaymentFilter::default()
            },
            vec![b.id()],
        ),
        (
            AdminPaymentFilter {
                of: PaymentFilter {
                    status: None,
                    top_ups: Some(false),
                },
                ..AdminPaymentFilter::default()
            },
            vec![],
        ),
    ];
    for (filter, expected) in cases {
        let found = expect(tx.list_payments(&filter, &PageRequest::first(10)).await, "filtered");
        assert_eq!(ids(&found), expected, "{filter:?}");
    }
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

pub async fn admins_list_every_refund_by_merchant_provider_status_and_period<U: UnitOfWork>(store: U) {
    let (ann, bob, carol) = (user(Role::Merchant), user(Role::Merchant), user(Role::Customer));
    let (mug, stock) = product(ann.id, 250, now());
    let (order, _) = fixtures::order(carol.id, &mug, now());
    let card = payment(&order, "stripe", Duration::minutes(30));
    let refund = |merchant: &domain::user::User, payment: Option<&Payment>, seconds: i64| {
        let terms = RefundTerms {
            order_id: order.id(),
            payment_id: payment.map(Payment::id),
            merchant_id: merchant.id,
            amount: usd(100),
            reason: "damaged".into(),
            requested_by: Some(merchant.id),
        };
        Refund::open(id(), terms, now() + Duration::seconds(seconds))
    };
    let a = refund(&ann, Some(&card), 1);
    let b = refund(&bob, None, 2).succeed(now() + Duration::seconds(2)).expect("succeed");
    let c = refund(&ann, None, 3);
    let mut tx = begin(&store).await;
    for u in [&ann, &bob, &carol] {
        expect(tx.insert_user(u).await, "user");
    }
    expect(tx.insert_product(&mug, &stock).await, "mug");
    expect(tx.insert_order(&order).await, "order");
    expect(tx.insert_payment(&card).await, "payment");
    for r in [&a, &b, &c] {
        expect(tx.insert_refund(r).await, "refund");
    }
    commit(tx).await;
    let ids = |page: &Page<Refund>| page.items.iter().map(Refund::id).collect::<Vec<_>>();
    let mut tx = begin(&store).await;
    let all = AdminRefundFilter::default();
    let page = expect(tx.list_refunds(&all, &PageRequest::first(2)).await, "first page");
    assert_eq!(ids(&page), vec![c.id(), b.id()], "newest first");
    let next = PageRequest {
        limit: 2,
        after: page.next_cursor,
    };
    let rest = expect(tx.list_refunds(&all, &next).await, "next page");
    assert_eq!((ids(&rest), rest.next_cursor), (vec![a.id()], None));
    let cases = [
        (
            AdminRefundFilter {
                merchant: Some(ann.id),
                ..AdminRefundFilter::default()
            },
            vec![c.id(), a.id()],
        ),
        (
            AdminRefundFilter {
                provider: Some(provider("stripe")),
                ..AdminRefundFilter::default()
            },
            vec![a.id()],
        ),
        (
            AdminRefundFilter {
                status: Some(domain::payment::RefundStatus::Succeeded),
                currency: Some(Currency::Usd),
                ..AdminRefundFilter::default()
            },
            vec![b.id()],
        ),
        (
            AdminRefundFilter {
                created: CreatedWithin {
                    from: Some(now() + Duration::seconds(2)),
                    to: None,
                },
                currency: Some(Currency::Eur),
                ..AdminRefundFilter::default()
            },
            vec![],
        ),
        (
            AdminRefundFilter {
                created: CreatedWithin {
                    from: Some(now() + Duration::seconds(2)),
                    to: Some(now() + Duration::seconds(3)),
                },
                ..AdminRefundFilter::default()
            },
            vec![b.id()],
        ),
    ];
    for (filter, expected) in cases {
        let found = expect(tx.list_refunds(&filter, &PageRequest::first(10)).await, "filtered");
        assert_eq!(ids(&found), expected, "{filter:?}");
    }
}

pub async fn refund_requests_are_stored_decided_and_listed_with_one_open_per_share<U: UnitOfWork>(store: U) {
    use application::ports::store::{REFUND_REQUESTS_OPEN, RefundRequestFilter};
    use domain::refund_request::{RefundAsk, RefundRequest, RefundRequestStatus};
    let (ann, bob, carol) = (user(Role::Merchant), user(Role::Merchant), user(Role::Customer));
    let (mug, stock) = product(ann.id, 250, now());
    let (order, _) = fixtures::order(carol.id, &mug, now());
    let ask = |merchant: &domain::user::User, amount: Option<i64>, seconds: i64| {
        let terms = RefundAsk {
            order_id: order.id(),
            buyer_id: carol.id,
            merchant_id: merchant.id,
            amount: amount.map(usd),
            reason: "broken".into(),
        };
        RefundRequest::open(id(), terms, now() + Duration::seconds(seconds)).expect("open")
    };
    let (first, for_bob) = (ask(&ann, Some(100), 0), ask(&bob, None, 1));
    let mut tx = begin(&store).await;
    for someone in [&ann, &bob, &carol] {
        expect(tx.insert_user(someone).await, "user");
    }
    expect(tx.insert_product(&mug, &stock).await, "mug");
    expect(tx.insert_order(&order).await, "order");
    expect(tx.insert_refund_request(&first).await, "first");
    expect(tx.insert_refund_request(&for_bob).await, "bob's share: another open one");
    let twice = tx.insert_refund_request(&ask(&ann, None, 2)).await;
    assert!(
        matches!(&twice, Err(StoreError::Duplicate(name)) if name == REFUND_REQUESTS_OPEN),
        "{twice:?}"
    );
    assert_eq!(
        expect(tx.find_refund_request(first.id()).await, "usable after the refusal"),
        Some(first.clone())
    );
    commit(tx).await;

    let refund = Refund::completed(
        id(),
        RefundTerms {
            order_id: order.id(),
            payment_id: None,
            merchant_id: ann.id,
            amount: usd(100),
            reason: "broken".into(),
            requested_by: Some(ann.id),
        },
        now(),
    );
    let approved = first
        .clone()
        .approve(ann.id, refund.id(), now() + Duration::seconds(5))
        .expect("approve");
    let mut tx = begin(&store).await;
    assert_eq!(expect(tx.lock_refund_request(first.id()).await, "lock"), Some(first.clone()));
    expect(tx.insert_refund(&refund).await, "refund");
    expect(tx.update_refund_request(&approved).await, "approve");
    let again = ask(&ann, Some(50), 6);
    expect(tx.insert_refund_request(&again).await, "a new one once the first is decided");
    commit(tx).await;

    let mut tx = begin(&store).await;
    assert_eq!(expect(tx.find_refund_request(first.id()).await, "find"), Some(approved.clone()));
    let page = PageRequest::first(10);
    let ids = |page: Page<RefundRequest>| page.items.iter().map(RefundRequest::id).collect::<Vec<_>>();
    let all = expect(tx.list_refund_requests(&RefundRequestFilter::default(), &page).await, "all");
    assert_eq!(ids(all), vec![again.id(), for_bob.id(), first.id()], "newest first");
    let anns = RefundRequestFilter {
        merchant: Some(ann.id),
        ..RefundRequestFilter::default()
    };
    assert_eq!(
        ids(expect(tx.list_refund_requests(&anns, &page).await, "ann's")),
        vec![again.id(), first.id()]
    );
    let open_of_carol = RefundRequestFilter {
        buyer: Some(carol.id),
        order: Some(order.id()),
        status: Some(RefundRequestStatus::Open),
        ..RefundRequestFilter::default()
    };
    assert_eq!(
        ids(expect(tx.list_refund_requests(&open_of_carol, &page).await, "open")),
        vec![again.id(), for_bob.id()]
    );
    let involving_ann = RefundRequestFilter {
        party: Some(ann.id),
        ..RefundRequestFilter::default()
    };
    assert_eq!(
        ids(expect(tx.list_refund_requests(&involving_ann, &page).await, "involving ann")),
        vec![again.id(), first.id()],
        "as the merchant; she made none as a buyer"
    );
    let involving_carol = RefundRequestFilter {
        party: Some(carol.id),
        ..RefundRequestFilter::default()
    };
    assert_eq!(
        ids(expect(tx.list_refund_requests(&involving_carol, &page).await, "involving carol")),
        vec![again.id(), for_bob.id(), first.id()],
        "as the buyer"
    );
    let nobodys = RefundRequestFilter {
        buyer: Some(ann.id),
        ..RefundRequestFilter::default()
    };
    assert!(expect(tx.list_refund_requests(&nobodys, &page).await, "none").items.is_empty());
    let first_page = expect(
        tx.list_refund_requests(&RefundRequestFilter::default(), &PageRequest::first(2))
            .await,
        "page 1",
    );
    let rest = PageRequest {
        limit: 2,
        after: first_page.next_cursor,
    };
    assert_eq!(
        ids(expect(
            tx.list_refund_requests(&RefundRequestFilter::default(), &rest).await,
            "page 2"
        )),
        vec![first.id()]
    );
}
