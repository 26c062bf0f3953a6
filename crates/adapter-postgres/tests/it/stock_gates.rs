//! Stock gates: only `stock_row_waiters` transactions of one process queue in PostgreSQL for a
//! stock row; the others wait in the process, and only while they hold no row lock.

use std::time::Duration;

use adapter_postgres::{PgSettings, PgStore};
use application::ports::store::{ProductRepository, StoreError, StoreResult, Transaction, UnitOfWork, WalletRepository};
use domain::ids::ProductId;
use domain::user::Role;
use tokio::task::JoinHandle;

use crate::support::{Harness, eventually};

/// A store on the harness's database letting one transaction at a time queue for a stock row.
async fn one_waiter_store(harness: &Harness, lock_timeout: Duration) -> PgStore {
    PgStore::connect(&PgSettings {
        stock_row_waiters: 1,
        lock_timeout,
        ..harness.database.settings().clone()
    })
    .await
    .expect("store")
}

async fn stocked_product(harness: &Harness) -> ProductId {
    let merchant = harness.user(Role::Merchant).await;
    harness.product(&merchant, 500, 10).await.product.id
}

/// A transaction, started now, that locks the product's cart and commits.
fn lock_cart_later(store: &PgStore, product: ProductId) -> JoinHandle<StoreResult<usize>> {
    let store = store.clone();
    tokio::spawn(async move {
        let mut tx = store.begin().await.expect("begin");
        let cart = tx.lock_cart(&[product]).await;
        tx.commit().await.expect("commit");
        cart.map(|rows| rows.len())
    })
}

/// Waits for a transaction that was waiting for the row to lock it.
async fn assert_went_on(waiter: JoinHandle<StoreResult<usize>>) {
    let locked = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("the waiting transaction went on")
        .expect("task");
    assert_eq!(locked.expect("lock"), 1);
}

/// Backends of this database waiting for a heavyweight lock (a row lock among them).
async fn lock_waiters(client: &tokio_postgres::Client) -> i64 {
    let row = client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
            &[],
        )
        .await
        .expect("pg_stat_activity");
    row.get(0)
}

#[tokio::test]
async fn a_second_buyer_of_a_held_stock_row_waits_in_the_process_and_then_gets_it() {
    let harness = Harness::new().await;
    let product = stocked_product(&harness).await;
    let store = one_waiter_store(&harness, Duration::from_secs(5)).await;

    let mut holder = store.begin().await.expect("begin");
    holder.lock_cart(&[product]).await.expect("lock");
    let second = lock_cart_later(&store, product);
    eventually("the second transaction to wait at the gate", || async {
        store.stock_gate_waiters() == 1
    })
    .await;
    assert!(!second.is_finished(), "the second transaction waits while the first holds the row");
    let client = harness.database.raw_client().await;
    assert_eq!(lock_waiters(&client).await, 0, "it waits in the process, not in PostgreSQL");

    holder.commit().await.expect("commit");
    assert_went_on(second).await;
}

#[tokio::test]
async fn waiting_at_a_full_gate_ends_at_the_lock_timeout() {
    let harness = Harness::new().await;
    let product = stocked_product(&harness).await;
    let store = one_waiter_store(&harness, Duration::from_millis(200)).await;

    let mut holder = store.begin().await.expect("begin");
    holder.lock_stock(&[product]).await.expect("lock");
    let mut late = store.begin().await.expect("begin");
    let refused = late.lock_cart(&[product]).await;
    assert!(matches!(refused, Err(StoreError::Timeout)), "{refused:?}");
    late.rollback().await.expect("rollback");
    holder.rollback().await.expect("rollback");
}

/// A transaction that has already locked something never waits at a gate (it could close a cycle
/// with a row lock); it queues in PostgreSQL like any lock wait.
#[tokio::test]
async fn a_transaction_already_holding_locks_queues_in_postgres_instead() {
    let harness = Harness::new().await;
    let product = stocked_product(&harness).await;
    let buyer = harness.funded_customer(1_000).await;
    let store = one_waiter_store(&harness, Duration::from_secs(5)).await;

    let mut holder = store.begin().await.expect("begin");
    holder.lock_cart(&[product]).await.expect("lock");
    let second = tokio::spawn({
        let store = store.clone();
        async move {
            let mut tx = store.begin().await.expect("begin");
            let wallet = tx
                .find_user_wallet(buyer.user_id, domain::money::Currency::Usd)
                .await
                .expect("find")
                .expect("wallet");
            tx.lock_wallets(&[wallet.id()]).await.expect("wallet lock");
            let stock = tx.lock_stock(&[product]).await;
            tx.commit().await.expect("commit");
            stock.map(|rows| rows.len())
        }
    });
    let client = harness.database.raw_client().await;
    eventually("a transaction to wait for a lock in PostgreSQL", || async {
        lock_waiters(&client).await > 0
    })
    .await;
    assert_eq!(
        lock_waiters(&client).await,
        1,
        "the second transaction waits for the row in PostgreSQL"
    );
    assert_eq!(store.stock_gate_waiters(), 0, "not at a gate");

    holder.commit().await.expect("commit");
    assert_went_on(second).await;
}

/// Buyers waiting at a gate have not taken a connection yet: other work still gets one from a
/// small pool during a flash sale.
#[tokio::test]
async fn buyers_waiting_at_a_gate_leave_the_pool_to_other_work() {
    let harness = Harness::new().await;
    let product = stocked_product(&harness).await;
    let buyer = harness.funded_customer(1_000).await;
    let store = PgStore::connect(&PgSettings {
        stock_row_waiters: 1,
        pool_max_size: 2,
        ..harness.database.settings().clone()
    })
    .await
    .expect("store");

    let mut holder = store.begin().await.expect("begin");
    holder.lock_cart(&[product]).await.expect("lock");
    let waiting: Vec<_> = (0..4).map(|_| lock_cart_later(&store, product)).collect();
    eventually("the four buyers to wait at the gate", || async { store.stock_gate_waiters() == 4 }).await;

    let other_work = async {
        let mut tx = store.begin().await.expect("begin");
        let wallet = tx.find_user_wallet(buyer.user_id, domain::money::Currency::Usd).await;
        tx.commit().await.expect("commit");
        wallet
    };
    let wallet = tokio::time::timeout(Duration::from_secs(5), other_work)
        .await
        .expect("a connection was free for other work");
    assert!(wallet.expect("find").is_some());

    holder.commit().await.expect("commit");
    for waiter in waiting {
        assert_went_on(waiter).await;
    }
}
