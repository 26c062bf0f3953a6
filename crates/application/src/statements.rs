//! Merchant statements: what moved through a merchant's wallet in one currency over a period,
//! computed from the ledger.
//!
//! Every posting of the period falls in exactly one `StatementLine`, chosen by its journal
//! transaction's kind and whether it is a credit or a debit (`StatementLine::of` matches every
//! pair, with no catch-all), so the lines account for all of the period's movements. A statement
//! is only ever built by `Statement::from_totals`, which refuses one whose opening balance plus
//! its lines is not its closing balance: storage sums the closing balance apart from the lines,
//! so a posting left out of the lines, or counted twice, is an error and never a printed figure.
//! `server verify-ledger` builds every merchant wallet's all-time statement the same way and also
//! holds its closing balance to the wallet's cached balance and to its latest `balance_after`.

use domain::ids::{UserId, WalletId};
use domain::ledger::TransactionKind;
use domain::money::{Currency, Money};
use domain::user::Role;
use time::{Duration, OffsetDateTime};

use crate::caller::Caller;
use crate::context::App;
use crate::ports::records::StatementTotals;
use crate::ports::store::{LedgerRepository, StoreError, UnitOfWork, UserRepository, WalletRepository};
use crate::retryable;
use crate::transact::{transact_lagging, work};

/// One line of a statement. The names are stable: they appear in the API and in CSV files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StatementLine {
    /// What buyers paid the merchant for orders (purchase credits).
    GrossSales,
    /// What the merchant paid back to buyers (refund debits).
    Refunds,
    /// Orders the merchant paid for as a buyer (purchase debits).
    Purchases,
    /// Refunds of the merchant's own purchases (refund credits).
    RefundsReceived,
    /// Card top-ups of the merchant's wallet.
    TopUps,
    /// Transfers and captured holds paid to the merchant.
    TransfersIn,
    /// Transfers and captured holds the merchant paid.
    TransfersOut,
    /// Withdrawals paid out of the merchant's wallet.
    Withdrawals,
    /// Calls the merchant received and was paid for.
    CallEarnings,
    /// Calls the merchant made and paid for.
    CallCharges,
    /// Admins' adjustments, either way.
    Adjustments,
    /// Reversals of earlier movements (a refund the provider failed gives the money back), either way.
    Reversals,
}

impl StatementLine {
    /// Every line, in the order a statement lists them.
    pub const ALL: [StatementLine; 12] = [
        StatementLine::GrossSales,
        StatementLine::Refunds,
        StatementLine::Purchases,
        StatementLine::RefundsReceived,
        StatementLine::TopUps,
        StatementLine::TransfersIn,
        StatementLine::TransfersOut,
        StatementLine::Withdrawals,
        StatementLine::CallEarnings,
        StatementLine::CallCharges,
        StatementLine::Adjustments,
        StatementLine::Reversals,
    ];

    /// The stable snake_case name used in the API and CSV files.
    pub fn as_str(self) -> &'static str {
        match self {
            StatementLine::GrossSales => "gross_sales",
            StatementLine::Refunds => "refunds",
            StatementLine::Purchases => "purchases",
            StatementLine::RefundsReceived => "refunds_received",
            StatementLine::TopUps => "top_ups",
            StatementLine::TransfersIn => "transfers_in",
            StatementLine::TransfersOut => "transfers_out",
            StatementLine::Withdrawals => "withdrawals",
            StatementLine::CallEarnings => "call_earnings",
            StatementLine::CallCharges => "call_charges",
            StatementLine::Adjustments => "adjustments",
            StatementLine::Reversals => "reversals",
        }
    }

    /// The line of a posting of `kind`: a credit (money in) or a debit.
    pub fn of(kind: TransactionKind, credit: bool) -> StatementLine {
        match (kind, credit) {
            (TransactionKind::Purchase, true) => StatementLine::GrossSales,
            (TransactionKind::Purchase, false) => StatementLine::Purchases,
            (TransactionKind::Refund, false) => StatementLine::Refunds,
            (TransactionKind::Refund, true) => StatementLine::RefundsReceived,
            (TransactionKind::TopUp, _) => StatementLine::TopUps,
            (TransactionKind::Transfer, true) => StatementLine::TransfersIn,
            (TransactionKind::Transfer, false) => StatementLine::TransfersOut,
            (TransactionKind::Withdrawal, _) => StatementLine::Withdrawals,
            (TransactionKind::CallCharge, true) => StatementLine::CallEarnings,
            (TransactionKind::CallCharge, false) => StatementLine::CallCharges,
            (TransactionKind::Adjustment, _) => StatementLine::Adjustments,
            (TransactionKind::Reversal, _) => StatementLine::Reversals,
        }
    }
}

