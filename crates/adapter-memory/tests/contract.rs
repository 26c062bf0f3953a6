//! The repository contract, run against the in-memory store.

use adapter_memory::MemoryStore;

repository_contract::contract_tests!(async { (MemoryStore::new(), ()) });
