//! Manual capture through the use cases: a wallet order authorised, each merchant capturing or
//! voiding its part, the whole order voided, parts expiring, and who may do what.

use application::captures::CaptureError;
use application::checkout::{CheckoutCommand, CheckoutError};
use application::holds::HoldUseError;
use application::refunds::RefundCommand;
use domain::catalog::Quantity;
use domain::ids::ProductId;
use domain::money::Currency;
use domain::order::{CaptureMethod, OrderError, OrderStatus};
use domain::user::Role;
use domain::wallet::HoldStatus;
use time::Duration;

use crate::orders::{card_cart, wallet_cart};
use crate::support::{Harness, usd};

type Outcome = Result<(), Box<dyn std::error::Error>>;

fn authorised_cart(items: &[(ProductId, i64)]) -> CheckoutCommand {
    CheckoutCommand {
        capture: CaptureMethod::Manual,
        ..wallet_cart(items)
    }
}

fn units(product: ProductId, count: i64) -> (ProductId, Quantity) {
    (product, Quantity::new(count).unwrap_or_else(|e| panic!("{e}")))
}

#[tokio::test]
async fn one_merchant_captures_part_of_its_items_and_the_other_voids_its_part() -> Outcome {
    let h = Harness::new();
    let (ann, bob) = (h.user(Role::Merchant).await, h.user(Role::Merchant).await);
    let buyer = h.funded_customer(10_000).await;
    let mug = h.product(&ann, 1_000, 5).await;
    let cup = h.product(&ann, 200, 5).await;
    let pen = h.product(&bob, 300, 5).await;
    let cart = [(mug.product.id, 3), (cup.product.id, 2), (pen.product.id, 1)];
    let authorised = h.app.checkout(&buyer, authorised_cart(&cart), None).await?.order;
    assert_eq!((authorised.status(), authorised.total()), (OrderStatus::Authorised, usd(3_700)));
    let wallet = h.app.wallet(&buyer, Currency::Usd).await?;
    assert_eq!((wallet.balance(), wallet.held()), (usd(10_000), usd(3_700)));
    assert_eq!(h.stock(&mug).await, (2, 3), "reserved, not sold");

    // Ann ships two of the three mugs and no cup: she takes 20.00 and the rest goes back.
    let captured = h
        .app
        .capture_order(&ann, authorised.id(), Some(vec![units(mug.product.id, 2)]), None)
        .await?;
    assert_eq!(captured.status(), OrderStatus::Authorised, "bob's part still pending");
    assert_eq!(h.balance(&ann).await, 2_000);
    assert_eq!((h.stock(&mug).await, h.stock(&cup).await), ((3, 0), (5, 0)));
    let wallet = h.app.wallet(&buyer, Currency::Usd).await?;
    assert_eq!((wallet.balance(), wallet.held()), (usd(8_000), usd(300)));
    h.assert_ledger_ok().await;

    let voided = h.app.void_order(&bob, authorised.id(), None).await?;
    assert_eq!((voided.status(), voided.total()), (OrderStatus::Paid, usd(2_000)));
    let bought: Vec<_> = voided.items().iter().map(|item| item.captured).collect();
    assert_eq!(bought, vec![Some(2), Some(0), Some(0)]);
    assert_eq!((h.balance(&bob).await, h.stock(&pen).await), (0, (5, 0)));
    let wallet = h.app.wallet(&buyer, Currency::Usd).await?;
    assert_eq!((wallet.balance(), wallet.held()), (usd(8_000), usd(0)));

    // Settled parts stay settled; the paid order refunds what was captured, no more.
    let again = h.app.capture_order(&ann, authorised.id(), None, None).await;
    assert!(matches!(again, Err(CaptureError::NotAuthorised(OrderStatus::Paid))), "{again:?}");
    let refund = RefundCommand {
        amount: None,
        merchant_id: None,
        reason: "changed my mind".into(),
    };
    let refunded = h.app.refund_order(&ann, authorised.id(), refund, None).await?;
    let amounts: Vec<_> = refunded.iter().map(|refund| refund.amount()).collect();
    assert_eq!(amounts, vec![usd(2_000)], "ann's captured share, not her authorised one");
    assert_eq!((h.balance(&buyer).await, h.balance(&ann).await), (10_000, 0));
    h.assert_ledger_ok().await;
    Ok(())
}

