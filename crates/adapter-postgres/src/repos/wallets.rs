//! Wallets (user wallets and system accounts) and holds on them.
//!
//! A wallet row caches `balance` and `held`. Use cases lock the wallets they post to with
//! `lock_wallets`, change them in the domain and write them back with `update_wallets`, in one
//! statement for all of them. The database refuses an overdrawn user wallet itself (CHECK
//! `wallets_user_funds`), which surfaces here as `Corrupt`.

use std::collections::HashSet;

use application::pagination::{Cursor, Page, PageRequest};
use application::ports::store::{HoldRepository, StoreResult, WalletFilter, WalletRepository};
use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use domain::ids::{HoldId, OrderId, UserId, WalletId};
use domain::money::Currency;
use domain::wallet::{Hold, HoldStatus, SystemAccount, Wallet, WalletOwner};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::mapping::{corrupt, currency, limit, limit_plus_one, missing, money, position_after, word};
use crate::schema::{holds, wallets};
use crate::sql::{Read, Write};
use crate::tx::{DomainRow, Expect, PgTx};

macro_rules! wallet_columns {
    () => {
        "id, owner_user_id, system_code, currency, balance, held, created_at"
    };
}

#[derive(QueryableByName)]
#[diesel(table_name = wallets, check_for_backend(diesel::pg::Pg))]
pub(super) struct WalletRow {
    id: Uuid,
    owner_user_id: Option<Uuid>,
    system_code: Option<String>,
    currency: String,
    balance: i64,
    held: i64,
    created_at: OffsetDateTime,
}

impl DomainRow for WalletRow {
    type Domain = Wallet;

    fn into_domain(self) -> StoreResult<Wallet> {
        let owner = match (self.owner_user_id, self.system_code) {
            (Some(user), None) => WalletOwner::User(UserId::from_uuid(user)),
            (None, Some(code)) => WalletOwner::System(word("system account", &code, SystemAccount::parse)?),
            _ => return Err(corrupt(format!("wallet {} has no single owner", self.id))),
        };
        Ok(Wallet::restore(
            WalletId::from_uuid(self.id),
            owner,
            currency(&self.currency)?,
            self.balance,
            self.held,
            self.created_at,
        ))
    }
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
}

impl PgTx {
    /// The id of the existing wallet, or of the one this statement created. Reading first and
    /// inserting only when nothing was found keeps the common case (the wallet exists) free of
    /// insert attempts; `ON CONFLICT DO NOTHING` covers a concurrent creation.
    async fn ensure_wallet(&mut self, ensure: Write, find: Read) -> StoreResult<WalletId> {
        if let Some(row) = self.write_returning::<IdRow>(ensure).await?.into_iter().next() {
            return Ok(WalletId::from_uuid(row.id));
        }
        // A concurrent transaction created the wallet after this statement's snapshot was taken:
        // the insert yielded to it, and a new statement (a new snapshot) sees it.
        let row = self.read_first::<IdRow>(find).await?.ok_or_else(|| missing("wallet"))?;
        Ok(WalletId::from_uuid(row.id))
    }
}

/// Locks, in ascending id order, the wallets of `buyer` and of the merchants of these products
/// (sorted ids) in the currency of the first product, those that exist
/// (`ProductRepository::lock_cart_and_wallets`). The owners are gathered into one array first
/// (`ARRAY(...)`, computed once), so that the wallets are found by the owner index as in
/// `lock_user_wallets`.
pub(super) fn lock_purchase_wallets(products: Vec<Uuid>, buyer: UserId) -> Read {
    Read::new(concat!(
        "SELECT ",
        wallet_columns!(),
        " FROM wallets \
         WHERE owner_user_id = ANY(array_append(ARRAY(SELECT merchant_id FROM products WHERE id = ANY($1)), $2)) \
           AND currency = (SELECT currency FROM products WHERE id = ANY($1) ORDER BY id LIMIT 1)::currency_code \
         ORDER BY id FOR NO KEY UPDATE"
    ))
    .bind::<Array<SqlUuid>, _>(products)
    .bind::<SqlUuid, _>(buyer.as_uuid())
}

