//! The repository contract: what every storage adapter must do, written once against the ports,
//! one module per port.
//!
//! Each test is a generic async function taking a fresh, empty store. An adapter's test suite runs
//! them all with `repository_contract::contract_tests!(make_store)`, where `make_store` is an
//! expression giving a future of `(store, guard)`; the guard lives until the test ends (the
//! PostgreSQL adapter drops its test database then). The macro lists every test; a test here
//! checks the list against the modules' sources, so a new contract test cannot be left out.

pub mod fixtures;

pub mod calls;
pub mod catalog;
pub mod follow_ups;
pub mod holds;
pub mod idempotency;
pub mod ledger;
pub mod messages;
pub mod orders;
pub mod payments;
pub mod transactions;
pub mod transfers;
pub mod users;
pub mod wallets;
pub mod webhooks;

use application::ports::store::{StoreError, Transaction, UnitOfWork};

/// What every contract module uses: the ports, the domain, the fixtures and the helpers below.
mod prelude {
    pub(crate) use application::auth::RefreshToken;
    pub(crate) use application::idempotency::{
        IdempotencyKey, IdempotencyRecord, IdempotencyScope, IdempotencyState, RecoveryPoint, StoredResponse,
    };
    pub(crate) use application::pagination::{Page, PageRequest};
    pub(crate) use application::ports::store::{
        AdminOrderFilter, AdminPaymentFilter, AdminRefundFilter, CallFilter, CallRepository, ClaimOutcome, CreatedWithin, DeliveryFilter,
        EndpointFilter, EventOutbox, FollowUpRepository, HoldRepository, IdempotencyRepository, InboxOutcome, InventoryFilter,
        JournalFilter, JournalRecord, LedgerRepository, LockedCart, OrderFilter, OrderRepository, PaymentFilter, PaymentLookup,
        PaymentRepository, ProductFilter, ProductRepository, ReceivedWebhook, ReceivedWebhookFilter, RefreshTokenRepository,
        RefundRepository, StoreError, Transaction, TransferFilter, TransferRepository, UnitOfWork, UserFilter, UserRepository,
        WalletFilter, WalletRepository, WebhookInbox, WebhookRepository, WithdrawalFilter,
    };
    pub(crate) use domain::call::CallSession;
    pub(crate) use domain::events::{DomainEvent, OutboxEvent};
    pub(crate) use domain::follow_up::{FollowUp, FollowUpState, FollowUpTask};
    pub(crate) use domain::ids::{HoldId, PaymentId, TransactionId, WalletId};
    pub(crate) use domain::ledger::{self, Entry, JournalTransaction, TransactionKind};
    pub(crate) use domain::money::{Currency, Money};
    pub(crate) use domain::order::{Actor, OrderStatus};
    pub(crate) use domain::payment::{Payment, PaymentPurpose, PaymentStatus, Refund, RefundTerms};
    pub(crate) use domain::user::Role;
    pub(crate) use domain::wallet::{Hold, HoldStatus, HoldTerms, SystemAccount, Transfer, Wallet, WalletOwner};
    pub(crate) use domain::withdrawal::Withdrawal;
    pub(crate) use time::Duration;

    pub(crate) use crate::fixtures::{self, *};
    pub(crate) use crate::{begin, commit, expect};
}

