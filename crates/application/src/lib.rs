//! Use cases of the payment backend, and the ports (traits) they need from the outside world.
//!
//! `App<U>` is the entry point: one struct, generic over the storage `UnitOfWork`, whose methods
//! are the use cases, one module per capability. Each use case is a short method that runs named
//! `async fn`s in a transaction (`transact`); effects several capabilities share live in `effects`.
//! Each use case has its own error enum. Nothing here knows HTTP, SQL, JSON, Redis or a payment
//! provider.
//!
//! # Ports
//!
//! Everything outside is a trait in [`ports`], implemented by an adapter crate:
//!
//! - [`ports::store`]: [`UnitOfWork`] begins a [`Transaction`], which offers every repository
//!   (`WalletRepository`, `LedgerRepository`, `OrderRepository`, the outbox, the inbox, ...).
//!   Methods named `lock_*` keep what they read locked until the transaction ends, and callers
//!   lock in one global order, so use cases never deadlock one another. Storage failures arrive
//!   as [`StoreError`]; `Conflict` (a serialization failure or deadlock) means "run it again".
//! - [`ports::gateway`]: [`PaymentGateway`] opens hosted checkouts, refunds, and verifies and
//!   parses webhooks into provider-neutral [`GatewayEvent`]s; `Gateways` routes a currency to a
//!   provider. A provider is never called inside a transaction: a use case commits its intent,
//!   calls the provider under an idempotency key derived from our ids, then records the answer
//!   in a second transaction.
//! - [`ports::system`] (`Clock`, `IdGenerator`), [`ports::security`] (password hashing, tokens),
//!   [`ports::cache`], [`ports::rate_limit`] and [`ports::webhooks`] (sending merchants' webhooks).
//!
//! `adapter-memory` implements the store in memory (demo mode, these tests, embedding services'
//! tests); `adapter-postgres` implements it on PostgreSQL; the repository contract suite holds
//! both to the same behaviour.
//!
//! # `App`, `transact` and idempotency
//!
//! [`App`] holds the ports and [`Settings`]. A use case takes the [`Caller`](caller::Caller) (who
//! asks, checked against the resource in the use case, so every driving adapter gets the same
//! authorisation), its command, and optionally an [`Idempotent`](idempotency::Idempotent): the
//! client's key, a fingerprint of the request and how to render the response. Its work runs in
//! [`transact`](transact::transact), which commits on `Ok`, rolls back on `Err` and runs the work
//! again on a storage conflict (at most [`ATTEMPTS_MAX`](transact::ATTEMPTS_MAX) times). The key is
//! claimed in the use case's first transaction and completed with the response in the transaction
//! of the effect (see [`idempotency`]); a replay returns the stored response, a different request
//! under the key is refused.
//!
//! The domain (`domain` crate) decides what may happen; the use cases decide when, load and lock
//! what the domain needs, and write its results with the events they announce (the outbox, in
//! the same transaction) and the audit trail.
//!
//! # Example: a wallet purchase on the in-memory store
//!
//! ```
//! use std::sync::Arc;
//!
//! use adapter_memory::{MemoryCache, MemoryStore};
//! use application::adjustments::AdjustmentRequest;
//! use application::auth::{Caller, Registration};
//! use application::catalog::NewProduct;
//! use application::checkout::CheckoutCommand;
//! use application::ports::gateway::Gateways;
//! use application::ports::system::{ManualClock, UuidV7Generator};
//! use application::testing::{PlainHasher, RecordingWebhooks, SpelledTokens};
//! use application::{App, Settings};
//! use domain::catalog::Quantity;
//! use domain::money::{Currency, Money};
//! use domain::order::{CaptureMethod, OrderStatus, PaymentMethod};
//! use domain::user::Role;
//! use domain::OffsetDateTime;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let app = App {
//!     store: MemoryStore::new(),
//!     clock: Arc::new(ManualClock::new(OffsetDateTime::UNIX_EPOCH)),
//!     ids: Arc::new(UuidV7Generator),
//!     hasher: Arc::new(PlainHasher),
//!     tokens: Arc::new(SpelledTokens::default()),
//!     gateways: Gateways::new(), // wallet payments only: no card provider
//!     cache: Arc::new(MemoryCache::new()),
//!     webhooks: Arc::new(RecordingWebhooks::default()),
//!     settings: Settings::default(),
//! };
//! let usd = |text| Money::parse_positive(text, Currency::Usd);
//!
//! // A merchant, a customer, and an admin who credits the customer's wallet.
//! let register = |email: &str, role| Registration { email: email.into(), password: "correct horse 9".into(), role };
//! let merchant = app.register(register("shop@example.com", Role::Merchant), None).await?;
//! let buyer = app.register(register("ann@example.com", Role::Customer), None).await?;
//! let admin = app.create_admin("admin@example.com", "correct horse 9").await?;
//! let as_caller = |user: &domain::user::User| Caller { user_id: user.id, role: user.role };
//! let credit = AdjustmentRequest { user_id: buyer.id, amount: usd("50.00")?, reason: "welcome credit".into() };
//! app.adjust_wallet(&as_caller(&admin), credit, None).await?;
//!
//! let mug = NewProduct { name: "Blue mug".into(), description: String::new(), price: usd("12.50")?, stock: 10 };
//! let mug = app.create_product(&as_caller(&merchant), mug, None).await?;
//!
//! // Two mugs from the wallet: one transaction moves the money, takes the stock, pays the order.
//! let command = CheckoutCommand {
//!     items: vec![(mug.product.id, Quantity::new(2)?)],
//!     payment_method: PaymentMethod::Wallet,
//!     provider: None,
//!     capture: CaptureMethod::Automatic,
//! };
//! let checkout = app.checkout(&as_caller(&buyer), command, None).await?;
//! assert_eq!(checkout.order.status(), OrderStatus::Paid);
//! assert_eq!(app.wallet(&as_caller(&buyer), Currency::Usd).await?.balance(), usd("25.00")?);
//! assert_eq!(app.wallet(&as_caller(&merchant), Currency::Usd).await?.balance(), usd("25.00")?);
//! # Ok(())
//! # }
//! ```
//!
//! (`application::testing`, behind the `testing` feature, holds the fast password hasher and
//! token issuer used here; a real service wires bcrypt and JWT adapters instead.)
//!
//! [`UnitOfWork`]: ports::store::UnitOfWork
//! [`Transaction`]: ports::store::Transaction
//! [`StoreError`]: ports::store::StoreError
//! [`PaymentGateway`]: ports::gateway::PaymentGateway
//! [`GatewayEvent`]: ports::gateway::GatewayEvent

#![warn(missing_docs)]

pub mod adjustments;
pub mod admin_reads;
pub mod administration;
pub mod auth;
pub mod caller;
pub mod calls;
pub mod cancellation;
pub mod captures;
pub mod catalog;
pub mod checkout;
pub mod context;
mod effects;
mod follow_up_job;
pub mod follow_ups;
pub mod holds;
pub mod idempotency;
mod late_success;
pub mod ledger;
pub mod orders;
pub mod pagination;
pub mod payments;
pub mod ports;
pub mod refund_requests;
pub mod refunds;
pub mod settlement;
pub mod statements;
#[cfg(feature = "testing")]
pub mod testing;
pub mod top_ups;
pub mod transact;
pub mod transfers;
pub mod wallets;
mod webhook_relay;
pub mod webhooks;
pub mod withdrawals;

pub use context::{App, Settings, WebhookSettings};
pub use webhook_relay::RelayRound;
