//! The append-only journal: journal transactions, their postings, wallet histories, statement
//! totals and the ledger audit.
//!
//! A transaction's kind, reference and time are stored once, on `ledger_transactions`; its
//! postings carry the amounts and running balances and get the rest back by a join. A posting's
//! `id` is its `sequence`: `INTEGER PRIMARY KEY AUTOINCREMENT` numbers postings in the order they
//! were written and never reuses a number, and since a wallet's postings are written while the
//! transaction holds the store, they follow the order in which its balance changed.
//!
//! Triggers refuse any update or deletion of the journal, as the PostgreSQL schema's do. What
//! PostgreSQL checks at commit with a deferred trigger (every transaction's postings sum to zero
//! per currency) is checked here before anything is written, since the postings arrive together.
//!
//! The transaction holds the store's only connection, so the several reads of a statement or an
//! audit see one state of the ledger. Sums are SQLite integers: a sum beyond `i64` (far past any
//! real ledger) is an error from SQLite, never a wrapped number.

use std::collections::{BTreeMap, HashMap, HashSet};

use application::pagination::{Cursor, Page, PageRequest};
use application::ports::records::{BalanceMismatch, HeldMismatch, KindTotals, LedgerAudit, StatementTotals, UnbalancedTransaction};
use application::ports::store::{JournalFilter, JournalRecord, LedgerRepository, PostingRecord, StoreResult};
use domain::ids::{TransactionId, WalletId};
use domain::ledger::{JournalTransaction, Posting, TransactionKind};
use domain::money::Currency;
use rusqlite::{Row, params};
use time::OffsetDateTime;