impl WalletRepository for PgTx {
    async fn ensure_user_wallet(
        &mut self,
        user: UserId,
        currency: Currency,
        new_id: WalletId,
        at: OffsetDateTime,
    ) -> StoreResult<WalletId> {
        let ensure = Write::new(
            "WITH existing AS ( \
                 SELECT id FROM wallets WHERE owner_user_id = $2 AND currency = $3::currency_code \
             ), inserted AS ( \
                 INSERT INTO wallets (id, owner_user_id, currency, created_at) \
                 SELECT $1, $2, $3, $4 WHERE NOT EXISTS (SELECT 1 FROM existing) \
                 ON CONFLICT (owner_user_id, currency) DO NOTHING \
                 RETURNING id \
             ) \
             SELECT id FROM existing UNION ALL SELECT id FROM inserted",
        )
        .bind::<SqlUuid, _>(new_id.as_uuid())
        .bind::<SqlUuid, _>(user.as_uuid())
        .bind::<Text, _>(currency.code())
        .bind::<Timestamptz, _>(at);
        let find = Read::new("SELECT id FROM wallets WHERE owner_user_id = $1 AND currency = $2::currency_code")
            .bind::<SqlUuid, _>(user.as_uuid())
            .bind::<Text, _>(currency.code());
        self.ensure_wallet(ensure, find).await
    }

    async fn ensure_system_wallet(
        &mut self,
        account: &SystemAccount,
        currency: Currency,
        new_id: WalletId,
        at: OffsetDateTime,
    ) -> StoreResult<WalletId> {
        let code = account.code();
        let ensure = Write::new(
            "WITH existing AS ( \
                 SELECT id FROM wallets WHERE system_code = $2 AND currency = $3::currency_code \
             ), inserted AS ( \
                 INSERT INTO wallets (id, system_code, currency, created_at) \
                 SELECT $1, $2, $3, $4 WHERE NOT EXISTS (SELECT 1 FROM existing) \
                 ON CONFLICT (system_code, currency) DO NOTHING \
                 RETURNING id \
             ) \
             SELECT id FROM existing UNION ALL SELECT id FROM inserted",
        )
        .bind::<SqlUuid, _>(new_id.as_uuid())
        .bind::<Text, _>(code.clone())
        .bind::<Text, _>(currency.code())
        .bind::<Timestamptz, _>(at);
        let find = Read::new("SELECT id FROM wallets WHERE system_code = $1 AND currency = $2::currency_code")
            .bind::<Text, _>(code)
            .bind::<Text, _>(currency.code());
        self.ensure_wallet(ensure, find).await
    }

    async fn find_user_wallet(&mut self, user: UserId, currency: Currency) -> StoreResult<Option<Wallet>> {
        let statement = Read::new(concat!(
            "SELECT ",
            wallet_columns!(),
            " FROM wallets WHERE owner_user_id = $1 AND currency = $2::currency_code"
        ))
        .bind::<SqlUuid, _>(user.as_uuid())
        .bind::<Text, _>(currency.code());
        self.select_first::<WalletRow>(statement).await
    }

    async fn find_system_wallet(&mut self, account: &SystemAccount, currency: Currency) -> StoreResult<Option<Wallet>> {
        let statement = Read::new(concat!(
            "SELECT ",
            wallet_columns!(),
            " FROM wallets WHERE system_code = $1 AND currency = $2::currency_code"
        ))
        .bind::<Text, _>(account.code())
        .bind::<Text, _>(currency.code());
        self.select_first::<WalletRow>(statement).await
    }

    async fn list_user_wallets(&mut self, user: UserId) -> StoreResult<Vec<Wallet>> {
        let statement =
            Read::new(concat!("SELECT ", wallet_columns!(), " FROM wallets WHERE owner_user_id = $1")).bind::<SqlUuid, _>(user.as_uuid());
        let mut wallets = self.select::<WalletRow>(statement).await?;
        wallets.sort_by_key(Wallet::currency);
        Ok(wallets)
    }

