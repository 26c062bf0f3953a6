//! Storage ports: a unit of work and the repositories a transaction offers.
//!
//! A use case opens a transaction with `UnitOfWork::begin`, reads and writes through the
//! repository traits that `UnitOfWork::Tx` implements, and finishes with `commit` or `rollback`.
//! Everything written in one transaction becomes visible together or not at all. A dropped
//! transaction that was neither committed nor rolled back is rolled back by the adapter.
//!
//! A write may report its failure at once or, in an adapter that defers writes to send them
//! together, at the next read or at the commit; either way the transaction is then rolled back and
//! the failure reaches the use case. Writes whose failure a use case interprets (`insert_user`'s
//! `Duplicate`, the results of `claim_idempotency_key` and `record_webhook_event`) always report
//! at once.
//!
//! Methods named `lock_*` read rows and keep them locked until the transaction ends, so that what
//! was read is still true when it is written. Callers lock in one global order to avoid deadlocks:
//! stock rows by product id, then wallets by wallet id, then anything else.

use std::future::Future;

use domain::call::{CallSession, CallStatus};
use domain::catalog::{Product, ProductSearch, Stock};
use domain::events::OutboxEvent;
use domain::follow_up::{FollowUp, FollowUpState, FollowUpTask};
use domain::ids::{
    CallId, EventId, HoldId, OrderId, PaymentId, ProductId, ReceivedWebhookId, RefundId, RefundRequestId, TokenFamilyId, TransactionId,
    TransferId, UserId, WalletId, WebhookDeliveryId, WebhookEndpointId, WithdrawalId,
};
use domain::ledger::{JournalTransaction, Posting, TransactionKind};
use domain::money::Currency;
use domain::order::{Order, OrderStatus, StatusChange};
use domain::payment::{Payment, PaymentStatus, ProviderName, Refund, RefundStatus};
use domain::refund_request::{RefundRequest, RefundRequestStatus};
use domain::user::{AdminAction, Email, Role, User};
use domain::wallet::{Hold, SystemAccount, Transfer, Wallet};
use domain::webhook::{DeliveryStatus, EndpointOwner, WebhookDelivery, WebhookEndpoint};
use domain::withdrawal::{Withdrawal, WithdrawalStatus};
use time::OffsetDateTime;

use crate::pagination::{Page, PageRequest};
use crate::ports::records::{
    IdempotencyRecord, IdempotencyScope, LedgerAudit, RecoveryPoint, RefreshToken, StatementTotals, StoredResponse,
};

/// The rows that concurrent transactions of one kind queue for: the key on which a store may
/// group them into one commit (`UnitOfWork::begin_grouped`). Transactions with equal keys are
/// expected to lock the same hot rows first; the key is a hint for grouping, never a lock.
///
/// ```
/// use application::ports::store::Contention;
/// use domain::ids::{ProductId, UserId};
/// use domain::user::Email;
/// use uuid::Uuid;
///
/// let (mug, pen) = (ProductId::from_uuid(Uuid::from_u128(1)), ProductId::from_uuid(Uuid::from_u128(2)));
/// // A cart's stock rows, whatever the order of its items.
/// assert_eq!(Contention::stock(&[mug, pen, mug]), Contention::stock(&[pen, mug]));
/// // A recipient as the sender named them: by id and by email are two keys for one user.
/// let email = Email::parse("shop@example.com").expect("an email");
/// let user = UserId::from_uuid(Uuid::from_u128(3));
/// assert_ne!(Contention::recipient_email(&email), Contention::recipient_id(user));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Contention(ContentionOn);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ContentionOn {
    /// Sorted and without repeats.
    Stock(Vec<ProductId>),
    RecipientId(UserId),
    RecipientEmail(Email),
}

impl Contention {
    /// The stock rows of a cart's products: a wallet checkout, in a flash sale.
    pub fn stock(products: &[ProductId]) -> Contention {
        let mut products = products.to_vec();
        products.sort_unstable();
        products.dedup();
        Contention(ContentionOn::Stock(products))
    }

    /// The wallet of a transfer's recipient, named by id: many senders paying one user.
    pub fn recipient_id(user: UserId) -> Contention {
        Contention(ContentionOn::RecipientId(user))
    }

    /// The same, named by email address.
    pub fn recipient_email(email: &Email) -> Contention {
        Contention(ContentionOn::RecipientEmail(email.clone()))
    }

    /// Whether the key names no row at all (an empty cart), so that grouping on it means nothing.
    pub fn is_empty(&self) -> bool {
        matches!(&self.0, ContentionOn::Stock(products) if products.is_empty())
    }
}

/// What can go wrong in storage, translated from the driver at the adapter boundary.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A serialization failure or deadlock: the transaction was rolled back and may be retried.
    #[error("the transaction conflicted with a concurrent one")]
    Conflict,
    /// A uniqueness rule was broken; the name says which (`users_email`, `idempotency_key`, ...).
    #[error("duplicate value for {0}")]
    Duplicate(String),
    /// A lock or statement waited longer than the configured limit.
    #[error("storage timed out")]
    Timeout,
    /// The database could not be reached or the connection was lost; nothing was committed.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The connection was lost while the transaction committed, and whether it did could not be
    /// learned: the effect may or may not have happened. Not retryable blindly: a client must
    /// retry with the same idempotency key, or look the resource up.
    #[error("the outcome of the commit is unknown: {0}")]
    OutcomeUnknown(String),
    /// A row could not be turned back into a domain value, or an expected row was missing.
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    /// Anything else the adapter could not classify; the source is kept for the log.
    #[error(transparent)]
    Unexpected(Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// Whether running the whole transaction again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Conflict)
    }
}

/// The result of every storage port method.
pub type StoreResult<T> = Result<T, StoreError>;

