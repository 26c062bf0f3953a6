use application::checkout::{CheckoutCommand, CheckoutError};
use application::orders::OrderCommandError;
use application::pagination::PageRequest;
use application::ports::store::AdminOrderFilter;
use application::refunds::{RefundCommand, RefundError};
use domain::catalog::Quantity;
use domain::ids::ProductId;
use domain::order::{OrderError, OrderStatus, PaymentMethod};
use domain::payment::{PaymentStatus, RefundStatus};
use domain::user::Role;

use crate::support::{Harness, usd};

fn quantity(units: i64) -> Quantity {
    Quantity::new(units).unwrap_or_else(|e| panic!("{e}"))
}

pub fn wallet_cart(items: &[(ProductId, i64)]) -> CheckoutCommand {
    CheckoutCommand {
        items: items.iter().map(|(id, q)| (*id, quantity(*q))).collect(),
        payment_method: PaymentMethod::Wallet,
        provider: None,
        capture: Default::default(),
    }
}

pub fn card_cart(items: &[(ProductId, i64)]) -> CheckoutCommand {
    CheckoutCommand {
        payment_method: PaymentMethod::Card,
        ..wallet_cart(items)
    }
}

#[tokio::test]
async fn a_two_merchant_cart_pays_each_merchant_exactly_their_share() -> Result<(), Box<dyn std::error::Error>> {
    let h = Harness::new();
    let (ann, bob) = (h.user(Role::Merchant).await, h.user(Role::Merchant).await);
    let buyer = h.funded_customer(10_000).await;
    let mug = h.product(&ann, 1_250, 5).await;
    let pen = h.product(&bob, 300, 5).await;
    let checkout = h
        .app
        .checkout(&buyer, wallet_cart(&[(mug.product.id, 2), (pen.product.id, 3)]), None)
        .await?;
    assert_eq!(checkout.order.status(), OrderStatus::Paid);
    assert_eq!(checkout.order.total(), usd(3_400));
    assert_eq!(h.balance(&buyer).await, 6_600);
    assert_eq!(h.balance(&ann).await, 2_500);
    assert_eq!(h.balance(&bob).await, 900);
    assert_eq!(h.stock(&mug).await, (3, 0));
    assert_eq!(h.stock(&pen).await, (2, 0));
    let trail = h
        .app
        .order_audit(&h.admin().await, Some(checkout.order.id()), &PageRequest::first(10))
        .await?;
    let statuses: Vec<OrderStatus> = trail.items.iter().map(|c| c.to).collect();
    assert_eq!(statuses, vec![OrderStatus::Paid, OrderStatus::PaymentPending, OrderStatus::Created]);
    h.assert_ledger_ok().await;
    Ok(())
}

#[tokio::test]
async fn an_out_of_stock_item_or_missing_funds_change_nothing() -> Result<(), Box<dyn std::error::Error>> {
    let h = Harness::new();
    let (ann, bob) = (h.user(Role::Merchant).await, h.user(Role::Merchant).await);
    let buyer = h.funded_customer(1_000).await;
    let mug = h.product(&ann, 200, 5).await;
    let pen = h.product(&bob, 100, 1).await;
    let out_of_stock = h
        .app
        .checkout(&buyer, wallet_cart(&[(mug.product.id, 1), (pen.product.id, 2)]), None)
        .await;
    assert!(
        matches!(out_of_stock, Err(CheckoutError::OutOfStock { product_id, available: 1, requested: 2 }) if product_id == pen.product.id)
    );
    let too_dear = h
        .app
        .checkout(&buyer, wallet_cart(&[(mug.product.id, 5), (pen.product.id, 1)]), None)
        .await;
    assert!(matches!(too_dear, Err(CheckoutError::InsufficientFunds { .. })), "{too_dear:?}");
    assert_eq!(
        (h.balance(&buyer).await, h.balance(&ann).await, h.balance(&bob).await),
        (1_000, 0, 0)
    );
    assert_eq!((h.stock(&mug).await, h.stock(&pen).await), ((5, 0), (1, 0)));
    assert!(h.app.my_orders(&buyer, &PageRequest::first(10)).await?.items.is_empty());
    h.assert_ledger_ok().await;
    Ok(())
}

