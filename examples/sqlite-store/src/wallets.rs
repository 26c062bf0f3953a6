//! Wallets: users' wallets and the platform's system accounts, one per owner and currency.
//!
//! A wallet row caches `balance` and `held`, which use cases change in the domain and write back
//! with `update_wallets`. As in the PostgreSQL schema, the table itself refuses an overdrawn user
//! wallet (CHECK `wallets_user_funds`): such a write fails as `Corrupt` and fails its transaction, while
//! system accounts, the other side of money entering and leaving, may go negative.
//!
//! The transaction holds the only connection, so the `lock_*` methods are ordinary reads in
//! ascending id order, and creating a missing wallet never races another transaction.

use std::collections::HashSet;

use application::pagination::{Cursor, Page, PageRequest};
use application::ports::store::{StoreResult, WalletFilter, WalletRepository};
use domain::ids::{UserId, WalletId};
use domain::money::Currency;
use domain::wallet::{SystemAccount, Wallet, WalletOwner};
use rusqlite::{Row, params};
use time::OffsetDateTime;

use crate::SqliteTx;
use crate::codec;

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS wallets (
    id            TEXT PRIMARY KEY,
    owner_user_id TEXT REFERENCES users (id),
    system_code   TEXT,
    currency      TEXT NOT NULL CHECK (length(currency) = 3 AND currency GLOB '[A-Z][A-Z][A-Z]'),
    balance       INTEGER NOT NULL DEFAULT 0,
    held          INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    CONSTRAINT wallets_one_owner CHECK ((owner_user_id IS NULL) <> (system_code IS NULL)),
    CONSTRAINT wallets_held_not_negative CHECK (held >= 0),
    CONSTRAINT wallets_user_funds CHECK (owner_user_id IS NULL OR (balance >= 0 AND held >= 0 AND held <= balance)),
    CONSTRAINT wallets_user_currency UNIQUE (owner_user_id, currency),
    CONSTRAINT wallets_system_currency UNIQUE (system_code, currency),
    -- The parent key of postings' and holds' (wallet, currency) foreign keys.
    CONSTRAINT wallets_id_currency UNIQUE (id, currency)
) STRICT;
CREATE INDEX IF NOT EXISTS wallets_newest ON wallets (created_at DESC, id DESC);
";

/// The columns `wallet` reads, in its order.
const COLUMNS: &str = "id, owner_user_id, system_code, currency, balance, held, created_at";

fn wallet(row: &Row<'_>) -> StoreResult<Wallet> {
    let id = codec::uuid(row, 0)?;
    let owner = match (codec::uuid_opt(row, 1)?, codec::get::<Option<String>>(row, 2)?) {
        (Some(user), None) => WalletOwner::User(UserId::from_uuid(user)),
        (None, Some(code)) => WalletOwner::System(codec::word("system account", &code, SystemAccount::parse)?),
        _ => return Err(codec::corrupt(format!("wallet {id} has no single owner"))),
    };
    let currency: String = codec::get(row, 3)?;
    Ok(Wallet::restore(
        WalletId::from_uuid(id),
        owner,
        codec::currency(&currency)?,
        codec::get(row, 4)?,
        codec::get(row, 5)?,
        codec::instant(row, 6)?,
    ))
}

impl SqliteTx {
    /// The id of the user's wallet in `currency`, created with `new_id` if there is none.
    fn ensure_user_wallet_id(&mut self, user: UserId, currency: Currency, new_id: WalletId, at: OffsetDateTime) -> StoreResult<WalletId> {
        let owner = codec::id_text(user.as_uuid());
        let found = self.query_opt(
            "SELECT id FROM wallets WHERE owner_user_id = ?1 AND currency = ?2",
            params![owner, currency.code()],
            |row| codec::uuid(row, 0),
        )?;
        if let Some(id) = found {
            return Ok(WalletId::from_uuid(id));
        }
        self.execute(
            "INSERT INTO wallets (id, owner_user_id, currency, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![codec::id_text(new_id.as_uuid()), owner, currency.code(), codec::nanos(at)],
        )?;
        Ok(new_id)
    }