    async fn find_wallet(&mut self, id: WalletId) -> StoreResult<Option<Wallet>> {
        let statement = Read::new(concat!("SELECT ", wallet_columns!(), " FROM wallets WHERE id = $1")).bind::<SqlUuid, _>(id.as_uuid());
        self.select_first::<WalletRow>(statement).await
    }

    async fn list_wallets(&mut self, filter: WalletFilter, page: &PageRequest) -> StoreResult<Page<Wallet>> {
        let (at, id) = position_after(page);
        let statement = Read::new(concat!(
            "SELECT ",
            wallet_columns!(),
            " FROM wallets WHERE (created_at, id) < ($1, $2) \
               AND ($4::uuid IS NULL OR owner_user_id = $4) AND ($5::text IS NULL OR currency = $5::currency_code) \
             ORDER BY created_at DESC, id DESC LIMIT $3"
        ))
        .bind::<Timestamptz, _>(at)
        .bind::<SqlUuid, _>(id)
        .bind::<BigInt, _>(limit_plus_one(page.limit))
        .bind::<Nullable<SqlUuid>, _>(filter.owner.map(|owner| owner.as_uuid()))
        .bind::<Nullable<Text>, _>(filter.currency.map(|c| c.code()));
        let rows = self.select::<WalletRow>(statement).await?;
        Ok(Page::from_rows(rows, page.limit, |wallet| Cursor::Position {
            at: wallet.created_at(),
            id: wallet.id().as_uuid(),
        }))
    }