/// Starts transactions.
pub trait UnitOfWork: Clone + Send + Sync + 'static {
    /// The transaction type this store hands out.
    type Tx: Transaction;

    /// Starts a transaction on the primary, for reads that decide and for writes.
    ///
    /// # Errors
    /// `Unavailable` when no connection can be had within the configured time.
    fn begin(&self) -> impl Future<Output = StoreResult<Self::Tx>> + Send;

    /// A transaction for reads that may lag a little behind the latest commits: lists, history,
    /// statements and the catalog. A store with a read replica starts it there; by default it is
    /// `begin`. Never for a decision about money nor for a write: a replica refuses writes and
    /// may not have replayed the last commit yet.
    ///
    /// # Errors
    /// As `begin`.
    fn begin_lagging(&self) -> impl Future<Output = StoreResult<Self::Tx>> + Send {
        self.begin()
    }

    /// Starts a transaction whose work contends with concurrent ones of its kind on the rows
    /// `contention` names (a cart's stock in a flash sale, the wallet many senders pay). A store
    /// may run it inside a transaction shared with the others on the same rows, each in a
    /// savepoint of its own, and commit them together (group commit): its effects are exactly
    /// those of a transaction of its own, and its commit may fail with `Conflict` when the shared
    /// transaction did not commit, after which running the work again, alone, is safe. By default
    /// it is `begin`.
    ///
    /// # Errors
    /// As `begin`.
    fn begin_grouped(&self, contention: &Contention) -> impl Future<Output = StoreResult<Self::Tx>> + Send {
        let _ = contention;
        self.begin()
    }

    /// Whether the store answers; used by the readiness probe.
    ///
    /// # Errors
    /// `Unavailable` (or `Timeout`) when it does not.
    fn ping(&self) -> impl Future<Output = StoreResult<()>> + Send;

    /// Whether the store's source of lagging reads answers, if it has one apart from the
    /// primary (a read replica); `None` without one. Used by the readiness probe: lagging reads
    /// fall back to the primary, so the answer degrades readiness, never fails it.
    fn ping_lagging(&self) -> impl Future<Output = Option<StoreResult<()>>> + Send {
        std::future::ready(None)
    }

    /// Upkeep of the store's own bookkeeping, run now and then by the job (the PostgreSQL store
    /// prunes old commit markers). Nothing by default.
    fn upkeep(&self, _now: OffsetDateTime) -> impl Future<Output = StoreResult<()>> + Send {
        std::future::ready(Ok(()))
    }
}

/// One transaction, offering every repository.
pub trait Transaction:
    Send
    + UserRepository
    + AdminAuditRepository
    + RefreshTokenRepository
    + WalletRepository
    + LedgerRepository
    + HoldRepository
    + ProductRepository
    + OrderRepository
    + PaymentRepository
    + RefundRepository
    + TransferRepository
    + CallRepository
    + IdempotencyRepository
    + WebhookInbox
    + EventOutbox
    + FollowUpRepository
    + WebhookRepository
{
    /// # Errors
    /// `Conflict` when the database refuses the commit (serialization failure); the effects are
    /// then gone and the transaction may be retried.
    fn commit(self) -> impl Future<Output = StoreResult<()>> + Send;

    /// Throws the transaction's writes away. Dropping it does the same; this says so and reports a
    /// failure.
    ///
    /// # Errors
    /// `Unavailable` when the connection was lost (the database rolls back by itself then).
    fn rollback(self) -> impl Future<Output = StoreResult<()>> + Send;
}

/// Users and their standing.
pub trait UserRepository {
    /// # Errors
    /// `Duplicate("users_email")` when the e-mail address is taken.
    fn insert_user(&mut self, user: &User) -> impl Future<Output = StoreResult<()>> + Send;
    /// The user with this id, if any.
    fn find_user(&mut self, id: UserId) -> impl Future<Output = StoreResult<Option<User>>> + Send;
    /// The user with this (normalised) address, if any: how sign-in finds an account.
    fn find_user_by_email(&mut self, email: &Email) -> impl Future<Output = StoreResult<Option<User>>> + Send;
    /// Every user that `filter` keeps, newest first: the admins' list.
    fn list_users(&mut self, filter: &UserFilter, page: &PageRequest) -> impl Future<Output = StoreResult<Page<User>>> + Send;
    /// Suspends the user as of `at`, or reactivates them (`None`).
    fn set_user_suspended(&mut self, id: UserId, at: Option<OffsetDateTime>) -> impl Future<Output = StoreResult<()>> + Send;
}

/// The admins' audit trail.
pub trait AdminAuditRepository {
    /// Appends an entry; entries are never changed.
    fn record_admin_action(&mut self, action: &AdminAction) -> impl Future<Output = StoreResult<()>> + Send;
    /// Actions newest first, all of them or those on one subject (`user:<id>`).
    fn list_admin_actions(
        &mut self,
        subject: Option<&str>,
        page: &PageRequest,
    ) -> impl Future<Output = StoreResult<Page<AdminAction>>> + Send;
}

/// Refresh tokens, stored by the hash of their secret.
pub trait RefreshTokenRepository {
    /// Stores a new token of a family.
    fn insert_refresh_token(&mut self, token: &RefreshToken) -> impl Future<Output = StoreResult<()>> + Send;
    /// Finds a token by the hash of its secret and locks it, so two rotations cannot both win.
    fn lock_refresh_token(&mut self, token_hash: &str) -> impl Future<Output = StoreResult<Option<RefreshToken>>> + Send;
    /// Writes a token's use or revocation.
    fn update_refresh_token(&mut self, token: &RefreshToken) -> impl Future<Output = StoreResult<()>> + Send;
    /// Revokes every token of the family that is not revoked yet.
    fn revoke_token_family(&mut self, family: TokenFamilyId, at: OffsetDateTime) -> impl Future<Output = StoreResult<()>> + Send;
    /// Revokes every token of the user that is not revoked yet: all their sessions end.
    fn revoke_user_tokens(&mut self, user: UserId, at: OffsetDateTime) -> impl Future<Output = StoreResult<()>> + Send;
}

/// Which wallets an admin's listing shows, system accounts included: every field set narrows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WalletFilter {
    /// Only this user's wallets (no system account then).
    pub owner: Option<UserId>,
    /// Only wallets in this currency.
    pub currency: Option<Currency>,
}

impl WalletFilter {
    /// Whether the filter keeps `wallet`: the rule the stores' queries follow, and how the memory
    /// store applies it.
    pub fn keeps(&self, wallet: &Wallet) -> bool {
        self.owner.is_none_or(|owner| wallet.user_id() == Some(owner)) && self.currency.is_none_or(|currency| wallet.currency() == currency)
    }
}

