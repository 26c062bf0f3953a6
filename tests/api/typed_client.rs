//! A client program's view of the API: the typed client generated from the OpenAPI document
//! (`crates/api-client`), with no hand-written requests.

use std::num::NonZeroU64;

use api_client::types;

use crate::helpers::{TestApp, answer, parse};
use crate::on_every_backend;

on_every_backend!(
    a_purchase_a_replay_and_a_refund_through_the_typed_client,
    a_refusal_reaches_the_typed_client_as_its_problem
);

fn order_of(product: &str, quantity: u64) -> types::OrderRequest {
    types::OrderRequest {
        capture: None,
        items: vec![types::OrderItemRequest {
            product_id: parse(product),
            quantity: NonZeroU64::new(quantity).expect("a positive quantity"),
        }],
        payment_method: types::PaymentMethodChoice::Wallet,
        provider: None,
    }
}

async fn a_purchase_a_replay_and_a_refund_through_the_typed_client(app: TestApp) {
    let merchant = app.user("merchant").await;
    let buyer = app.customer_with("50.00").await;
    let product = app.product(&merchant, "Typed kettle", "12.50", 3).await;
    let as_buyer = app.client_as(&buyer);

    let key: types::OrdersCreateIdempotencyKey = parse("typed-client-order-1");
    let order = answer(as_buyer.orders_create(Some(&key), &order_of(&product, 2)).await, "the order");
    assert_eq!((order.status.as_str(), order.total.as_str()), ("paid", "25.00"));
    let replay = answer(as_buyer.orders_create(Some(&key), &order_of(&product, 2)).await, "the replay");
    assert_eq!(replay.id, order.id, "a retry with the same key answers the same order");
    assert_eq!(app.balance(&buyer).await, "25.00", "and charges once");
    assert_eq!(app.stock(&product).await, (1, 0));

    let refund = types::RefundRequestBody {
        amount: Some(parse("10.00")),
        merchant_id: None,
        reason: Some(parse("dented lid")),
    };
    let refunds = answer(app.client_as(&merchant).orders_refund(&order.id, None, &refund).await, "the refund");
    assert_eq!(refunds.refunds.len(), 1);
    assert_eq!(refunds.refunds[0].amount, "10.00");
    let shown = answer(as_buyer.orders_show(&order.id).await, "the order");
    assert_eq!(shown.refunded, "10.00");
    assert_eq!(app.balance(&buyer).await, "35.00");
    let history = answer(
        as_buyer
            .wallets_history(types::WalletsHistoryCurrency::Usd, None, NonZeroU64::new(1))
            .await,
        "the history",
    );
    assert_eq!(history.items.len(), 1);
    assert_eq!(history.items[0].amount, "10.00", "the newest posting is the refund");
    app.assert_ledger_ok().await;
}

async fn a_refusal_reaches_the_typed_client_as_its_problem(app: TestApp) {
    let merchant = app.user("merchant").await;
    let buyer = app.customer_with("5.00").await;
    let product = app.product(&merchant, "Typed teapot", "12.50", 3).await;

    let refused = app.client_as(&buyer).orders_create(None, &order_of(&product, 1)).await;
    let Err(api_client::Error::ErrorResponse(problem)) = refused else {
        panic!("an order the wallet cannot pay is refused: {refused:?}");
    };
    assert_eq!(problem.status().as_u16(), 422);
    assert_eq!((problem.code.as_str(), problem.status), ("insufficient_funds", 422));
    assert_eq!(app.stock(&product).await, (3, 0), "a refused order reserves nothing");

    let anonymous = app.client().wallets_show(types::WalletsShowCurrency::Usd).await;
    let Err(api_client::Error::ErrorResponse(problem)) = anonymous else {
        panic!("a wallet without a token is refused: {anonymous:?}");
    };
    assert_eq!((problem.status().as_u16(), problem.code.as_str()), (401, "unauthorized"));
}