/// The half-open period `[from, to)` of a statement someone asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatementPeriod {
    from: OffsetDateTime,
    to: OffsetDateTime,
}

/// Why a statement's period is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    /// It ends at or before its start.
    #[error("the period must end after it starts")]
    Empty,
    /// It is longer than [`StatementPeriod::DAYS_MAX`] days.
    #[error("the period may span at most {} days", StatementPeriod::DAYS_MAX)]
    TooLong,
}

impl StatementPeriod {
    /// The longest period one statement covers: a (leap) year.
    pub const DAYS_MAX: i64 = 366;

    /// A period `[from, to)`.
    ///
    /// # Errors
    /// [`PeriodError`] if it is empty or too long.
    pub fn new(from: OffsetDateTime, to: OffsetDateTime) -> Result<StatementPeriod, PeriodError> {
        if from >= to {
            return Err(PeriodError::Empty);
        }
        if to - from > Duration::days(StatementPeriod::DAYS_MAX) {
            return Err(PeriodError::TooLong);
        }
        Ok(StatementPeriod { from, to })
    }

    /// The start, included.
    pub fn from(&self) -> OffsetDateTime {
        self.from
    }

    /// The end, excluded.
    pub fn to(&self) -> OffsetDateTime {
        self.to
    }
}

/// One line's total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineTotal {
    /// The line.
    pub line: StatementLine,
    /// Signed: negative when money left the wallet.
    pub amount: Money,
    /// How many postings it sums.
    pub postings: u64,
}

/// A statement whose opening balance plus its lines is its closing balance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    merchant_id: UserId,
    wallet_id: Option<WalletId>,
    currency: Currency,
    opening_balance: Money,
    lines: Vec<LineTotal>,
    net_sales: Money,
    net_change: Money,
    closing_balance: Money,
}

/// Figures that do not add up: a fault of the books or of the code, never of the request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the statement of wallet {wallet_id} does not add up: {detail}")]
pub struct StatementMismatch {
    /// The wallet whose figures do not add up.
    pub wallet_id: WalletId,
    /// Which figures, and by how much.
    pub detail: String,
}

impl Statement {
    /// The statement of a merchant without a wallet in `currency`: nothing ever moved.
    pub fn empty(merchant_id: UserId, currency: Currency) -> Statement {
        let zero = Money::zero(currency);
        Statement {
            merchant_id,
            wallet_id: None,
            currency,
            opening_balance: zero,
            lines: StatementLine::ALL
                .into_iter()
                .map(|line| LineTotal {
                    line,
                    amount: zero,
                    postings: 0,
                })
                .collect(),
            net_sales: zero,
            net_change: zero,
            closing_balance: zero,
        }
    }

