//! Idempotency keys with Stripe's semantics: the key is claimed in the use case's own transaction,
//! a multi-step request resumes where it stopped, and a refusal is an outcome like a success.

use std::sync::{Arc, Mutex};

use application::checkout::{Checkout, CheckoutError};
use application::idempotency::{IdempotencyError, IdempotencyKey, IdempotencyScope, Idempotent, KeyStatus, StoredResponse};
use application::ports::gateway::{CheckoutSession, GatewayError, GatewayRefund, GatewayRefundStatus, RefundRequest};
use application::ports::store::{StoreError, Transaction, UnitOfWork};
use application::ports::system::Clock;
use application::refunds::{RefundCommand, RefundError};
use application::transfers::{Recipient, TransferError, TransferRequest};
use domain::payment::{Payment, PaymentStatus, Refund, RefundStatus};
use domain::user::Role;

use crate::orders::card_cart;
use crate::support::{Harness, MockGateway, provider, usd};

fn scope(caller: &application::auth::Caller, key: &str) -> IdempotencyScope {
    IdempotencyScope {
        principal: Some(caller.user_id),
        key: IdempotencyKey::parse(key).unwrap_or_else(|e| panic!("{e}")),
    }
}

fn keyed<T>(caller: &application::auth::Caller, key: &str, render: fn(&T) -> StoredResponse) -> Idempotent<T> {
    Idempotent {
        scope: scope(caller, key),
        fingerprint: "fp".into(),
        render,
    }
}

fn render_transfer(transfer: &domain::wallet::Transfer) -> StoredResponse {
    StoredResponse {
        status: 201,
        body: transfer.id.to_string().into_bytes(),
        location: None,
    }
}

fn render_checkout(checkout: &Checkout) -> StoredResponse {
    StoredResponse {
        status: 201,
        body: checkout.order.id().to_string().into_bytes(),
        location: None,
    }
}

// The use case's output is a `Vec`, and a renderer takes `&T`.
#[allow(clippy::ptr_arg)]
fn render_refunds(refunds: &Vec<Refund>) -> StoredResponse {
    let ids: Vec<String> = refunds.iter().map(|r| format!("{}:{}", r.id(), r.status().as_str())).collect();
    StoredResponse {
        status: 201,
        body: ids.join(",").into_bytes(),
        location: None,
    }
}

fn transfer_to(to: &application::auth::Caller, minor: i64) -> TransferRequest {
    TransferRequest {
        to: Recipient::Id(to.user_id),
        amount: usd(minor),
        note: String::new(),
    }
}

#[tokio::test]
async fn a_completed_key_replays_and_moves_money_once() -> Result<(), Box<dyn std::error::Error>> {
    let h = Harness::new();
    let alice = h.funded_customer(1_000).await;
    let bob = h.user(Role::Customer).await;
    let key = || keyed(&alice, "k1", render_transfer);
    assert_eq!(h.app.idempotency_status(&scope(&alice, "k1"), "fp").await?, KeyStatus::Free);
    let transfer = h.app.transfer(&alice, transfer_to(&bob, 300), Some(key())).await?;
    assert_eq!(
        h.app.idempotency_status(&scope(&alice, "k1"), "fp").await?,
        KeyStatus::Replay(render_transfer(&transfer))
    );
    // A request that raced the first one finds the key completed in its own transaction.
    assert!(matches!(
        h.app.transfer(&alice, transfer_to(&bob, 300), Some(key())).await,
        Err(TransferError::Idempotency(IdempotencyError::Completed))
    ));
    assert!(matches!(
        h.app.idempotency_status(&scope(&alice, "k1"), "other").await,
        Err(IdempotencyError::Mismatch)
    ));
    assert_eq!(h.app.idempotency_status(&scope(&bob, "k1"), "fp").await?, KeyStatus::Free);
    assert_eq!(h.balance(&alice).await, 700);
    Ok(())
}

