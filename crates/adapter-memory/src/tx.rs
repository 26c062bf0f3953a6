//! A transaction over the in-memory state: a private copy, swapped in on commit.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use application::auth::RefreshToken;
use application::idempotency::{IdempotencyRecord, IdempotencyScope, IdempotencyState, RecoveryPoint, StoredResponse};
use application::ledger::{BalanceMismatch, HeldMismatch, LedgerAudit, UnbalancedTransaction};
use application::pagination::{Cursor, Page, PageRequest};
use application::ports::records::{KindTotals, StatementTotals};
use application::ports::store::{
    AdminAuditRepository, AdminPaymentFilter, AdminRefundFilter, CallFilter, CallRepository, ClaimOutcome, EventOutbox, FollowUpRepository,
    HoldRepository, IdempotencyRepository, InboxOutcome, InventoryFilter, JournalFilter, JournalRecord, LedgerRepository, LockedCart,
    OrderFilter, OrderRepository, PaymentFilter, PaymentLookup, PaymentRepository, PostingRecord, ProductFilter, ProductRepository,
    REFUND_REQUESTS_OPEN, ReceivedWebhook, ReceivedWebhookFilter, RefreshTokenRepository, RefundRepository, RefundRequestFilter,
    StoreError, StoreResult, Transaction, TransferFilter, TransferRepository, UserFilter, UserRepository, WalletFilter, WalletRepository,
    WebhookInbox, WithdrawalFilter,
};
use domain::call::CallSession;
use domain::catalog::{Product, Stock};
use domain::events::OutboxEvent;
use domain::follow_up::{FollowUp, FollowUpState, FollowUpTask};
use domain::ids::{
    CallId, EventId, HoldId, OrderId, PaymentId, ProductId, ReceivedWebhookId, RefundId, RefundRequestId, TokenFamilyId, TransactionId,
    TransferId, UserId, WalletId, WithdrawalId,
};
use domain::ledger::{JournalTransaction, Posting};
use domain::money::Currency;
use domain::order::{Order, StatusChange};
use domain::payment::{Payment, PaymentPurpose, PaymentStatus, ProviderName, Refund};
use domain::refund_request::RefundRequest;
use domain::user::{AdminAction, Email, Role, User};
use domain::wallet::{Hold, HoldStatus, SystemAccount, Transfer, Wallet, WalletOwner};
use domain::withdrawal::Withdrawal;
use time::OffsetDateTime;
use tokio::sync::OwnedMutexGuard;
use uuid::Uuid;

use crate::Faults;
use crate::state::State;

#[derive(Debug)]
pub struct MemoryTx {
    guard: OwnedMutexGuard<State>,
    pub(crate) work: State,
    pub(crate) faults: Arc<Faults>,
}

impl MemoryTx {
    pub(crate) fn new(guard: OwnedMutexGuard<State>, faults: Arc<Faults>) -> MemoryTx {
        let work = guard.clone();
        MemoryTx { guard, work, faults }
    }
}

pub(crate) fn missing(what: &str) -> StoreError {
    StoreError::Corrupt(format!("{what} does not exist"))
}

/// Newest first by (time, id), after the cursor, at most `limit + 1` rows.
pub(crate) fn page_by_position<T: Clone>(mut rows: Vec<T>, page: &PageRequest, key: impl Fn(&T) -> (OffsetDateTime, Uuid)) -> Page<T> {
    rows.sort_by_key(|row| Reverse(key(row)));
    if let Some((at, id)) = page.after.and_then(|cursor| cursor.position()) {
        rows.retain(|row| key(row) < (at, id));
    }
    rows.truncate(page.limit + 1);
    Page::from_rows(rows, page.limit, |row| {
        let (at, id) = key(row);
        Cursor::Position { at, id }
    })
}

impl Transaction for MemoryTx {
    async fn commit(mut self) -> StoreResult<()> {
        self.faults.commit_outcome()?;
        *self.guard = std::mem::take(&mut self.work);
        if self.faults.commit_unacknowledged() {
            return Err(StoreError::Unavailable("injected failure after commit".into()));
        }
        Ok(())
    }

    async fn rollback(self) -> StoreResult<()> {
        Ok(())
    }
}

impl UserRepository for MemoryTx {
    async fn insert_user(&mut self, user: &User) -> StoreResult<()> {
        self.faults.operation("insert_user")?;
        if self.work.users_by_email.contains_key(&user.email) {
            return Err(StoreError::Duplicate("users_email".into()));
        }
        self.work.users_by_email.insert(user.email.clone(), user.id);
        self.work.users.insert(user.id, user.clone());
        Ok(())
    }

    async fn find_user(&mut self, id: UserId) -> StoreResult<Option<User>> {
        self.faults.operation("find_user")?;
        Ok(self.work.users.get(&id).cloned())
    }

    async fn find_user_by_email(&mut self, email: &Email) -> StoreResult<Option<User>> {
        self.faults.operation("find_user_by_email")?;
        Ok(self.work.users_by_email.get(email).and_then(|id| self.work.users.get(id)).cloned())
    }

    async fn list_users(&mut self, filter: &UserFilter, page: &PageRequest) -> StoreResult<Page<User>> {
        self.faults.operation("list_users")?;
        let rows: Vec<User> = self.work.users.values().filter(|user| filter.keeps(user)).cloned().collect();
        Ok(page_by_position(rows, page, |u| (u.created_at, u.id.as_uuid())))
    }

    async fn set_user_suspended(&mut self, id: UserId, at: Option<OffsetDateTime>) -> StoreResult<()> {
        self.faults.operation("set_user_suspended")?;
        let user = self.work.users.get_mut(&id).ok_or_else(|| missing("user"))?;
        user.suspended_at = at;
        Ok(())
    }
}

impl AdminAuditRepository for MemoryTx {
    async fn record_admin_action(&mut self, action: &AdminAction) -> StoreResult<()> {
        self.faults.operation("record_admin_action")?;
        self.work.admin_actions.push_back(action.clone());
        Ok(())
    }

    async fn list_admin_actions(&mut self, subject: Option<&str>, page: &PageRequest) -> StoreResult<Page<AdminAction>> {
        self.faults.operation("list_admin_actions")?;
        let rows: Vec<AdminAction> = self
            .work
            .admin_actions
            .iter()
            .filter(|action| subject.is_none_or(|subject| action.subject == subject))
            .cloned()
            .collect();
        Ok(page_by_position(rows, page, |a| (a.at, a.id.as_uuid())))
    }
}

impl RefreshTokenRepository for MemoryTx {
    async fn insert_refresh_token(&mut self, token: &RefreshToken) -> StoreResult<()> {
        self.faults.operation("insert_refresh_token")?;
        if self.work.refresh_tokens_by_hash.contains_key(&token.token_hash) {
            return Err(StoreError::Duplicate("refresh_tokens_hash".into()));
        }
        self.work.refresh_tokens_by_hash.insert(token.token_hash.clone(), token.id);
        self.work.refresh_tokens.insert(token.id, token.clone());
        Ok(())
    }

