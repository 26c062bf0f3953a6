//! The repository contract, run against PostgreSQL.

use adapter_postgres::testing::TestDatabase;

repository_contract::contract_tests!(async {
    let database = TestDatabase::create().await;
    (database.store(), database)
});