#[tokio::test]
async fn a_key_whose_transaction_failed_is_free_at_once() -> Result<(), Box<dyn std::error::Error>> {
    let h = Harness::new();
    let alice = h.funded_customer(1_000).await;
    let bob = h.user(Role::Customer).await;
    h.store.inject_commit_failures(1);
    let failed = h
        .app
        .transfer(&alice, transfer_to(&bob, 300), Some(keyed(&alice, "k1", render_transfer)))
        .await;
    assert!(
        matches!(failed, Err(TransferError::Store(StoreError::Unavailable(_)))),
        "{failed:?}"
    );
    // The claim rolled back with the effect: nothing to release, nothing to wait for.
    assert_eq!(h.app.idempotency_status(&scope(&alice, "k1"), "fp").await?, KeyStatus::Free);
    h.app
        .transfer(&alice, transfer_to(&bob, 300), Some(keyed(&alice, "k1", render_transfer)))
        .await?;
    assert_eq!((h.balance(&alice).await, h.balance(&bob).await), (700, 300));
    Ok(())
}

#[tokio::test]
async fn a_key_held_by_a_running_request_conflicts_until_its_lease_ends() -> Result<(), Box<dyn std::error::Error>> {
    let h = Harness::new();
    let alice = h.user(Role::Customer).await;
    let record = application::idempotency::IdempotencyRecord {
        scope: scope(&alice, "k1"),
        fingerprint: "fp".into(),
        state: application::idempotency::IdempotencyState::InProgress {
            locked_until: h.clock.now() + time::Duration::seconds(60),
            recovery: None,
        },
        created_at: h.clock.now(),
    };
    let mut tx = h.store.begin().await?;
    application::ports::store::IdempotencyRepository::claim_idempotency_key(&mut tx, &record).await?;
    tx.commit().await?;
    assert!(matches!(
        h.app.idempotency_status(&scope(&alice, "k1"), "fp").await,
        Err(IdempotencyError::InProgress)
    ));
    // The process that held the claim died: after the lease, another attempt takes over.
    h.clock.advance(time::Duration::seconds(61));
    assert_eq!(h.app.idempotency_status(&scope(&alice, "k1"), "fp").await?, KeyStatus::Free);
    Ok(())
}

#[tokio::test]
async fn a_refusal_is_stored_and_replayed_like_a_success() -> Result<(), Box<dyn std::error::Error>> {
    let h = Harness::new();
    let alice = h.funded_customer(100).await;
    let bob = h.user(Role::Customer).await;
    let refused = h
        .app
        .transfer(&alice, transfer_to(&bob, 300), Some(keyed(&alice, "k1", render_transfer)))
        .await;
    assert!(matches!(refused, Err(TransferError::InsufficientFunds { .. })));
    let problem = StoredResponse {
        status: 422,
        body: b"insufficient funds".to_vec(),
        location: None,
    };
    h.app.store_idempotent_refusal(&scope(&alice, "k1"), "fp", &problem).await?;
    h.fund(&alice, 1_000).await;
    assert_eq!(
        h.app.idempotency_status(&scope(&alice, "k1"), "fp").await?,
        KeyStatus::Replay(problem),
        "the outcome stays the refusal even once the funds are there"
    );
    assert_eq!(h.balance(&bob).await, 0);
    Ok(())
}

/// A gateway whose refunds succeed (the same provider refund for the same provider key), counting
/// the requests it gets; `on_refund` runs first, to inject a fault.
fn counting_gateway(requests: Arc<Mutex<Vec<RefundRequest>>>, on_refund: impl Fn() + Send + Sync + 'static) -> MockGateway {
    let mut gateway = MockGateway::new();
    gateway.expect_provider().return_const(provider());
    gateway.expect_supports_currency().return_const(true);
    gateway.expect_create_checkout().returning(|request| {
        Ok(CheckoutSession {
            session_id: format!("cs_{}", request.payment_id.as_uuid().simple()),
            checkout_url: format!("https://pay.example/{}", request.payment_id),
        })
    });
    gateway.expect_refund().returning(move |request| {
        on_refund();
        let provider_refund_id = format!("re_{}", request.idempotency_key);
        requests.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(request);
        Ok(GatewayRefund {
            provider_refund_id,
            status: GatewayRefundStatus::Succeeded,
        })
    });
    gateway
}