/// Wallets, the ledger's accounts. Reads are unlocked unless the method says it locks.
pub trait WalletRepository {
    /// The user's wallet in `currency`, created empty (with `new_id`) if it does not exist.
    fn ensure_user_wallet(
        &mut self,
        user: UserId,
        currency: Currency,
        new_id: WalletId,
        at: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<WalletId>> + Send;
    /// The system account in `currency`, created (with `new_id`) if it does not exist.
    fn ensure_system_wallet(
        &mut self,
        account: &SystemAccount,
        currency: Currency,
        new_id: WalletId,
        at: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<WalletId>> + Send;
    /// The user's wallet in `currency`, unlocked, if it exists.
    fn find_user_wallet(&mut self, user: UserId, currency: Currency) -> impl Future<Output = StoreResult<Option<Wallet>>> + Send;
    /// A system account in `currency`, unlocked, if it exists.
    fn find_system_wallet(
        &mut self,
        account: &SystemAccount,
        currency: Currency,
    ) -> impl Future<Output = StoreResult<Option<Wallet>>> + Send;
    /// Every wallet of the user, one per currency they used.
    fn list_user_wallets(&mut self, user: UserId) -> impl Future<Output = StoreResult<Vec<Wallet>>> + Send;
    /// Any wallet (a user's or a system account), unlocked.
    fn find_wallet(&mut self, id: WalletId) -> impl Future<Output = StoreResult<Option<Wallet>>> + Send;
    /// Every wallet that `filter` keeps, newest first: the admins' list.
    fn list_wallets(&mut self, filter: WalletFilter, page: &PageRequest) -> impl Future<Output = StoreResult<Page<Wallet>>> + Send;
    /// The wallets of all these users in one read, unlocked, by owner and then currency.
    fn list_wallets_of_users(&mut self, users: &[UserId]) -> impl Future<Output = StoreResult<Vec<Wallet>>> + Send;
    /// The wallets of these users in `currency`, each created empty (with the id paired with it) if
    /// it does not exist, locked in ascending wallet id order and returned in that order. One
    /// round trip where `ensure_user_wallet` and `lock_wallets` take several.
    fn lock_user_wallets(
        &mut self,
        owners: &[(UserId, WalletId)],
        currency: Currency,
        at: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<Vec<Wallet>>> + Send;
    /// Locks the wallets in ascending id order (whatever order `ids` has) and returns them in that
    /// order. # Errors: `Corrupt` if one does not exist.
    fn lock_wallets(&mut self, ids: &[WalletId]) -> impl Future<Output = StoreResult<Vec<Wallet>>> + Send;
    /// Writes the cached balance and held amount of wallets locked in this transaction.
    fn update_wallets(&mut self, wallets: &[Wallet]) -> impl Future<Output = StoreResult<()>> + Send;
    /// The wallets of merchants, unlocked, in ascending id order after `after`, at most `limit`.
    fn list_merchant_wallets(&mut self, after: Option<WalletId>, limit: usize) -> impl Future<Output = StoreResult<Vec<Wallet>>> + Send;
}

/// A posting as listed in a wallet's history, with its position in that history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostingRecord {
    /// Increases with every posting ever made; orders a wallet's history.
    pub sequence: i64,
    /// The posting itself.
    pub posting: Posting,
}

/// A journal transaction with its postings in the order they were made: what admins read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalRecord {
    /// The transaction's id.
    pub id: TransactionId,
    /// Why money moved.
    pub kind: TransactionKind,
    /// What the transaction is for, as its use case named it.
    pub reference: String,
    /// When it was posted.
    pub created_at: OffsetDateTime,
    /// Every posting of it, one per wallet it moved.
    pub postings: Vec<PostingRecord>,
}

/// Which journal transactions an admin's listing shows: every field set narrows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JournalFilter {
    /// Only transactions of this kind.
    pub kind: Option<TransactionKind>,
    /// Only transactions with a posting to this wallet.
    pub wallet: Option<WalletId>,
    /// Only transactions created within this period.
    pub created: CreatedWithin,
}

/// The append-only journal and its postings.
pub trait LedgerRepository {
    /// Appends a journal transaction and its postings. They can never be changed afterwards.
    fn append_journal(&mut self, transaction: &JournalTransaction, postings: &[Posting]) -> impl Future<Output = StoreResult<()>> + Send;
    /// A wallet's postings, newest first, after the `before_sequence` cursor.
    fn wallet_history(
        &mut self,
        wallet: WalletId,
        before_sequence: Option<i64>,
        limit: usize,
    ) -> impl Future<Output = StoreResult<Vec<PostingRecord>>> + Send;
    /// The postings of each wallet summed for a statement of the period `[from, to)` (an absent
    /// bound is open), with the facts that check them, all read in one snapshot. One per wallet
    /// asked for, in any order.
    ///
    /// # Errors
    /// `Corrupt` if a wallet does not exist.
    fn statement_totals(
        &mut self,
        wallets: &[WalletId],
        from: Option<OffsetDateTime>,
        to: Option<OffsetDateTime>,
    ) -> impl Future<Output = StoreResult<Vec<StatementTotals>>> + Send;
    /// Every journal transaction that `filter` keeps, newest first, each with all its postings:
    /// the admins' journal.
    fn list_journal(&mut self, filter: JournalFilter, page: &PageRequest) -> impl Future<Output = StoreResult<Page<JournalRecord>>> + Send;
    /// One journal transaction with all its postings, if it exists.
    fn find_journal(&mut self, id: TransactionId) -> impl Future<Output = StoreResult<Option<JournalRecord>>> + Send;
    /// Everything ledger verification looks at, computed over the whole ledger.
    fn audit_ledger(&mut self) -> impl Future<Output = StoreResult<LedgerAudit>> + Send;
}

/// Holds: funds reserved on user wallets. The wallet's cached `held` changes with them, through
/// [`WalletRepository::update_wallets`] in the same transaction.
pub trait HoldRepository {
    /// Stores a new, pending hold.
    fn insert_hold(&mut self, hold: &Hold) -> impl Future<Output = StoreResult<()>> + Send;
    /// The hold, unlocked, if it exists.
    fn find_hold(&mut self, id: HoldId) -> impl Future<Output = StoreResult<Option<Hold>>> + Send;
    /// The hold, locked until the transaction ends, if it exists.
    fn lock_hold(&mut self, id: HoldId) -> impl Future<Output = StoreResult<Option<Hold>>> + Send;
    /// Writes a hold's capture, extension or end.
    fn update_hold(&mut self, hold: &Hold) -> impl Future<Output = StoreResult<()>> + Send;
    /// Pending holds that expired by `now`, soonest first (unlocked), except those of active
    /// calls and of withdrawals in flight (requested or approved): a call's hold ends with the
    /// call, a withdrawal's with its payout or rejection.
    fn find_expired_holds(&mut self, now: OffsetDateTime, limit: usize) -> impl Future<Output = StoreResult<Vec<Hold>>> + Send;
    /// The holds of a manual-capture order's parts, in hold id order (unlocked: they change only
    /// under the order's lock).
    fn find_order_holds(&mut self, order_id: OrderId) -> impl Future<Output = StoreResult<Vec<Hold>>> + Send;
}

/// Which products a listing shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductFilter {
    /// Only this merchant's products.
    pub merchant: Option<UserId>,
    /// Only products on sale (active and not archived).
    pub active_only: bool,
    /// Only products whose name or description holds this text.
    pub search: Option<ProductSearch>,
}

/// Which products an admin's inventory shows, archived ones included: every field set narrows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InventoryFilter {
    /// Only this merchant's products.
    pub merchant: Option<UserId>,
    /// Only products on sale (`true`) or paused or archived (`false`).
    pub active: Option<bool>,
    /// Only products with fewer units available than this (low stock).
    pub below: Option<i64>,
}

impl InventoryFilter {
    /// Whether the filter keeps `product` with `stock`: the rule the stores' queries follow.
    pub fn keeps(&self, product: &Product, stock: &Stock) -> bool {
        self.merchant.is_none_or(|merchant| product.merchant_id == merchant)
            && self.active.is_none_or(|active| product.active == active)
            && self.below.is_none_or(|below| stock.available() < below)
    }
}