    /// The wallets with these ids, in ascending id order; `Corrupt` if one does not exist.
    fn wallets_by_id(&mut self, ids: &[WalletId]) -> StoreResult<Vec<Wallet>> {
        let distinct: HashSet<WalletId> = ids.iter().copied().collect();
        if distinct.is_empty() {
            return Ok(Vec::new());
        }
        let wallets = self.query(
            &format!("SELECT {COLUMNS} FROM wallets WHERE id IN (SELECT value FROM json_each(?1)) ORDER BY id"),
            params![codec::id_list(distinct.iter().map(WalletId::as_uuid))],
            wallet,
        )?;
        if wallets.len() != distinct.len() {
            return Err(codec::missing("wallet"));
        }
        Ok(wallets)
    }
}

impl WalletRepository for SqliteTx {
    async fn ensure_user_wallet(
        &mut self,
        user: UserId,
        currency: Currency,
        new_id: WalletId,
        at: OffsetDateTime,
    ) -> StoreResult<WalletId> {
        self.ensure_user_wallet_id(user, currency, new_id, at)
    }

    async fn ensure_system_wallet(
        &mut self,
        account: &SystemAccount,
        currency: Currency,
        new_id: WalletId,
        at: OffsetDateTime,
    ) -> StoreResult<WalletId> {
        let code = account.code();
        let found = self.query_opt(
            "SELECT id FROM wallets WHERE system_code = ?1 AND currency = ?2",
            params![code, currency.code()],
            |row| codec::uuid(row, 0),
        )?;
        if let Some(id) = found {
            return Ok(WalletId::from_uuid(id));
        }
        self.execute(
            "INSERT INTO wallets (id, system_code, currency, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![codec::id_text(new_id.as_uuid()), code, currency.code(), codec::nanos(at)],
        )?;
        Ok(new_id)
    }

    async fn find_user_wallet(&mut self, user: UserId, currency: Currency) -> StoreResult<Option<Wallet>> {
        self.query_opt(
            &format!("SELECT {COLUMNS} FROM wallets WHERE owner_user_id = ?1 AND currency = ?2"),
            params![codec::id_text(user.as_uuid()), currency.code()],
            wallet,
        )
    }

    async fn find_system_wallet(&mut self, account: &SystemAccount, currency: Currency) -> StoreResult<Option<Wallet>> {
        self.query_opt(
            &format!("SELECT {COLUMNS} FROM wallets WHERE system_code = ?1 AND currency = ?2"),
            params![account.code(), currency.code()],
            wallet,
        )
    }

    async fn list_user_wallets(&mut self, user: UserId) -> StoreResult<Vec<Wallet>> {
        let mut wallets = self.query(
            &format!("SELECT {COLUMNS} FROM wallets WHERE owner_user_id = ?1"),
            params![codec::id_text(user.as_uuid())],
            wallet,
        )?;
        wallets.sort_by_key(Wallet::currency);
        Ok(wallets)
    }

    async fn find_wallet(&mut self, id: WalletId) -> StoreResult<Option<Wallet>> {
        self.query_opt(
            &format!("SELECT {COLUMNS} FROM wallets WHERE id = ?1"),
            params![codec::id_text(id.as_uuid())],
            wallet,
        )
    }

    async fn list_wallets(&mut self, filter: WalletFilter, page: &PageRequest) -> StoreResult<Page<Wallet>> {
        let (at, id) = codec::position_after(page);
        let rows = self.query(
            &format!(
                "SELECT {COLUMNS} FROM wallets \
                 WHERE (created_at, id) < (?1, ?2) \
                   AND (?4 IS NULL OR owner_user_id = ?4) AND (?5 IS NULL OR currency = ?5) \
                 ORDER BY created_at DESC, id DESC LIMIT ?3"
            ),
            params![
                at,
                id,
                codec::limit_plus_one(page.limit),
                filter.owner.map(|owner| codec::id_text(owner.as_uuid())),
                filter.currency.map(Currency::code),
            ],
            wallet,
        )?;
        Ok(Page::from_rows(rows, page.limit, |wallet| Cursor::Position {
            at: wallet.created_at(),
            id: wallet.id().as_uuid(),
        }))
    }

