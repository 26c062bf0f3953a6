//! The statements of a purchase reach the rows they change by key, on tables of a few thousand
//! rows and with the generic plans a pooled connection settles on after five executions: a plan
//! that joins the request's rows to a scan of the whole table costs every purchase time that grows
//! with the catalogue and the number of wallets.

use adapter_postgres::PgStore;
use adapter_postgres::testing::TestDatabase;
use application::ports::store::{LockedCart, ProductRepository, Transaction, UnitOfWork, WalletRepository, WebhookRepository};
use domain::ids::WebhookEndpointId;
use domain::money::Currency;
use domain::user::Role;
use time::OffsetDateTime;

use crate::support::Harness;

/// Enough rows that a scan costs more than a few index probes; few enough that PostgreSQL's
/// estimates, before the fix, still preferred the scan.
const ROWS: i32 = 2_000;

#[tokio::test]
async fn a_purchase_reads_and_writes_products_stock_and_wallets_by_key() {
    let h = Harness::new().await;
    let merchant = h.user(Role::Merchant).await;
    let buyer = h.funded_customer(10_000).await;
    let mug = h.product(&merchant, 1_000, 50).await;
    let raw = h.database.raw_client().await;
    raw.batch_execute(&format!(
        "INSERT INTO users (id, email, password_hash, role, created_at) \
           SELECT gen_random_uuid(), 'bulk-' || n || '@example.com', 'x', 'customer', now() FROM generate_series(1, {ROWS}) AS n; \
         INSERT INTO wallets (id, owner_user_id, currency, balance, held, created_at) \
           SELECT gen_random_uuid(), id, 'USD', 0, 0, now() FROM users WHERE email LIKE 'bulk-%'; \
         INSERT INTO products (id, merchant_id, name, description, currency, price, active, created_at, updated_at) \
           SELECT gen_random_uuid(), '{merchant}', 'Bulk ' || n, '', 'USD', 100, true, now(), now() FROM generate_series(1, {ROWS}) AS n; \
         INSERT INTO stock (product_id, available, reserved) SELECT id, 10, 0 FROM products WHERE name LIKE 'Bulk %'; \
         ANALYZE users; ANALYZE wallets; ANALYZE products; ANALYZE stock; \
         DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET plan_cache_mode = force_generic_plan', current_database()); END $$;",
        merchant = merchant.user_id.as_uuid(),
    ))
    .await
    .expect("bulk rows");
    // New sessions, which take the database's plan_cache_mode.
    let store = PgStore::connect(h.database.settings()).await.expect("store");
    let buyer_wallet = h.app.wallet(&buyer, Currency::Usd).await.expect("buyer's wallet").id();
    let merchant_wallet = h.app.wallet(&merchant, Currency::Usd).await.expect("merchant's wallet").id();

    let mut tx = store.begin().await.expect("begin");
    assert_eq!(tx.show("plan_cache_mode").await.expect("setting"), "force_generic_plan");
    let LockedCart { entries: cart, wallets } = tx
        .lock_cart_and_wallets(&[mug.product.id], buyer.user_id)
        .await
        .expect("lock cart and wallets");
    assert_eq!(cart.len(), 1);
    let mut expected = vec![buyer_wallet, merchant_wallet];
    expected.sort();
    assert_eq!(wallets.iter().map(|wallet| wallet.id()).collect::<Vec<_>>(), expected);
    let stock: Vec<_> = cart.into_iter().map(|(stock, _)| stock).collect();
    tx.update_stock(&stock).await.expect("update stock");
    tx.update_wallets(&wallets).await.expect("update wallets");
    let scans = tx.sequential_scans().await.expect("scans");
    tx.rollback().await.expect("rollback");
    let scanned: Vec<&str> = scans
        .iter()
        .map(|(table, _)| table.as_str())
        .filter(|table| matches!(*table, "products" | "stock" | "wallets"))
        .collect();
    assert!(scanned.is_empty(), "a purchase's statements scanned {scanned:?}: {scans:?}");
}

/// The relay's batch statements run on tables that grow from empty within minutes. Prepared once
/// per connection, they kept the plan made while the table was small (a scan) after it had grown:
/// recording a turn's deliveries took 16 ms instead of 2 in a load test. They are planned each
/// time now.
#[tokio::test]
async fn recording_deliveries_reaches_them_by_key_after_the_table_has_grown() {
    // One connection, so that every transaction below runs on the session that made the plan.
    let database = TestDatabase::create_with(|settings| settings.pool_max_size = 1).await;
    let raw = database.raw_client().await;
    let endpoint = uuid::Uuid::now_v7();
    let add_deliveries = |count: i32| {
        format!(
            "WITH events AS ( \
               INSERT INTO outbox_events (id, event_type, payload, occurred_at, published_at) \
               SELECT gen_random_uuid(), 'order_paid', '{{}}', now(), now() FROM generate_series(1, {count}) RETURNING id) \
             INSERT INTO webhook_deliveries (id, event_id, endpoint_id, event_type, status, attempts, next_attempt_at, queued_at, created_at, updated_at) \
             SELECT gen_random_uuid(), id, '{endpoint}', 'order.paid', 'pending', 0, now(), now(), now(), now() FROM events"
        )
    };
    raw.batch_execute(&format!(
        "INSERT INTO webhook_endpoints (id, url, event_types, description, enabled, secret, created_at, updated_at) \
         VALUES ('{endpoint}', 'https://example.com/hooks', '{{*}}', '', true, 'whsec_test', now(), now()); {}",
        add_deliveries(3)
    ))
    .await
    .expect("endpoint and deliveries");
    let store = database.store();
    let endpoint = WebhookEndpointId::from_uuid(endpoint);
    // How many times a turn scans the deliveries. The counters of pg_stat_xact_user_tables may
    // still hold earlier transactions of the session (they are flushed about once a second): the
    // difference within the transaction is this turn's.
    let record_a_turn = || async {
        let mut tx = store.begin().await.expect("begin");
        let scans_of_deliveries = |scans: Vec<(String, i64)>| {
            scans
                .into_iter()
                .find(|(table, _)| table == "webhook_deliveries")
                .map_or(0, |(_, count)| count)
        };
        let before = scans_of_deliveries(tx.sequential_scans().await.expect("scans"));
        let due = tx
            .due_webhook_deliveries(endpoint, OffsetDateTime::now_utc(), 3)
            .await
            .expect("due deliveries");
        assert_eq!(due.len(), 3);
        tx.update_webhook_deliveries(&due).await.expect("record");
        let after = scans_of_deliveries(tx.sequential_scans().await.expect("scans"));
        tx.commit().await.expect("commit");
        after - before
    };
    // More than the five runs after which a prepared statement may settle on a generic plan.
    for _ in 0..8 {
        record_a_turn().await;
    }
    raw.batch_execute(&add_deliveries(20_000)).await.expect("more deliveries");
    assert_eq!(record_a_turn().await, 0, "recording a turn scanned the deliveries");
}
