//! The database's own guarantees, tested with raw SQL that goes around the adapter: whatever code
//! writes to it, postings stay immutable, journal transactions balance, user wallets and stock
//! stay non-negative, and event ids stay unique.

use adapter_postgres::testing::TestDatabase;
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;
use uuid::Uuid;

/// A user wallet and a system account in USD, with one balanced transaction between them.
struct Ledger {
    user_wallet: Uuid,
    system_wallet: Uuid,
}

async fn ledger(client: &Client) -> Ledger {
    let (user, user_wallet, system_wallet, transaction) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let email = format!("{}@example.com", user.simple());
    client
        .execute(
            "INSERT INTO users (id, email, password_hash, role, created_at) VALUES ($1, $2, 'x', 'customer', now())",
            &[&user, &email],
        )
        .await
        .expect("user");
    client
        .execute(
            "INSERT INTO wallets (id, owner_user_id, currency, balance, created_at) VALUES ($1, $2, 'USD', 500, now())",
            &[&user_wallet, &user],
        )
        .await
        .expect("user wallet");
    client
        .execute(
            "INSERT INTO wallets (id, system_code, currency, balance, created_at) VALUES ($1, 'adjustments', 'USD', -500, now())",
            &[&system_wallet],
        )
        .await
        .expect("system wallet");
    post(client, transaction, &[(user_wallet, 500, 500), (system_wallet, -500, -500)])
        .await
        .expect("a balanced transaction commits");
    Ledger {
        user_wallet,
        system_wallet,
    }
}

/// Inserts a journal transaction with `postings` (wallet, amount, balance after) and commits.
async fn post(client: &Client, transaction: Uuid, postings: &[(Uuid, i64, i64)]) -> Result<(), tokio_postgres::Error> {
    client.batch_execute("BEGIN").await?;
    let result = async {
        client
            .execute(
                "INSERT INTO ledger_transactions (id, kind, reference, created_at) VALUES ($1, 'adjustment', 'raw', now())",
                &[&transaction],
            )
            .await?;
        for (wallet, amount, balance_after) in postings {
            client
                .execute(
                    "INSERT INTO postings (transaction_id, wallet_id, currency, amount, balance_after) VALUES ($1, $2, 'USD', $3, $4)",
                    &[&transaction, wallet, amount, balance_after],
                )
                .await?;
        }
        client.batch_execute("COMMIT").await
    }
    .await;
    if result.is_err() {
        let _ = client.batch_execute("ROLLBACK").await;
    }
    result
}

fn message(error: &tokio_postgres::Error) -> String {
    error
        .as_db_error()
        .map(|db| db.message().to_owned())
        .unwrap_or_else(|| error.to_string())
}

#[tokio::test]
async fn postings_can_be_neither_updated_nor_deleted_nor_truncated() {
    let database = TestDatabase::create().await;
    let client = database.raw_client().await;
    ledger(&client).await;
    for sql in [
        "UPDATE postings SET amount = amount + 1",
        "DELETE FROM postings",
        "TRUNCATE postings",
        "UPDATE ledger_transactions SET reference = 'rewritten'",
        "DELETE FROM ledger_transactions",
        "TRUNCATE ledger_transactions CASCADE",
    ] {
        let refused = client.batch_execute(sql).await.expect_err(sql);
        assert!(message(&refused).contains("append-only"), "{sql}: {refused}");
    }
    let count: i64 = client.query_one("SELECT count(*) FROM postings", &[]).await.expect("count").get(0);
    assert_eq!(count, 2);
}

#[tokio::test]
async fn an_unbalanced_journal_transaction_is_refused_at_commit() {
    let database = TestDatabase::create().await;
    let client = database.raw_client().await;
    let ledger = ledger(&client).await;
    let transaction = Uuid::now_v7();

    let refused = post(
        &client,
        transaction,
        &[(ledger.user_wallet, 100, 600), (ledger.system_wallet, -99, -599)],
    )
    .await
    .expect_err("unbalanced");

    assert_eq!(refused.code(), Some(&SqlState::CHECK_VIOLATION), "{refused}");
    assert!(message(&refused).contains("does not balance"), "{refused}");
    let stored: i64 = client
        .query_one("SELECT count(*) FROM ledger_transactions WHERE id = $1", &[&transaction])
        .await
        .expect("count")
        .get(0);
    assert_eq!(stored, 0);
}

#[tokio::test]
async fn a_user_wallet_cannot_be_overdrawn_but_a_system_account_can_go_negative() {
    let database = TestDatabase::create().await;
    let client = database.raw_client().await;
    let ledger = ledger(&client).await;

    for sql in [
        "UPDATE wallets SET balance = -1 WHERE id = $1",
        "UPDATE wallets SET held = balance + 1 WHERE id = $1",
        "UPDATE wallets SET held = -1 WHERE id = $1",
    ] {
        let refused = client.execute(sql, &[&ledger.user_wallet]).await.expect_err(sql);
        assert_eq!(refused.code(), Some(&SqlState::CHECK_VIOLATION), "{sql}: {refused}");
    }
    client
        .execute("UPDATE wallets SET balance = -10000 WHERE id = $1", &[&ledger.system_wallet])
        .await
        .expect("system accounts may go negative");
}

#[tokio::test]
async fn stock_cannot_go_negative_and_event_ids_cannot_repeat() {
    let database = TestDatabase::create().await;
    let client = database.raw_client().await;
    let (merchant, product) = (Uuid::now_v7(), Uuid::now_v7());
    client
        .batch_execute(&format!(
            "INSERT INTO users (id, email, password_hash, role, created_at) VALUES ('{merchant}', '{merchant}@example.com', 'x', 'merchant', now());
             INSERT INTO products (id, merchant_id, name, description, currency, price, active, created_at, updated_at)
                 VALUES ('{product}', '{merchant}', 'Mug', '', 'USD', 100, true, now(), now());
             INSERT INTO stock (product_id, available, reserved) VALUES ('{product}', 1, 0);"
        ))
        .await
        .expect("product");
    for sql in [
        "UPDATE stock SET available = available - 2 WHERE product_id = $1",
        "UPDATE stock SET reserved = -1 WHERE product_id = $1",
    ] {
        let refused = client.execute(sql, &[&product]).await.expect_err(sql);
        assert_eq!(refused.code(), Some(&SqlState::CHECK_VIOLATION), "{sql}: {refused}");
    }

    let record = "INSERT INTO processed_webhook_events (id, provider, event_id, event_type, received_at) VALUES (gen_random_uuid(), 'stripe', 'evt_1', 'x', now())";
    client.batch_execute(record).await.expect("first");
    let again = client.batch_execute(record).await.expect_err("second");
    assert_eq!(again.code(), Some(&SqlState::UNIQUE_VIOLATION), "{again}");
}