    async fn lock_refresh_token(&mut self, token_hash: &str) -> StoreResult<Option<RefreshToken>> {
        self.faults.operation("lock_refresh_token")?;
        Ok(self
            .work
            .refresh_tokens_by_hash
            .get(token_hash)
            .and_then(|id| self.work.refresh_tokens.get(id))
            .cloned())
    }

    async fn update_refresh_token(&mut self, token: &RefreshToken) -> StoreResult<()> {
        self.faults.operation("update_refresh_token")?;
        if !self.work.refresh_tokens.contains_key(&token.id) {
            return Err(missing("refresh token"));
        }
        self.work.refresh_tokens.insert(token.id, token.clone());
        Ok(())
    }

    async fn revoke_token_family(&mut self, family: TokenFamilyId, at: OffsetDateTime) -> StoreResult<()> {
        self.faults.operation("revoke_token_family")?;
        let ids: Vec<_> = self
            .work
            .refresh_tokens
            .values()
            .filter(|t| t.family_id == family && t.revoked_at.is_none())
            .map(|t| t.id)
            .collect();
        for id in ids {
            if let Some(token) = self.work.refresh_tokens.get_mut(&id) {
                token.revoked_at = Some(at);
            }
        }
        Ok(())
    }

    async fn revoke_user_tokens(&mut self, user: UserId, at: OffsetDateTime) -> StoreResult<()> {
        self.faults.operation("revoke_user_tokens")?;
        let live: Vec<_> = self
            .work
            .refresh_tokens
            .values()
            .filter(|t| t.user_id == user && t.revoked_at.is_none())
            .map(|t| t.id)
            .collect();
        for id in live {
            if let Some(token) = self.work.refresh_tokens.get_mut(&id) {
                token.revoked_at = Some(at);
            }
        }
        Ok(())
    }
}

impl WalletRepository for MemoryTx {
    async fn ensure_user_wallet(
        &mut self,
        user: UserId,
        currency: Currency,
        new_id: WalletId,
        at: OffsetDateTime,
    ) -> StoreResult<WalletId> {
        self.faults.operation("ensure_user_wallet")?;
        if let Some(id) = self.work.user_wallets.get(&(user, currency)) {
            return Ok(*id);
        }
        self.work
            .wallets
            .insert(new_id, Wallet::open(new_id, WalletOwner::User(user), currency, at));
        self.work.user_wallets.insert((user, currency), new_id);
        Ok(new_id)
    }

    async fn ensure_system_wallet(
        &mut self,
        account: &SystemAccount,
        currency: Currency,
        new_id: WalletId,
        at: OffsetDateTime,
    ) -> StoreResult<WalletId> {
        self.faults.operation("ensure_system_wallet")?;
        let key = (account.code(), currency);
        if let Some(id) = self.work.system_wallets.get(&key) {
            return Ok(*id);
        }
        self.work
            .wallets
            .insert(new_id, Wallet::open(new_id, WalletOwner::System(account.clone()), currency, at));
        self.work.system_wallets.insert(key, new_id);
        Ok(new_id)
    }

    async fn find_user_wallet(&mut self, user: UserId, currency: Currency) -> StoreResult<Option<Wallet>> {
        self.faults.operation("find_user_wallet")?;
        Ok(self
            .work
            .user_wallets
            .get(&(user, currency))
            .and_then(|id| self.work.wallets.get(id))
            .cloned())
    }

    async fn list_user_wallets(&mut self, user: UserId) -> StoreResult<Vec<Wallet>> {
        self.faults.operation("list_user_wallets")?;
        let mut wallets: Vec<Wallet> = self.work.wallets.values().filter(|w| w.user_id() == Some(user)).cloned().collect();
        wallets.sort_by_key(|w| w.currency());
        Ok(wallets)
    }

    async fn find_wallet(&mut self, id: WalletId) -> StoreResult<Option<Wallet>> {
        self.faults.operation("find_wallet")?;
        Ok(self.work.wallets.get(&id).cloned())
    }

    async fn list_wallets(&mut self, filter: WalletFilter, page: &PageRequest) -> StoreResult<Page<Wallet>> {
        self.faults.operation("list_wallets")?;
        let rows: Vec<Wallet> = self.work.wallets.values().filter(|w| filter.keeps(w)).cloned().collect();
        Ok(page_by_position(rows, page, |w| (w.created_at(), w.id().as_uuid())))
    }

    async fn list_wallets_of_users(&mut self, users: &[UserId]) -> StoreResult<Vec<Wallet>> {
        self.faults.operation("list_wallets_of_users")?;
        let mut wallets: Vec<Wallet> = self
            .work
            .wallets
            .values()
            .filter(|w| w.user_id().is_some_and(|owner| users.contains(&owner)))
            .cloned()
            .collect();
        wallets.sort_by_key(|w| (w.user_id(), w.currency()));
        Ok(wallets)
    }

    async fn lock_user_wallets(
        &mut self,
        owners: &[(UserId, WalletId)],
        currency: Currency,
        at: OffsetDateTime,
    ) -> StoreResult<Vec<Wallet>> {
        self.faults.operation("lock_user_wallets")?;
        let mut ids = Vec::with_capacity(owners.len());
        for (user, new_id) in owners {
            ids.push(self.ensure_user_wallet(*user, currency, *new_id, at).await?);
        }
        self.lock_wallets(&ids).await
    }

    async fn find_system_wallet(&mut self, account: &SystemAccount, currency: Currency) -> StoreResult<Option<Wallet>> {
        self.faults.operation("find_system_wallet")?;
        let id = self.work.system_wallets.get(&(account.code(), currency)).copied();
        Ok(id.and_then(|id| self.work.wallets.get(&id).cloned()))
    }

    async fn lock_wallets(&mut self, ids: &[WalletId]) -> StoreResult<Vec<Wallet>> {
        self.faults.operation("lock_wallets")?;
        let mut sorted = ids.to_vec();
        sorted.sort();
        sorted.dedup();
        sorted
            .iter()
            .map(|id| self.work.wallets.get(id).cloned().ok_or_else(|| missing("wallet")))
            .collect()
    }

    async fn update_wallets(&mut self, wallets: &[Wallet]) -> StoreResult<()> {
        self.faults.operation("update_wallets")?;
        for wallet in wallets {
            // The same rules the database enforces with CHECK constraints.
            if !wallet.may_go_negative() && (wallet.held().amount_minor() < 0 || wallet.available().is_negative()) {
                return Err(StoreError::Corrupt(format!("wallet {} would be overdrawn", wallet.id())));
            }
            if !self.work.wallets.contains_key(&wallet.id()) {
                return Err(missing("wallet"));
            }
            self.work.wallets.insert(wallet.id(), wallet.clone());
        }
        Ok(())
    }

