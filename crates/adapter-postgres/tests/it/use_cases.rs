//! The use cases on PostgreSQL, raced by real tasks on a multi-thread runtime, then checked against
//! the invariants: nothing oversold, money conserved, the ledger clean, no deadlock or
//! serialization failure reaching a caller.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use application::auth::Caller;
use application::checkout::CheckoutError;
use application::holds::{CaptureRequest, HoldRequest, HoldUseError};
use application::ports::gateway::{GatewayEvent, GatewayEventKind, PaymentReference};
use application::settlement::EventOutcome;
use application::transfers::{Recipient, TransferRequest};
use domain::ids::ProductId;
use domain::order::{OrderStatus, PaymentMethod};
use domain::payment::PaymentStatus;
use domain::user::Role;

use crate::support::{FakeGateway, Harness, cart, provider, usd};

/// Registers and funds `count` customers.
async fn funded_customers(h: &Harness, count: usize, minor: i64) -> Vec<Caller> {
    let mut buyers = Vec::with_capacity(count);
    for _ in 0..count {
        buyers.push(h.funded_customer(minor).await);
    }
    buyers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_buyers_racing_for_twenty_five_units_leave_exactly_twenty_five_paid_orders() {
    let h = Harness::new().await;
    let merchant = h.user(Role::Merchant).await;
    let mug = h.product(&merchant, 500, 25).await;
    let buyers = funded_customers(&h, 200, 1_000).await;

    let tasks: Vec<_> = buyers
        .iter()
        .map(|buyer| {
            let (app, buyer, product) = (h.app.clone(), *buyer, mug.product.id);
            tokio::spawn(async move { app.checkout(&buyer, cart(&[(product, 1)], PaymentMethod::Wallet), None).await })
        })
        .collect();
    let mut paid = Vec::new();
    let mut out_of_stock = 0;
    for (buyer, task) in buyers.iter().zip(tasks) {
        match task.await.expect("task") {
            Ok(checkout) => {
                assert_eq!(checkout.order.status(), OrderStatus::Paid);
                paid.push(buyer.user_id);
            }
            Err(CheckoutError::OutOfStock { .. }) => out_of_stock += 1,
            Err(other) => panic!("a buyer saw an unexpected error: {other:?}"),
        }
    }

    assert_eq!((paid.len(), out_of_stock), (25, 175));
    assert_eq!(h.stock(mug.product.id).await, (0, 0));
    assert_eq!(h.balance(&merchant).await, 25 * 500);
    for buyer in &buyers {
        let expected = if paid.contains(&buyer.user_id) { 500 } else { 1_000 };
        assert_eq!(h.balance(buyer).await, expected, "buyer {}", buyer.user_id);
    }
    h.assert_ledger_ok().await;
}

/// Two thousand transfers at once between two wallets: every one succeeds and the total is kept.
/// They queue for the same two rows, a group after a group, and a group's opener waits in
/// PostgreSQL behind up to a pool's worth of groups: with the whole suite sharing two cores, that
/// wait has exceeded the default 5 s lock timeout (a transfer failed with `Timeout`). The bound
/// on waiting is not what this test is about, so it is raised here.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_transfers_each_way_all_succeed_and_conserve_the_total() {
    let h = Harness::with_settings(|settings| settings.lock_timeout = Duration::from_secs(60)).await;
    let alice = h.funded_customer(100_000).await;
    let bob = h.funded_customer(100_000).await;

    let tasks: Vec<_> = (0..2_000)
        .map(|n| {
            let (from, to) = if n % 2 == 0 { (alice, bob) } else { (bob, alice) };
            let app = h.app.clone();
            tokio::spawn(async move {
                let request = TransferRequest {
                    to: Recipient::Id(to.user_id),
                    amount: usd(7),
                    note: String::new(),
                };
                app.transfer(&from, request, None).await
            })
        })
        .collect();
    for task in tasks {
        if let Err(error) = task.await.expect("task") {
            panic!("a transfer failed: {error:?}");
        }
    }

    assert_eq!(h.balance(&alice).await, 100_000);
    assert_eq!(h.balance(&bob).await, 100_000);
    h.assert_ledger_ok().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn carts_naming_the_same_products_in_different_orders_neither_deadlock_nor_oversell() {
    let h = Harness::new().await;
    let (ann, bob) = (h.user(Role::Merchant).await, h.user(Role::Merchant).await);
    let mut products: Vec<ProductId> = Vec::new();
    for (merchant, price) in [(&ann, 100), (&bob, 200), (&ann, 300), (&bob, 400)] {
        products.push(h.product(merchant, price, 30).await.product.id);
    }
    let buyers = funded_customers(&h, 60, 100_000).await;

    let tasks: Vec<_> = buyers
        .iter()
        .enumerate()
        .map(|(n, buyer)| {
            // Every buyer names three of the four products, rotated, some backwards.
            let mut items: Vec<(ProductId, i64)> = (0..3).map(|k| (products[(n + k) % 4], 1 + (n % 2) as i64)).collect();
            if n % 3 == 0 {
                items.reverse();
            }
            let (app, buyer) = (h.app.clone(), *buyer);
            tokio::spawn(async move { app.checkout(&buyer, cart(&items, PaymentMethod::Wallet), None).await })
        })
        .collect();
    let mut sold: BTreeMap<ProductId, i64> = BTreeMap::new();
    let mut revenue = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(checkout) => {
                revenue += checkout.order.total().amount_minor();
                for item in checkout.order.items() {
                    *sold.entry(item.product_id).or_default() += i64::from(item.quantity.get());
                }
            }
            Err(CheckoutError::OutOfStock { .. }) => {}
            Err(other) => panic!("a buyer saw an unexpected error: {other:?}"),
        }
    }

    for product in &products {
        let units = sold.get(product).copied().unwrap_or(0);
        assert!(units <= 30, "product {product} oversold: {units} units");
        assert_eq!(h.stock(*product).await, (30 - units, 0), "product {product}");
    }
    assert_eq!(h.balance(&ann).await + h.balance(&bob).await, revenue);
    h.assert_ledger_ok().await;
}