/// Products and their stock. Stock is written only under the lock of [`lock_cart`] or
/// [`lock_stock`], so nothing ever oversells.
///
/// [`lock_cart`]: ProductRepository::lock_cart
/// [`lock_stock`]: ProductRepository::lock_stock
pub trait ProductRepository {
    /// Stores a new product with its first stock.
    fn insert_product(&mut self, product: &Product, stock: &Stock) -> impl Future<Output = StoreResult<()>> + Send;
    /// Writes a product's name, description, price, sale status and archiving.
    fn update_product(&mut self, product: &Product) -> impl Future<Output = StoreResult<()>> + Send;
    /// The product with its stock, unlocked, if it exists.
    fn find_product(&mut self, id: ProductId) -> impl Future<Output = StoreResult<Option<(Product, Stock)>>> + Send;
    /// Locks a product row so that concurrent edits of one product apply one after another.
    fn lock_product(&mut self, id: ProductId) -> impl Future<Output = StoreResult<Option<Product>>> + Send;
    /// The products with these ids (those that exist), unlocked, in any order.
    fn find_products(&mut self, ids: &[ProductId]) -> impl Future<Output = StoreResult<Vec<Product>>> + Send;
    /// Newest first.
    fn list_products(
        &mut self,
        filter: ProductFilter,
        page: &PageRequest,
    ) -> impl Future<Output = StoreResult<Page<(Product, Stock)>>> + Send;
    /// Every product with its stock (archived ones too) that `filter` keeps, newest first: the
    /// admins' inventory.
    fn list_inventory(
        &mut self,
        filter: InventoryFilter,
        page: &PageRequest,
    ) -> impl Future<Output = StoreResult<Page<(Product, Stock)>>> + Send;
    /// Locks the stock rows of a cart in ascending product id order and returns each with its
    /// product, in that order; missing products are left out.
    fn lock_cart(&mut self, ids: &[ProductId]) -> impl Future<Output = StoreResult<Vec<(Stock, Product)>>> + Send;
    /// As [`lock_cart`], and then, in that order, the wallets of `buyer` and of the products'
    /// merchants in the currency of the cart's first product (in id order), those that exist,
    /// locked in ascending wallet id order: what a wallet purchase locks, in the lock order, in
    /// one trip to the store. A wallet that does not exist yet is left out: the caller then locks
    /// what it needs with [`WalletRepository::lock_user_wallets`], which creates a missing one.
    ///
    /// The default locks the cart alone and returns no wallet, which is correct, at the cost of
    /// the caller's second trip; a store that can send both locks at once overrides it.
    ///
    /// [`lock_cart`]: ProductRepository::lock_cart
    fn lock_cart_and_wallets(&mut self, ids: &[ProductId], buyer: UserId) -> impl Future<Output = StoreResult<LockedCart>> + Send {
        let _ = buyer;
        let entries = self.lock_cart(ids);
        async move {
            Ok(LockedCart {
                entries: entries.await?,
                wallets: Vec::new(),
            })
        }
    }
    /// Locks the stock rows in ascending product id order and returns them in that order; missing
    /// products are left out.
    fn lock_stock(&mut self, ids: &[ProductId]) -> impl Future<Output = StoreResult<Vec<Stock>>> + Send;
    /// Writes stock rows locked in this transaction.
    fn update_stock(&mut self, stock: &[Stock]) -> impl Future<Output = StoreResult<()>> + Send;
}

/// A cart locked with the wallets its purchase pays between
/// ([`ProductRepository::lock_cart_and_wallets`]).
#[derive(Debug, Clone)]
pub struct LockedCart {
    /// Each product's stock row with the product, in ascending product id order.
    pub entries: Vec<(Stock, Product)>,
    /// The wallets locked after the stock, in ascending wallet id order.
    pub wallets: Vec<Wallet>,
}

/// Which users an admin's listing shows: every field set narrows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserFilter {
    /// Only users of this role.
    pub role: Option<Role>,
    /// Only suspended users (`true`) or only active ones (`false`).
    pub suspended: Option<bool>,
    /// The one user with this address.
    pub email: Option<Email>,
    /// Only users who registered within this period.
    pub created: CreatedWithin,
}

impl UserFilter {
    /// Whether the filter keeps `user`: the rule the stores' queries follow.
    pub fn keeps(&self, user: &User) -> bool {
        self.role.is_none_or(|role| user.role == role)
            && self.suspended.is_none_or(|suspended| user.is_suspended() == suspended)
            && self.email.as_ref().is_none_or(|email| user.email == *email)
            && self.created.contains(user.created_at)
    }
}

/// Which orders a listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderFilter {
    /// Orders this user placed.
    Buyer(UserId),
    /// Orders with at least one item sold by this merchant.
    Merchant(UserId),
    /// Every order that the admin's filter keeps.
    All(AdminOrderFilter),
}

/// Which orders an admin's listing shows: every field set narrows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AdminOrderFilter {
    /// Only orders in this status.
    pub status: Option<OrderStatus>,
    /// Only orders this user placed.
    pub buyer: Option<UserId>,
    /// Only orders with at least one item this merchant sold.
    pub merchant: Option<UserId>,
    /// Only orders in this currency.
    pub currency: Option<Currency>,
    /// Only orders placed within this period.
    pub created: CreatedWithin,
}

impl AdminOrderFilter {
    /// Whether the filter keeps `order`: the rule the stores' queries follow.
    pub fn keeps(&self, order: &Order) -> bool {
        self.status.is_none_or(|status| order.status() == status)
            && self.buyer.is_none_or(|buyer| order.buyer_id() == buyer)
            && self.merchant.is_none_or(|merchant| order.has_merchant(merchant))
            && self.currency.is_none_or(|currency| order.currency() == currency)
            && self.created.contains(order.created_at())
    }
}

/// Orders, with their items, and their audit trail.
pub trait OrderRepository {
    /// Stores a new order with its items.
    fn insert_order(&mut self, order: &Order) -> impl Future<Output = StoreResult<()>> + Send;
    /// Writes the status, refunded amount and update time; for a manual-capture order also its
    /// total and the units each item captured.
    fn update_order(&mut self, order: &Order) -> impl Future<Output = StoreResult<()>> + Send;
    /// The order, unlocked, if it exists.
    fn find_order(&mut self, id: OrderId) -> impl Future<Output = StoreResult<Option<Order>>> + Send;
    /// The order, locked until the transaction ends, if it exists; every change to an order and to
    /// what hangs on it (its payment's settlement, refunds, captures) happens under this lock.
    fn lock_order(&mut self, id: OrderId) -> impl Future<Output = StoreResult<Option<Order>>> + Send;
    /// Newest first.
    fn list_orders(&mut self, filter: OrderFilter, page: &PageRequest) -> impl Future<Output = StoreResult<Page<Order>>> + Send;
    /// Appends entries to orders' audit trails; entries are never changed.
    fn append_status_changes(&mut self, changes: &[StatusChange]) -> impl Future<Output = StoreResult<()>> + Send;
    /// The audit trail, newest first, of one order or of all.
    fn list_status_changes(
        &mut self,
        order: Option<OrderId>,
        page: &PageRequest,
    ) -> impl Future<Output = StoreResult<Page<StatusChange>>> + Send;
}