    async fn list_merchant_wallets(&mut self, after: Option<WalletId>, limit: usize) -> StoreResult<Vec<Wallet>> {
        self.faults.operation("list_merchant_wallets")?;
        let users = &self.work.users;
        let is_merchant = |wallet: &Wallet| {
            wallet
                .user_id()
                .and_then(|user| users.get(&user))
                .is_some_and(|user| user.role == Role::Merchant)
        };
        let wallets = self
            .work
            .wallets
            .values()
            .filter(|wallet| after.is_none_or(|after| wallet.id() > after))
            .filter(|wallet| is_merchant(wallet))
            .take(limit)
            .cloned()
            .collect();
        Ok(wallets)
    }
}

/// A journal transaction with its postings, numbered as in a wallet's history.
fn journal_record(state: &State, transaction: &JournalTransaction) -> JournalRecord {
    let postings = state
        .postings
        .iter()
        .enumerate()
        .filter(|(_, posting)| posting.transaction_id == transaction.id())
        .map(|(index, posting)| PostingRecord {
            sequence: index as i64 + 1,
            posting: posting.clone(),
        })
        .collect();
    JournalRecord {
        id: transaction.id(),
        kind: transaction.kind(),
        reference: transaction.reference().to_owned(),
        created_at: transaction.created_at(),
        postings,
    }
}

impl LedgerRepository for MemoryTx {
    async fn append_journal(&mut self, transaction: &JournalTransaction, postings: &[Posting]) -> StoreResult<()> {
        self.faults.operation("append_journal")?;
        self.work.journal.push_back(transaction.clone());
        for posting in postings {
            self.work.postings.push_back(posting.clone());
        }
        Ok(())
    }

    async fn wallet_history(&mut self, wallet: WalletId, before_sequence: Option<i64>, limit: usize) -> StoreResult<Vec<PostingRecord>> {
        self.faults.operation("wallet_history")?;
        let records = self
            .work
            .postings
            .iter()
            .enumerate()
            .rev()
            .map(|(index, posting)| PostingRecord {
                sequence: index as i64 + 1,
                posting: posting.clone(),
            })
            .filter(|record| record.posting.wallet_id == wallet)
            .filter(|record| before_sequence.is_none_or(|before| record.sequence < before))
            .take(limit)
            .collect();
        Ok(records)
    }

    async fn statement_totals(
        &mut self,
        wallets: &[WalletId],
        from: Option<OffsetDateTime>,
        to: Option<OffsetDateTime>,
    ) -> StoreResult<Vec<StatementTotals>> {
        self.faults.operation("statement_totals")?;
        wallets
            .iter()
            .map(|wallet| statement_totals(&self.work, *wallet, from, to))
            .collect()
    }

    async fn list_journal(&mut self, filter: JournalFilter, page: &PageRequest) -> StoreResult<Page<JournalRecord>> {
        self.faults.operation("list_journal")?;
        let touching: Option<HashSet<TransactionId>> = filter.wallet.map(|wallet| {
            self.work
                .postings
                .iter()
                .filter(|p| p.wallet_id == wallet)
                .map(|p| p.transaction_id)
                .collect()
        });
        let rows: Vec<&JournalTransaction> = self
            .work
            .journal
            .iter()
            .filter(|t| filter.kind.is_none_or(|kind| t.kind() == kind) && filter.created.contains(t.created_at()))
            .filter(|t| touching.as_ref().is_none_or(|ids| ids.contains(&t.id())))
            .collect();
        let page = page_by_position(rows, page, |t| (t.created_at(), t.id().as_uuid()));
        Ok(page.map(|t| journal_record(&self.work, t)))
    }

    async fn find_journal(&mut self, id: TransactionId) -> StoreResult<Option<JournalRecord>> {
        self.faults.operation("find_journal")?;
        Ok(self
            .work
            .journal
            .iter()
            .find(|t| t.id() == id)
            .map(|t| journal_record(&self.work, t)))
    }

    async fn audit_ledger(&mut self) -> StoreResult<LedgerAudit> {
        self.faults.operation("audit_ledger")?;
        Ok(audit(&self.work))
    }
}

/// A wallet's postings summed as `LedgerRepository::statement_totals` says; the closing balance
/// is summed on its own, as PostgreSQL does.
fn statement_totals(
    state: &State,
    wallet: WalletId,
    from: Option<OffsetDateTime>,
    to: Option<OffsetDateTime>,
) -> StoreResult<StatementTotals> {
    let cached = state.wallets.get(&wallet).ok_or_else(|| missing("wallet"))?;
    let postings: Vec<&Posting> = state
        .postings
        .iter()
        .filter(|posting| posting.wallet_id == wallet)
        .filter(|posting| to.is_none_or(|to| posting.created_at < to))
        .collect();
    let before = |posting: &Posting| from.is_some_and(|from| posting.created_at < from);
    let mut kinds: BTreeMap<&'static str, KindTotals> = BTreeMap::new();
    let mut opening_minor = 0;
    for posting in &postings {
        let amount = i128::from(posting.amount.amount_minor());
        if before(posting) {
            opening_minor += amount;
            continue;
        }
        let totals = kinds.entry(posting.kind.as_str()).or_insert(KindTotals {
            kind: posting.kind,
            credits_minor: 0,
            debits_minor: 0,
            credit_count: 0,
            debit_count: 0,
        });
        if amount > 0 {
            totals.credits_minor += amount;
            totals.credit_count += 1;
        } else {
            totals.debits_minor += amount;
            totals.debit_count += 1;
        }
    }
    let latest = state.postings.iter().rev().find(|posting| posting.wallet_id == wallet);
    Ok(StatementTotals {
        wallet_id: wallet,
        opening_minor,
        kinds: kinds.into_values().collect(),
        closing_minor: postings.iter().map(|posting| i128::from(posting.amount.amount_minor())).sum(),
        cached_balance_minor: cached.balance().amount_minor(),
        latest_balance_after_minor: latest.map(|posting| posting.balance_after_minor),
    })
}

