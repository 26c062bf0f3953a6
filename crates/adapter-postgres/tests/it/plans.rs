//! The statements of a purchase reach the rows they change by key, on tables of a few thousand
//! rows and with the generic plans a pooled connection settles on after five executions: a plan
//! that joins the request's rows to a scan of the whole table costs every purchase time that grows
//! with the catalogue and the number of wallets.

use adapter_postgres::PgStore;
use application::ports::store::{ProductRepository, Transaction, UnitOfWork, WalletRepository};
use domain::money::Currency;
use domain::user::Role;

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
    let cart = tx.lock_cart(&[mug.product.id]).await.expect("lock cart");
    assert_eq!(cart.len(), 1);
    let wallets = tx.lock_wallets(&[buyer_wallet, merchant_wallet]).await.expect("lock wallets");
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
