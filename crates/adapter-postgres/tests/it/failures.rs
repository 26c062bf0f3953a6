//! What callers see when things go wrong: a lost connection, a lock held too long, a unique key
//! taken, an overdraft, an unreachable server. Each is a clean `StoreError` of the right kind, and
//! the store keeps working afterwards.

use std::time::Duration;

use adapter_postgres::testing::TestDatabase;
use adapter_postgres::{PgSettings, PgStore, SetupError, run_migrations};
use application::ports::store::{ProductRepository, StoreError, Transaction, UnitOfWork, UserRepository, WalletRepository};
use domain::catalog::{Product, Stock};
use domain::ids::{ProductId, WalletId};
use domain::money::{Currency, Money};
use domain::user::{Role, User};
use domain::wallet::{Wallet, WalletOwner};
use uuid::Uuid;

use crate::support::{eventually, stored_user};

/// A user with an empty USD wallet, committed.
async fn user_with_wallet(store: &PgStore) -> (User, WalletId) {
    let user = stored_user(Role::Merchant);
    let mut tx = store.begin().await.expect("begin");
    tx.insert_user(&user).await.expect("user");
    let wallet = tx
        .ensure_user_wallet(user.id, Currency::Usd, WalletId::from_uuid(Uuid::now_v7()), user.created_at)
        .await
        .expect("wallet");
    tx.commit().await.expect("commit");
    (user, wallet)
}

#[tokio::test]
async fn a_backend_killed_mid_transaction_is_unavailable_leaves_nothing_and_the_pool_recovers() {
    let database = TestDatabase::create().await;
    let store = database.store();
    let doomed = stored_user(Role::Merchant);
    let mut tx = store.begin().await.expect("begin");
    tx.insert_user(&doomed).await.expect("insert");
    let pid = tx.backend_pid().await.expect("pid");

    // The timeout makes the call wait until the backend is gone, so the next statement meets a
    // dead connection instead of racing the termination.
    let admin = database.raw_client().await;
    admin
        .execute("SELECT pg_terminate_backend($1, 5000)", &[&pid])
        .await
        .expect("terminate");

    let next = tx.find_user(doomed.id).await;
    assert!(matches!(next, Err(StoreError::Unavailable(_))), "{next:?}");
    let commit = tx.commit().await;
    assert!(matches!(commit, Err(StoreError::Unavailable(_))), "{commit:?}");

    let survivor = stored_user(Role::Merchant);
    let mut tx = store.begin().await.expect("the pool hands out a working connection");
    assert_eq!(tx.find_user(doomed.id).await.expect("find"), None, "nothing was written");
    tx.insert_user(&survivor).await.expect("insert");
    tx.commit().await.expect("commit");
    let mut tx = store.begin().await.expect("begin");
    assert_eq!(tx.find_user(survivor.id).await.expect("find").map(|u| u.id), Some(survivor.id));
}

#[tokio::test]
async fn a_commit_on_a_killed_backend_is_unavailable() {
    let database = TestDatabase::create().await;
    let store = database.store();
    let doomed = stored_user(Role::Merchant);
    let mut tx = store.begin().await.expect("begin");
    tx.insert_user(&doomed).await.expect("insert");
    let pid = tx.backend_pid().await.expect("pid");
    database
        .raw_client()
        .await
        .execute("SELECT pg_terminate_backend($1, 5000)", &[&pid])
        .await
        .expect("terminate");

    let commit = tx.commit().await;
    assert!(matches!(commit, Err(StoreError::Unavailable(_))), "{commit:?}");
    let mut tx = store.begin().await.expect("begin");
    assert_eq!(tx.find_user(doomed.id).await.expect("find"), None);
}