fn audit(state: &State) -> LedgerAudit {
    let mut audit = LedgerAudit {
        transaction_count: state.journal.len() as u64,
        posting_count: state.postings.len() as u64,
        wallet_count: state.wallets.len() as u64,
        ..LedgerAudit::default()
    };
    let mut by_transaction: BTreeMap<(domain::ids::TransactionId, Currency), i128> = BTreeMap::new();
    let mut by_wallet: BTreeMap<WalletId, (i128, Option<i64>, bool)> = BTreeMap::new();
    let mut by_currency: BTreeMap<Currency, i128> = BTreeMap::new();
    for posting in &state.postings {
        let amount = i128::from(posting.amount.amount_minor());
        *by_transaction
            .entry((posting.transaction_id, posting.amount.currency()))
            .or_default() += amount;
        *by_currency.entry(posting.amount.currency()).or_default() += amount;
        let (sum, last, broken) = by_wallet.entry(posting.wallet_id).or_insert((0, None, false));
        let expected = last.map_or(amount, |previous| i128::from(previous) + amount);
        if expected != i128::from(posting.balance_after_minor) {
            *broken = true;
        }
        *sum += amount;
        *last = Some(posting.balance_after_minor);
    }
    audit.unbalanced_transactions = by_transaction
        .into_iter()
        .filter(|(_, sum)| *sum != 0)
        .map(|((transaction_id, currency), sum_minor)| UnbalancedTransaction {
            transaction_id,
            currency,
            sum_minor,
        })
        .collect();
    audit.totals_by_currency = by_currency.into_iter().collect();
    let mut pending: BTreeMap<WalletId, i128> = BTreeMap::new();
    for hold in state.holds.values().filter(|h| h.status == HoldStatus::Pending) {
        *pending.entry(hold.wallet_id).or_default() += i128::from(hold.remaining().amount_minor());
    }
    for wallet in state.wallets.values() {
        let (posted, _, broken) = by_wallet.get(&wallet.id()).copied().unwrap_or((0, None, false));
        let cached = wallet.balance().amount_minor();
        if i128::from(cached) != posted {
            audit.balance_mismatches.push(BalanceMismatch {
                wallet_id: wallet.id(),
                cached_minor: cached,
                posted_minor: posted,
            });
        }
        let held = wallet.held().amount_minor();
        let holds = pending.get(&wallet.id()).copied().unwrap_or(0);
        if i128::from(held) != holds {
            audit.held_mismatches.push(HeldMismatch {
                wallet_id: wallet.id(),
                cached_minor: held,
                pending_holds_minor: holds,
            });
        }
        if !wallet.may_go_negative() && (cached < 0 || held > cached) {
            audit.overdrawn_wallets.push(wallet.id());
        }
        if broken {
            audit.broken_chains.push(wallet.id());
        }
    }
    audit
}

impl HoldRepository for MemoryTx {
    async fn find_expired_holds(&mut self, now: OffsetDateTime, limit: usize) -> StoreResult<Vec<Hold>> {
        self.faults.operation("find_expired_holds")?;
        let in_active_calls: std::collections::HashSet<HoldId> = self
            .work
            .calls
            .values()
            .filter(|c| c.status == domain::call::CallStatus::Active)
            .map(|c| c.hold_id)
            .collect();
        let in_withdrawals: std::collections::HashSet<HoldId> = self
            .work
            .withdrawals
            .values()
            .filter(|w| w.status().is_in_flight())
            .filter_map(Withdrawal::hold_id)
            .collect();
        let mut expired: Vec<Hold> = self
            .work
            .holds
            .values()
            .filter(|h| h.is_expired_at(now) && !in_active_calls.contains(&h.id) && !in_withdrawals.contains(&h.id))
            .cloned()
            .collect();
        expired.sort_by_key(|h| (h.expires_at, h.id));
        expired.truncate(limit);
        Ok(expired)
    }

    async fn insert_hold(&mut self, hold: &Hold) -> StoreResult<()> {
        self.faults.operation("insert_hold")?;
        self.work.holds.insert(hold.id, hold.clone());
        Ok(())
    }

    async fn find_hold(&mut self, id: HoldId) -> StoreResult<Option<Hold>> {
        self.faults.operation("find_hold")?;
        Ok(self.work.holds.get(&id).cloned())
    }

    async fn lock_hold(&mut self, id: HoldId) -> StoreResult<Option<Hold>> {
        self.faults.operation("lock_hold")?;
        Ok(self.work.holds.get(&id).cloned())
    }

    async fn update_hold(&mut self, hold: &Hold) -> StoreResult<()> {
        self.faults.operation("update_hold")?;
        if !self.work.holds.contains_key(&hold.id) {
            return Err(missing("hold"));
        }
        self.work.holds.insert(hold.id, hold.clone());
        Ok(())
    }

    async fn find_order_holds(&mut self, order_id: OrderId) -> StoreResult<Vec<Hold>> {
        self.faults.operation("find_order_holds")?;
        let mut holds: Vec<Hold> = self.work.holds.values().filter(|h| h.order_id == Some(order_id)).cloned().collect();
        holds.sort_by_key(|h| h.id);
        Ok(holds)
    }
}

impl ProductRepository for MemoryTx {
    async fn insert_product(&mut self, product: &Product, stock: &Stock) -> StoreResult<()> {
        self.faults.operation("insert_product")?;
        if self.work.products.contains_key(&product.id) {
            return Err(StoreError::Duplicate("products_pkey".into()));
        }
        self.work.products.insert(product.id, product.clone());
        self.work.stock.insert(product.id, *stock);
        Ok(())
    }

    async fn update_product(&mut self, product: &Product) -> StoreResult<()> {
        self.faults.operation("update_product")?;
        if !self.work.products.contains_key(&product.id) {
            return Err(missing("product"));
        }
        self.work.products.insert(product.id, product.clone());
        Ok(())
    }

    async fn find_product(&mut self, id: ProductId) -> StoreResult<Option<(Product, Stock)>> {
        self.faults.operation("find_product")?;
        let product = self.work.products.get(&id).cloned();
        Ok(product.and_then(|p| self.work.stock.get(&id).map(|s| (p, *s))))
    }

    async fn lock_product(&mut self, id: ProductId) -> StoreResult<Option<Product>> {
        self.faults.operation("lock_product")?;
        Ok(self.work.products.get(&id).cloned())
    }

    async fn find_products(&mut self, ids: &[ProductId]) -> StoreResult<Vec<Product>> {
        self.faults.operation("find_products")?;
        Ok(ids.iter().filter_map(|id| self.work.products.get(id).cloned()).collect())
    }

    async fn list_products(&mut self, filter: ProductFilter, page: &PageRequest) -> StoreResult<Page<(Product, Stock)>> {
        self.faults.operation("list_products")?;
        let rows: Vec<(Product, Stock)> = self
            .work
            .products
            .values()
            .filter(|p| filter.merchant.is_none_or(|m| p.merchant_id == m))
            .filter(|p| !p.is_archived())
            .filter(|p| !filter.active_only || p.active)
            .filter(|p| filter.search.as_ref().is_none_or(|search| search.matches(p)))
            .filter_map(|p| self.work.stock.get(&p.id).map(|s| (p.clone(), *s)))
            .collect();
        Ok(page_by_position(rows, page, |(p, _)| (p.created_at, p.id.as_uuid())))
    }

    async fn list_inventory(&mut self, filter: InventoryFilter, page: &PageRequest) -> StoreResult<Page<(Product, Stock)>> {
        self.faults.operation("list_inventory")?;
        let rows: Vec<(Product, Stock)> = self
            .work
            .products
            .values()
            .filter_map(|p| self.work.stock.get(&p.id).map(|s| (p.clone(), *s)))
            .filter(|(p, s)| filter.keeps(p, s))
            .collect();
        Ok(page_by_position(rows, page, |(p, _)| (p.created_at, p.id.as_uuid())))
    }

