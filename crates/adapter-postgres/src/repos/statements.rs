//! `statement_totals`: a statement's figures for some wallets, summed by PostgreSQL in one
//! statement grouped by transaction kind.
//!
//! One statement is one snapshot (see `audit`): the per-kind sums, the opening and closing sums,
//! the cached balances and the latest `balance_after` all describe the same moment. The closing
//! sum is a separate aggregate over the postings dated before the period's end, so that the
//! application's check (opening plus lines equals closing) compares two computations. Only sums
//! travel back, never postings. Sums are `numeric`, returned as text and parsed into `i128`.
//!
//! A posting is dated by its journal transaction (`ledger_transactions.created_at`); the join
//! reaches a wallet's postings through `postings_wallet_history`.

use std::collections::BTreeMap;

use application::ports::records::{KindTotals, StatementTotals};
use application::ports::store::StoreResult;
use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use domain::ids::WalletId;
use domain::ledger::TransactionKind;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::mapping::{corrupt, missing, word};
use crate::sql::Read;
use crate::tx::PgTx;

/// `$1` the wallets, `$2` the period's start (NULL: none), `$3` its end (NULL: none).
const TOTALS: &str = "\
WITH dated AS (
    SELECT p.wallet_id, t.kind, p.amount, coalesce(t.created_at < $2::timestamptz, false) AS before
    FROM postings p JOIN ledger_transactions t ON t.id = p.transaction_id
    WHERE p.wallet_id = ANY($1::uuid[]) AND ($3::timestamptz IS NULL OR t.created_at < $3::timestamptz)
)
SELECT 'kind' AS fact, wallet_id, kind,
       coalesce(sum(amount) FILTER (WHERE amount > 0), 0)::text AS a,
       coalesce(sum(amount) FILTER (WHERE amount < 0), 0)::text AS b,
       count(*) FILTER (WHERE amount > 0) AS credit_count,
       count(*) FILTER (WHERE amount < 0) AS debit_count
FROM dated WHERE NOT before GROUP BY wallet_id, kind
UNION ALL
SELECT 'opening', wallet_id, NULL, sum(amount)::text, NULL, 0, 0 FROM dated WHERE before GROUP BY wallet_id
UNION ALL
SELECT 'closing', wallet_id, NULL, sum(amount)::text, NULL, 0, 0 FROM dated GROUP BY wallet_id
UNION ALL
SELECT 'wallet', w.id, NULL, w.balance::text,
       (SELECT p.balance_after FROM postings p WHERE p.wallet_id = w.id ORDER BY p.id DESC LIMIT 1)::text, 0, 0
FROM wallets w WHERE w.id = ANY($1::uuid[])";

#[derive(QueryableByName)]
struct TotalsRow {
    #[diesel(sql_type = Text)]
    fact: String,
    #[diesel(sql_type = SqlUuid)]
    wallet_id: Uuid,
    #[diesel(sql_type = Nullable<Text>)]
    kind: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    a: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    b: Option<String>,
    #[diesel(sql_type = BigInt)]
    credit_count: i64,
    #[diesel(sql_type = BigInt)]
    debit_count: i64,
}

impl TotalsRow {
    fn number<T: std::str::FromStr>(&self, value: Option<&String>) -> StoreResult<T> {
        value.and_then(|text| text.parse().ok()).ok_or_else(|| {
            corrupt(format!(
                "statement fact {} of wallet {} has a malformed number",
                self.fact, self.wallet_id
            ))
        })
    }

    fn count(&self, value: i64) -> StoreResult<u64> {
        u64::try_from(value).map_err(|_| corrupt(format!("statement fact {} has a negative count", self.fact)))
    }
}

pub(crate) async fn statement_totals(
    tx: &mut PgTx,
    wallets: &[WalletId],
    from: Option<OffsetDateTime>,
    to: Option<OffsetDateTime>,
) -> StoreResult<Vec<StatementTotals>> {
    if wallets.is_empty() {
        return Ok(Vec::new());
    }
    let statement = Read::new(TOTALS)
        .bind::<Array<SqlUuid>, _>(wallets.iter().map(WalletId::as_uuid).collect::<Vec<_>>())
        .bind::<Nullable<Timestamptz>, _>(from)
        .bind::<Nullable<Timestamptz>, _>(to);
    let rows = tx.read::<TotalsRow>(statement).await?;
    let mut by_wallet: BTreeMap<Uuid, StatementTotals> = BTreeMap::new();
    // The wallet rows first: they say which wallets exist.
    for row in rows.iter().filter(|row| row.fact == "wallet") {
        by_wallet.insert(
            row.wallet_id,
            StatementTotals {
                wallet_id: WalletId::from_uuid(row.wallet_id),
                opening_minor: 0,
                kinds: Vec::new(),
                closing_minor: 0,
                cached_balance_minor: row.number(row.a.as_ref())?,
                latest_balance_after_minor: row.b.as_ref().map(|_| row.number(row.b.as_ref())).transpose()?,
            },
        );
    }
    for row in rows.iter().filter(|row| row.fact != "wallet") {
        let totals = by_wallet
            .get_mut(&row.wallet_id)
            .ok_or_else(|| corrupt(format!("postings of wallet {} without its row", row.wallet_id)))?;
        match row.fact.as_str() {
            "kind" => totals.kinds.push(KindTotals {
                kind: word("transaction kind", row.kind.as_deref().unwrap_or_default(), TransactionKind::parse)?,
                credits_minor: row.number(row.a.as_ref())?,
                debits_minor: row.number(row.b.as_ref())?,
                credit_count: row.count(row.credit_count)?,
                debit_count: row.count(row.debit_count)?,
            }),
            "opening" => totals.opening_minor = row.number(row.a.as_ref())?,
            "closing" => totals.closing_minor = row.number(row.a.as_ref())?,
            other => return Err(corrupt(format!("unknown statement fact {other}"))),
        }
    }
    if by_wallet.len() != wallets.iter().collect::<std::collections::BTreeSet<_>>().len() {
        return Err(missing("wallet"));
    }
    Ok(by_wallet.into_values().collect())
}