#[tokio::test]
async fn a_lock_held_past_the_lock_timeout_is_a_timeout() {
    let database = TestDatabase::create().await;
    let store = database.store();
    let (_, wallet) = user_with_wallet(&store).await;
    let impatient = PgStore::connect(&PgSettings {
        lock_timeout: Duration::from_millis(20),
        ..database.settings().clone()
    })
    .await
    .expect("second store");

    let mut holder = store.begin().await.expect("begin");
    holder.lock_wallets(&[wallet]).await.expect("lock");
    let mut waiter = impatient.begin().await.expect("begin");
    let waited = waiter.lock_wallets(&[wallet]).await;
    assert!(matches!(waited, Err(StoreError::Timeout)), "{waited:?}");
    assert!(
        matches!(waiter.commit().await, Err(StoreError::Timeout)),
        "the aborted transaction does not commit"
    );
    holder.rollback().await.expect("rollback");

    let mut again = impatient.begin().await.expect("begin");
    assert_eq!(again.lock_wallets(&[wallet]).await.expect("lock once free").len(), 1);
}

/// The lock order prevents this in the use cases; here it is broken on purpose so that
/// PostgreSQL's own deadlock detector (SQLSTATE 40P01) fires, and the error must be the retryable
/// `Conflict` that `transact` reruns.
#[tokio::test]
async fn a_real_deadlock_is_a_retryable_conflict_and_the_survivor_commits() {
    let database = TestDatabase::create().await;
    let store = database.store();
    let (_, first) = user_with_wallet(&store).await;
    let (_, second) = user_with_wallet(&store).await;

    let mut forwards = store.begin().await.expect("begin");
    forwards.lock_wallets(&[first]).await.expect("lock the first");
    let mut backwards = store.begin().await.expect("begin");
    backwards.lock_wallets(&[second]).await.expect("lock the second");
    // Each now waits for the other; after deadlock_timeout (1 s by default) one is chosen to fail.
    let (forwards_result, backwards_result) = tokio::join!(
        async {
            let locked = forwards.lock_wallets(&[second]).await.map(|w| w.len());
            (forwards, locked)
        },
        async {
            let locked = backwards.lock_wallets(&[first]).await.map(|w| w.len());
            (backwards, locked)
        },
    );
    let ((forwards, forwards_locked), (backwards, backwards_locked)) = (forwards_result, backwards_result);
    let (survivor, victim) = match (&forwards_locked, &backwards_locked) {
        (Ok(1), Err(StoreError::Conflict)) => (forwards, backwards),
        (Err(StoreError::Conflict), Ok(1)) => (backwards, forwards),
        other => panic!("expected one deadlock victim reported as Conflict, got {other:?}"),
    };
    assert!(
        matches!(victim.commit().await, Err(StoreError::Conflict)),
        "the victim cannot commit"
    );
    survivor.commit().await.expect("the survivor commits");
}

#[tokio::test]
async fn a_taken_primary_key_is_a_duplicate_named_after_its_constraint() {
    let database = TestDatabase::create().await;
    let store = database.store();
    let (merchant, _) = user_with_wallet(&store).await;
    let at = merchant.created_at;
    let product = Product::new(
        ProductId::from_uuid(Uuid::now_v7()),
        merchant.id,
        "Mug",
        "",
        Money::from_minor(100, Currency::Usd),
        at,
    )
    .expect("product");
    let stock = Stock::new(product.id, 1).expect("stock");
    let mut tx = store.begin().await.expect("begin");
    tx.insert_product(&product, &stock).await.expect("first");
    let again = tx.insert_product(&product, &stock).await;
    assert!(
        matches!(&again, Err(StoreError::Duplicate(name)) if name == "products_pkey"),
        "{again:?}"
    );
    // PostgreSQL aborted the transaction: it must not look committed.
    assert!(tx.commit().await.is_err());
    let mut tx = store.begin().await.expect("begin");
    assert_eq!(tx.find_product(product.id).await.expect("find"), None);
}

#[tokio::test]
async fn an_overdraft_is_refused_by_the_database_as_corrupt() {
    let database = TestDatabase::create().await;
    let store = database.store();
    let (owner, wallet) = user_with_wallet(&store).await;
    let mut tx = store.begin().await.expect("begin");
    let overdrawn = Wallet::restore(wallet, WalletOwner::User(owner.id), Currency::Usd, -1, 0, owner.created_at);
    // The update is deferred; the database refuses it when it is sent, at the commit.
    tx.update_wallets(&[overdrawn]).await.expect("deferred");
    let refused = tx.commit().await;
    assert!(
        matches!(refused, Err(StoreError::Corrupt(ref why)) if why.contains("wallets_user_funds")),
        "{refused:?}"
    );
}

