//! Posting to the ledger inside a use case's transaction, and verifying the whole ledger.

use domain::ledger::{self, JournalTransaction, LedgerError, Posting};
use domain::wallet::Wallet;

use crate::caller::Caller;
use crate::context::App;
pub use crate::ports::records::{BalanceMismatch, HeldMismatch, LedgerAudit, UnbalancedTransaction};
use crate::ports::store::{LedgerRepository, StoreError, UnitOfWork, WalletRepository};
use crate::retryable;
use crate::statements::check_all_time_statement;
use crate::transact::{transact, work};

/// Merchant wallets whose statements one transaction of `verify_ledger` checks.
const STATEMENT_PAGE_SIZE: usize = 200;

#[derive(Debug, thiserror::Error)]
pub(crate) enum PostingError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Locks the wallets of `journal` (in id order), applies it and writes the result.
pub(crate) async fn post<Tx>(tx: &mut Tx, journal: &JournalTransaction) -> Result<Vec<Posting>, PostingError>
where
    Tx: WalletRepository + LedgerRepository + Send,
{
    let mut wallets = tx.lock_wallets(&journal.wallet_ids()).await?;
    post_locked(tx, journal, &mut wallets).await
}

/// Applies `journal` to wallets this transaction already locked (and may have changed, e.g. by
/// settling a hold), then writes every wallet and the postings.
pub(crate) async fn post_locked<Tx>(tx: &mut Tx, journal: &JournalTransaction, wallets: &mut [Wallet]) -> Result<Vec<Posting>, PostingError>
where
    Tx: WalletRepository + LedgerRepository + Send,
{
    let postings = ledger::post(journal, wallets)?;
    tx.update_wallets(wallets).await?;
    tx.append_journal(journal, &postings).await?;
    Ok(postings)
}

/// The verdict on an audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerReport {
    /// The raw facts.
    pub audit: LedgerAudit,
    /// Merchant wallets whose all-time statement was checked against their postings.
    pub statements_checked: u64,
    /// What is wrong, one line each; empty when the ledger is sound.
    pub problems: Vec<String>,
}

impl LedgerReport {
    /// Turns the facts into problems: unbalanced transactions, cached balances or holds that differ
    /// from the postings, overdrawn user wallets, broken balance chains, non-zero currency totals.
    pub fn from_audit(audit: LedgerAudit) -> LedgerReport {
        let mut problems = Vec::new();
        for t in &audit.unbalanced_transactions {
            problems.push(format!(
                "transaction {} sums to {} {} minor units, not zero",
                t.transaction_id, t.sum_minor, t.currency
            ));
        }
        for m in &audit.balance_mismatches {
            problems.push(format!(
                "wallet {} caches balance {} but its postings sum to {}",
                m.wallet_id, m.cached_minor, m.posted_minor
            ));
        }
        for m in &audit.held_mismatches {
            problems.push(format!(
                "wallet {} caches held {} but its pending holds sum to {}",
                m.wallet_id, m.cached_minor, m.pending_holds_minor
            ));
        }
        for wallet in &audit.overdrawn_wallets {
            problems.push(format!("user wallet {wallet} is overdrawn"));
        }
        for wallet in &audit.broken_chains {
            problems.push(format!("wallet {wallet} has postings whose balance_after does not chain"));
        }
        for (currency, total) in &audit.totals_by_currency {
            if *total != 0 {
                problems.push(format!("all {currency} postings sum to {total}, not zero"));
            }
        }
        LedgerReport {
            audit,
            statements_checked: 0,
            problems,
        }
    }

    /// Whether no problem was found.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Why the ledger could not be verified (not: what is wrong with it, which the report says).
#[derive(Debug, thiserror::Error)]
pub enum VerifyLedgerError {
    /// The caller may not do this to this resource.
    #[error("only admins may verify the ledger")]
    Forbidden,
    /// Storage failed: an outage, a timeout, a conflict that outlasted the retries, or a commit whose
    /// outcome is unknown (`StoreError::OutcomeUnknown`).
    #[error(transparent)]
    Store(#[from] StoreError),
}

retryable!(VerifyLedgerError);

impl<U: UnitOfWork> App<U> {
    /// Checks every ledger invariant (for an admin).
    pub async fn verify_ledger(&self, caller: &Caller) -> Result<LedgerReport, VerifyLedgerError> {
        if !caller.is_admin() {
            return Err(VerifyLedgerError::Forbidden);
        }
        self.verify_ledger_unchecked().await
    }

    /// Checks every ledger invariant, for operators (`server verify-ledger`).
    pub async fn verify_ledger_unchecked(&self) -> Result<LedgerReport, VerifyLedgerError> {
        let audit = transact(&self.store, |tx| work(tx.audit_ledger())).await?;
        let mut report = LedgerReport::from_audit(audit);
        self.check_statements(&mut report).await?;
        Ok(report)
    }

    /// Builds every merchant wallet's all-time statement, a page of wallets per transaction, and
    /// records in `report` those that do not add up to their postings, cached balance and chain.
    async fn check_statements(&self, report: &mut LedgerReport) -> Result<(), VerifyLedgerError> {
        let mut after = None;
        loop {
            let page = transact(&self.store, |tx| {
                work(async move {
                    let wallets = tx.list_merchant_wallets(after, STATEMENT_PAGE_SIZE).await?;
                    let ids: Vec<_> = wallets.iter().map(|wallet| wallet.id()).collect();
                    let totals = tx.statement_totals(&ids, None, None).await?;
                    Ok::<_, StoreError>((wallets, totals))
                })
            })
            .await?;
            let (wallets, totals) = page;
            for wallet in &wallets {
                let Some(merchant) = wallet.user_id() else {
                    report.problems.push(format!("merchant wallet {} has no owner", wallet.id()));
                    continue;
                };
                match totals.iter().find(|totals| totals.wallet_id == wallet.id()) {
                    Some(totals) => report
                        .problems
                        .extend(check_all_time_statement(merchant, wallet.currency(), totals)),
                    None => report
                        .problems
                        .push(format!("no statement totals for merchant wallet {}", wallet.id())),
                }
                report.statements_checked += 1;
            }
            match wallets.last() {
                Some(last) if wallets.len() == STATEMENT_PAGE_SIZE => after = Some(last.id()),
                _ => return Ok(()),
            }
        }
    }
}