    /// Sorts the totals into lines and checks that opening plus lines is closing, exactly.
    pub fn from_totals(merchant_id: UserId, currency: Currency, totals: &StatementTotals) -> Result<Statement, StatementMismatch> {
        let mismatch = |detail: String| StatementMismatch {
            wallet_id: totals.wallet_id,
            detail,
        };
        let mut sums = [(0_i128, 0_u64); StatementLine::ALL.len()];
        for kind in &totals.kinds {
            for (credit, amount, count) in [
                (true, kind.credits_minor, kind.credit_count),
                (false, kind.debits_minor, kind.debit_count),
            ] {
                let index = line_index(StatementLine::of(kind.kind, credit));
                sums[index].0 += amount;
                sums[index].1 += count;
            }
        }
        let lines_minor: i128 = sums.iter().map(|(amount, _)| amount).sum();
        if totals.opening_minor + lines_minor != totals.closing_minor {
            return Err(mismatch(format!(
                "opening {} plus lines {} is not the closing {}",
                totals.opening_minor, lines_minor, totals.closing_minor
            )));
        }
        let money = |minor: i128, what: &str| {
            i64::try_from(minor)
                .map(|minor| Money::from_minor(minor, currency))
                .map_err(|_| mismatch(format!("{what} {minor} does not fit an amount")))
        };
        let mut lines = Vec::with_capacity(StatementLine::ALL.len());
        for (line, (amount, postings)) in StatementLine::ALL.into_iter().zip(sums) {
            lines.push(LineTotal {
                line,
                amount: money(amount, line.as_str())?,
                postings,
            });
        }
        let net_sales_minor = sums[line_index(StatementLine::GrossSales)].0 + sums[line_index(StatementLine::Refunds)].0;
        Ok(Statement {
            merchant_id,
            wallet_id: Some(totals.wallet_id),
            currency,
            opening_balance: money(totals.opening_minor, "the opening balance")?,
            lines,
            net_sales: money(net_sales_minor, "net sales")?,
            net_change: money(lines_minor, "the net change")?,
            closing_balance: money(totals.closing_minor, "the closing balance")?,
        })
    }

    /// The merchant whose statement it is.
    pub fn merchant_id(&self) -> UserId {
        self.merchant_id
    }

    /// The wallet the statement is of; none if the merchant has no wallet in the currency.
    pub fn wallet_id(&self) -> Option<WalletId> {
        self.wallet_id
    }

    /// The currency of every figure.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// The balance at the start of the period.
    pub fn opening_balance(&self) -> Money {
        self.opening_balance
    }

    /// Every line, in `StatementLine::ALL` order, those without postings included.
    pub fn lines(&self) -> &[LineTotal] {
        &self.lines
    }

    /// One line's total.
    pub fn line(&self, line: StatementLine) -> LineTotal {
        self.lines[line_index(line)]
    }

    /// Gross sales less refunds.
    pub fn net_sales(&self) -> Money {
        self.net_sales
    }

    /// The sum of every line: closing less opening balance.
    pub fn net_change(&self) -> Money {
        self.net_change
    }

    /// The balance at the end of the period.
    pub fn closing_balance(&self) -> Money {
        self.closing_balance
    }
}

fn line_index(line: StatementLine) -> usize {
    StatementLine::ALL
        .iter()
        .position(|candidate| *candidate == line)
        .expect("StatementLine::ALL lists every line")
}

/// What a statement is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatementRequest {
    /// The merchant: required from an admin; a merchant may name only itself.
    pub merchant_id: Option<UserId>,
    /// The currency of the merchant's wallet to read.
    pub currency: Currency,
    /// The period is `[from, to)`, checked by `StatementPeriod::new`.
    pub from: OffsetDateTime,
    /// The end of the period, excluded.
    pub to: OffsetDateTime,
}