    async fn list_wallets_of_users(&mut self, users: &[UserId]) -> StoreResult<Vec<Wallet>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let mut wallets = self.query(
            &format!("SELECT {COLUMNS} FROM wallets WHERE owner_user_id IN (SELECT value FROM json_each(?1))"),
            params![codec::id_list(users.iter().map(UserId::as_uuid))],
            wallet,
        )?;
        wallets.sort_by_key(|wallet| (wallet.user_id(), wallet.currency()));
        Ok(wallets)
    }

    async fn lock_user_wallets(
        &mut self,
        owners: &[(UserId, WalletId)],
        currency: Currency,
        at: OffsetDateTime,
    ) -> StoreResult<Vec<Wallet>> {
        // A user named twice keeps the wallet the first pair created.
        let mut ids = Vec::with_capacity(owners.len());
        for (user, new_id) in owners {
            ids.push(self.ensure_user_wallet_id(*user, currency, *new_id, at)?);
        }
        self.wallets_by_id(&ids)
    }

    async fn lock_wallets(&mut self, ids: &[WalletId]) -> StoreResult<Vec<Wallet>> {
        self.wallets_by_id(ids)
    }

    async fn update_wallets(&mut self, wallets: &[Wallet]) -> StoreResult<()> {
        // The last state of each wallet wins, as if they were written one after another.
        let mut seen = HashSet::new();
        for wallet in wallets.iter().rev().filter(|wallet| seen.insert(wallet.id())) {
            self.execute_one(
                "UPDATE wallets SET balance = ?2, held = ?3 WHERE id = ?1",
                params![
                    codec::id_text(wallet.id().as_uuid()),
                    wallet.balance().amount_minor(),
                    wallet.held().amount_minor()
                ],
                "wallet",
            )?;
        }
        Ok(())
    }

    async fn list_merchant_wallets(&mut self, after: Option<WalletId>, limit: usize) -> StoreResult<Vec<Wallet>> {
        self.query(
            &format!(
                "SELECT {COLUMNS} FROM wallets \
                 WHERE owner_user_id IN (SELECT id FROM users WHERE role = 'merchant') \
                   AND (?1 IS NULL OR id > ?1) \
                 ORDER BY id LIMIT ?2"
            ),
            params![after.map(|id| codec::id_text(id.as_uuid())), codec::limit(limit)],
            wallet,
        )
    }
}

#[cfg(test)]
mod tests {
    use application::ports::store::{StoreError, Transaction, UnitOfWork};
    use uuid::Uuid;

    use super::*;
    use crate::SqliteStore;

    #[tokio::test]
    async fn a_refused_balance_is_corrupt_and_rolls_the_whole_transaction_back() {
        let store = SqliteStore::in_memory().expect("store");
        let mut tx = store.begin().await.expect("begin");
        let at = OffsetDateTime::UNIX_EPOCH;
        let id = WalletId::from_uuid(Uuid::from_u128(1));
        let id = tx
            .ensure_system_wallet(&SystemAccount::Payouts, Currency::Usd, id, at)
            .await
            .expect("wallet");
        // System accounts may go negative, but no wallet holds a negative amount.
        let negative = Wallet::restore(id, WalletOwner::System(SystemAccount::Payouts), Currency::Usd, -500, 0, at);
        tx.update_wallets(&[negative]).await.expect("a system account may go negative");
        let refused = Wallet::restore(id, WalletOwner::System(SystemAccount::Payouts), Currency::Usd, 0, -1, at);
        let error = tx.update_wallets(&[refused]).await.expect_err("a negative held");
        assert!(matches!(error, StoreError::Corrupt(_)), "{error:?}");
        // As in PostgreSQL, the failure spoils the transaction: nothing more runs, nothing commits.
        assert!(tx.find_wallet(id).await.is_err(), "a failed transaction refuses further reads");
        assert!(tx.commit().await.is_err(), "a failed transaction does not commit");
        let mut tx = store.begin().await.expect("begin");
        assert_eq!(
            tx.find_wallet(id).await.expect("find"),
            None,
            "the wallet was rolled back with the rest"
        );
    }
}