#[tokio::test]
async fn a_card_checkout_is_paid_by_its_webhook_exactly_once() {
    let h = Harness::new().await;
    let merchant = h.user(Role::Merchant).await;
    let buyer = h.user(Role::Customer).await;
    let mug = h.product(&merchant, 700, 3).await;

    let checkout = h
        .app
        .checkout(&buyer, cart(&[(mug.product.id, 2)], PaymentMethod::Card), None)
        .await
        .expect("checkout");
    let payment = checkout.payment.expect("a card checkout opens a payment");
    assert_eq!((payment.status(), payment.amount()), (PaymentStatus::Pending, usd(1_400)));
    assert_eq!(h.stock(mug.product.id).await, (1, 2));

    let event = GatewayEvent {
        event_id: "evt_1".into(),
        event_type: "checkout.session.completed".into(),
        kind: GatewayEventKind::CheckoutCompleted {
            reference: PaymentReference {
                session_id: Some(FakeGateway::session_of(payment.id())),
                ..PaymentReference::default()
            },
            amount: Some(usd(1_400)),
            paid: true,
        },
    };
    let first = h.app.apply_gateway_event(&provider(), &event).await.expect("first delivery");
    let again = h.app.apply_gateway_event(&provider(), &event).await.expect("redelivery");

    assert_eq!((first, again), (EventOutcome::Applied, EventOutcome::Duplicate));
    assert_eq!(h.stock(mug.product.id).await, (1, 0));
    let details = h.app.order_details(&buyer, checkout.order.id()).await.expect("order");
    assert_eq!(details.order.status(), OrderStatus::Paid);
    assert_eq!(h.balance(&merchant).await, 1_400);
    h.assert_ledger_ok().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn expiry_workers_on_several_instances_expire_each_abandoned_checkout_once() {
    let h = Harness::new().await;
    let merchant = h.user(Role::Merchant).await;
    let mug = h.product(&merchant, 500, 100).await;
    let mut orders = Vec::new();
    for _ in 0..20 {
        let buyer = h.user(Role::Customer).await;
        let checkout = h
            .app
            .checkout(&buyer, cart(&[(mug.product.id, 1)], PaymentMethod::Card), None)
            .await
            .expect("checkout");
        orders.push((buyer, checkout.order.id()));
    }
    assert_eq!(h.stock(mug.product.id).await, (80, 20));
    // Three server instances, an hour later, all running the expiry job at once.
    let later = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let instance = Arc::new(h.instance_at(Arc::new(application::ports::system::ManualClock::new(later))));
            tokio::spawn(async move {
                let mut expired = 0;
                loop {
                    let count = instance.expire_abandoned_checkouts(3).await.expect("expiry");
                    if count == 0 {
                        return expired;
                    }
                    expired += count;
                }
            })
        })
        .collect();
    let mut total = 0;
    for worker in workers {
        total += worker.await.expect("worker");
    }
    assert_eq!(total, 20, "each checkout expired exactly once");
    assert_eq!(h.stock(mug.product.id).await, (100, 0), "each reservation released exactly once");
    for (buyer, order) in &orders {
        let details = h.app.order_details(buyer, *order).await.expect("order");
        assert_eq!(
            (details.order.status(), details.payment.map(|p| p.status())),
            (OrderStatus::Cancelled, Some(PaymentStatus::Expired))
        );
    }
    h.assert_ledger_ok().await;
}

