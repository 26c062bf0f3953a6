//! Manual capture on PostgreSQL: an order authorised, captured in part by one merchant and voided
//! by the other; and captures racing each other, a whole-order void and the expiry job, where
//! exactly one settlement of each part may win.

use application::captures::CaptureError;
use application::checkout::CheckoutCommand;
use domain::catalog::Quantity;
use domain::ids::OrderId;
use domain::money::Currency;
use domain::order::{CaptureMethod, OrderError, OrderStatus, PaymentMethod};
use domain::user::Role;
use domain::wallet::HoldStatus;

use crate::support::{Harness, cart, usd};
use crate::use_cases::jobs_at;

fn authorised(items: &[(domain::ids::ProductId, i64)]) -> CheckoutCommand {
    CheckoutCommand {
        capture: CaptureMethod::Manual,
        ..cart(items, PaymentMethod::Wallet)
    }
}

#[tokio::test]
async fn a_two_merchant_order_captured_in_part_by_one_and_voided_by_the_other_on_postgres() {
    let h = Harness::new().await;
    let (ann, bob) = (h.user(Role::Merchant).await, h.user(Role::Merchant).await);
    let buyer = h.funded_customer(10_000).await;
    let (mug, pen) = (h.product(&ann, 1_000, 5).await, h.product(&bob, 300, 5).await);
    let (mug, pen) = (mug.product.id, pen.product.id);
    let order = h
        .app
        .checkout(&buyer, authorised(&[(mug, 3), (pen, 2)]), None)
        .await
        .expect("authorise")
        .order;
    assert_eq!(order.status(), OrderStatus::Authorised);
    assert_eq!((h.stock(mug).await, h.stock(pen).await), ((2, 3), (3, 2)));

    let two = vec![(mug, Quantity::new(2).expect("quantity"))];
    h.app.capture_order(&ann, order.id(), Some(two), None).await.expect("capture");
    h.app.void_order(&bob, order.id(), None).await.expect("void");

    let details = h.app.order_details(&buyer, order.id()).await.expect("details");
    let stored = &details.order;
    assert_eq!((stored.status(), stored.total()), (OrderStatus::Paid, usd(2_000)));
    let captured: Vec<_> = stored.items().iter().map(|item| item.captured).collect();
    assert_eq!(captured, vec![Some(2), Some(0)], "what each item captured is stored");
    let holds: Vec<_> = details.holds.iter().map(|hold| (hold.payee, hold.status, hold.captured)).collect();
    assert!(holds.contains(&(Some(ann.user_id), HoldStatus::Captured, usd(2_000))), "{holds:?}");
    assert!(holds.contains(&(Some(bob.user_id), HoldStatus::Released, usd(0))), "{holds:?}");
    assert_eq!((h.stock(mug).await, h.stock(pen).await), ((3, 0), (5, 0)));
    let wallet = h.app.wallet(&buyer, Currency::Usd).await.expect("wallet");
    assert_eq!((wallet.balance(), wallet.held()), (usd(8_000), usd(0)));
    assert_eq!((h.balance(&ann).await, h.balance(&bob).await), (2_000, 0));
    h.assert_ledger_ok().await;
}

/// Places a two-merchant authorised order for the race rounds.
async fn authorised_order(h: &Harness, buyer: &application::auth::Caller, products: [domain::ids::ProductId; 2]) -> OrderId {
    let items = [(products[0], 1), (products[1], 1)];
    h.app.checkout(buyer, authorised(&items), None).await.expect("authorise").order.id()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn settlements_of_one_part_racing_each_other_end_in_exactly_one_on_postgres() {
    let h = Harness::new().await;
    let (ann, bob) = (h.user(Role::Merchant).await, h.user(Role::Merchant).await);
    let buyer = h.funded_customer(100_000).await;
    let products = [
        h.product(&ann, 500, 100).await.product.id,
        h.product(&bob, 300, 100).await.product.id,
    ];
    let expiry = jobs_at(&h, time::OffsetDateTime::now_utc() + time::Duration::days(8), 1);
    let mut ann_took = 0;
    for round in 0..12 {
        let order = authorised_order(&h, &buyer, products).await;
        let captures = match round % 3 {
            // Two captures of the same part: one takes it, the other finds it settled.
            0 => {
                let (first, second) = tokio::join!(
                    h.app.capture_order(&ann, order, None, None),
                    h.app.capture_order(&ann, order, None, None)
                );
                let lost = if first.is_ok() { &second } else { &first };
                assert!(
                    matches!(lost, Err(CaptureError::Order(OrderError::NoPendingPart(_)))),
                    "round {round}: {lost:?}"
                );
                usize::from(first.is_ok()) + usize::from(second.is_ok())
            }
            // A capture against the buyer voiding the whole order.
            1 => {
                let (captured, voided) = tokio::join!(h.app.capture_order(&ann, order, None, None), h.app.void_order(&buyer, order, None));
                assert!(captured.is_ok() != voided.is_ok(), "round {round}: {captured:?} {voided:?}");
                usize::from(captured.is_ok())
            }
            // A capture against the expiry job.
            _ => {
                let (captured, expired) = tokio::join!(h.app.capture_order(&ann, order, None, None), expiry[0].release_expired_holds(10));
                expired.expect("job");
                usize::from(captured.is_ok())
            }
        };
        let details = h.app.order_details(&buyer, order).await.expect("details");
        let ann_hold = details
            .holds
            .iter()
            .find(|hold| hold.payee == Some(ann.user_id))
            .expect("ann's hold");
        let expected = if captures == 1 {
            HoldStatus::Captured
        } else {
            HoldStatus::Released
        };
        match (round % 3, ann_hold.status) {
            (2, HoldStatus::Expired) if captures == 0 => {}
            (_, status) => assert_eq!(status, expected, "round {round}: exactly one settlement of ann's part won"),
        }
        assert!(captures <= 1, "round {round}: ann's part was captured twice");
        ann_took += i64::try_from(captures).expect("count") * 500;
        // Whatever is still pending ends now, so the next round starts clean.
        let _ = h.app.void_order(&h.admin_caller(), order, None).await;
        let details = h.app.order_details(&buyer, order).await.expect("details");
        assert!(details.holds.iter().all(|hold| hold.status != HoldStatus::Pending), "round {round}");
        let status = if captures == 1 { OrderStatus::Paid } else { OrderStatus::Cancelled };
        assert_eq!(details.order.status(), status, "round {round}");
    }
    assert_eq!(h.balance(&ann).await, ann_took);
    assert_eq!(h.balance(&bob).await, 0, "bob never captured");
    let wallet = h.app.wallet(&buyer, Currency::Usd).await.expect("wallet");
    assert_eq!((wallet.balance(), wallet.held()), (usd(100_000 - ann_took), usd(0)));
    let shelf = (h.stock(products[0]).await, h.stock(products[1]).await);
    assert_eq!(
        shelf,
        ((100 - ann_took / 500, 0), (100, 0)),
        "only captured units left the shelf, none stay reserved"
    );
    h.assert_ledger_ok().await;
}
