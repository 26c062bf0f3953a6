//! The repository contract, run against the in-memory store.

use adapter_memory::MemoryStore;

repository_contract::contract_tests!(async { (MemoryStore::new(), ()) });

/// The memory store locks a purchase's wallets itself, as PostgreSQL does.
#[tokio::test]
async fn a_cart_is_locked_with_exactly_the_wallets_of_its_buyer_and_merchants() {
    repository_contract::catalog::a_cart_is_locked_with_exactly_the_wallets_of_its_buyer_and_merchants(MemoryStore::new()).await;
}
