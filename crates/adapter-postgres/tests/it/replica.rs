//! A read replica (`PgStore::with_replica`): the reads that may lag go to it, in read-only
//! transactions, and to the primary while it cannot be reached; everything else stays on the
//! primary. A second test database stands in for the replica, with other rows than the primary,
//! so that where each read went shows in what it finds.

use std::time::Duration;

use adapter_postgres::PgSettings;
use adapter_postgres::testing::TestDatabase;
use application::ports::store::{Transaction, UnitOfWork, UserRepository};
use domain::user::{Role, User};

use crate::support::stored_user;

async fn insert(database: &TestDatabase, user: &User) {
    let mut tx = database.store().begin().await.expect("begin");
    tx.insert_user(user).await.expect("insert");
    tx.commit().await.expect("commit");
}

/// Which of `users` a transaction finds, in order.
async fn found<T: Transaction>(mut tx: T, users: &[&User]) -> Vec<bool> {
    let mut found = Vec::new();
    for user in users {
        found.push(tx.find_user(user.id).await.expect("find").is_some());
    }
    tx.rollback().await.expect("rollback");
    found
}

#[tokio::test]
async fn lagging_reads_go_to_the_replica_and_every_other_transaction_to_the_primary() {
    let primary = TestDatabase::create().await;
    let replica = TestDatabase::create().await;
    let (on_primary, on_replica) = (stored_user(Role::Customer), stored_user(Role::Customer));
    insert(&primary, &on_primary).await;
    insert(&replica, &on_replica).await;
    let store = primary.store().with_replica(replica.settings()).await.expect("replica");

    let begun = store.begin().await.expect("begin");
    assert_eq!(found(begun, &[&on_primary, &on_replica]).await, [true, false]);
    let lagging = store.begin_lagging().await.expect("begin lagging");
    assert_eq!(found(lagging, &[&on_primary, &on_replica]).await, [false, true]);

    assert!(matches!(store.ping_lagging().await, Some(Ok(()))));
    let status = store.replica_status().expect("a replica is configured");
    assert_eq!((status.fallbacks, status.up), (0, true));
    assert!(status.pool.connections >= 1, "the replica's own pool served the read");
}

#[tokio::test]
async fn a_lagging_transaction_is_read_only_even_on_the_primary() {
    let primary = TestDatabase::create().await;
    let store = primary.store();
    let refused = stored_user(Role::Customer);

    let mut lagging = store.begin_lagging().await.expect("begin lagging");
    let inserted = lagging.insert_user(&refused).await;
    // A deferred write may only be refused when the transaction reaches the server.
    let committed = match inserted {
        Ok(()) => lagging.commit().await,
        Err(error) => {
            lagging.rollback().await.expect("rollback");
            Err(error)
        }
    };
    assert!(committed.is_err(), "a lagging transaction wrote: {committed:?}");
    assert_eq!(found(store.begin().await.expect("begin"), &[&refused]).await, [false]);
    assert!(store.ping_lagging().await.is_none(), "no replica is configured");
}

#[tokio::test]
async fn while_the_replica_cannot_be_reached_lagging_reads_go_to_the_primary() {
    let primary = TestDatabase::create().await;
    let on_primary = stored_user(Role::Customer);
    insert(&primary, &on_primary).await;
    let mut unreachable = PgSettings::new("postgres://postgres@127.0.0.1:1/payments");
    unreachable.connect_timeout = Duration::from_millis(200);
    unreachable.acquire_timeout = Duration::from_millis(300);
    let store = primary
        .store()
        .with_replica(&unreachable)
        .await
        .expect("a replica is not connected at start");

    let lagging = store.begin_lagging().await.expect("begin lagging");
    assert_eq!(found(lagging, &[&on_primary]).await, [true]);
    let status = store.replica_status().expect("a replica is configured");
    assert_eq!((status.fallbacks, status.up), (1, false));

    // Within the retry interval the replica is not asked again: the read goes straight on.
    let lagging = store.begin_lagging().await.expect("begin lagging");
    assert_eq!(found(lagging, &[&on_primary]).await, [true]);
    assert_eq!(store.replica_status().map(|status| status.fallbacks), Some(2));
    assert!(matches!(store.ping_lagging().await, Some(Err(_))));
}