/// How a gateway event names the payment it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentLookup {
    /// Our own payment id, as we gave it to the provider (in metadata or a reference).
    Ours(PaymentId),
    /// The provider's checkout session id.
    Session(String),
    /// The provider's payment id (Stripe's `pi_...`).
    ProviderPayment(String),
}

/// Which of a payer's payments a listing shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PaymentFilter {
    /// Only payments in this status.
    pub status: Option<PaymentStatus>,
    /// Top-ups only (`Some(true)`), order checkouts only (`Some(false)`), or both.
    pub top_ups: Option<bool>,
}

/// A period of creation times for admins' listings: `from` included, `to` excluded, either end
/// open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CreatedWithin {
    /// The start, included; `None` for no lower bound.
    pub from: Option<OffsetDateTime>,
    /// The end, excluded; `None` for no upper bound.
    pub to: Option<OffsetDateTime>,
}

impl CreatedWithin {
    /// Whether `at` falls within the period.
    pub fn contains(&self, at: OffsetDateTime) -> bool {
        self.from.is_none_or(|from| from <= at) && self.to.is_none_or(|to| at < to)
    }
}

/// Which payments an admin's listing shows: every field set narrows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdminPaymentFilter {
    /// Status and kind, as a payer filters their own.
    pub of: PaymentFilter,
    /// Only this payer's payments.
    pub payer: Option<UserId>,
    /// Only payments through this provider.
    pub provider: Option<ProviderName>,
    /// Only payments in this currency.
    pub currency: Option<Currency>,
    /// Only payments opened within this period.
    pub created: CreatedWithin,
}

impl AdminPaymentFilter {
    /// Whether the filter keeps `payment`: the rule the stores' queries follow.
    pub fn keeps(&self, payment: &Payment) -> bool {
        self.of.status.is_none_or(|status| payment.status() == status)
            && self
                .of
                .top_ups
                .is_none_or(|top_ups| matches!(payment.purpose(), domain::payment::PaymentPurpose::TopUp(_)) == top_ups)
            && self.payer.is_none_or(|payer| payment.payer_id() == payer)
            && self.provider.as_ref().is_none_or(|provider| payment.provider() == provider)
            && self.currency.is_none_or(|currency| payment.currency() == currency)
            && self.created.contains(payment.created_at())
    }
}

/// Which refunds an admin's listing shows: every field set narrows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdminRefundFilter {
    /// Only refunds in this status.
    pub status: Option<RefundStatus>,
    /// Only refunds from this merchant's share.
    pub merchant: Option<UserId>,
    /// Refunds of this provider's card payments (a refund to a wallet has no provider).
    pub provider: Option<ProviderName>,
    /// Only refunds in this currency.
    pub currency: Option<Currency>,
    /// Only refunds made within this period.
    pub created: CreatedWithin,
}

impl AdminRefundFilter {
    /// Whether the filter keeps `refund`, refunding a card payment through `provider` (`None`
    /// for a refund to a wallet).
    pub fn keeps(&self, refund: &Refund, provider: Option<&ProviderName>) -> bool {
        self.status.is_none_or(|status| refund.status() == status)
            && self.merchant.is_none_or(|merchant| refund.merchant_id() == merchant)
            && self.provider.as_ref().is_none_or(|wanted| provider == Some(wanted))
            && self.currency.is_none_or(|currency| refund.amount().currency() == currency)
            && self.created.contains(refund.created_at())
    }
}

/// Card payments.
pub trait PaymentRepository {
    /// Stores a new, pending payment.
    fn insert_payment(&mut self, payment: &Payment) -> impl Future<Output = StoreResult<()>> + Send;
    /// Writes a payment's session, settlement, provider id and flags.
    fn update_payment(&mut self, payment: &Payment) -> impl Future<Output = StoreResult<()>> + Send;
    /// The payment, unlocked, if it exists.
    fn find_payment(&mut self, id: PaymentId) -> impl Future<Output = StoreResult<Option<Payment>>> + Send;
    /// The payment of `provider` that `lookup` names, locked until the transaction ends, if it
    /// exists: how a webhook finds what it settles.
    fn lock_payment(
        &mut self,
        provider: &ProviderName,
        lookup: &PaymentLookup,
    ) -> impl Future<Output = StoreResult<Option<Payment>>> + Send;
    /// A payer's payments, newest first.
    fn list_payer_payments(
        &mut self,
        payer: UserId,
        filter: PaymentFilter,
        page: &PageRequest,
    ) -> impl Future<Output = StoreResult<Page<Payment>>> + Send;
    /// Every payer's payments that `filter` keeps, newest first: the admins' list.
    fn list_payments(&mut self, filter: &AdminPaymentFilter, page: &PageRequest)
    -> impl Future<Output = StoreResult<Page<Payment>>> + Send;
    /// The latest payment opened for an order.
    fn find_order_payment(&mut self, order: OrderId) -> impl Future<Output = StoreResult<Option<Payment>>> + Send;
    /// Pending payments whose checkout expired by `now`, locked; rows another transaction holds are
    /// skipped, so several expiry workers can run side by side.
    fn lock_expired_payments(&mut self, now: OffsetDateTime, limit: usize) -> impl Future<Output = StoreResult<Vec<Payment>>> + Send;
}

/// Refunds and refund requests.
pub trait RefundRepository {
    /// Stores a new refund.
    fn insert_refund(&mut self, refund: &Refund) -> impl Future<Output = StoreResult<()>> + Send;
    /// Writes a refund's settlement and provider id.
    fn update_refund(&mut self, refund: &Refund) -> impl Future<Output = StoreResult<()>> + Send;
    /// The refund, unlocked, if it exists.
    fn find_refund(&mut self, id: RefundId) -> impl Future<Output = StoreResult<Option<Refund>>> + Send;
    /// The refund the provider knows by this id, unlocked, if any: how a refund event finds ours.
    fn find_refund_by_provider_id(&mut self, provider_refund_id: &str) -> impl Future<Output = StoreResult<Option<Refund>>> + Send;
    /// The refund, locked until the transaction ends, if it exists.
    fn lock_refund(&mut self, id: RefundId) -> impl Future<Output = StoreResult<Option<Refund>>> + Send;
    /// Every refund of the order, oldest first.
    fn list_order_refunds(&mut self, order: OrderId) -> impl Future<Output = StoreResult<Vec<Refund>>> + Send;
    /// Every refund that `filter` keeps, newest first: the admins' list.
    fn list_refunds(&mut self, filter: &AdminRefundFilter, page: &PageRequest) -> impl Future<Output = StoreResult<Page<Refund>>> + Send;
    /// # Errors
    /// `Duplicate("refund_requests_open")` when the buyer already has an open request for the
    /// same order and merchant; the transaction stays usable.
    fn insert_refund_request(&mut self, request: &RefundRequest) -> impl Future<Output = StoreResult<()>> + Send;
    /// Writes a request's decision, refund and status.
    fn update_refund_request(&mut self, request: &RefundRequest) -> impl Future<Output = StoreResult<()>> + Send;
    /// The request, unlocked, if it exists.
    fn find_refund_request(&mut self, id: RefundRequestId) -> impl Future<Output = StoreResult<Option<RefundRequest>>> + Send;
    /// Locked after the order in the lock order (it is decided under the order's lock).
    fn lock_refund_request(&mut self, id: RefundRequestId) -> impl Future<Output = StoreResult<Option<RefundRequest>>> + Send;
    /// Every request that `filter` keeps, newest first.
    fn list_refund_requests(
        &mut self,
        filter: &RefundRequestFilter,
        page: &PageRequest,
    ) -> impl Future<Output = StoreResult<Page<RefundRequest>>> + Send;
}