use crate::SqliteTx;
use crate::codec;

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS ledger_transactions (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('top_up', 'withdrawal', 'transfer', 'purchase', 'refund',
                                             'call_charge', 'adjustment', 'reversal')),
    reference  TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS ledger_transactions_newest ON ledger_transactions (created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS ledger_transactions_by_kind ON ledger_transactions (kind, created_at DESC, id DESC);

CREATE TABLE IF NOT EXISTS postings (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    transaction_id TEXT NOT NULL REFERENCES ledger_transactions (id),
    wallet_id      TEXT NOT NULL,
    currency       TEXT NOT NULL CHECK (length(currency) = 3 AND currency GLOB '[A-Z][A-Z][A-Z]'),
    amount         INTEGER NOT NULL CHECK (amount <> 0),
    balance_after  INTEGER NOT NULL,
    CONSTRAINT postings_wallet FOREIGN KEY (wallet_id, currency) REFERENCES wallets (id, currency),
    CONSTRAINT postings_one_per_wallet UNIQUE (transaction_id, wallet_id)
) STRICT;
CREATE INDEX IF NOT EXISTS postings_wallet_history ON postings (wallet_id, id DESC);

CREATE TRIGGER IF NOT EXISTS postings_no_update BEFORE UPDATE ON postings BEGIN
    SELECT RAISE(ABORT, 'the ledger is append-only: post a reversing transaction instead');
END;
CREATE TRIGGER IF NOT EXISTS postings_no_delete BEFORE DELETE ON postings BEGIN
    SELECT RAISE(ABORT, 'the ledger is append-only: post a reversing transaction instead');
END;
CREATE TRIGGER IF NOT EXISTS ledger_transactions_no_update BEFORE UPDATE ON ledger_transactions BEGIN
    SELECT RAISE(ABORT, 'the ledger is append-only: post a reversing transaction instead');
END;
CREATE TRIGGER IF NOT EXISTS ledger_transactions_no_delete BEFORE DELETE ON ledger_transactions BEGIN
    SELECT RAISE(ABORT, 'the ledger is append-only: post a reversing transaction instead');
END;
";

/// A posting with its transaction's kind, reference and time; `posting` reads these columns.
const POSTING_COLUMNS: &str = "p.id, p.transaction_id, p.wallet_id, t.kind, t.reference, p.currency, p.amount, p.balance_after, t.created_at \
                               FROM postings p JOIN ledger_transactions t ON t.id = p.transaction_id";

fn posting(row: &Row<'_>) -> StoreResult<PostingRecord> {
    let kind: String = codec::get(row, 3)?;
    let currency: String = codec::get(row, 5)?;
    Ok(PostingRecord {
        sequence: codec::get(row, 0)?,
        posting: Posting {
            transaction_id: TransactionId::from_uuid(codec::uuid(row, 1)?),
            wallet_id: WalletId::from_uuid(codec::uuid(row, 2)?),
            kind: codec::word("transaction kind", &kind, TransactionKind::parse)?,
            reference: codec::get(row, 4)?,
            amount: codec::money(codec::get(row, 6)?, &currency)?,
            balance_after_minor: codec::get(row, 7)?,
            created_at: codec::instant(row, 8)?,
        },
    })
}

/// A journal transaction without its postings, from `id, kind, reference, created_at`.
fn journal(row: &Row<'_>) -> StoreResult<JournalRecord> {
    let kind: String = codec::get(row, 1)?;
    Ok(JournalRecord {
        id: TransactionId::from_uuid(codec::uuid(row, 0)?),
        kind: codec::word("transaction kind", &kind, TransactionKind::parse)?,
        reference: codec::get(row, 2)?,
        created_at: codec::instant(row, 3)?,
        postings: Vec::new(),
    })
}

fn count(row: &Row<'_>, index: usize) -> StoreResult<u64> {
    let value: i64 = codec::get(row, index)?;
    u64::try_from(value).map_err(|_| codec::corrupt(format!("a negative count {value}")))
}

fn sum(row: &Row<'_>, index: usize) -> StoreResult<i128> {
    codec::get::<i64>(row, index).map(i128::from)
}

fn currency_at(row: &Row<'_>, index: usize) -> StoreResult<Currency> {
    let code: String = codec::get(row, index)?;
    codec::currency(&code)
}

impl SqliteTx {
    /// Fills in the postings of these transactions, in the order they were made.
    fn with_postings(&mut self, mut transactions: Vec<JournalRecord>) -> StoreResult<Vec<JournalRecord>> {
        if transactions.is_empty() {
            return Ok(transactions);
        }
        let postings = self.query(
            &format!("SELECT {POSTING_COLUMNS} WHERE p.transaction_id IN (SELECT value FROM json_each(?1)) ORDER BY p.id"),
            params![codec::id_list(transactions.iter().map(|t| t.id.as_uuid()))],
            posting,
        )?;
        let mut by_transaction: HashMap<TransactionId, Vec<PostingRecord>> = HashMap::new();
        for record in postings {
            by_transaction.entry(record.posting.transaction_id).or_default().push(record);
        }
        for transaction in &mut transactions {
            transaction.postings = by_transaction.remove(&transaction.id).unwrap_or_default();
        }
        Ok(transactions)
    }
}

impl LedgerRepository for SqliteTx {
    /// The postings are numbered in the order given. Their kind, reference and time are the
    /// transaction's, which is where the domain takes them from.
    async fn append_journal(&mut self, transaction: &JournalTransaction, postings: &[Posting]) -> StoreResult<()> {
        let mut sums: BTreeMap<Currency, i128> = BTreeMap::new();
        for posting in postings {
            *sums.entry(posting.amount.currency()).or_default() += i128::from(posting.amount.amount_minor());
        }
        if let Some((currency, total)) = sums.into_iter().find(|(_, total)| *total != 0) {
            return Err(codec::corrupt(format!(
                "ledger transaction {} does not balance: its {currency} postings sum to {total} (postings_balanced)",
                transaction.id()
            )));
        }
        let id = codec::id_text(transaction.id().as_uuid());
        self.execute(
            "INSERT INTO ledger_transactions (id, kind, reference, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![
                id,
                transaction.kind().as_str(),
                transaction.reference(),
                codec::nanos(transaction.created_at())
            ],
        )?;
        for posting in postings {
            self.execute(
                "INSERT INTO postings (transaction_id, wallet_id, currency, amount, balance_after) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    id,
                    codec::id_text(posting.wallet_id.as_uuid()),
                    posting.amount.currency().code(),
                    posting.amount.amount_minor(),
                    posting.balance_after_minor
                ],
            )?;
        }
        Ok(())
    }

    async fn wallet_history(&mut self, wallet: WalletId, before_sequence: Option<i64>, limit: usize) -> StoreResult<Vec<PostingRecord>> {
        self.query(
            &format!("SELECT {POSTING_COLUMNS} WHERE p.wallet_id = ?1 AND p.id < ?2 ORDER BY p.id DESC LIMIT ?3"),
            params![
                codec::id_text(wallet.as_uuid()),
                before_sequence.unwrap_or(i64::MAX),
                codec::limit(limit)
            ],
            posting,
        )
    }

    /// Three reads, each summed by SQLite: the wallets' cached facts, the opening and closing
    /// sums (separate aggregates, so that opening plus the kinds equalling closing is a check),
    /// and the period's sums per kind. A posting is dated by its journal transaction.
    async fn statement_totals(
        &mut self,
        wallets: &[WalletId],
        from: Option<OffsetDateTime>,
        to: Option<OffsetDateTime>,
    ) -> StoreResult<Vec<StatementTotals>> {
        let asked: HashSet<WalletId> = wallets.iter().copied().collect();
        if asked.is_empty() {
            return Ok(Vec::new());
        }
        let list = codec::id_list(asked.iter().map(WalletId::as_uuid));
        let (from, to) = (codec::nanos_opt(from), codec::nanos_opt(to));
        let found = self.query(
            "SELECT w.id, w.balance, \
                    (SELECT p.balance_after FROM postings p WHERE p.wallet_id = w.id ORDER BY p.id DESC LIMIT 1) \
             FROM wallets w WHERE w.id IN (SELECT value FROM json_each(?1))",
            params![list],
            |row| {
                Ok(StatementTotals {
                    wallet_id: WalletId::from_uuid(codec::uuid(row, 0)?),
                    opening_minor: 0,
                    kinds: Vec::new(),
                    closing_minor: 0,
                    cached_balance_minor: codec::get(row, 1)?,
                    latest_balance_after_minor: codec::get(row, 2)?,
                })
            },
        )?;
        if found.len() != asked.len() {
            return Err(codec::missing("wallet"));
        }
        let mut by_wallet: HashMap<WalletId, StatementTotals> = found.into_iter().map(|totals| (totals.wallet_id, totals)).collect();

        let balances = self.query(
            "SELECT p.wallet_id, coalesce(sum(p.amount) FILTER (WHERE t.created_at < ?2), 0), sum(p.amount) \
             FROM postings p JOIN ledger_transactions t ON t.id = p.transaction_id \
             WHERE p.wallet_id IN (SELECT value FROM json_each(?1)) AND (?3 IS NULL OR t.created_at < ?3) \
             GROUP BY p.wallet_id",
            params![list, from, to],
            |row| Ok((WalletId::from_uuid(codec::uuid(row, 0)?), sum(row, 1)?, sum(row, 2)?)),
        )?;
        for (wallet, opening, closing) in balances {
            let totals = by_wallet.get_mut(&wallet).ok_or_else(|| codec::missing("wallet"))?;
            totals.opening_minor = opening;
            totals.closing_minor = closing;
        }

        let kinds = self.query(
            "SELECT p.wallet_id, t.kind, \
                    coalesce(sum(p.amount) FILTER (WHERE p.amount > 0), 0), coalesce(sum(p.amount) FILTER (WHERE p.amount < 0), 0), \
                    count(*) FILTER (WHERE p.amount > 0), count(*) FILTER (WHERE p.amount < 0) \
             FROM postings p JOIN ledger_transactions t ON t.id = p.transaction_id \
             WHERE p.wallet_id IN (SELECT value FROM json_each(?1)) \
               AND (?2 IS NULL OR t.created_at >= ?2) AND (?3 IS NULL OR t.created_at < ?3) \
             GROUP BY p.wallet_id, t.kind",
            params![list, from, to],
            |row| {
                let kind: String = codec::get(row, 1)?;
                let totals = KindTotals {
                    kind: codec::word("transaction kind", &kind, TransactionKind::parse)?,
                    credits_minor: sum(row, 2)?,
                    debits_minor: sum(row, 3)?,
                    credit_count: count(row, 4)?,
                    debit_count: count(row, 5)?,
                };
                Ok((WalletId::from_uuid(codec::uuid(row, 0)?), totals))
            },
        )?;
        for (wallet, totals) in kinds {
            by_wallet
                .get_mut(&wallet)
                .ok_or_else(|| codec::missing("wallet"))?
                .kinds
                .push(totals);
        }
        Ok(by_wallet.into_values().collect())
    }

    async fn list_journal(&mut self, filter: JournalFilter, page: &PageRequest) -> StoreResult<Page<JournalRecord>> {
        let (at, id) = codec::position_after(page);
        let transactions = self.query(
            "SELECT t.id, t.kind, t.reference, t.created_at FROM ledger_transactions t \
             WHERE (t.created_at, t.id) < (?1, ?2) AND (?4 IS NULL OR t.kind = ?4) \
               AND (?5 IS NULL OR t.id IN (SELECT p.transaction_id FROM postings p WHERE p.wallet_id = ?5)) \
               AND (?6 IS NULL OR t.created_at >= ?6) AND (?7 IS NULL OR t.created_at < ?7) \
             ORDER BY t.created_at DESC, t.id DESC LIMIT ?3",
            params![
                at,
                id,
                codec::limit_plus_one(page.limit),
                filter.kind.map(TransactionKind::as_str),
                filter.wallet.map(|wallet| codec::id_text(wallet.as_uuid())),
                codec::nanos_opt(filter.created.from),
                codec::nanos_opt(filter.created.to),
            ],
            journal,
        )?;
        // The extra row `Page::from_rows` drops gets its postings too: simpler than trimming first.
        let transactions = self.with_postings(transactions)?;
        Ok(Page::from_rows(transactions, page.limit, |t| Cursor::Position {
            at: t.created_at,
            id: t.id.as_uuid(),
        }))
    }

    async fn find_journal(&mut self, id: TransactionId) -> StoreResult<Option<JournalRecord>> {
        let found = self.query(
            "SELECT id, kind, reference, created_at FROM ledger_transactions WHERE id = ?1",
            params![codec::id_text(id.as_uuid())],
            journal,
        )?;
        Ok(self.with_postings(found)?.into_iter().next())
    }

    /// Four reads: the counts, the unbalanced transactions, the wallets with a problem (each
    /// `balance_after` is checked against the one before it in the wallet's history by a window
    /// function) and the totals per currency. Only problems and totals come back, never the
    /// ledger itself.
    async fn audit_ledger(&mut self) -> StoreResult<LedgerAudit> {
        let mut audit = self.query_one(
            "SELECT (SELECT count(*) FROM ledger_transactions), (SELECT count(*) FROM postings), (SELECT count(*) FROM wallets)",
            [],
            |row| {
                Ok(LedgerAudit {
                    transaction_count: count(row, 0)?,
                    posting_count: count(row, 1)?,
                    wallet_count: count(row, 2)?,
                    ..LedgerAudit::default()
                })
            },
        )?;
        audit.unbalanced_transactions = self.query(
            "SELECT transaction_id, currency, sum(amount) FROM postings \
             GROUP BY transaction_id, currency HAVING sum(amount) <> 0",
            [],
            |row| {
                Ok(UnbalancedTransaction {
                    transaction_id: TransactionId::from_uuid(codec::uuid(row, 0)?),
                    currency: currency_at(row, 1)?,
                    sum_minor: sum(row, 2)?,
                })
            },
        )?;
        let problems = self.query(
            "WITH chained AS ( \
                 SELECT wallet_id, amount, \
                        balance_after <> coalesce(lag(balance_after) OVER (PARTITION BY wallet_id ORDER BY id), 0) + amount AS broken \
                 FROM postings \
             ), by_wallet AS ( \
                 SELECT wallet_id, sum(amount) AS posted, max(broken) AS broken FROM chained GROUP BY wallet_id \
             ), pending AS ( \
                 SELECT wallet_id, sum(amount - captured) AS held FROM holds WHERE status = 'pending' GROUP BY wallet_id \
             ), facts AS ( \
                 SELECT w.id, w.owner_user_id IS NOT NULL AS user_wallet, w.balance, w.held, \
                        coalesce(b.posted, 0) AS posted, coalesce(h.held, 0) AS pending, coalesce(b.broken, 0) AS broken \
                 FROM wallets w LEFT JOIN by_wallet b ON b.wallet_id = w.id LEFT JOIN pending h ON h.wallet_id = w.id \
             ) \
             SELECT id, balance, posted, held, pending, user_wallet AND (balance < 0 OR held > balance), broken FROM facts \
             WHERE balance <> posted OR held <> pending OR (user_wallet AND (balance < 0 OR held > balance)) OR broken \
             ORDER BY id",
            [],
            |row| {
                Ok((
                    WalletId::from_uuid(codec::uuid(row, 0)?),
                    (codec::get::<i64>(row, 1)?, sum(row, 2)?),
                    (codec::get::<i64>(row, 3)?, sum(row, 4)?),
                    codec::get::<bool>(row, 5)?,
                    codec::get::<bool>(row, 6)?,
                ))
            },
        )?;
        for (wallet_id, (balance, posted), (held, pending), overdrawn, broken) in problems {
            if i128::from(balance) != posted {
                audit.balance_mismatches.push(BalanceMismatch {
                    wallet_id,
                    cached_minor: balance,
                    posted_minor: posted,
                });
            }
            if i128::from(held) != pending {
                audit.held_mismatches.push(HeldMismatch {
                    wallet_id,
                    cached_minor: held,
                    pending_holds_minor: pending,
                });
            }
            if overdrawn {
                audit.overdrawn_wallets.push(wallet_id);
            }
            if broken {
                audit.broken_chains.push(wallet_id);
            }
        }
        audit.totals_by_currency = self.query("SELECT currency, sum(amount) FROM postings GROUP BY currency", [], |row| {
            Ok((currency_at(row, 0)?, sum(row, 1)?))
        })?;
        // Ordered by the domain's values (a currency's variant, not its code), as the other
        // stores order them; the wallet lists came ordered by id.
        audit.unbalanced_transactions.sort_by_key(|t| (t.transaction_id, t.currency));
        audit.totals_by_currency.sort_by_key(|(currency, _)| *currency);
        Ok(audit)
    }
}