#[tokio::test]
async fn bad_carts_are_refused() -> Result<(), Box<dyn std::error::Error>> {
    let h = Harness::new();
    let ann = h.user(Role::Merchant).await;
    let buyer = h.funded_customer(1_000).await;
    let mug = h.product(&ann, 100, 5).await;
    let unknown = ProductId::from_uuid(uuid::Uuid::now_v7());
    assert!(matches!(
        h.app.checkout(&buyer, wallet_cart(&[]), None).await,
        Err(CheckoutError::Order(OrderError::Empty))
    ));
    assert!(
        matches!(h.app.checkout(&buyer, wallet_cart(&[(unknown, 1)]), None).await, Err(CheckoutError::ProductNotFound(id)) if id == unknown)
    );
    let twice = wallet_cart(&[(mug.product.id, 1), (mug.product.id, 1)]);
    assert!(matches!(
        h.app.checkout(&buyer, twice, None).await,
        Err(CheckoutError::Order(OrderError::DuplicateProduct(_)))
    ));
    let own = h.app.checkout(&ann, wallet_cart(&[(mug.product.id, 1)]), None).await;
    assert!(matches!(own, Err(CheckoutError::Order(OrderError::OwnProduct(_)))));
    h.app.delete_product(&ann, mug.product.id).await?;
    let inactive = h.app.checkout(&buyer, wallet_cart(&[(mug.product.id, 1)]), None).await;
    assert!(matches!(inactive, Err(CheckoutError::Order(OrderError::ProductInactive(_)))));
    Ok(())
}

#[tokio::test]
async fn fifty_buyers_racing_for_ten_units_leave_exactly_ten_orders() -> Result<(), Box<dyn std::error::Error>> {
    let h = Harness::new();
    let merchant = h.user(Role::Merchant).await;
    let item = h.product(&merchant, 500, 10).await;
    let mut buyers = Vec::new();
    for _ in 0..50 {
        buyers.push(h.funded_customer(1_000).await);
    }
    let tasks: Vec<_> = buyers
        .iter()
        .map(|buyer| {
            let (app, buyer, product) = (h.app.clone(), *buyer, item.product.id);
            tokio::spawn(async move { app.checkout(&buyer, wallet_cart(&[(product, 1)]), None).await })
        })
        .collect();
    let (mut paid, mut out_of_stock) = (0, 0);
    for task in tasks {
        match task.await? {
            Ok(_) => paid += 1,
            Err(CheckoutError::OutOfStock { .. }) => out_of_stock += 1,
            Err(other) => panic!("unexpected: {other}"),
        }
    }
    assert_eq!((paid, out_of_stock), (10, 40));
    assert_eq!(h.stock(&item).await, (0, 0));
    assert_eq!(h.balance(&merchant).await, 5_000);
    let mut spent = 0;
    for buyer in &buyers {
        spent += 1_000 - h.balance(buyer).await;
    }
    assert_eq!(spent, 5_000);
    h.assert_ledger_ok().await;
    Ok(())
}

#[tokio::test]
async fn a_card_checkout_reserves_stock_and_waits_for_the_gateway() -> Result<(), Box<dyn std::error::Error>> {
    let h = Harness::new();
    let ann = h.user(Role::Merchant).await;
    let buyer = h.user(Role::Customer).await;
    let mug = h.product(&ann, 700, 3).await;
    let checkout = h.app.checkout(&buyer, card_cart(&[(mug.product.id, 2)]), None).await?;
    assert_eq!(checkout.order.status(), OrderStatus::PaymentPending);
    let payment = checkout.payment.ok_or("no payment")?;
    assert_eq!((payment.status(), payment.amount()), (PaymentStatus::Pending, usd(1_400)));
    assert!(payment.checkout_url().is_some_and(|url| url.starts_with("https://pay.example/")));
    assert_eq!(h.stock(&mug).await, (1, 2));
    let details = h.app.order_details(&buyer, checkout.order.id()).await?;
    assert_eq!(details.payment.map(|p| p.provider_session_id().is_some()), Some(true));
    Ok(())
}

