//! `audit_ledger`: every fact ledger verification needs, computed by PostgreSQL in one statement.
//!
//! One statement is one snapshot, even at READ COMMITTED: the counts, sums and chains all describe
//! the same moment, and they include this transaction's own uncommitted writes, as the port's
//! other readers do. So the audit needs neither REPEATABLE READ (which could not be switched on
//! anyway once the caller's transaction has run a statement) nor any lock. The postings are read
//! once: a window function checks each `balance_after` against the previous one of its wallet, and
//! aggregates over the same rows give the per-transaction, per-wallet and per-currency sums. Only
//! the problems and the totals travel back, never the ledger itself.
//!
//! Sums are `numeric` in PostgreSQL and come back as text, parsed into `i128`, so that no total can
//! overflow on the way.

use application::ledger::{BalanceMismatch, HeldMismatch, LedgerAudit, UnbalancedTransaction};
use application::ports::store::StoreResult;
use diesel::QueryableByName;
use diesel::sql_types::{Nullable, Text, Uuid as SqlUuid};
use domain::ids::{TransactionId, WalletId};
use uuid::Uuid;

use crate::mapping::{corrupt, currency};
use crate::sql::Read;
use crate::tx::PgTx;

const AUDIT: &str = "\
WITH chained AS (
    SELECT transaction_id, wallet_id, currency, amount,
           balance_after <> coalesce(lag(balance_after) OVER (PARTITION BY wallet_id ORDER BY id), 0) + amount AS broken
    FROM postings
), by_wallet AS (
    SELECT wallet_id, sum(amount) AS posted, bool_or(broken) AS broken FROM chained GROUP BY wallet_id
), pending AS (
    SELECT wallet_id, sum(amount - captured) AS held FROM holds WHERE status = 'pending' GROUP BY wallet_id
), facts AS (
    SELECT w.id, w.owner_user_id IS NOT NULL AS user_wallet, w.balance, w.held,
           coalesce(b.posted, 0) AS posted, coalesce(h.held, 0) AS pending, coalesce(b.broken, false) AS broken
    FROM wallets w
    LEFT JOIN by_wallet b ON b.wallet_id = w.id
    LEFT JOIN pending h ON h.wallet_id = w.id
)
SELECT 'counts' AS fact, NULL::uuid AS id, NULL::text AS currency,
       (SELECT count(*) FROM ledger_transactions)::text AS a,
       (SELECT count(*) FROM chained)::text AS b,
       (SELECT count(*) FROM wallets)::text AS c
UNION ALL
SELECT 'unbalanced', transaction_id, currency::text, sum(amount)::text, NULL, NULL
FROM chained GROUP BY transaction_id, currency HAVING sum(amount) <> 0
UNION ALL
SELECT 'balance', id, NULL, balance::text, posted::text, NULL FROM facts WHERE balance <> posted
UNION ALL
SELECT 'held', id, NULL, held::text, pending::text, NULL FROM facts WHERE held <> pending
UNION ALL
SELECT 'overdrawn', id, NULL, NULL, NULL, NULL FROM facts WHERE user_wallet AND (balance < 0 OR held > balance)
UNION ALL
SELECT 'broken', id, NULL, NULL, NULL, NULL FROM facts WHERE broken
UNION ALL
SELECT 'total', NULL, currency::text, sum(amount)::text, NULL, NULL FROM chained GROUP BY currency";

/// One fact of the audit; which columns are set depends on `fact`.
#[derive(QueryableByName)]
struct FactRow {
    #[diesel(sql_type = Text)]
    fact: String,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    id: Option<Uuid>,
    #[diesel(sql_type = Nullable<Text>)]
    currency: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    a: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    b: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    c: Option<String>,
}

impl FactRow {
    fn id(&self) -> StoreResult<Uuid> {
        self.id.ok_or_else(|| corrupt(format!("audit fact {} without an id", self.fact)))
    }

    fn currency(&self) -> StoreResult<domain::money::Currency> {
        currency(self.currency.as_deref().unwrap_or_default())
    }

    fn number<T: std::str::FromStr>(value: Option<&String>, fact: &str) -> StoreResult<T> {
        value
            .and_then(|text| text.parse().ok())
            .ok_or_else(|| corrupt(format!("audit fact {fact} has a malformed number")))
    }

    fn a<T: std::str::FromStr>(&self) -> StoreResult<T> {
        FactRow::number(self.a.as_ref(), &self.fact)
    }

    fn b<T: std::str::FromStr>(&self) -> StoreResult<T> {
        FactRow::number(self.b.as_ref(), &self.fact)
    }

    fn c<T: std::str::FromStr>(&self) -> StoreResult<T> {
        FactRow::number(self.c.as_ref(), &self.fact)
    }
}

pub(crate) async fn audit(tx: &mut PgTx) -> StoreResult<LedgerAudit> {
    let facts = tx.read::<FactRow>(Read::new(AUDIT)).await?;
    let mut audit = LedgerAudit::default();
    for row in &facts {
        record(&mut audit, row)?;
    }
    audit.unbalanced_transactions.sort_by_key(|t| (t.transaction_id, t.currency));
    audit.balance_mismatches.sort_by_key(|m| m.wallet_id);
    audit.held_mismatches.sort_by_key(|m| m.wallet_id);
    audit.overdrawn_wallets.sort();
    audit.broken_chains.sort();
    audit.totals_by_currency.sort_by_key(|(currency, _)| *currency);
    Ok(audit)
}

fn record(audit: &mut LedgerAudit, row: &FactRow) -> StoreResult<()> {
    match row.fact.as_str() {
        "counts" => {
            audit.transaction_count = row.a()?;
            audit.posting_count = row.b()?;
            audit.wallet_count = row.c()?;
        }
        "unbalanced" => audit.unbalanced_transactions.push(UnbalancedTransaction {
            transaction_id: TransactionId::from_uuid(row.id()?),
            currency: row.currency()?,
            sum_minor: row.a()?,
        }),
        "balance" => audit.balance_mismatches.push(BalanceMismatch {
            wallet_id: WalletId::from_uuid(row.id()?),
            cached_minor: row.a()?,
            posted_minor: row.b()?,
        }),
        "held" => audit.held_mismatches.push(HeldMismatch {
            wallet_id: WalletId::from_uuid(row.id()?),
            cached_minor: row.a()?,
            pending_holds_minor: row.b()?,
        }),
        "overdrawn" => audit.overdrawn_wallets.push(WalletId::from_uuid(row.id()?)),
        "broken" => audit.broken_chains.push(WalletId::from_uuid(row.id()?)),
        "total" => audit.totals_by_currency.push((row.currency()?, row.a()?)),
        other => return Err(corrupt(format!("unknown audit fact {other}"))),
    }
    Ok(())
}