#[tokio::test]
async fn the_buyer_voids_the_whole_order_until_a_merchant_captures() -> Outcome {
    let h = Harness::new();
    let (ann, bob) = (h.user(Role::Merchant).await, h.user(Role::Merchant).await);
    let buyer = h.funded_customer(5_000).await;
    let (mug, pen) = (h.product(&ann, 1_000, 5).await, h.product(&bob, 300, 5).await);
    let cart = [(mug.product.id, 1), (pen.product.id, 2)];

    let order = h.app.checkout(&buyer, authorised_cart(&cart), None).await?.order;
    let voided = h.app.void_order(&buyer, order.id(), None).await?;
    assert_eq!(voided.status(), OrderStatus::Cancelled);
    let holds = h.app.order_details(&buyer, order.id()).await?.holds;
    assert_eq!(holds.len(), 2, "one hold per merchant");
    assert!(
        holds.iter().all(|hold| hold.status == HoldStatus::Released),
        "every hold of the order released"
    );
    assert_eq!((h.stock(&mug).await, h.stock(&pen).await), ((5, 0), (5, 0)));
    let wallet = h.app.wallet(&buyer, Currency::Usd).await?;
    assert_eq!((wallet.balance(), wallet.held()), (usd(5_000), usd(0)));

    let order = h.app.checkout(&buyer, authorised_cart(&cart), None).await?.order;
    h.app.capture_order(&bob, order.id(), None, None).await?;
    let refused = h.app.void_order(&buyer, order.id(), None).await;
    assert!(matches!(refused, Err(CaptureError::Forbidden(_))), "{refused:?}");
    // Nor may a cancellation end it: it would give back stock Bob sold and leave Ann's hold.
    let cancelled = h.app.cancel_order(&buyer, order.id()).await;
    assert!(
        matches!(cancelled, Err(application::orders::OrderCommandError::Transition(_))),
        "{cancelled:?}"
    );
    assert_eq!((h.stock(&mug).await, h.stock(&pen).await), ((4, 1), (3, 0)), "nothing released");
    assert_eq!(h.app.wallet(&buyer, Currency::Usd).await?.held(), usd(1_000), "Ann's hold kept");
    // An admin may void what is still pending: Ann's part; Bob keeps what he captured.
    let voided = h.app.void_order(&h.admin().await, order.id(), None).await?;
    assert_eq!((voided.status(), voided.total()), (OrderStatus::Paid, usd(600)));
    assert_eq!((h.balance(&buyer).await, h.balance(&bob).await), (4_400, 600));
    h.assert_ledger_ok().await;
    Ok(())
}

#[tokio::test]
async fn an_uncaptured_part_expires_and_the_order_ends_with_what_was_captured() -> Outcome {
    let h = Harness::new();
    let (ann, bob) = (h.user(Role::Merchant).await, h.user(Role::Merchant).await);
    let buyer = h.funded_customer(5_000).await;
    let (mug, pen) = (h.product(&ann, 1_000, 5).await, h.product(&bob, 300, 5).await);
    let order = h
        .app
        .checkout(&buyer, authorised_cart(&[(mug.product.id, 1), (pen.product.id, 2)]), None)
        .await?
        .order;
    h.app.capture_order(&ann, order.id(), None, None).await?;
    h.clock.advance(Duration::days(6));
    assert_eq!(h.app.release_expired_holds(10).await?, 0, "not yet");
    h.clock.advance(Duration::days(1));
    assert_eq!(h.app.release_expired_holds(10).await?, 1);
    assert_eq!(h.app.release_expired_holds(10).await?, 0, "once");

    let expired = h.app.order_details(&buyer, order.id()).await?.order;
    assert_eq!((expired.status(), expired.total()), (OrderStatus::Paid, usd(1_000)));
    assert_eq!(h.stock(&pen).await, (5, 0));
    let late = h.app.capture_order(&bob, order.id(), None, None).await;
    assert!(matches!(late, Err(CaptureError::NotAuthorised(OrderStatus::Paid))), "{late:?}");
    let wallet = h.app.wallet(&buyer, Currency::Usd).await?;
    assert_eq!((wallet.balance(), wallet.held()), (usd(4_000), usd(0)));

    // With nothing captured, expiry cancels the order.
    let order = h.app.checkout(&buyer, authorised_cart(&[(pen.product.id, 1)]), None).await?.order;
    h.clock.advance(Duration::days(8));
    assert_eq!(h.app.release_expired_holds(10).await?, 1);
    let expired = h.app.order_details(&buyer, order.id()).await?.order;
    assert_eq!(expired.status(), OrderStatus::Cancelled);
    assert_eq!(h.stock(&pen).await, (5, 0));
    h.assert_ledger_ok().await;
    Ok(())
}