/// The job's instances, each at `at`: what several servers' jobs would be, later on.
pub(crate) fn jobs_at(h: &Harness, at: time::OffsetDateTime, count: usize) -> Vec<Arc<application::App<adapter_postgres::PgStore>>> {
    (0..count)
        .map(|_| Arc::new(h.instance_at(Arc::new(application::ports::system::ManualClock::new(at)))))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn calls_at_their_limit_are_ended_once_by_racing_jobs_and_never_overspend() {
    let h = Harness::new().await;
    let receiver = h.user(Role::Customer).await;
    let callers = funded_customers(&h, 10, 150).await;
    for caller in &callers {
        // 0.50 a minute: three minutes each, all of the wallet.
        let start = application::calls::StartCall {
            receiver_id: receiver.user_id,
            rate_per_minute: usd(50),
        };
        h.app.start_call(caller, start, None).await.expect("call");
    }
    // Half a minute in, nothing is due; ten minutes in, every call is past its limit.
    let early = jobs_at(&h, time::OffsetDateTime::now_utc() + time::Duration::seconds(30), 1);
    assert_eq!(early[0].settle_due_calls(100).await.expect("job"), 0);
    let late = jobs_at(&h, time::OffsetDateTime::now_utc() + time::Duration::minutes(10), 3);
    let runs: Vec<_> = late
        .into_iter()
        .map(|job| tokio::spawn(async move { job.settle_due_calls(4).await.expect("job") }))
        .collect();
    let mut ended = 0;
    for run in runs {
        ended += run.await.expect("run");
    }
    let again = jobs_at(&h, time::OffsetDateTime::now_utc() + time::Duration::minutes(10), 1);
    loop {
        let count = again[0].settle_due_calls(4).await.expect("job");
        if count == 0 {
            break;
        }
        ended += count;
    }
    assert_eq!(ended, 10, "each call ended once, by one of the jobs");
    assert_eq!(h.balance(&receiver).await, 10 * 150, "every call billed its three minutes, once");
    for caller in &callers {
        assert_eq!(h.balance(caller).await, 0);
    }
    h.assert_ledger_ok().await;
}

#[tokio::test]
async fn an_expired_hold_is_released_by_the_job_on_postgres() {
    let h = Harness::new().await;
    let alice = h.funded_customer(1_000).await;
    let hotel = h.user(Role::Merchant).await;
    h.app.authorise_hold(&alice, night(&hotel, 400), None).await.expect("hold");
    let job = jobs_at(&h, time::OffsetDateTime::now_utc() + time::Duration::days(8), 2);
    let (first, second) = tokio::join!(job[0].release_expired_holds(10), job[1].release_expired_holds(10));
    assert_eq!(first.expect("job") + second.expect("job"), 1, "released once");
    let wallet = h.app.wallet(&alice, domain::money::Currency::Usd).await.expect("wallet");
    assert_eq!((wallet.available(), wallet.held()), (usd(1_000), usd(0)));
    h.assert_ledger_ok().await;
}

fn night(merchant: &Caller, minor: i64) -> HoldRequest {
    HoldRequest {
        merchant_id: merchant.user_id,
        amount: usd(minor),
        description: "hotel night".into(),
        expires_in: None,
        customer_id: None,
    }
}

fn capture(minor: i64) -> CaptureRequest {
    CaptureRequest {
        amount: Some(usd(minor)),
        final_capture: false,
    }
}

#[tokio::test]
async fn captures_racing_for_the_last_of_a_hold_never_exceed_it_on_postgres() {
    let h = Harness::new().await;
    let (alice, hotel) = (h.funded_customer(1_000).await, h.user(Role::Merchant).await);
    let hold = h.app.authorise_hold(&alice, night(&hotel, 500), None).await.expect("hold");
    let racers = (0..6).map(|_| h.app.capture_hold(&hotel, hold.id, capture(100), None));
    let outcomes = futures::future::join_all(racers).await;
    let won = outcomes.iter().filter(|o| o.is_ok()).count();
    assert_eq!(won, 5, "five of 100 fit in 500: {outcomes:?}");
    assert!(outcomes.iter().all(|o| o.is_ok() || matches!(o, Err(HoldUseError::Hold(_)))));
    assert_eq!(h.balance(&hotel).await, 500);
    assert_eq!(h.balance(&alice).await, 500);
    h.assert_ledger_ok().await;
}

#[tokio::test]
async fn a_capture_racing_a_void_or_an_expiry_ends_in_exactly_one_of_them_on_postgres() {
    let h = Harness::new().await;
    let (alice, hotel) = (h.funded_customer(10_000).await, h.user(Role::Merchant).await);
    let expiry = jobs_at(&h, time::OffsetDateTime::now_utc() + time::Duration::days(8), 1);
    for round in 0..10 {
        let hold = h.app.authorise_hold(&alice, night(&hotel, 300), None).await.expect("hold");
        let (captured, ended) = if round % 2 == 0 {
            let (c, v) = tokio::join!(
                h.app.capture_hold(&hotel, hold.id, capture(300), None),
                h.app.void_hold(&hotel, hold.id, None)
            );
            (c.is_ok(), v.is_ok())
        } else {
            let (c, e) = tokio::join!(
                h.app.capture_hold(&hotel, hold.id, capture(300), None),
                expiry[0].release_expired_holds(10)
            );
            (c.is_ok(), e.expect("job") == 1)
        };
        assert!(
            captured != ended,
            "round {round}: exactly one wins (captured {captured}, ended {ended})"
        );
        let settled = h.app.hold(&alice, hold.id).await.expect("hold");
        assert_eq!(settled.captured, if captured { usd(300) } else { usd(0) });
    }
    let wallet = h.app.wallet(&alice, domain::money::Currency::Usd).await.expect("wallet");
    assert_eq!(wallet.held(), usd(0));
    assert_eq!(wallet.balance().amount_minor() + h.balance(&hotel).await, 10_000);
    h.assert_ledger_ok().await;
}

/// The merchant and an admin approve the same buyer's request at the same moment, on real
/// connections: the request locks right after the order, so one approval refunds it and the other
/// finds it decided. Never two refunds for one request, whatever the interleaving.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_approvals_of_one_refund_request_refund_it_once_on_postgres() {
    use application::refund_requests::AskRefund;
    use application::refunds::RefundError;
    use domain::refund_request::RefundRequestStatus;

    let h = Harness::new().await;
    let merchant = h.user(Role::Merchant).await;
    let lamp = h.product(&merchant, 1_000, 20).await;
    let buyer = h.funded_customer(20_000).await;
    let admin = h.admin_caller();
    for round in 0..8 {
        let order = h
            .app
            .checkout(&buyer, cart(&[(lamp.product.id, 2)], PaymentMethod::Wallet), None)
            .await
            .expect("checkout")
            .order;
        let ask = AskRefund {
            merchant_id: None,
            // Half of the rounds ask for part of the share, half for all of it.
            amount: (round % 2 == 0).then(|| usd(700)),
            reason: format!("round {round}"),
        };
        let request = h.app.request_refund(&buyer, order.id(), ask, None).await.expect("ask");
        let (by_merchant, by_admin) = {
            let (app_a, app_b, id) = (h.app.clone(), h.app.clone(), request.id());
            let merchant_task = tokio::spawn(async move { app_a.approve_refund_request(&merchant, id, None).await });
            let admin_task = tokio::spawn(async move { app_b.approve_refund_request(&admin, id, None).await });
            (merchant_task.await.expect("task"), admin_task.await.expect("task"))
        };
        let outcomes = [&by_merchant, &by_admin];
        let refunded: Vec<_> = outcomes.iter().filter_map(|outcome| outcome.as_ref().ok()).collect();
        assert_eq!(refunded.len(), 1, "round {round}: exactly one approval refunds: {outcomes:?}");
        assert!(
            outcomes.iter().all(|outcome| outcome.is_ok()
                || matches!(
                    outcome,
                    Err(RefundError::Request(_) | RefundError::NotRefundable(OrderStatus::Refunded))
                )),
            "round {round}: the other finds the request decided (or, refunded in full, the order): {outcomes:?}"
        );
        let expected = if round % 2 == 0 { 700 } else { 2_000 };
        let refunds = refunded[0];
        assert_eq!(refunds.iter().map(|refund| refund.amount().amount_minor()).sum::<i64>(), expected);
        let decided = h.app.refund_request(&buyer, request.id()).await.expect("request");
        assert_eq!(decided.status(), RefundRequestStatus::Approved);
        assert_eq!(decided.record().refund_id, Some(refunds[0].id()));
    }
    // 8 purchases of 2 lamps; 4 refunds of 7.00 and 4 of the whole 20.00.
    assert_eq!(h.balance(&buyer).await, 20_000 - 8 * 2_000 + 4 * 700 + 4 * 2_000);
    assert_eq!(h.balance(&merchant).await, 8 * 2_000 - 4 * 700 - 4 * 2_000);
    h.assert_ledger_ok().await;
}
