//! Appending journal transactions and reading a wallet's history.
//!
//! A transaction's kind, reference and time are stored once, on `ledger_transactions`; its
//! postings carry the amounts and running balances and get them back by a join. The transaction
//! and all its postings go in with one statement.

use application::ledger::LedgerAudit;
use application::ports::records::StatementTotals;
use std::collections::HashMap;

use application::pagination::{Cursor, Page, PageRequest};
use application::ports::store::{JournalFilter, JournalRecord, LedgerRepository, PostingRecord, StoreResult};
use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use domain::ids::{TransactionId, WalletId};
use domain::ledger::{JournalTransaction, Posting, TransactionKind};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::mapping::{limit, limit_plus_one, money, position_after, word};
use crate::sql::{Read, Write};
use crate::tx::{DomainRow, Expect, PgTx};

#[derive(QueryableByName)]
struct PostingRow {
    #[diesel(sql_type = BigInt)]
    sequence: i64,
    #[diesel(sql_type = SqlUuid)]
    transaction_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    wallet_id: Uuid,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Text)]
    reference: String,
    #[diesel(sql_type = Text)]
    currency: String,
    #[diesel(sql_type = BigInt)]
    amount: i64,
    #[diesel(sql_type = BigInt)]
    balance_after: i64,
    #[diesel(sql_type = Timestamptz)]
    created_at: OffsetDateTime,
}

impl DomainRow for PostingRow {
    type Domain = PostingRecord;

    fn into_domain(self) -> StoreResult<PostingRecord> {
        Ok(PostingRecord {
            sequence: self.sequence,
            posting: Posting {
                transaction_id: TransactionId::from_uuid(self.transaction_id),
                wallet_id: WalletId::from_uuid(self.wallet_id),
                kind: word("transaction kind", &self.kind, TransactionKind::parse)?,
                reference: self.reference,
                amount: money(self.amount, &self.currency)?,
                balance_after_minor: self.balance_after,
                created_at: self.created_at,
            },
        })
    }
}

#[derive(QueryableByName)]
struct JournalRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Text)]
    reference: String,
    #[diesel(sql_type = Timestamptz)]
    created_at: OffsetDateTime,
}

impl DomainRow for JournalRow {
    type Domain = JournalRecord;

    fn into_domain(self) -> StoreResult<JournalRecord> {
        Ok(JournalRecord {
            id: TransactionId::from_uuid(self.id),
            kind: word("transaction kind", &self.kind, TransactionKind::parse)?,
            reference: self.reference,
            created_at: self.created_at,
            postings: Vec::new(),
        })
    }
}

impl PgTx {
    /// Fills in the postings of these transactions, all read in one statement.
    async fn with_postings(&mut self, mut transactions: Vec<JournalRecord>) -> StoreResult<Vec<JournalRecord>> {
        if transactions.is_empty() {
            return Ok(transactions);
        }
        let ids: Vec<Uuid> = transactions.iter().map(|t| t.id.as_uuid()).collect();
        let statement = Read::new(
            "SELECT p.id AS sequence, p.transaction_id, p.wallet_id, t.kind, t.reference, p.currency, p.amount, \
                    p.balance_after, t.created_at \
             FROM postings p JOIN ledger_transactions t ON t.id = p.transaction_id \
             WHERE p.transaction_id = ANY($1) ORDER BY p.id",
        )
        .bind::<Array<SqlUuid>, _>(ids);
        let mut by_transaction: HashMap<TransactionId, Vec<PostingRecord>> = HashMap::new();
        for record in self.select::<PostingRow>(statement).await? {
            by_transaction.entry(record.posting.transaction_id).or_default().push(record);
        }
        for transaction in &mut transactions {
            transaction.postings = by_transaction.remove(&transaction.id).unwrap_or_default();
        }
        Ok(transactions)
    }
}