    async fn lock_cart(&mut self, ids: &[ProductId]) -> StoreResult<Vec<(Stock, Product)>> {
        self.faults.operation("lock_cart")?;
        let stock = self.lock_stock(ids).await?;
        Ok(stock
            .into_iter()
            .filter_map(|s| self.work.products.get(&s.product_id).map(|p| (s, p.clone())))
            .collect())
    }

    async fn lock_cart_and_wallets(&mut self, ids: &[ProductId], buyer: UserId) -> StoreResult<LockedCart> {
        self.faults.operation("lock_cart_and_wallets")?;
        let entries = self.lock_cart(ids).await?;
        // The first product in id order sets the currency, as in the PostgreSQL store.
        let first = ids.iter().min().and_then(|id| self.work.products.get(id));
        let Some(currency) = first.map(|product| product.price.currency()) else {
            return Ok(LockedCart {
                entries,
                wallets: Vec::new(),
            });
        };
        let mut owners: Vec<UserId> = entries.iter().map(|(_, product)| product.merchant_id).collect();
        owners.push(buyer);
        let ids: Vec<WalletId> = owners
            .iter()
            .filter_map(|owner| self.work.user_wallets.get(&(*owner, currency)).copied())
            .collect();
        let wallets = self.lock_wallets(&ids).await?;
        Ok(LockedCart { entries, wallets })
    }

    async fn lock_stock(&mut self, ids: &[ProductId]) -> StoreResult<Vec<Stock>> {
        self.faults.operation("lock_stock")?;
        let mut sorted = ids.to_vec();
        sorted.sort();
        sorted.dedup();
        Ok(sorted.iter().filter_map(|id| self.work.stock.get(id).copied()).collect())
    }

    async fn update_stock(&mut self, stock: &[Stock]) -> StoreResult<()> {
        self.faults.operation("update_stock")?;
        self.faults.write("stock")?;
        for row in stock {
            if row.available() < 0 || row.reserved() < 0 {
                return Err(StoreError::Corrupt(format!("stock of {} would be negative", row.product_id)));
            }
            self.work.stock.insert(row.product_id, *row);
        }
        Ok(())
    }
}

impl OrderRepository for MemoryTx {
    async fn insert_order(&mut self, order: &Order) -> StoreResult<()> {
        self.faults.operation("insert_order")?;
        if self.work.orders.contains_key(&order.id()) {
            return Err(StoreError::Duplicate("orders_pkey".into()));
        }
        self.work.orders.insert(order.id(), order.clone());
        Ok(())
    }

    async fn update_order(&mut self, order: &Order) -> StoreResult<()> {
        self.faults.operation("update_order")?;
        self.faults.write("orders")?;
        let stored = self.work.orders.get_mut(&order.id()).ok_or_else(|| missing("order"))?;
        // Only the status, the refunded amount and the time change after an order is placed.
        *stored = order.clone();
        Ok(())
    }

    async fn find_order(&mut self, id: OrderId) -> StoreResult<Option<Order>> {
        self.faults.operation("find_order")?;
        Ok(self.work.orders.get(&id).cloned())
    }

    async fn lock_order(&mut self, id: OrderId) -> StoreResult<Option<Order>> {
        self.faults.operation("lock_order")?;
        Ok(self.work.orders.get(&id).cloned())
    }

    async fn list_orders(&mut self, filter: OrderFilter, page: &PageRequest) -> StoreResult<Page<Order>> {
        self.faults.operation("list_orders")?;
        let rows: Vec<Order> = self
            .work
            .orders
            .values()
            .filter(|order| match filter {
                OrderFilter::Buyer(buyer) => order.buyer_id() == buyer,
                OrderFilter::Merchant(merchant) => order.has_merchant(merchant),
                OrderFilter::All(admin) => admin.keeps(order),
            })
            .cloned()
            .collect();
        Ok(page_by_position(rows, page, |o| (o.created_at(), o.id().as_uuid())))
    }

    async fn append_status_changes(&mut self, changes: &[StatusChange]) -> StoreResult<()> {
        self.faults.operation("append_status_changes")?;
        for change in changes {
            self.work.status_changes.push_back(change.clone());
        }
        Ok(())
    }

    async fn list_status_changes(&mut self, order: Option<OrderId>, page: &PageRequest) -> StoreResult<Page<StatusChange>> {
        self.faults.operation("list_status_changes")?;
        let before = page.after.and_then(|cursor| cursor.sequence());
        let rows: Vec<(i64, StatusChange)> = self
            .work
            .status_changes
            .iter()
            .enumerate()
            .rev()
            .map(|(index, change)| (index as i64 + 1, change.clone()))
            .filter(|(_, change)| order.is_none_or(|id| change.order_id == id))
            .filter(|(sequence, _)| before.is_none_or(|b| *sequence < b))
            .take(page.limit + 1)
            .collect();
        Ok(Page::from_rows(rows, page.limit, |(sequence, _)| Cursor::Sequence(*sequence)).map(|(_, change)| change))
    }
}

impl PaymentRepository for MemoryTx {
    async fn insert_payment(&mut self, payment: &Payment) -> StoreResult<()> {
        self.faults.operation("insert_payment")?;
        if self.work.payments.contains_key(&payment.id()) {
            return Err(StoreError::Duplicate("payments_pkey".into()));
        }
        self.work.payments.insert(payment.id(), payment.clone());
        Ok(())
    }

    async fn update_payment(&mut self, payment: &Payment) -> StoreResult<()> {
        self.faults.operation("update_payment")?;
        self.faults.write("payments")?;
        if !self.work.payments.contains_key(&payment.id()) {
            return Err(missing("payment"));
        }
        self.work.payments.insert(payment.id(), payment.clone());
        Ok(())
    }

    async fn find_payment(&mut self, id: PaymentId) -> StoreResult<Option<Payment>> {
        self.faults.operation("find_payment")?;
        Ok(self.work.payments.get(&id).cloned())
    }

    async fn list_payer_payments(&mut self, payer: UserId, filter: PaymentFilter, page: &PageRequest) -> StoreResult<Page<Payment>> {
        self.faults.operation("list_payer_payments")?;
        let rows: Vec<Payment> = self
            .work
            .payments
            .values()
            .filter(|p| p.payer_id() == payer && filter.status.is_none_or(|s| p.status() == s))
            .filter(|p| {
                filter
                    .top_ups
                    .is_none_or(|top_ups| matches!(p.purpose(), PaymentPurpose::TopUp(_)) == top_ups)
            })
            .cloned()
            .collect();
        Ok(page_by_position(rows, page, |p| (p.created_at(), p.id().as_uuid())))
    }