/// The stable name of the only open request per order and merchant, as `StoreError::Duplicate`
/// reports it.
pub const REFUND_REQUESTS_OPEN: &str = "refund_requests_open";

/// Which refund requests a listing shows: every field set narrows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RefundRequestFilter {
    /// Only requests this user made.
    pub buyer: Option<UserId>,
    /// Only requests this merchant must answer.
    pub merchant: Option<UserId>,
    /// Requests this user made as the buyer or must answer as the merchant (a merchant buys too).
    pub party: Option<UserId>,
    /// Only requests about this order.
    pub order: Option<OrderId>,
    /// Only requests in this status.
    pub status: Option<RefundRequestStatus>,
}

impl RefundRequestFilter {
    /// Whether the filter keeps `request`: the rule the stores' queries follow.
    pub fn keeps(&self, request: &RefundRequest) -> bool {
        self.buyer.is_none_or(|buyer| request.buyer_id() == buyer)
            && self.merchant.is_none_or(|merchant| request.merchant_id() == merchant)
            && self
                .party
                .is_none_or(|party| request.buyer_id() == party || request.merchant_id() == party)
            && self.order.is_none_or(|order| request.order_id() == order)
            && self.status.is_none_or(|status| request.status() == status)
    }
}

/// Which transfers an admin's listing shows: every field set narrows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransferFilter {
    /// Only transfers this user sent or received.
    pub user: Option<UserId>,
    /// Only transfers in this currency.
    pub currency: Option<Currency>,
    /// Only transfers made within this period.
    pub created: CreatedWithin,
}

impl TransferFilter {
    /// Whether the filter keeps `transfer`: the rule the stores' queries follow.
    pub fn keeps(&self, transfer: &Transfer) -> bool {
        self.user
            .is_none_or(|user| transfer.from_user_id == user || transfer.to_user_id == user)
            && self.currency.is_none_or(|currency| transfer.amount.currency() == currency)
            && self.created.contains(transfer.created_at)
    }
}

/// Person-to-person transfers, and withdrawals.
pub trait TransferRepository {
    /// Stores a transfer, posted in the same transaction.
    fn insert_transfer(&mut self, transfer: &Transfer) -> impl Future<Output = StoreResult<()>> + Send;
    /// The transfer, if it exists.
    fn find_transfer(&mut self, id: TransferId) -> impl Future<Output = StoreResult<Option<Transfer>>> + Send;
    /// Every transfer that `filter` keeps, newest first: the admins' list.
    fn list_transfers(&mut self, filter: TransferFilter, page: &PageRequest) -> impl Future<Output = StoreResult<Page<Transfer>>> + Send;
    /// Stores a new, requested withdrawal.
    fn insert_withdrawal(&mut self, withdrawal: &Withdrawal) -> impl Future<Output = StoreResult<()>> + Send;
    /// The withdrawal, unlocked, if it exists.
    fn find_withdrawal(&mut self, id: WithdrawalId) -> impl Future<Output = StoreResult<Option<Withdrawal>>> + Send;
    /// The withdrawal, locked: its status is decided by whoever locks it first (an admin's
    /// decision, the payout's outcome).
    fn lock_withdrawal(&mut self, id: WithdrawalId) -> impl Future<Output = StoreResult<Option<Withdrawal>>> + Send;
    /// Writes what a transition changes (everything but the id, user, amount, destination, hold
    /// and creation time).
    ///
    /// # Errors
    /// `Unexpected` (or `Corrupt`) when the withdrawal does not exist.
    fn update_withdrawal(&mut self, withdrawal: &Withdrawal) -> impl Future<Output = StoreResult<()>> + Send;
    /// A user's withdrawals, newest first.
    fn list_user_withdrawals(&mut self, user: UserId, page: &PageRequest) -> impl Future<Output = StoreResult<Page<Withdrawal>>> + Send;
    /// Every withdrawal that `filter` keeps, newest first: the admins' desk.
    fn list_withdrawals(
        &mut self,
        filter: WithdrawalFilter,
        page: &PageRequest,
    ) -> impl Future<Output = StoreResult<Page<Withdrawal>>> + Send;
}

/// Which withdrawals an admin's listing shows: every field set narrows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WithdrawalFilter {
    /// Only withdrawals in this status.
    pub status: Option<WithdrawalStatus>,
    /// Only this user's.
    pub user: Option<UserId>,
    /// Only withdrawals in this currency.
    pub currency: Option<Currency>,
    /// Only withdrawals requested within this period.
    pub created: CreatedWithin,
}

impl WithdrawalFilter {
    /// Whether the filter keeps `withdrawal`: the rule the stores' queries follow.
    pub fn keeps(&self, withdrawal: &Withdrawal) -> bool {
        self.status.is_none_or(|status| withdrawal.status() == status)
            && self.user.is_none_or(|user| withdrawal.user_id() == user)
            && self.currency.is_none_or(|currency| withdrawal.amount().currency() == currency)
            && self.created.contains(withdrawal.created_at())
    }
}

/// Which calls an admin's listing shows: every field set narrows it. Calls are dated by their start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallFilter {
    /// Only calls in this status.
    pub status: Option<CallStatus>,
    /// Only calls this user made or received.
    pub user: Option<UserId>,
    /// Only calls started within this period.
    pub started: CreatedWithin,
}

impl CallFilter {
    /// Whether the filter keeps `call`: the rule the stores' queries follow.
    pub fn keeps(&self, call: &CallSession) -> bool {
        self.status.is_none_or(|status| call.status == status)
            && self.user.is_none_or(|user| call.caller_id == user || call.receiver_id == user)
            && self.started.contains(call.started_at)
    }
}