#[tokio::test]
async fn the_buyer_cancels_a_pending_order_and_the_stock_returns() -> Result<(), Box<dyn std::error::Error>> {
    let h = Harness::new();
    let ann = h.user(Role::Merchant).await;
    let buyer = h.user(Role::Customer).await;
    let mug = h.product(&ann, 700, 3).await;
    let checkout = h.app.checkout(&buyer, card_cart(&[(mug.product.id, 2)]), None).await?;
    let other = h.user(Role::Customer).await;
    assert!(matches!(
        h.app.cancel_order(&other, checkout.order.id()).await,
        Err(OrderCommandError::NotFound)
    ));
    assert!(matches!(
        h.app.cancel_order(&ann, checkout.order.id()).await,
        Err(OrderCommandError::Forbidden)
    ));
    let cancelled = h.app.cancel_order(&buyer, checkout.order.id()).await?;
    assert_eq!(cancelled.status(), OrderStatus::Cancelled);
    assert_eq!(h.stock(&mug).await, (3, 0));
    let details = h.app.order_details(&buyer, checkout.order.id()).await?;
    assert_eq!(details.payment.map(|p| p.status()), Some(PaymentStatus::Cancelled));
    assert!(matches!(
        h.app.cancel_order(&buyer, checkout.order.id()).await,
        Err(OrderCommandError::Transition(_))
    ));
    Ok(())
}

#[tokio::test]
async fn merchants_fulfil_and_orders_show_only_to_their_parties() -> Result<(), Box<dyn std::error::Error>> {
    let h = Harness::new();
    let (ann, bob) = (h.user(Role::Merchant).await, h.user(Role::Merchant).await);
    let buyer = h.funded_customer(5_000).await;
    let mug = h.product(&ann, 1_000, 3).await;
    let order = h.app.checkout(&buyer, wallet_cart(&[(mug.product.id, 1)]), None).await?.order;
    assert!(matches!(
        h.app.order_details(&bob, order.id()).await,
        Err(OrderCommandError::NotFound)
    ));
    assert!(matches!(
        h.app.fulfil_order(&bob, order.id()).await,
        Err(OrderCommandError::NotFound)
    ));
    assert!(matches!(
        h.app.fulfil_order(&buyer, order.id()).await,
        Err(OrderCommandError::Forbidden)
    ));
    assert_eq!(h.app.fulfil_order(&ann, order.id()).await?.status(), OrderStatus::Fulfilled);
    assert!(matches!(
        h.app.fulfil_order(&ann, order.id()).await,
        Err(OrderCommandError::Transition(_))
    ));
    assert_eq!(h.app.merchant_sales(&ann, &PageRequest::first(10)).await?.items.len(), 1);
    assert!(h.app.merchant_sales(&bob, &PageRequest::first(10)).await?.items.is_empty());
    assert!(matches!(
        h.app.all_orders(&buyer, AdminOrderFilter::default(), &PageRequest::first(10)).await,
        Err(OrderCommandError::Forbidden)
    ));
    let admin = h.admin().await;
    let fulfilled = h
        .app
        .all_orders(
            &admin,
            AdminOrderFilter {
                status: Some(OrderStatus::Fulfilled),
                ..AdminOrderFilter::default()
            },
            &PageRequest::first(10),
        )
        .await?;
    assert_eq!(fulfilled.items.len(), 1);
    Ok(())
}