/// Why a statement cannot be produced.
#[derive(Debug, thiserror::Error)]
pub enum StatementError {
    /// The caller may not do this to this resource.
    #[error("only merchants and admins have statements")]
    Forbidden,
    /// An admin asked without naming the merchant.
    #[error("an admin must name the merchant")]
    MerchantRequired,
    /// The merchant does not exist (or is not a merchant).
    #[error("the merchant does not exist")]
    NotFound,
    /// The period is empty or too long.
    #[error(transparent)]
    Period(PeriodError),
    /// The books do not add up for this wallet: a fault to investigate, never shown as figures.
    #[error(transparent)]
    Mismatch(StatementMismatch),
    /// Storage failed: an outage, a timeout, a conflict that outlasted the retries, or a commit whose
    /// outcome is unknown (`StoreError::OutcomeUnknown`).
    #[error(transparent)]
    Store(#[from] StoreError),
}

retryable!(StatementError);

impl<U: UnitOfWork> App<U> {
    /// A merchant's statement for one currency and period: its own for a merchant, any
    /// merchant's for an admin.
    pub async fn statement(&self, caller: &Caller, request: StatementRequest) -> Result<Statement, StatementError> {
        let merchant_id = match (caller.role, request.merchant_id) {
            (Role::Customer, _) => return Err(StatementError::Forbidden),
            (Role::Admin, None) => return Err(StatementError::MerchantRequired),
            (Role::Admin, Some(merchant)) => merchant,
            (Role::Merchant, None) => caller.user_id,
            (Role::Merchant, Some(merchant)) if merchant == caller.user_id => merchant,
            // Another merchant's books are someone else's resource.
            (Role::Merchant, Some(_)) => return Err(StatementError::NotFound),
        };
        let period = StatementPeriod::new(request.from, request.to).map_err(StatementError::Period)?;
        let currency = request.currency;
        let statement = transact_lagging(&self.store, |tx| work(merchant_statement(tx, merchant_id, currency, period))).await?;
        Ok(statement)
    }
}

async fn merchant_statement<Tx>(
    tx: &mut Tx,
    merchant_id: UserId,
    currency: Currency,
    period: StatementPeriod,
) -> Result<Statement, StatementError>
where
    Tx: UserRepository + WalletRepository + LedgerRepository + Send,
{
    let merchant = tx.find_user(merchant_id).await?;
    if merchant.is_none_or(|user| user.role != Role::Merchant) {
        return Err(StatementError::NotFound);
    }
    let Some(wallet) = tx.find_user_wallet(merchant_id, currency).await? else {
        return Ok(Statement::empty(merchant_id, currency));
    };
    let totals = tx.statement_totals(&[wallet.id()], Some(period.from()), Some(period.to())).await?;
    let [totals] = totals.as_slice() else {
        return Err(StoreError::Corrupt(format!("{} statement totals for one wallet", totals.len())).into());
    };
    Statement::from_totals(merchant_id, currency, totals).map_err(StatementError::Mismatch)
}

/// Checks one merchant wallet's all-time statement: it must add up, and close at the wallet's
/// cached balance and at the `balance_after` of its latest posting. Returns the problems found.
pub(crate) fn check_all_time_statement(merchant_id: UserId, currency: Currency, totals: &StatementTotals) -> Vec<String> {
    let wallet = totals.wallet_id;
    let statement = match Statement::from_totals(merchant_id, currency, totals) {
        Ok(statement) => statement,
        Err(mismatch) => return vec![mismatch.to_string()],
    };
    let mut problems = Vec::new();
    if !statement.opening_balance().is_zero() {
        problems.push(format!(
            "the all-time statement of merchant wallet {wallet} opens at {}, not zero",
            statement.opening_balance()
        ));
    }
    let closing = statement.closing_balance().amount_minor();
    if closing != totals.cached_balance_minor {
        problems.push(format!(
            "the all-time statement of merchant wallet {wallet} closes at {closing} but the wallet caches balance {}",
            totals.cached_balance_minor
        ));
    }
    let chained = totals.latest_balance_after_minor.unwrap_or(0);
    if closing != chained {
        problems.push(format!(
            "the all-time statement of merchant wallet {wallet} closes at {closing} but its latest posting's balance_after is {chained}"
        ));
    }
    problems
}

#[cfg(test)]
mod tests {
    use domain::ids::WalletId;
    use uuid::Uuid;

    use super::*;
    use crate::ports::records::KindTotals;

    fn totals(opening_minor: i128, kinds: Vec<KindTotals>, closing_minor: i128) -> StatementTotals {
        StatementTotals {
            wallet_id: WalletId::from_uuid(Uuid::from_u128(1)),
            opening_minor,
            kinds,
            closing_minor,
            cached_balance_minor: 0,
            latest_balance_after_minor: None,
        }
    }

    fn kind(kind: TransactionKind, credits_minor: i128, debits_minor: i128) -> KindTotals {
        KindTotals {
            kind,
            credits_minor,
            debits_minor,
            credit_count: u64::from(credits_minor != 0),
            debit_count: u64::from(debits_minor != 0),
        }
    }

    fn merchant() -> UserId {
        UserId::from_uuid(Uuid::from_u128(2))
    }