    async fn list_payments(&mut self, filter: &AdminPaymentFilter, page: &PageRequest) -> StoreResult<Page<Payment>> {
        self.faults.operation("list_payments")?;
        let rows: Vec<Payment> = self.work.payments.values().filter(|p| filter.keeps(p)).cloned().collect();
        Ok(page_by_position(rows, page, |p| (p.created_at(), p.id().as_uuid())))
    }

    async fn lock_payment(&mut self, provider: &ProviderName, lookup: &PaymentLookup) -> StoreResult<Option<Payment>> {
        self.faults.operation("lock_payment")?;
        let found = self.work.payments.values().find(|p| {
            p.provider() == provider
                && match lookup {
                    PaymentLookup::Ours(id) => p.id() == *id,
                    PaymentLookup::Session(session) => p.provider_session_id() == Some(session.as_str()),
                    PaymentLookup::ProviderPayment(payment) => p.provider_payment_id() == Some(payment.as_str()),
                }
        });
        Ok(found.cloned())
    }

    async fn find_order_payment(&mut self, order: OrderId) -> StoreResult<Option<Payment>> {
        self.faults.operation("find_order_payment")?;
        let latest = self
            .work
            .payments
            .values()
            .filter(|p| p.purpose() == domain::payment::PaymentPurpose::Order(order))
            .max_by_key(|p| (p.created_at(), p.id()))
            .cloned();
        Ok(latest)
    }

    async fn lock_expired_payments(&mut self, now: OffsetDateTime, limit: usize) -> StoreResult<Vec<Payment>> {
        self.faults.operation("lock_expired_payments")?;
        let mut expired: Vec<Payment> = self
            .work
            .payments
            .values()
            .filter(|p| p.status() == PaymentStatus::Pending && p.expires_at() <= now)
            .cloned()
            .collect();
        expired.sort_by_key(|p| (p.expires_at(), p.id()));
        expired.truncate(limit);
        Ok(expired)
    }
}

impl RefundRepository for MemoryTx {
    async fn insert_refund(&mut self, refund: &Refund) -> StoreResult<()> {
        self.faults.operation("insert_refund")?;
        self.work.refunds.insert(refund.id(), refund.clone());
        Ok(())
    }

    async fn update_refund(&mut self, refund: &Refund) -> StoreResult<()> {
        self.faults.operation("update_refund")?;
        self.faults.write("refunds")?;
        if !self.work.refunds.contains_key(&refund.id()) {
            return Err(missing("refund"));
        }
        self.work.refunds.insert(refund.id(), refund.clone());
        Ok(())
    }

    async fn find_refund(&mut self, id: RefundId) -> StoreResult<Option<Refund>> {
        self.faults.operation("find_refund")?;
        Ok(self.work.refunds.get(&id).cloned())
    }

    async fn find_refund_by_provider_id(&mut self, provider_refund_id: &str) -> StoreResult<Option<Refund>> {
        self.faults.operation("find_refund_by_provider_id")?;
        Ok(self
            .work
            .refunds
            .values()
            .find(|r| r.provider_refund_id() == Some(provider_refund_id))
            .cloned())
    }

    async fn lock_refund(&mut self, id: RefundId) -> StoreResult<Option<Refund>> {
        self.faults.operation("lock_refund")?;
        Ok(self.work.refunds.get(&id).cloned())
    }

    async fn list_refunds(&mut self, filter: &AdminRefundFilter, page: &PageRequest) -> StoreResult<Page<Refund>> {
        self.faults.operation("list_refunds")?;
        let payments = &self.work.payments;
        let provider_of = |refund: &Refund| refund.payment_id().and_then(|id| payments.get(&id)).map(Payment::provider);
        let rows: Vec<Refund> = self
            .work
            .refunds
            .values()
            .filter(|r| filter.keeps(r, provider_of(r)))
            .cloned()
            .collect();
        Ok(page_by_position(rows, page, |r| (r.created_at(), r.id().as_uuid())))
    }

    async fn list_order_refunds(&mut self, order: OrderId) -> StoreResult<Vec<Refund>> {
        self.faults.operation("list_order_refunds")?;
        let mut refunds: Vec<Refund> = self.work.refunds.values().filter(|r| r.order_id() == order).cloned().collect();
        refunds.sort_by_key(|r| (r.created_at(), r.id()));
        Ok(refunds)
    }

    async fn insert_refund_request(&mut self, request: &RefundRequest) -> StoreResult<()> {
        self.faults.operation("insert_refund_request")?;
        let open_already = request.is_open()
            && self
                .work
                .refund_requests
                .values()
                .any(|r| r.is_open() && r.order_id() == request.order_id() && r.merchant_id() == request.merchant_id());
        if open_already {
            return Err(StoreError::Duplicate(REFUND_REQUESTS_OPEN.into()));
        }
        self.work.refund_requests.insert(request.id(), request.clone());
        Ok(())
    }

    async fn update_refund_request(&mut self, request: &RefundRequest) -> StoreResult<()> {
        self.faults.operation("update_refund_request")?;
        if !self.work.refund_requests.contains_key(&request.id()) {
            return Err(missing("refund request"));
        }
        self.work.refund_requests.insert(request.id(), request.clone());
        Ok(())
    }

    async fn find_refund_request(&mut self, id: RefundRequestId) -> StoreResult<Option<RefundRequest>> {
        self.faults.operation("find_refund_request")?;
        Ok(self.work.refund_requests.get(&id).cloned())
    }

    async fn lock_refund_request(&mut self, id: RefundRequestId) -> StoreResult<Option<RefundRequest>> {
        self.faults.operation("lock_refund_request")?;
        Ok(self.work.refund_requests.get(&id).cloned())
    }

    async fn list_refund_requests(&mut self, filter: &RefundRequestFilter, page: &PageRequest) -> StoreResult<Page<RefundRequest>> {
        self.faults.operation("list_refund_requests")?;
        let rows: Vec<RefundRequest> = self.work.refund_requests.values().filter(|r| filter.keeps(r)).cloned().collect();
        Ok(page_by_position(rows, page, |r| (r.created_at(), r.id().as_uuid())))
    }
}

impl TransferRepository for MemoryTx {
    async fn insert_transfer(&mut self, transfer: &Transfer) -> StoreResult<()> {
        self.faults.operation("insert_transfer")?;
        self.work.transfers.insert(transfer.id, transfer.clone());
        Ok(())
    }

    async fn list_transfers(&mut self, filter: TransferFilter, page: &PageRequest) -> StoreResult<Page<Transfer>> {
        self.faults.operation("list_transfers")?;
        let rows: Vec<Transfer> = self.work.transfers.values().filter(|t| filter.keeps(t)).cloned().collect();
        Ok(page_by_position(rows, page, |t| (t.created_at, t.id.as_uuid())))
    }

    async fn find_transfer(&mut self, id: TransferId) -> StoreResult<Option<Transfer>> {
        self.faults.operation("find_transfer")?;
        Ok(self.work.transfers.get(&id).cloned())
    }