#[cfg(test)]
mod tests {
    use application::ports::store::{StoreError, Transaction, UnitOfWork, WalletRepository};
    use domain::ledger::Entry;
    use domain::wallet::SystemAccount;
    use uuid::Uuid;

    use super::*;
    use crate::SqliteStore;

    #[tokio::test]
    async fn the_journal_refuses_updates_and_deletions() {
        let store = SqliteStore::in_memory().expect("store");
        let mut tx = store.begin().await.expect("begin");
        let wallet = WalletId::from_uuid(Uuid::from_u128(1));
        let wallet = tx
            .ensure_system_wallet(&SystemAccount::Payouts, Currency::Usd, wallet, OffsetDateTime::UNIX_EPOCH)
            .await
            .expect("wallet");
        let transaction = codec::id_text(Uuid::from_u128(2));
        tx.execute(
            "INSERT INTO ledger_transactions (id, kind, reference, created_at) VALUES (?1, 'adjustment', 'test', 0)",
            params![transaction],
        )
        .expect("journal");
        tx.execute(
            "INSERT INTO postings (transaction_id, wallet_id, currency, amount, balance_after) VALUES (?1, ?2, 'USD', 5, 5)",
            params![transaction, codec::id_text(wallet.as_uuid())],
        )
        .expect("posting");
        tx.commit().await.expect("commit");
        // Each change in a transaction of its own: a refused statement spoils its transaction.
        for change in [
            "UPDATE postings SET amount = 6",
            "DELETE FROM postings",
            "UPDATE ledger_transactions SET reference = 'changed'",
            "DELETE FROM ledger_transactions",
        ] {
            let mut tx = store.begin().await.expect("begin");
            assert!(tx.execute(change, []).is_err(), "{change}");
            assert!(tx.commit().await.is_err(), "{change}: a failed transaction does not commit");
        }
        let mut tx = store.begin().await.expect("begin");
        let history = tx.wallet_history(wallet, None, 10).await.expect("history");
        assert_eq!(history.iter().map(|r| r.posting.amount.amount_minor()).collect::<Vec<_>>(), [5]);
    }