impl LedgerRepository for PgTx {
    /// The postings are numbered (`postings.id`) in the order given. Their kind, reference and
    /// time are the transaction's, which is where the domain takes them from.
    async fn append_journal(&mut self, transaction: &JournalTransaction, postings: &[Posting]) -> StoreResult<()> {
        let statement = Write::new(
            "WITH journal AS ( \
                 INSERT INTO ledger_transactions (id, kind, reference, created_at) VALUES ($1, $2, $3, $4) RETURNING id \
             ) \
             INSERT INTO postings (transaction_id, wallet_id, currency, amount, balance_after) \
             SELECT journal.id, p.wallet_id, p.currency, p.amount, p.balance_after \
             FROM journal, unnest($5::uuid[], $6::text[], $7::bigint[], $8::bigint[]) \
                  WITH ORDINALITY AS p(wallet_id, currency, amount, balance_after, position) \
             ORDER BY p.position",
        )
        .bind::<SqlUuid, _>(transaction.id().as_uuid())
        .bind::<Text, _>(transaction.kind().as_str())
        .bind::<Text, _>(transaction.reference().to_owned())
        .bind::<Timestamptz, _>(transaction.created_at())
        .bind::<Array<SqlUuid>, _>(postings.iter().map(|p| p.wallet_id.as_uuid()).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(postings.iter().map(|p| p.amount.currency().code()).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(postings.iter().map(|p| p.amount.amount_minor()).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(postings.iter().map(|p| p.balance_after_minor).collect::<Vec<_>>());
        self.defer(statement, Expect::Any)
    }

    async fn wallet_history(
        &mut self,
        wallet: WalletId,
        before_sequence: Option<i64>,
        page_size: usize,
    ) -> StoreResult<Vec<PostingRecord>> {
        let statement = Read::new(
            "SELECT p.id AS sequence, p.transaction_id, p.wallet_id, t.kind, t.reference, p.currency, p.amount, \
                    p.balance_after, t.created_at \
             FROM postings p JOIN ledger_transactions t ON t.id = p.transaction_id \
             WHERE p.wallet_id = $1 AND p.id < $2 \
             ORDER BY p.id DESC LIMIT $3",
        )
        .bind::<SqlUuid, _>(wallet.as_uuid())
        .bind::<BigInt, _>(before_sequence.unwrap_or(i64::MAX))
        .bind::<BigInt, _>(limit(page_size));
        self.select::<PostingRow>(statement).await
    }

    async fn statement_totals(
        &mut self,
        wallets: &[WalletId],
        from: Option<OffsetDateTime>,
        to: Option<OffsetDateTime>,
    ) -> StoreResult<Vec<StatementTotals>> {
        crate::repos::statements::statement_totals(self, wallets, from, to).await
    }

    async fn list_journal(&mut self, filter: JournalFilter, page: &PageRequest) -> StoreResult<Page<JournalRecord>> {
        let (at, id) = position_after(page);
        let statement = Read::new(
            "SELECT t.id, t.kind, t.reference, t.created_at FROM ledger_transactions t \
             WHERE (t.created_at, t.id) < ($1, $2) AND ($4::text IS NULL OR t.kind = $4) \
               AND ($5::uuid IS NULL OR t.id IN (SELECT p.transaction_id FROM postings p WHERE p.wallet_id = $5)) \
               AND ($6::timestamptz IS NULL OR t.created_at >= $6) AND ($7::timestamptz IS NULL OR t.created_at < $7) \
             ORDER BY t.created_at DESC, t.id DESC LIMIT $3",
        )
        .bind::<Timestamptz, _>(at)
        .bind::<SqlUuid, _>(id)
        .bind::<BigInt, _>(limit_plus_one(page.limit))
        .bind::<Nullable<Text>, _>(filter.kind.map(TransactionKind::as_str))
        .bind::<Nullable<SqlUuid>, _>(filter.wallet.map(|wallet| wallet.as_uuid()))
        .bind::<Nullable<Timestamptz>, _>(filter.created.from)
        .bind::<Nullable<Timestamptz>, _>(filter.created.to);
        let transactions = self.select::<JournalRow>(statement).await?;
        let transactions = self.with_postings(transactions).await?;
        Ok(Page::from_rows(transactions, page.limit, |t| Cursor::Position {
            at: t.created_at,
            id: t.id.as_uuid(),
        }))
    }

    async fn find_journal(&mut self, id: TransactionId) -> StoreResult<Option<JournalRecord>> {
        let statement =
            Read::new("SELECT id, kind, reference, created_at FROM ledger_transactions WHERE id = $1").bind::<SqlUuid, _>(id.as_uuid());
        let found = self.select::<JournalRow>(statement).await?;
        Ok(self.with_postings(found).await?.into_iter().next())
    }

    async fn audit_ledger(&mut self) -> StoreResult<LedgerAudit> {
        crate::repos::audit::audit(self).await
    }
}