    async fn insert_withdrawal(&mut self, withdrawal: &Withdrawal) -> StoreResult<()> {
        self.faults.operation("insert_withdrawal")?;
        self.work.withdrawals.insert(withdrawal.id(), withdrawal.clone());
        Ok(())
    }

    async fn find_withdrawal(&mut self, id: WithdrawalId) -> StoreResult<Option<Withdrawal>> {
        self.faults.operation("find_withdrawal")?;
        Ok(self.work.withdrawals.get(&id).cloned())
    }

    async fn lock_withdrawal(&mut self, id: WithdrawalId) -> StoreResult<Option<Withdrawal>> {
        self.faults.operation("lock_withdrawal")?;
        Ok(self.work.withdrawals.get(&id).cloned())
    }

    async fn update_withdrawal(&mut self, withdrawal: &Withdrawal) -> StoreResult<()> {
        self.faults.operation("update_withdrawal")?;
        if !self.work.withdrawals.contains_key(&withdrawal.id()) {
            return Err(missing("withdrawal"));
        }
        self.work.withdrawals.insert(withdrawal.id(), withdrawal.clone());
        Ok(())
    }

    async fn list_user_withdrawals(&mut self, user: UserId, page: &PageRequest) -> StoreResult<Page<Withdrawal>> {
        self.faults.operation("list_user_withdrawals")?;
        let rows: Vec<Withdrawal> = self.work.withdrawals.values().filter(|w| w.user_id() == user).cloned().collect();
        Ok(page_by_position(rows, page, |w| (w.created_at(), w.id().as_uuid())))
    }

    async fn list_withdrawals(&mut self, filter: WithdrawalFilter, page: &PageRequest) -> StoreResult<Page<Withdrawal>> {
        self.faults.operation("list_withdrawals")?;
        let rows: Vec<Withdrawal> = self.work.withdrawals.values().filter(|w| filter.keeps(w)).cloned().collect();
        Ok(page_by_position(rows, page, |w| (w.created_at(), w.id().as_uuid())))
    }
}

impl CallRepository for MemoryTx {
    async fn find_calls_authorized_until(&mut self, bound: OffsetDateTime, limit: usize) -> StoreResult<Vec<CallId>> {
        self.faults.operation("find_calls_authorized_until")?;
        let mut due: Vec<&CallSession> = self
            .work
            .calls
            .values()
            .filter(|c| c.status == domain::call::CallStatus::Active && c.authorized_until() <= bound)
            .collect();
        due.sort_by_key(|c| (c.authorized_until(), c.id));
        Ok(due.into_iter().take(limit).map(|c| c.id).collect())
    }

    async fn insert_call(&mut self, call: &CallSession) -> StoreResult<()> {
        self.faults.operation("insert_call")?;
        self.work.calls.insert(call.id, call.clone());
        Ok(())
    }

    async fn find_call(&mut self, id: CallId) -> StoreResult<Option<CallSession>> {
        self.faults.operation("find_call")?;
        Ok(self.work.calls.get(&id).cloned())
    }

    async fn list_every_call(&mut self, filter: CallFilter, page: &PageRequest) -> StoreResult<Page<CallSession>> {
        self.faults.operation("list_every_call")?;
        let rows: Vec<CallSession> = self.work.calls.values().filter(|c| filter.keeps(c)).cloned().collect();
        Ok(page_by_position(rows, page, |c| (c.started_at, c.id.as_uuid())))
    }

    async fn lock_call(&mut self, id: CallId) -> StoreResult<Option<CallSession>> {
        self.faults.operation("lock_call")?;
        Ok(self.work.calls.get(&id).cloned())
    }

    async fn update_call(&mut self, call: &CallSession) -> StoreResult<()> {
        self.faults.operation("update_call")?;
        if !self.work.calls.contains_key(&call.id) {
            return Err(missing("call"));
        }
        self.work.calls.insert(call.id, call.clone());
        Ok(())
    }

    async fn list_calls(&mut self, user: UserId, page: &PageRequest) -> StoreResult<Page<CallSession>> {
        self.faults.operation("list_calls")?;
        let rows: Vec<CallSession> = self
            .work
            .calls
            .values()
            .filter(|c| c.caller_id == user || c.receiver_id == user)
            .cloned()
            .collect();
        Ok(page_by_position(rows, page, |c| (c.started_at, c.id.as_uuid())))
    }
}

fn scope_key(scope: &IdempotencyScope) -> (Option<UserId>, application::idempotency::IdempotencyKey) {
    (scope.principal, scope.key.clone())
}

impl MemoryTx {
    fn idempotency_record(&mut self, scope: &IdempotencyScope) -> StoreResult<&mut IdempotencyRecord> {
        self.work
            .idempotency
            .get_mut(&scope_key(scope))
            .ok_or_else(|| missing("idempotency key"))
    }
}

impl IdempotencyRepository for MemoryTx {
    async fn claim_idempotency_key(&mut self, record: &IdempotencyRecord) -> StoreResult<ClaimOutcome> {
        self.faults.operation("claim_idempotency_key")?;
        let key = scope_key(&record.scope);
        if let Some(existing) = self.work.idempotency.get(&key)
            && !self.faults.forgets_idempotency_claims()
        {
            return Ok(ClaimOutcome::Existing(existing.clone()));
        }
        self.work.idempotency.insert(key, record.clone());
        Ok(ClaimOutcome::Claimed)
    }

    async fn find_idempotency_record(&mut self, scope: &IdempotencyScope) -> StoreResult<Option<IdempotencyRecord>> {
        self.faults.operation("find_idempotency_record")?;
        Ok(self.work.idempotency.get(&scope_key(scope)).cloned())
    }

    async fn renew_idempotency_lease(&mut self, scope: &IdempotencyScope, locked_until: OffsetDateTime) -> StoreResult<()> {
        self.faults.operation("renew_idempotency_lease")?;
        let record = self.idempotency_record(scope)?;
        let recovery = match &record.state {
            IdempotencyState::InProgress { recovery, .. } => recovery.clone(),
            IdempotencyState::Completed(_) => None,
        };
        record.state = IdempotencyState::InProgress { locked_until, recovery };
        Ok(())
    }

    async fn set_idempotency_recovery_point(&mut self, scope: &IdempotencyScope, point: &RecoveryPoint) -> StoreResult<()> {
        self.faults.operation("set_idempotency_recovery_point")?;
        let record = self.idempotency_record(scope)?;
        match &mut record.state {
            IdempotencyState::InProgress { recovery, .. } => {
                *recovery = Some(point.clone());
                Ok(())
            }
            IdempotencyState::Completed(_) => Err(StoreError::Corrupt("a completed idempotency key cannot record progress".into())),
        }
    }

    async fn complete_idempotency_key(
        &mut self,
        scope: &IdempotencyScope,
        response: &StoredResponse,
        _at: OffsetDateTime,
    ) -> StoreResult<()> {
        self.faults.operation("complete_idempotency_key")?;
        self.idempotency_record(scope)?.state = IdempotencyState::Completed(response.clone());
        Ok(())
    }

