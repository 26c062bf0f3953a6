//! The repository contract, run against PostgreSQL.

use adapter_postgres::testing::TestDatabase;

repository_contract::contract_tests!(async {
    let database = TestDatabase::create().await;
    (database.store(), database)
});

/// The PostgreSQL store locks a purchase's wallets in the cart's round trip.
#[tokio::test]
async fn a_cart_is_locked_with_exactly_the_wallets_of_its_buyer_and_merchants() {
    let database = TestDatabase::create().await;
    repository_contract::catalog::a_cart_is_locked_with_exactly_the_wallets_of_its_buyer_and_merchants(database.store()).await;
}