/// Metered calls.
pub trait CallRepository {
    /// Stores a new, active call.
    fn insert_call(&mut self, call: &CallSession) -> impl Future<Output = StoreResult<()>> + Send;
    /// The call, locked until the transaction ends, if it exists.
    fn lock_call(&mut self, id: CallId) -> impl Future<Output = StoreResult<Option<CallSession>>> + Send;
    /// Writes a call's extension or end.
    fn update_call(&mut self, call: &CallSession) -> impl Future<Output = StoreResult<()>> + Send;
    /// Active calls whose authorisation ends by `bound`, soonest first (unlocked).
    fn find_calls_authorized_until(&mut self, bound: OffsetDateTime, limit: usize)
    -> impl Future<Output = StoreResult<Vec<CallId>>> + Send;
    /// Calls the user made or received, newest first.
    fn list_calls(&mut self, user: UserId, page: &PageRequest) -> impl Future<Output = StoreResult<Page<CallSession>>> + Send;
    /// Any call, unlocked.
    fn find_call(&mut self, id: CallId) -> impl Future<Output = StoreResult<Option<CallSession>>> + Send;
    /// Every call that `filter` keeps, newest first by start: the admins' list.
    fn list_every_call(&mut self, filter: CallFilter, page: &PageRequest) -> impl Future<Output = StoreResult<Page<CallSession>>> + Send;
}

/// The outcome of trying to claim an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The key was new and is now claimed by this request.
    Claimed,
    /// The key exists; here is its record, locked until the transaction ends.
    Existing(IdempotencyRecord),
}

/// Idempotency keys: a request's claim on a key, its recovery point and its stored response.
pub trait IdempotencyRepository {
    /// Inserts `record` unless its scope exists already; an existing record is returned locked.
    /// A record another transaction has inserted but not committed is waited for.
    fn claim_idempotency_key(&mut self, record: &IdempotencyRecord) -> impl Future<Output = StoreResult<ClaimOutcome>> + Send;
    /// The record of a key, unlocked.
    fn find_idempotency_record(&mut self, scope: &IdempotencyScope) -> impl Future<Output = StoreResult<Option<IdempotencyRecord>>> + Send;
    /// Re-claims an in-progress key whose lease ran out (or was ended) for a new attempt,
    /// keeping its recovery point.
    fn renew_idempotency_lease(
        &mut self,
        scope: &IdempotencyScope,
        locked_until: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Records what an in-progress request has committed so far.
    fn set_idempotency_recovery_point(
        &mut self,
        scope: &IdempotencyScope,
        point: &RecoveryPoint,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Stores the response of a claimed key; from now on the key replays it.
    fn complete_idempotency_key(
        &mut self,
        scope: &IdempotencyScope,
        response: &StoredResponse,
        at: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Stores a completed `record` whether or not the key exists, unless it is completed already
    /// (then the existing response stays).
    fn settle_idempotency_key(&mut self, record: &IdempotencyRecord, at: OffsetDateTime) -> impl Future<Output = StoreResult<()>> + Send;
    /// Ends the lease of an in-progress key at `at`, so another attempt may take it over now.
    fn end_idempotency_lease(&mut self, scope: &IdempotencyScope, at: OffsetDateTime) -> impl Future<Output = StoreResult<()>> + Send;
}

/// A provider's webhook event as the inbox keeps it: what arrived, and what it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedWebhook {
    /// The inbox entry's id.
    pub id: ReceivedWebhookId,
    /// The provider that sent it.
    pub provider: ProviderName,
    /// The provider's own id of the event: a redelivery carries the same.
    pub event_id: String,
    /// The provider's event type (`checkout.session.completed`, ...).
    pub event_type: String,
    /// The payment the event is about, when it names ours.
    pub payment_id: Option<PaymentId>,
    /// The provider's id of the payment or checkout the event is about, when it names one.
    pub provider_reference: Option<String>,
    /// When it arrived.
    pub received_at: OffsetDateTime,
    /// What applying it did; `None` only for events received before outcomes were kept.
    pub outcome: Option<InboxOutcome>,
}

/// What applying a received event did, as the inbox records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxOutcome {
    /// `applied`, `ignored`, `late_success` or `refused`.
    pub kind: &'static str,
    /// Why it was ignored or refused.
    pub detail: Option<String>,
}

impl InboxOutcome {
    /// Every kind, in the order admins see them.
    pub const KINDS: [&'static str; 4] = ["applied", "ignored", "late_success", "refused"];

    /// The kind as stored, or `None` for text that is not one.
    pub fn kind_named(text: &str) -> Option<&'static str> {
        Self::KINDS.into_iter().find(|kind| *kind == text)
    }
}

/// Which received events an admin's listing shows: every field set narrows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceivedWebhookFilter {
    /// Only events from this provider.
    pub provider: Option<ProviderName>,
    /// Only events of this provider's type.
    pub event_type: Option<String>,
    /// One of [`InboxOutcome::KINDS`].
    pub outcome: Option<&'static str>,
    /// Only events naming this payment of ours.
    pub payment: Option<PaymentId>,
    /// Only events received within this period.
    pub received: CreatedWithin,
}

impl ReceivedWebhookFilter {
    /// Whether the filter keeps `event`: the rule the stores' queries follow.
    pub fn keeps(&self, event: &ReceivedWebhook) -> bool {
        self.provider.as_ref().is_none_or(|provider| event.provider == *provider)
            && self.event_type.as_ref().is_none_or(|kind| event.event_type == *kind)
            && self
                .outcome
                .is_none_or(|kind| event.outcome.as_ref().is_some_and(|outcome| outcome.kind == kind))
            && self.payment.is_none_or(|payment| event.payment_id == Some(payment))
            && self.received.contains(event.received_at)
    }
}

/// The inbox of providers' webhook events: deduplication by the provider's event id, in the
/// transaction of the event's effect.
pub trait WebhookInbox {
    /// Records a provider's event. Returns `false` if its event id was recorded before: the
    /// event is a duplicate and must have no effect (and the record stays the first one).
    fn record_webhook_event(&mut self, event: &ReceivedWebhook) -> impl Future<Output = StoreResult<bool>> + Send;
    /// Records what applying the event recorded as `id` did, in the same transaction.
    fn record_webhook_outcome(&mut self, id: ReceivedWebhookId, outcome: &InboxOutcome) -> impl Future<Output = StoreResult<()>> + Send;
    /// Every received event that `filter` keeps, newest first: the admins' list.
    fn list_webhook_events(
        &mut self,
        filter: &ReceivedWebhookFilter,
        page: &PageRequest,
    ) -> impl Future<Output = StoreResult<Page<ReceivedWebhook>>> + Send;
    /// One received event, if it exists.
    fn find_webhook_event(&mut self, id: ReceivedWebhookId) -> impl Future<Output = StoreResult<Option<ReceivedWebhook>>> + Send;
}