#[tokio::test]
async fn an_authorisation_is_all_or_nothing_and_refused_by_card() -> Outcome {
    let h = Harness::new();
    let (ann, bob) = (h.user(Role::Merchant).await, h.user(Role::Merchant).await);
    let buyer = h.funded_customer(1_000).await;
    let (mug, pen) = (h.product(&ann, 800, 5).await, h.product(&bob, 300, 5).await);
    let short = h
        .app
        .checkout(&buyer, authorised_cart(&[(mug.product.id, 1), (pen.product.id, 1)]), None)
        .await;
    assert!(matches!(short, Err(CheckoutError::InsufficientFunds { .. })), "{short:?}");
    let wallet = h.app.wallet(&buyer, Currency::Usd).await?;
    assert_eq!(wallet.held(), usd(0), "no hold kept for the part that fitted");
    assert_eq!((h.stock(&mug).await, h.stock(&pen).await), ((5, 0), (5, 0)));

    let by_card = CheckoutCommand {
        capture: CaptureMethod::Manual,
        ..card_cart(&[(mug.product.id, 1)])
    };
    let refused = h.app.checkout(&buyer, by_card, None).await;
    assert!(matches!(refused, Err(CheckoutError::ManualCaptureByCard)), "{refused:?}");
    Ok(())
}

#[tokio::test]
async fn only_the_parties_settle_and_only_what_was_authorised() -> Outcome {
    let h = Harness::new();
    let (ann, bob, stranger) = (
        h.user(Role::Merchant).await,
        h.user(Role::Merchant).await,
        h.user(Role::Merchant).await,
    );
    let buyer = h.funded_customer(5_000).await;
    let (mug, pen) = (h.product(&ann, 1_000, 5).await, h.product(&bob, 300, 5).await);
    let order = h
        .app
        .checkout(&buyer, authorised_cart(&[(mug.product.id, 2), (pen.product.id, 1)]), None)
        .await?
        .order;

    let outsider = h.app.capture_order(&stranger, order.id(), None, None).await;
    assert!(matches!(outsider, Err(CaptureError::NotFound)), "{outsider:?}");
    let buyer_capture = h.app.capture_order(&buyer, order.id(), None, None).await;
    assert!(matches!(buyer_capture, Err(CaptureError::Forbidden(_))), "{buyer_capture:?}");
    let too_many = h
        .app
        .capture_order(&ann, order.id(), Some(vec![units(mug.product.id, 3)]), None)
        .await;
    assert!(
        matches!(too_many, Err(CaptureError::Order(OrderError::CaptureExceedsOrdered { .. }))),
        "{too_many:?}"
    );
    let not_hers = h
        .app
        .capture_order(&ann, order.id(), Some(vec![units(pen.product.id, 1)]), None)
        .await;
    assert!(
        matches!(not_hers, Err(CaptureError::Order(OrderError::NotInPart(_)))),
        "{not_hers:?}"
    );
    let twice = h
        .app
        .capture_order(
            &ann,
            order.id(),
            Some(vec![units(mug.product.id, 1), units(mug.product.id, 1)]),
            None,
        )
        .await;
    assert!(
        matches!(twice, Err(CaptureError::Order(OrderError::DuplicateProduct(_)))),
        "{twice:?}"
    );

    // The order's holds are the order's: the holds API leaves them alone.
    let holds = h.app.order_details(&ann, order.id()).await?.holds;
    let hold = holds.iter().find(|hold| hold.payee == Some(ann.user_id)).ok_or("ann's hold")?;
    let direct = h.app.void_hold(&ann, hold.id, None).await;
    assert!(matches!(direct, Err(HoldUseError::Forbidden(_))), "{direct:?}");

    h.app.capture_order(&ann, order.id(), None, None).await?;
    let again = h.app.void_order(&ann, order.id(), None).await;
    assert!(matches!(again, Err(CaptureError::Order(OrderError::NoPendingPart(_)))), "{again:?}");

    let paid = h.app.checkout(&buyer, wallet_cart(&[(pen.product.id, 1)]), None).await?.order;
    let automatic = h.app.void_order(&buyer, paid.id(), None).await;
    assert!(matches!(automatic, Err(CaptureError::NotManual)), "{automatic:?}");
    h.assert_ledger_ok().await;
    Ok(())
}