    #[tokio::test]
    async fn unbalanced_postings_are_refused_before_anything_is_written() {
        let store = SqliteStore::in_memory().expect("store");
        let mut tx = store.begin().await.expect("begin");
        let at = OffsetDateTime::UNIX_EPOCH;
        let mut wallets = Vec::new();
        for (n, account) in [SystemAccount::Payouts, SystemAccount::Adjustments].iter().enumerate() {
            let new_id = WalletId::from_uuid(Uuid::from_u128(n as u128 + 1));
            wallets.push(tx.ensure_system_wallet(account, Currency::Usd, new_id, at).await.expect("wallet"));
        }
        let usd = |minor| domain::money::Money::from_minor(minor, Currency::Usd);
        let id = TransactionId::from_uuid(Uuid::from_u128(3));
        let entries = vec![Entry::credit(wallets[0], usd(5)), Entry::credit(wallets[1], usd(-5))];
        let journal = JournalTransaction::new(id, TransactionKind::Adjustment, "test", entries, at).expect("journal");
        // The postings of one side only: what a faulty caller could hand over.
        let posting = Posting {
            transaction_id: id,
            wallet_id: wallets[0],
            kind: TransactionKind::Adjustment,
            reference: "test".into(),
            amount: usd(5),
            balance_after_minor: 5,
            created_at: at,
        };
        let error = tx.append_journal(&journal, &[posting]).await.expect_err("unbalanced");
        assert!(matches!(error, StoreError::Corrupt(_)), "{error:?}");
        assert_eq!(tx.find_journal(id).await.expect("find"), None);
    }
}