    async fn settle_idempotency_key(&mut self, record: &IdempotencyRecord, _at: OffsetDateTime) -> StoreResult<()> {
        self.faults.operation("settle_idempotency_key")?;
        let key = scope_key(&record.scope);
        match self.work.idempotency.get(&key) {
            Some(existing) if matches!(existing.state, IdempotencyState::Completed(_)) => {}
            Some(existing) if existing.fingerprint != record.fingerprint => {}
            _ => {
                self.work.idempotency.insert(key, record.clone());
            }
        }
        Ok(())
    }

    async fn end_idempotency_lease(&mut self, scope: &IdempotencyScope, at: OffsetDateTime) -> StoreResult<()> {
        self.faults.operation("end_idempotency_lease")?;
        if let Some(record) = self.work.idempotency.get_mut(&scope_key(scope))
            && let IdempotencyState::InProgress { locked_until, .. } = &mut record.state
        {
            *locked_until = (*locked_until).min(at);
        }
        Ok(())
    }
}

impl FollowUpRepository for MemoryTx {
    async fn insert_follow_up(&mut self, follow_up: &FollowUp) -> StoreResult<()> {
        self.faults.operation("insert_follow_up")?;
        if !self.work.follow_ups.contains_key(&follow_up.task) {
            self.work.follow_ups.insert(follow_up.task, follow_up.clone());
        }
        Ok(())
    }

    async fn lock_follow_up(&mut self, task: &FollowUpTask) -> StoreResult<Option<FollowUp>> {
        self.faults.operation("lock_follow_up")?;
        Ok(self.work.follow_ups.get(task).cloned())
    }

    async fn update_follow_up(&mut self, follow_up: &FollowUp) -> StoreResult<()> {
        self.faults.operation("update_follow_up")?;
        let row = self.work.follow_ups.get_mut(&follow_up.task).ok_or_else(|| missing("follow-up"))?;
        *row = follow_up.clone();
        Ok(())
    }

    async fn lock_due_follow_ups(&mut self, now: OffsetDateTime, limit: usize) -> StoreResult<Vec<FollowUp>> {
        self.faults.operation("lock_due_follow_ups")?;
        let mut due: Vec<FollowUp> = self.work.follow_ups.values().filter(|f| f.is_due(now)).cloned().collect();
        due.sort_by_key(|f| (f.next_attempt_at, f.task));
        due.truncate(limit);
        Ok(due)
    }

    async fn list_follow_ups(&mut self, state: FollowUpState, page: &PageRequest) -> StoreResult<Page<FollowUp>> {
        self.faults.operation("list_follow_ups")?;
        let rows: Vec<FollowUp> = self.work.follow_ups.values().filter(|f| f.state == state).cloned().collect();
        Ok(page_by_position(rows, page, |f| (f.updated_at, f.task.subject())))
    }
}

impl WebhookInbox for MemoryTx {
    async fn record_webhook_event(&mut self, event: &ReceivedWebhook) -> StoreResult<bool> {
        self.faults.operation("record_webhook_event")?;
        let key = (event.provider.to_string(), event.event_id.clone());
        if self.work.webhook_events.contains_key(&key) {
            return Ok(false);
        }
        self.work.webhook_event_keys.insert(event.id, key.clone());
        self.work.webhook_events.insert(key, event.clone());
        Ok(true)
    }

    async fn record_webhook_outcome(&mut self, id: ReceivedWebhookId, outcome: &InboxOutcome) -> StoreResult<()> {
        self.faults.operation("record_webhook_outcome")?;
        let key = self
            .work
            .webhook_event_keys
            .get(&id)
            .cloned()
            .ok_or_else(|| StoreError::Unexpected("no received webhook with this id".into()))?;
        if let Some(event) = self.work.webhook_events.get_mut(&key) {
            event.outcome = Some(outcome.clone());
        }
        Ok(())
    }

    async fn list_webhook_events(&mut self, filter: &ReceivedWebhookFilter, page: &PageRequest) -> StoreResult<Page<ReceivedWebhook>> {
        self.faults.operation("list_webhook_events")?;
        let rows: Vec<ReceivedWebhook> = self.work.webhook_events.values().filter(|e| filter.keeps(e)).cloned().collect();
        Ok(page_by_position(rows, page, |e| (e.received_at, e.id.as_uuid())))
    }

    async fn find_webhook_event(&mut self, id: ReceivedWebhookId) -> StoreResult<Option<ReceivedWebhook>> {
        self.faults.operation("find_webhook_event")?;
        let Some(key) = self.work.webhook_event_keys.get(&id) else {
            return Ok(None);
        };
        Ok(self.work.webhook_events.get(key).cloned())
    }
}

impl MemoryTx {
    fn event(&self, id: EventId) -> Option<&OutboxEvent> {
        let position = *self.work.outbox_index.get(&id)?;
        self.work.outbox.get(position).map(|(event, _)| event)
    }

    /// When an event occurred, if it is in the outbox.
    pub(crate) fn event_time(&self, id: EventId) -> Option<OffsetDateTime> {
        self.event(id).map(|event| event.occurred_at)
    }
}

impl EventOutbox for MemoryTx {
    async fn enqueue_events(&mut self, events: &[OutboxEvent]) -> StoreResult<()> {
        self.faults.operation("enqueue_events")?;
        for event in events {
            self.work.outbox_index.insert(event.id, self.work.outbox.len());
            self.work.outbox.push_back((event.clone(), None));
        }
        Ok(())
    }

    async fn find_events(&mut self, ids: &[EventId]) -> StoreResult<Vec<OutboxEvent>> {
        self.faults.operation("find_events")?;
        Ok(ids.iter().filter_map(|id| self.event(*id).cloned()).collect())
    }

    async fn oldest_unpublished_event(&mut self) -> StoreResult<Option<OffsetDateTime>> {
        self.faults.operation("oldest_unpublished_event")?;
        Ok(self
            .work
            .outbox
            .iter()
            .find(|(_, published)| published.is_none())
            .map(|(event, _)| event.occurred_at))
    }

    async fn lock_unpublished_events(&mut self, limit: usize) -> StoreResult<Vec<OutboxEvent>> {
        self.faults.operation("lock_unpublished_events")?;
        Ok(self
            .work
            .outbox
            .iter()
            .filter(|(_, published)| published.is_none())
            .take(limit)
            .map(|(e, _)| e.clone())
            .collect())
    }

    async fn mark_events_published(&mut self, ids: &[EventId], at: OffsetDateTime) -> StoreResult<()> {
        self.faults.operation("mark_events_published")?;
        for (event, published) in self.work.outbox.iter_mut() {
            if ids.contains(&event.id) {
                *published = Some(at);
            }
        }
        Ok(())
    }
}