    async fn list_wallets_of_users(&mut self, users: &[UserId]) -> StoreResult<Vec<Wallet>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let owners: Vec<Uuid> = users.iter().map(UserId::as_uuid).collect();
        let statement = Read::new(concat!(
            "SELECT ",
            wallet_columns!(),
            " FROM wallets WHERE owner_user_id = ANY($1) ORDER BY owner_user_id, currency"
        ))
        .bind::<Array<SqlUuid>, _>(owners);
        self.select::<WalletRow>(statement).await
    }

    /// One statement locks them all. PostgreSQL locks the rows as the primary-key index yields
    /// them for `= ANY`, in ascending id order, which `ORDER BY` states (and would enforce with a
    /// sort below the lock if the plan ever changed).
    async fn lock_user_wallets(
        &mut self,
        owners: &[(UserId, WalletId)],
        currency: Currency,
        at: OffsetDateTime,
    ) -> StoreResult<Vec<Wallet>> {
        let mut users: Vec<Uuid> = owners.iter().map(|(user, _)| user.as_uuid()).collect();
        users.sort();
        users.dedup();
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let lock = |users: Vec<Uuid>| {
            Read::new(concat!(
                "SELECT ",
                wallet_columns!(),
                " FROM wallets WHERE owner_user_id = ANY($1) AND currency = $2::currency_code ORDER BY id FOR NO KEY UPDATE"
            ))
            .bind::<Array<SqlUuid>, _>(users)
            .bind::<Text, _>(currency.code())
        };
        let mut rows = self.read::<WalletRow>(lock(users.clone())).await?;
        if rows.len() < users.len() {
            // Rare: someone has no wallet in this currency yet. The rows created here are invisible
            // to other transactions until commit, so locking them after the others cannot deadlock.
            let found: HashSet<Uuid> = rows.iter().filter_map(|r| r.owner_user_id).collect();
            let missing: Vec<&(UserId, WalletId)> = owners.iter().filter(|(user, _)| !found.contains(&user.as_uuid())).collect();
            let insert = Write::new(
                "INSERT INTO wallets (id, owner_user_id, currency, created_at) \
                 SELECT v.id, v.owner, $3, $4 FROM unnest($1::uuid[], $2::uuid[]) AS v(id, owner) \
                 ON CONFLICT (owner_user_id, currency) DO NOTHING",
            )
            .bind::<Array<SqlUuid>, _>(missing.iter().map(|(_, id)| id.as_uuid()).collect::<Vec<_>>())
            .bind::<Array<SqlUuid>, _>(missing.iter().map(|(user, _)| user.as_uuid()).collect::<Vec<_>>())
            .bind::<Text, _>(currency.code())
            .bind::<Timestamptz, _>(at);
            self.execute(insert).await?;
            rows = self.read::<WalletRow>(lock(users.clone())).await?;
        }
        if rows.len() != users.len() {
            return Err(missing("wallet"));
        }
        rows.into_iter().map(WalletRow::into_domain).collect()
    }

    async fn list_merchant_wallets(&mut self, after: Option<WalletId>, page_size: usize) -> StoreResult<Vec<Wallet>> {
        let statement = Read::new(concat!(
            "SELECT ",
            wallet_columns!(),
            " FROM wallets \
             WHERE owner_user_id IN (SELECT id FROM users WHERE role = 'merchant') \
               AND ($1::uuid IS NULL OR id > $1) \
             ORDER BY id LIMIT $2"
        ))
        .bind::<Nullable<SqlUuid>, _>(after.map(|id| id.as_uuid()))
        .bind::<BigInt, _>(limit(page_size));
        self.select::<WalletRow>(statement).await
    }

    async fn lock_wallets(&mut self, ids: &[WalletId]) -> StoreResult<Vec<Wallet>> {
        let mut sorted: Vec<Uuid> = ids.iter().map(WalletId::as_uuid).collect();
        sorted.sort();
        sorted.dedup();
        if sorted.is_empty() {
            return Ok(Vec::new());
        }
        let expected = sorted.len();
        let statement = Read::new(concat!(
            "SELECT ",
            wallet_columns!(),
            " FROM wallets WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE"
        ))
        .bind::<Array<SqlUuid>, _>(sorted);
        let rows = self.read::<WalletRow>(statement).await?;
        if rows.len() != expected {
            return Err(missing("wallet"));
        }
        rows.into_iter().map(WalletRow::into_domain).collect()
    }

    async fn update_wallets(&mut self, wallets: &[Wallet]) -> StoreResult<()> {
        // The last state of each wallet wins, as if they were written one after another.
        let mut seen = HashSet::new();
        let latest: Vec<&Wallet> = wallets.iter().rev().filter(|w| seen.insert(w.id())).collect();
        if latest.is_empty() {
            return Ok(());
        }
        // `w.id = ANY($1)` repeats the join's condition so that the plan reaches the wallets by
        // their key: a generic plan otherwise joins the array's rows to a scan of the whole table
        // while it has fewer than a few thousand rows.
        let statement = Write::new(
            "UPDATE wallets AS w SET balance = v.balance, held = v.held \
             FROM unnest($1::uuid[], $2::bigint[], $3::bigint[]) AS v(id, balance, held) \
             WHERE w.id = v.id AND w.id = ANY($1)",
        )
        .bind::<Array<SqlUuid>, _>(latest.iter().map(|w| w.id().as_uuid()).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(latest.iter().map(|w| w.balance().amount_minor()).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(latest.iter().map(|w| w.held().amount_minor()).collect::<Vec<_>>());
        self.defer(statement, Expect::Rows(latest.len(), "wallet"))
    }
}

macro_rules! hold_columns {
    () => {
        "id, wallet_id, currency, amount, captured, status, reference, created_at, expires_at, settled_at, payee_id, order_id"
    };
}

#[derive(QueryableByName)]
#[diesel(table_name = holds, check_for_backend(diesel::pg::Pg))]
struct HoldRow {
    id: Uuid,
    wallet_id: Uuid,
    currency: String,
    amount: i64,
    captured: i64,
    status: String,
    reference: String,
    created_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    settled_at: Option<OffsetDateTime>,
    payee_id: Option<Uuid>,
    order_id: Option<Uuid>,
}

impl DomainRow for HoldRow {
    type Domain = Hold;

    fn into_domain(self) -> StoreResult<Hold> {
        Ok(Hold {
            id: HoldId::from_uuid(self.id),
            wallet_id: WalletId::from_uuid(self.wallet_id),
            amount: money(self.amount, &self.currency)?,
            captured: money(self.captured, &self.currency)?,
            payee: self.payee_id.map(UserId::from_uuid),
            order_id: self.order_id.map(OrderId::from_uuid),
            status: word("hold status", &self.status, HoldStatus::parse)?,
            reference: self.reference,
            created_at: self.created_at,
            expires_at: self.expires_at,
            settled_at: self.settled_at,
        })
    }
}

impl HoldRepository for PgTx {
    async fn insert_hold(&mut self, hold: &Hold) -> StoreResult<()> {
        let statement = Write::new(concat!(
            "INSERT INTO holds (",
            hold_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        ))
        .bind::<SqlUuid, _>(hold.id.as_uuid())
        .bind::<SqlUuid, _>(hold.wallet_id.as_uuid())
        .bind::<Text, _>(hold.amount.currency().code())
        .bind::<BigInt, _>(hold.amount.amount_minor())
        .bind::<BigInt, _>(hold.captured.amount_minor())
        .bind::<Text, _>(hold.status.as_str())
        .bind::<Text, _>(hold.reference.clone())
        .bind::<Timestamptz, _>(hold.created_at)
        .bind::<Timestamptz, _>(hold.expires_at)
        .bind::<Nullable<Timestamptz>, _>(hold.settled_at)
        .bind::<Nullable<SqlUuid>, _>(hold.payee.map(|payee| payee.as_uuid()))
        .bind::<Nullable<SqlUuid>, _>(hold.order_id.map(|order| order.as_uuid()));
        self.defer(statement, Expect::Any)
    }

    async fn find_hold(&mut self, id: HoldId) -> StoreResult<Option<Hold>> {
        let statement = Read::new(concat!("SELECT ", hold_columns!(), " FROM holds WHERE id = $1")).bind::<SqlUuid, _>(id.as_uuid());
        self.select_first::<HoldRow>(statement).await
    }

    async fn lock_hold(&mut self, id: HoldId) -> StoreResult<Option<Hold>> {
        let statement =
            Read::new(concat!("SELECT ", hold_columns!(), " FROM holds WHERE id = $1 FOR NO KEY UPDATE")).bind::<SqlUuid, _>(id.as_uuid());
        self.select_first::<HoldRow>(statement).await
    }

    /// Writes what extending or settling changes: the amount, the captured amount, the status,
    /// the expiry and when it settled.
    async fn update_hold(&mut self, hold: &Hold) -> StoreResult<()> {
        let statement =
            Write::new("UPDATE holds SET amount = $2, captured = $3, status = $4, expires_at = $5, settled_at = $6 WHERE id = $1")
                .bind::<SqlUuid, _>(hold.id.as_uuid())
                .bind::<BigInt, _>(hold.amount.amount_minor())
                .bind::<BigInt, _>(hold.captured.amount_minor())
                .bind::<Text, _>(hold.status.as_str())
                .bind::<Timestamptz, _>(hold.expires_at)
                .bind::<Nullable<Timestamptz>, _>(hold.settled_at);
        self.defer(statement, Expect::Rows(1, "hold"))
    }

    async fn find_expired_holds(&mut self, now: OffsetDateTime, batch: usize) -> StoreResult<Vec<Hold>> {
        let statement = Read::new(concat!(
            "SELECT ",
            hold_columns!(),
            " FROM holds h WHERE status = 'pending' AND expires_at <= $1 \
               AND NOT EXISTS (SELECT 1 FROM call_sessions c WHERE c.hold_id = h.id AND c.status = 'active') \
               AND NOT EXISTS (SELECT 1 FROM withdrawals w WHERE w.hold_id = h.id AND w.status IN ('requested', 'approved')) \
             ORDER BY expires_at LIMIT $2"
        ))
        .bind::<Timestamptz, _>(now)
        .bind::<BigInt, _>(limit(batch));
        self.select::<HoldRow>(statement).await
    }

    async fn find_order_holds(&mut self, order_id: OrderId) -> StoreResult<Vec<Hold>> {
        let statement = Read::new(concat!("SELECT ", hold_columns!(), " FROM holds WHERE order_id = $1 ORDER BY id"))
            .bind::<SqlUuid, _>(order_id.as_uuid());
        self.select::<HoldRow>(statement).await
    }
}