    #[test]
    fn every_kind_and_direction_has_exactly_one_line_and_every_line_is_reached() {
        let mut reached = std::collections::BTreeSet::new();
        for kind in TransactionKind::ALL {
            for credit in [true, false] {
                reached.insert(StatementLine::of(kind, credit));
            }
        }
        assert_eq!(reached.len(), StatementLine::ALL.len(), "a line no posting can reach");
        let names: std::collections::BTreeSet<_> = StatementLine::ALL.iter().map(|line| line.as_str()).collect();
        assert_eq!(names.len(), StatementLine::ALL.len(), "line names are distinct");
    }

    #[test]
    fn totals_are_sorted_into_lines_and_net_sales_deduct_refunds() {
        let kinds = vec![
            kind(TransactionKind::Purchase, 5_000, -700),
            kind(TransactionKind::Refund, 100, -1_200),
            kind(TransactionKind::Transfer, 300, -400),
            kind(TransactionKind::Withdrawal, 0, -1_000),
        ];
        let statement = Statement::from_totals(merchant(), Currency::Usd, &totals(2_000, kinds, 4_100)).expect("adds up");
        let amount = |line| statement.line(line).amount.amount_minor();
        assert_eq!(amount(StatementLine::GrossSales), 5_000);
        assert_eq!(amount(StatementLine::Purchases), -700);
        assert_eq!(amount(StatementLine::Refunds), -1_200);
        assert_eq!(amount(StatementLine::RefundsReceived), 100);
        assert_eq!(amount(StatementLine::TransfersIn), 300);
        assert_eq!(amount(StatementLine::TransfersOut), -400);
        assert_eq!(amount(StatementLine::Withdrawals), -1_000);
        assert_eq!(amount(StatementLine::Adjustments), 0);
        assert_eq!(statement.net_sales().amount_minor(), 3_800);
        assert_eq!(statement.net_change().amount_minor(), 2_100);
        assert_eq!(statement.opening_balance().amount_minor(), 2_000);
        assert_eq!(statement.closing_balance().amount_minor(), 4_100);
        assert_eq!(statement.lines().len(), StatementLine::ALL.len());
    }

    #[test]
    fn a_statement_whose_lines_miss_the_closing_balance_is_refused() {
        let kinds = vec![kind(TransactionKind::Purchase, 5_000, 0)];
        let refused = Statement::from_totals(merchant(), Currency::Usd, &totals(100, kinds, 5_000)).expect_err("one off");
        assert!(
            refused.detail.contains("opening 100 plus lines 5000 is not the closing 5000"),
            "{refused}"
        );
    }

    #[test]
    fn a_period_must_be_non_empty_and_at_most_a_leap_year() {
        let start = OffsetDateTime::UNIX_EPOCH;
        assert_eq!(StatementPeriod::new(start, start), Err(PeriodError::Empty));
        assert_eq!(StatementPeriod::new(start, start - Duration::SECOND), Err(PeriodError::Empty));
        assert!(StatementPeriod::new(start, start + Duration::days(366)).is_ok());
        assert_eq!(
            StatementPeriod::new(start, start + Duration::days(366) + Duration::nanoseconds(1)),
            Err(PeriodError::TooLong)
        );
    }

    #[test]
    fn the_all_time_check_holds_the_closing_balance_to_the_cache_and_the_chain() {
        let kinds = vec![kind(TransactionKind::Purchase, 5_000, 0)];
        let mut good = totals(0, kinds, 5_000);
        good.cached_balance_minor = 5_000;
        good.latest_balance_after_minor = Some(5_000);
        assert_eq!(check_all_time_statement(merchant(), Currency::Usd, &good), Vec::<String>::new());
        let stale_cache = StatementTotals {
            cached_balance_minor: 4_999,
            ..good.clone()
        };
        let problems = check_all_time_statement(merchant(), Currency::Usd, &stale_cache);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("caches balance 4999"), "{problems:?}");
        let broken_chain = StatementTotals {
            latest_balance_after_minor: Some(4_000),
            ..good
        };
        let problems = check_all_time_statement(merchant(), Currency::Usd, &broken_chain);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("balance_after is 4000"), "{problems:?}");
    }
}