/// A paid card order for two units of a 7.00 product.
async fn paid_card_order(h: &Harness) -> (application::auth::Caller, application::auth::Caller, Payment) {
    let ann = h.user(Role::Merchant).await;
    let buyer = h.user(Role::Customer).await;
    let mug = h.product(&ann, 700, 3).await;
    let checkout = h
        .app
        .checkout(&buyer, card_cart(&[(mug.product.id, 2)]), None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let payment = checkout.payment.unwrap_or_else(|| panic!("no payment"));
    crate::payments::pay(h, &payment).await;
    (ann, buyer, payment)
}

#[tokio::test]
async fn a_refund_retried_after_a_failure_past_the_provider_call_refunds_once() -> Result<(), Box<dyn std::error::Error>> {
    let requests = Arc::new(Mutex::new(Vec::new()));
    let faults: Arc<Mutex<Option<adapter_memory::MemoryStore>>> = Arc::new(Mutex::new(None));
    let inject = Arc::clone(&faults);
    let gateway = counting_gateway(Arc::clone(&requests), move || {
        // The provider refunds; then the transaction recording its answer fails, once.
        if let Some(store) = inject.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
            store.inject_commit_failures(1);
        }
    });
    let h = Harness::with_gateway(gateway);
    let (ann, buyer, payment) = paid_card_order(&h).await;
    let order_id = crate::payments::payment_order(&payment);
    let command = || RefundCommand {
        amount: Some(usd(400)),
        merchant_id: None,
        reason: "damaged".into(),
    };
    *faults.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(h.store.clone());
    let failed = h
        .app
        .refund_order(&ann, order_id, command(), Some(keyed(&ann, "r1", render_refunds)))
        .await;
    assert!(matches!(failed, Err(RefundError::Store(StoreError::Unavailable(_)))), "{failed:?}");
    // The request ended without an outcome: the HTTP layer ends the key's lease.
    h.app.end_idempotency_lease(&scope(&ann, "r1")).await?;
    let refunds = h
        .app
        .refund_order(&ann, order_id, command(), Some(keyed(&ann, "r1", render_refunds)))
        .await?;
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0].status(), RefundStatus::Succeeded);
    let requests = requests.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    assert_eq!(requests.len(), 2, "the provider is asked again...");
    assert_eq!(
        requests[0].idempotency_key, requests[1].idempotency_key,
        "...under the same provider key"
    );
    assert_eq!(h.balance(&ann).await, 1_000, "the merchant's wallet is debited once");
    let details = h.app.order_details(&buyer, order_id).await?;
    assert_eq!((details.refunds.len(), details.order.refunded()), (1, usd(400)));
    assert_eq!(
        h.app.idempotency_status(&scope(&ann, "r1"), "fp").await?,
        KeyStatus::Replay(render_refunds(&refunds))
    );
    h.assert_ledger_ok().await;
    Ok(())
}

#[tokio::test]
async fn a_card_checkout_retried_after_the_gateway_was_down_resumes_its_order() -> Result<(), Box<dyn std::error::Error>> {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&calls);
    let mut gateway = MockGateway::new();
    gateway.expect_provider().return_const(provider());
    gateway.expect_supports_currency().return_const(true);
    gateway.expect_create_checkout().returning(move |request| {
        let mut seen = seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        seen.push(request.idempotency_key.clone());
        if seen.len() == 1 {
            return Err(GatewayError::Unavailable("503".into()));
        }
        Ok(CheckoutSession {
            session_id: format!("cs_{}", request.payment_id.as_uuid().simple()),
            checkout_url: "https://pay.example/x".into(),
        })
    });
    let h = Harness::with_gateway(gateway);
    let ann = h.user(Role::Merchant).await;
    let buyer = h.user(Role::Customer).await;
    let mug = h.product(&ann, 700, 3).await;
    let cart = || card_cart(&[(mug.product.id, 2)]);
    let failed = h.app.checkout(&buyer, cart(), Some(keyed(&buyer, "c1", render_checkout))).await;
    assert!(matches!(failed, Err(CheckoutError::Gateway(GatewayError::Unavailable(_)))));
    assert_eq!(h.stock(&mug).await, (1, 2), "the order stays pending with its stock reserved");
    h.app.end_idempotency_lease(&scope(&buyer, "c1")).await?;
    let checkout = h.app.checkout(&buyer, cart(), Some(keyed(&buyer, "c1", render_checkout))).await?;
    let payment = checkout.payment.clone().unwrap_or_else(|| panic!("no payment"));
    assert_eq!(payment.status(), PaymentStatus::Pending);
    assert!(payment.checkout_url().is_some());
    let keys = calls.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    assert_eq!((keys.len(), &keys[0]), (2, &keys[1]), "the same checkout is asked for again");
    let orders = h.app.my_orders(&buyer, &application::pagination::PageRequest::first(10)).await?;
    assert_eq!(orders.items.len(), 1, "one order, not two");
    assert_eq!(h.stock(&mug).await, (1, 2));
    Ok(())
}
