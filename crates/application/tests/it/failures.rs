//! What the use cases do when a port fails.

use application::auth::{RegisterError, Registration};
use application::checkout::CheckoutError;
use application::ports::gateway::{CheckoutRequest, GatewayError};
use application::ports::security::{PasswordHasher, SecurityError};
use application::ports::store::StoreError;
use application::top_ups::{TopUpError, TopUpRequest};
use application::transfers::{Recipient, TransferError, TransferRequest};
use async_trait::async_trait;
use domain::order::OrderStatus;
use domain::payment::PaymentStatus;
use domain::user::{Password, PasswordHash, Role};

use crate::orders::card_cart;
use crate::support::{Harness, MockGateway, provider, usd};

fn declining_gateway() -> MockGateway {
    let mut gateway = MockGateway::new();
    gateway.expect_provider().return_const(provider());
    gateway.expect_supports_currency().return_const(true);
    gateway
        .expect_create_checkout()
        .returning(|_: CheckoutRequest| Err(GatewayError::Unavailable("503 from the provider".into())));
    gateway
}

#[tokio::test]
async fn a_gateway_that_cannot_open_a_checkout_leaves_no_reserved_stock() -> Result<(), Box<dyn std::error::Error>> {
    let h = Harness::with_gateway(declining_gateway());
    let ann = h.user(Role::Merchant).await;
    let buyer = h.user(Role::Customer).await;
    let mug = h.product(&ann, 700, 3).await;
    let refused = h.app.checkout(&buyer, card_cart(&[(mug.product.id, 2)]), None).await;
    assert!(matches!(refused, Err(CheckoutError::Gateway(GatewayError::Unavailable(_)))));
    assert_eq!(h.stock(&mug).await, (3, 0));
    let orders = h.app.my_orders(&buyer, &application::pagination::PageRequest::first(10)).await?;
    assert_eq!(
        orders.items.iter().map(|o| o.status()).collect::<Vec<_>>(),
        vec![OrderStatus::Cancelled]
    );
    let details = h.app.order_details(&buyer, orders.items[0].id()).await?;
    assert_eq!(details.payment.map(|p| p.status()), Some(PaymentStatus::Failed));
    let top_up = h
        .app
        .start_top_up(
            &buyer,
            TopUpRequest {
                amount: usd(100),
                provider: None,
            },
            None,
        )
        .await;
    assert!(matches!(top_up, Err(TopUpError::Gateway(_))));
    Ok(())
}

mockall::mock! {
    #[derive(Debug)]
    pub Hasher {}

    #[async_trait]
    impl PasswordHasher for Hasher {
        async fn hash(&self, password: &Password) -> Result<PasswordHash, SecurityError>;
        async fn verify(&self, password: &Password, hash: &PasswordHash) -> Result<bool, SecurityError>;
    }
}

#[tokio::test]
async fn a_hashing_failure_registers_nobody() -> Result<(), Box<dyn std::error::Error>> {
    let mut h = Harness::new();
    let mut hasher = MockHasher::new();
    hasher
        .expect_hash()
        .returning(|_| Err(SecurityError::Hashing("out of memory".into())));
    let app = std::sync::Arc::get_mut(&mut h.app).ok_or("shared app")?;
    app.hasher = std::sync::Arc::new(hasher);
    let registration = Registration {
        email: "ann@example.com".into(),
        password: "correct horse 9".into(),
        role: Role::Customer,
    };
    assert!(matches!(h.app.register(registration, None).await, Err(RegisterError::Security(_))));
    assert!(h.app.login("ann@example.com", "correct horse 9").await.is_err());
    Ok(())
}

#[tokio::test]
async fn a_conflicting_commit_is_retried_and_applied_once() -> Result<(), Box<dyn std::error::Error>> {
    let h = Harness::new();
    let alice = h.funded_customer(1_000).await;
    let bob = h.user(Role::Customer).await;
    h.store.inject_conflicts(2);
    let request = TransferRequest {
        to: Recipient::Id(bob.user_id),
        amount: usd(100),
        note: String::new(),
    };
    h.app.transfer(&alice, request, None).await?;
    assert_eq!((h.balance(&alice).await, h.balance(&bob).await), (900, 100));
    h.assert_ledger_ok().await;
    Ok(())
}

#[tokio::test]
async fn a_failed_commit_surfaces_and_moves_nothing() -> Result<(), Box<dyn std::error::Error>> {
    let h = Harness::new();
    let alice = h.funded_customer(1_000).await;
    let bob = h.user(Role::Customer).await;
    h.store.inject_commit_failures(1);
    let request = TransferRequest {
        to: Recipient::Id(bob.user_id),
        amount: usd(100),
        note: String::new(),
    };
    let failed = h.app.transfer(&alice, request, None).await;
    assert!(matches!(failed, Err(TransferError::Store(StoreError::Unavailable(_)))));
    assert_eq!((h.balance(&alice).await, h.balance(&bob).await), (1_000, 0));
    h.store.inject_conflicts(10);
    let request = TransferRequest {
        to: Recipient::Id(bob.user_id),
        amount: usd(100),
        note: String::new(),
    };
    assert!(matches!(
        h.app.transfer(&alice, request, None).await,
        Err(TransferError::Store(StoreError::Conflict))
    ));
    h.store.inject_conflicts(0);
    assert_eq!((h.balance(&alice).await, h.balance(&bob).await), (1_000, 0));
    h.assert_ledger_ok().await;
    Ok(())
}