/// The last writes travel in one pipeline with `COMMIT`; one that misses its row is refused by the
/// server, so `COMMIT` rolls everything back, and the connection is still good for the next
/// transaction.
#[tokio::test]
async fn a_deferred_write_missing_its_row_rolls_back_the_whole_transaction_at_commit() {
    let database = TestDatabase::create_with(|settings| settings.pool_max_size = 1).await;
    let store = database.store();
    let (owner, wallet) = user_with_wallet(&store).await;
    let newcomer = stored_user(Role::Merchant);
    let mut tx = store.begin().await.expect("begin");
    let pid = tx.backend_pid().await.expect("pid");
    tx.insert_user(&newcomer).await.expect("insert");
    let credited = Wallet::restore(wallet, WalletOwner::User(owner.id), Currency::Usd, 500, 0, owner.created_at);
    let phantom = Wallet::restore(
        WalletId::from_uuid(Uuid::now_v7()),
        WalletOwner::User(owner.id),
        Currency::Usd,
        500,
        0,
        owner.created_at,
    );
    tx.update_wallets(&[credited, phantom]).await.expect("deferred");
    let refused = tx.commit().await;
    assert!(
        matches!(refused, Err(StoreError::Corrupt(ref why)) if why.contains("wallet does not exist")),
        "{refused:?}"
    );

    let mut tx = store.begin().await.expect("begin");
    assert_eq!(tx.backend_pid().await.expect("pid"), pid, "the connection was reused");
    assert_eq!(tx.find_user(newcomer.id).await.expect("find"), None, "the insert was rolled back");
    let balance = tx.lock_wallets(&[wallet]).await.expect("lock")[0].balance();
    assert_eq!(balance, Money::zero(Currency::Usd), "the update was rolled back");
}

#[tokio::test]
async fn a_commit_sent_with_its_writes_commits_them_all_and_keeps_the_connection() {
    let database = TestDatabase::create_with(|settings| settings.pool_max_size = 1).await;
    let store = database.store();
    let (owner, wallet) = user_with_wallet(&store).await;
    let mut tx = store.begin().await.expect("begin");
    let pid = tx.backend_pid().await.expect("pid");
    let credited = Wallet::restore(wallet, WalletOwner::User(owner.id), Currency::Usd, 500, 0, owner.created_at);
    tx.update_wallets(&[credited]).await.expect("deferred");
    tx.commit().await.expect("commit");

    let mut tx = store.begin().await.expect("begin");
    assert_eq!(tx.backend_pid().await.expect("pid"), pid, "the connection was reused");
    let balance = tx.lock_wallets(&[wallet]).await.expect("lock")[0].balance();
    assert_eq!(balance, Money::from_minor(500, Currency::Usd));
    tx.rollback().await.expect("rollback");
}

/// `BEGIN` travels with the first statement, so a transaction that sends nothing ends without a
/// round trip and leaves its connection fit for the next one.
#[tokio::test]
async fn a_transaction_that_sends_nothing_ends_cleanly_and_keeps_the_connection() {
    let database = TestDatabase::create_with(|settings| settings.pool_max_size = 1).await;
    let store = database.store();
    let pid = {
        let mut tx = store.begin().await.expect("begin");
        let pid = tx.backend_pid().await.expect("pid");
        tx.commit().await.expect("commit");
        pid
    };
    store.begin().await.expect("begin").commit().await.expect("an empty commit");
    store.begin().await.expect("begin").rollback().await.expect("an empty rollback");
    let mut tx = store.begin().await.expect("begin");
    assert_eq!(tx.backend_pid().await.expect("pid"), pid, "the connection was reused");
    tx.rollback().await.expect("rollback");
}

/// A first statement that writes is not pipelined behind `BEGIN` (see `tx`), but it is still
/// inside the transaction: rolled back, it leaves nothing.
#[tokio::test]
async fn a_transaction_whose_first_statement_writes_rolls_it_back() {
    let database = TestDatabase::create().await;
    let store = database.store();
    let newcomer = stored_user(Role::Merchant);
    let mut tx = store.begin().await.expect("begin");
    tx.insert_user(&newcomer).await.expect("insert");
    tx.rollback().await.expect("rollback");
    let mut tx = store.begin().await.expect("begin");
    assert_eq!(tx.find_user(newcomer.id).await.expect("find"), None);
    tx.rollback().await.expect("rollback");
}