/// The outbox: domain events written in the transaction of their effect, published by the relay.
pub trait EventOutbox {
    /// Stores events, unpublished, in the transaction of what they announce.
    fn enqueue_events(&mut self, events: &[OutboxEvent]) -> impl Future<Output = StoreResult<()>> + Send;
    /// The oldest unpublished events, locked (skipping rows other publishers hold).
    fn lock_unpublished_events(&mut self, limit: usize) -> impl Future<Output = StoreResult<Vec<OutboxEvent>>> + Send;
    /// Marks events published: the relay has made their deliveries.
    fn mark_events_published(&mut self, ids: &[EventId], at: OffsetDateTime) -> impl Future<Output = StoreResult<()>> + Send;
    /// The events with these ids (those that exist), in any order.
    fn find_events(&mut self, ids: &[EventId]) -> impl Future<Output = StoreResult<Vec<OutboxEvent>>> + Send;
    /// When the oldest unpublished event occurred, if there is one (the outbox's lag).
    fn oldest_unpublished_event(&mut self) -> impl Future<Output = StoreResult<Option<OffsetDateTime>>> + Send;
}

/// Which webhook endpoints a listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointFilter {
    /// Every endpoint (the admins' view).
    All,
    /// The endpoints of one owner.
    Owner(EndpointOwner),
}

/// Which deliveries of an endpoint a listing shows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeliveryFilter {
    /// Only deliveries in this status.
    pub status: Option<DeliveryStatus>,
    /// Only deliveries of this public event type.
    pub event_type: Option<String>,
}

/// Counts of the deliveries still to make, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeliveryBacklog {
    /// Pending deliveries never attempted.
    pub queued: u64,
    /// Pending deliveries that failed at least once and wait for their next attempt.
    pub retrying: u64,
}

/// Outbound webhook endpoints and their deliveries.
///
/// An endpoint is *claimed* by one deliverer at a time (`claim_webhook_endpoints`, skipping those
/// another holds, for a lease the deliverer renews and then releases), so no two deliverers send
/// to one endpoint at once.
pub trait WebhookRepository {
    /// Stores a new endpoint.
    fn insert_webhook_endpoint(&mut self, endpoint: &WebhookEndpoint) -> impl Future<Output = StoreResult<()>> + Send;
    /// Writes an endpoint's changes, secret and failure streak.
    fn update_webhook_endpoint(&mut self, endpoint: &WebhookEndpoint) -> impl Future<Output = StoreResult<()>> + Send;
    /// Deletes the endpoint and its deliveries.
    fn delete_webhook_endpoint(&mut self, id: WebhookEndpointId) -> impl Future<Output = StoreResult<()>> + Send;
    /// The endpoint, unlocked, if it exists.
    fn find_webhook_endpoint(&mut self, id: WebhookEndpointId) -> impl Future<Output = StoreResult<Option<WebhookEndpoint>>> + Send;
    /// The endpoint, locked until the transaction ends, if it exists.
    fn lock_webhook_endpoint(&mut self, id: WebhookEndpointId) -> impl Future<Output = StoreResult<Option<WebhookEndpoint>>> + Send;
    /// Newest first.
    fn list_webhook_endpoints(
        &mut self,
        filter: EndpointFilter,
        page: &PageRequest,
    ) -> impl Future<Output = StoreResult<Page<WebhookEndpoint>>> + Send;
    /// Every enabled endpoint, for fanning events out.
    fn enabled_webhook_endpoints(&mut self) -> impl Future<Output = StoreResult<Vec<WebhookEndpoint>>> + Send;
    /// Records deliveries; one per event and endpoint: a pair recorded before is left as it is.
    fn insert_webhook_deliveries(&mut self, deliveries: &[WebhookDelivery]) -> impl Future<Output = StoreResult<()>> + Send;
    /// Writes what attempts changed on these deliveries, in one go.
    fn update_webhook_deliveries(&mut self, deliveries: &[WebhookDelivery]) -> impl Future<Output = StoreResult<()>> + Send;
    /// The delivery, locked until the transaction ends, if it exists.
    fn lock_webhook_delivery(&mut self, id: WebhookDeliveryId) -> impl Future<Output = StoreResult<Option<WebhookDelivery>>> + Send;
    /// Enabled endpoints with a delivery due by `now` that no deliverer holds, at most `limit`,
    /// each claimed until `until`.
    fn claim_webhook_endpoints(
        &mut self,
        now: OffsetDateTime,
        until: OffsetDateTime,
        limit: usize,
    ) -> impl Future<Output = StoreResult<Vec<WebhookEndpoint>>> + Send;
    /// Extends (`Some`) or ends (`None`) a deliverer's claim on an endpoint.
    fn hold_webhook_endpoint(
        &mut self,
        id: WebhookEndpointId,
        until: Option<OffsetDateTime>,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// The endpoint's pending deliveries due by `now`, oldest queued first, at most `limit`.
    fn due_webhook_deliveries(
        &mut self,
        endpoint: WebhookEndpointId,
        now: OffsetDateTime,
        limit: usize,
    ) -> impl Future<Output = StoreResult<Vec<WebhookDelivery>>> + Send;
    /// Newest first.
    fn list_webhook_deliveries(
        &mut self,
        endpoint: WebhookEndpointId,
        filter: &DeliveryFilter,
        page: &PageRequest,
    ) -> impl Future<Output = StoreResult<Page<WebhookDelivery>>> + Send;
    /// Queues again every delivery of the endpoint whose event occurred in `[from, to)`. Returns
    /// how many.
    fn requeue_webhook_deliveries(
        &mut self,
        endpoint: WebhookEndpointId,
        from: OffsetDateTime,
        to: OffsetDateTime,
        at: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<u64>> + Send;
    /// How many deliveries wait, for the metrics.
    fn webhook_delivery_backlog(&mut self) -> impl Future<Output = StoreResult<DeliveryBacklog>> + Send;
    /// Deletes up to `limit` deliveries that ended (succeeded or failed) before `before`; returns
    /// how many. Pending deliveries are never deleted.
    fn prune_settled_webhook_deliveries(&mut self, before: OffsetDateTime, limit: usize) -> impl Future<Output = StoreResult<u64>> + Send;
}

/// Follow-ups: the provider calls multi-step flows still owe.
pub trait FollowUpRepository {
    /// Records a follow-up. There is one per task: recording a task again changes nothing.
    fn insert_follow_up(&mut self, follow_up: &FollowUp) -> impl Future<Output = StoreResult<()>> + Send;
    /// The follow-up of this task, locked until the transaction ends, if it exists.
    fn lock_follow_up(&mut self, task: &FollowUpTask) -> impl Future<Output = StoreResult<Option<FollowUp>>> + Send;
    /// Writes a follow-up's attempts, schedule and state.
    fn update_follow_up(&mut self, follow_up: &FollowUp) -> impl Future<Output = StoreResult<()>> + Send;
    /// Pending follow-ups due by `now`, oldest first, locked; rows another transaction holds are
    /// skipped, so several job runners share the work.
    fn lock_due_follow_ups(&mut self, now: OffsetDateTime, limit: usize) -> impl Future<Output = StoreResult<Vec<FollowUp>>> + Send;
    /// Follow-ups in `state`, most recently changed first.
    fn list_follow_ups(&mut self, state: FollowUpState, page: &PageRequest) -> impl Future<Output = StoreResult<Page<FollowUp>>> + Send;
}