#[tokio::test]
async fn wallet_refunds_go_back_to_the_buyer_in_parts_or_whole() -> Result<(), Box<dyn std::error::Error>> {
    let h = Harness::new();
    let (ann, bob) = (h.user(Role::Merchant).await, h.user(Role::Merchant).await);
    let buyer = h.funded_customer(10_000).await;
    let mug = h.product(&ann, 1_000, 5).await;
    let pen = h.product(&bob, 500, 5).await;
    let order = h
        .app
        .checkout(&buyer, wallet_cart(&[(mug.product.id, 2), (pen.product.id, 2)]), None)
        .await?
        .order;
    let partial = RefundCommand {
        amount: Some(usd(300)),
        merchant_id: None,
        reason: "scratched".into(),
    };
    let refunds = h.app.refund_order(&ann, order.id(), partial, None).await?;
    assert_eq!(
        (refunds.len(), refunds[0].status(), refunds[0].merchant_id()),
        (1, RefundStatus::Succeeded, ann.user_id)
    );
    assert_eq!((h.balance(&buyer).await, h.balance(&ann).await), (7_300, 1_700));
    let too_much = RefundCommand {
        amount: Some(usd(1_701)),
        merchant_id: None,
        reason: String::new(),
    };
    assert!(
        matches!(h.app.refund_order(&ann, order.id(), too_much, None).await, Err(RefundError::ExceedsRefundable { refundable }) if refundable == usd(1_700))
    );
    assert!(matches!(
        h.app
            .refund_order(
                &buyer,
                order.id(),
                RefundCommand {
                    amount: None,
                    merchant_id: None,
                    reason: String::new()
                },
                None
            )
            .await,
        Err(RefundError::Forbidden)
    ));
    let admin = h.admin().await;
    let ambiguous = RefundCommand {
        amount: Some(usd(10)),
        merchant_id: None,
        reason: String::new(),
    };
    assert!(matches!(
        h.app.refund_order(&admin, order.id(), ambiguous, None).await,
        Err(RefundError::MerchantRequired)
    ));
    let everything = RefundCommand {
        amount: None,
        merchant_id: None,
        reason: "returned".into(),
    };
    let rest = h.app.refund_order(&admin, order.id(), everything, None).await?;
    assert_eq!(rest.len(), 2);
    assert_eq!(
        (h.balance(&buyer).await, h.balance(&ann).await, h.balance(&bob).await),
        (10_000, 0, 0)
    );
    let details = h.app.order_details(&buyer, order.id()).await?;
    assert_eq!(
        (details.order.status(), details.order.refunded(), details.refunds.len()),
        (OrderStatus::Refunded, usd(3_000), 3)
    );
    let again = RefundCommand {
        amount: None,
        merchant_id: None,
        reason: String::new(),
    };
    assert!(matches!(
        h.app.refund_order(&admin, order.id(), again, None).await,
        Err(RefundError::NotRefundable(OrderStatus::Refunded))
    ));
    h.assert_ledger_ok().await;
    Ok(())
}

#[tokio::test]
async fn a_refund_the_merchant_cannot_cover_is_refused_whole() -> Result<(), Box<dyn std::error::Error>> {
    let h = Harness::new();
    let ann = h.user(Role::Merchant).await;
    let buyer = h.funded_customer(10_000).await;
    let mug = h.product(&ann, 1_000, 5).await;
    let order = h.app.checkout(&buyer, wallet_cart(&[(mug.product.id, 1)]), None).await?.order;
    let payout = application::withdrawals::WithdrawalRequest {
        amount: usd(900),
        destination: "bank".into(),
    };
    h.app.withdraw(&ann, payout, None).await?;
    let refund = RefundCommand {
        amount: None,
        merchant_id: None,
        reason: String::new(),
    };
    assert!(matches!(
        h.app.refund_order(&ann, order.id(), refund, None).await,
        Err(RefundError::MerchantInsufficientFunds { .. })
    ));
    let details = h.app.order_details(&buyer, order.id()).await?;
    assert_eq!((details.order.status(), details.refunds.len()), (OrderStatus::Paid, 0));
    assert_eq!(h.balance(&buyer).await, 9_000);
    h.assert_ledger_ok().await;
    Ok(())
}