#[tokio::test]
async fn an_unreachable_server_fails_to_connect_with_a_clear_message() {
    let settings = PgSettings {
        connect_timeout: Duration::from_secs(2),
        ..PgSettings::new("postgres://postgres:secret@127.0.0.1:1/payments")
    };
    let error = PgStore::connect(&settings).await.expect_err("nothing listens on port 1");
    assert!(matches!(error, SetupError::Unreachable { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("127.0.0.1:1/payments"), "{message}");
    assert!(!message.contains("secret"), "{message}");
}

#[tokio::test]
async fn migrating_twice_applies_nothing_the_second_time_and_the_store_answers_pings() {
    let database = TestDatabase::create().await;
    let applied = run_migrations(database.settings()).await.expect("migrate again");
    assert_eq!(applied, Vec::<String>::new());
    database.store().ping().await.expect("ping");
}

#[tokio::test]
async fn a_transaction_dropped_while_holding_locks_releases_them_and_its_connection_is_not_reused() {
    let database = TestDatabase::create_with(|settings| settings.pool_max_size = 1).await;
    let store = database.store();
    let (_, wallet) = user_with_wallet(&store).await;

    let mut abandoned = store.begin().await.expect("begin");
    abandoned.lock_wallets(&[wallet]).await.expect("lock");
    let abandoned_pid = abandoned.backend_pid().await.expect("pid");
    drop(abandoned);

    // The pool has room for one connection: the next transaction would get the same one back if
    // it had been returned with its transaction open.
    let mut next = store.begin().await.expect("begin");
    assert_ne!(next.backend_pid().await.expect("pid"), abandoned_pid);
    assert_eq!(next.lock_wallets(&[wallet]).await.expect("the lock was released").len(), 1);
    next.commit().await.expect("commit");
}

#[tokio::test]
async fn idle_connections_killed_by_the_server_are_replaced_without_the_caller_noticing() {
    let database = TestDatabase::create_with(|settings| settings.pool_max_size = 2).await;
    let store = database.store();
    let (owner, _) = user_with_wallet(&store).await;
    database
        .raw_client()
        .await
        .execute(
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
            &[],
        )
        .await
        .expect("terminate the pool's connections");

    let mut tx = store.begin().await.expect("begin retries on a live connection");
    assert_eq!(tx.find_user(owner.id).await.expect("find").map(|u| u.id), Some(owner.id));
    tx.commit().await.expect("commit");
}

#[tokio::test]
async fn a_transaction_left_idle_is_ended_by_the_database_and_its_locks_released() {
    let database = TestDatabase::create().await;
    let store = database.store();
    let (_, wallet) = user_with_wallet(&store).await;
    let hung = PgStore::connect(&PgSettings {
        idle_in_transaction_timeout: Duration::from_millis(200),
        ..database.settings().clone()
    })
    .await
    .expect("second store");

    let mut stuck = hung.begin().await.expect("begin");
    let stuck_pid = stuck.backend_pid().await.expect("pid");
    stuck.lock_wallets(&[wallet]).await.expect("lock");
    // The process holding the lock stops sending anything, as a paused or hung server would, until
    // the database ends its session.
    let client = database.raw_client().await;
    eventually("the database to end the idle session", || async {
        let sessions = client
            .query("SELECT 1 FROM pg_stat_activity WHERE pid = $1", &[&stuck_pid])
            .await
            .expect("pg_stat_activity");
        sessions.is_empty()
    })
    .await;

    // The database ended the idle session, and its locks with it.
    let mut other = store.begin().await.expect("begin");
    other.lock_wallets(&[wallet]).await.expect("the lock was released");
    other.commit().await.expect("commit");
    let late = stuck.commit().await;
    assert!(matches!(late, Err(StoreError::Unavailable(_))), "{late:?}");
    let mut next = hung.begin().await.expect("the pool replaces the ended session");
    next.lock_wallets(&[wallet]).await.expect("lock");
}