/// Generates one `#[tokio::test]` per contract test. `contract_tests!(@names)` is the list as
/// `port::test` strings.
#[macro_export]
macro_rules! contract_tests {
    ($make_store:expr) => {
        $crate::contract_tests!(@with tests [$make_store]);
    };
    (@names) => {
        $crate::contract_tests!(@with names [])
    };
    (@with $then:ident [$($arg:tt)*]) => {
        $crate::contract_tests! { @ $then [$($arg)*]
            webhooks::webhook_endpoints_are_stored_listed_by_owner_and_deleted,
            webhooks::a_delivery_is_recorded_once_per_event_and_endpoint,
            webhooks::an_endpoint_is_claimed_by_one_deliverer_until_released,
            webhooks::deliveries_of_a_time_range_are_queued_again,
            webhooks::settled_deliveries_are_pruned_and_pending_ones_never,
            users::users_are_found_by_id_and_by_email,
            users::an_e_mail_address_belongs_to_one_user,
            users::users_list_newest_first_by_role,
            users::refresh_tokens_rotate_and_families_revoke,
            wallets::a_user_has_one_wallet_per_currency,
            wallets::system_accounts_are_unique_per_code_and_currency,
            wallets::wallets_are_locked_in_id_order_and_must_exist,
            wallets::user_wallets_are_created_if_missing_and_locked_in_id_order,
            wallets::admins_list_every_wallet_and_many_users_wallets_at_once,
            ledger::an_overdrawn_user_wallet_is_refused,
            ledger::postings_list_newest_first_and_paginate,
            ledger::the_audit_of_a_consistent_ledger_is_clean,
            ledger::the_audit_finds_a_cached_balance_that_disagrees,
            ledger::statement_totals_sum_a_wallets_postings_by_kind_and_period,
            ledger::merchant_wallets_list_in_id_order_after_a_cursor,
            ledger::the_journal_lists_transactions_with_their_postings_newest_first,
            holds::holds_are_stored_and_updated,
            holds::expired_holds_are_found_except_those_of_active_calls,
            catalog::a_cart_is_locked_with_its_products,
            catalog::a_cart_is_locked_with_the_wallets_of_its_buyer_and_merchants,
            catalog::products_list_newest_first_with_filters_and_cursors,
            catalog::products_are_searched_by_name_and_description_whatever_the_case,
            catalog::stock_is_locked_in_product_order,
            catalog::the_inventory_lists_every_product_with_its_stock_archived_ones_too,
            orders::orders_keep_their_items_and_list_by_party,
            orders::the_audit_trail_lists_newest_first,
            payments::payments_are_found_by_every_reference,
            payments::a_payers_payments_list_newest_first_with_filters,
            payments::admins_list_every_payment_by_payer_provider_currency_and_period,
            payments::expired_pending_payments_are_found_oldest_first,
            payments::refunds_are_found_by_id_provider_reference_and_order,
            payments::admins_list_every_refund_by_merchant_provider_status_and_period,
            payments::refund_requests_are_stored_decided_and_listed_with_one_open_per_share,
            transfers::admins_list_every_transfer_by_party_currency_and_period,
            transfers::transfers_and_withdrawals_are_stored,
            transfers::a_users_withdrawals_list_newest_first,
            transfers::a_withdrawal_moves_through_its_states_and_lists_by_status,
            calls::calls_are_stored_updated_and_listed_for_both_parties,
            calls::admins_list_every_call_by_status_party_and_start,
            idempotency::an_idempotency_key_is_claimed_once,
            idempotency::a_refusal_settles_a_missing_or_in_progress_key,
            follow_ups::follow_ups_are_recorded_once_and_taken_when_due,
            messages::a_webhook_event_is_recorded_once_per_provider,
            messages::admins_list_received_webhooks_with_their_outcomes,
            messages::outbox_events_are_published_once,
            transactions::a_rolled_back_transaction_leaves_nothing,
            transactions::a_dropped_transaction_leaves_nothing,
            transactions::committed_writes_are_visible_to_the_next_transaction,
        }
    };
    (@tests [$make_store:expr] $($port:ident::$name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let (store, _guard) = $make_store.await;
                $crate::$port::$name(store).await;
            }
        )*
    };
    (@names [] $($port:ident::$name:ident),* $(,)?) => {
        &[$(concat!(stringify!($port), "::", stringify!($name))),*]
    };
}

pub(crate) async fn begin<U: UnitOfWork>(store: &U) -> U::Tx {
    store.begin().await.expect("begin")
}

pub(crate) async fn commit<T: Transaction>(tx: T) {
    tx.commit().await.expect("commit");
}

pub(crate) fn expect<T>(result: Result<T, StoreError>, what: &str) -> T {
    result.unwrap_or_else(|error| panic!("{what}: {error}"))
}

/// Contract tests outside `contract_tests!`, for stores that implement a port's method whose
/// default is weaker: such a store's suite calls them as well.
#[cfg(test)]
const FOR_STORES_BEYOND_THE_DEFAULTS: &[&str] = &["catalog::a_cart_is_locked_with_exactly_the_wallets_of_its_buyer_and_merchants"];

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// Every `pub async fn name<U: UnitOfWork>(store: U)` of every contract module is in the
    /// macro's list, and the list names nothing else.
    #[test]
    fn every_contract_test_is_in_the_suite() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
        let mut defined = BTreeSet::new();
        for entry in std::fs::read_dir(dir).expect("the sources") {
            let path = entry.expect("a source").path();
            let port = path.file_stem().and_then(|stem| stem.to_str()).unwrap_or_default().to_owned();
            if port == "lib" || port == "fixtures" {
                continue;
            }
            let source = std::fs::read_to_string(&path).expect("a readable source");
            for line in source.lines() {
                if let Some(rest) = line.strip_prefix("pub async fn ")
                    && let Some((name, _)) = rest.split_once("<U: UnitOfWork>(store: U)")
                {
                    let name = format!("{port}::{name}");
                    if !crate::FOR_STORES_BEYOND_THE_DEFAULTS.contains(&name.as_str()) {
                        defined.insert(name);
                    }
                }
            }
        }
        let listed: BTreeSet<String> = crate::contract_tests!(@names).iter().map(|name| (*name).to_owned()).collect();
        assert!(!defined.is_empty());
        assert_eq!(listed, defined, "the contract_tests! list must name every contract test");
    }
}
