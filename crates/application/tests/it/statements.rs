//! Merchant statements, figures checked against the merchant's postings.

use application::auth::Caller;
use application::pagination::PageRequest;
use application::ports::store::PostingRecord;
use application::refunds::RefundCommand;
use application::statements::{PeriodError, Statement, StatementError, StatementLine, StatementRequest};
use application::transfers::{Recipient, TransferRequest};
use application::withdrawals::WithdrawalRequest;
use domain::ledger::TransactionKind;
use domain::money::Currency;
use domain::user::Role;
use time::{Duration, OffsetDateTime};

use crate::orders::wallet_cart;
use crate::support::{Harness, start, usd};

fn request(merchant_id: Option<Caller>, from: OffsetDateTime, to: OffsetDateTime) -> StatementRequest {
    StatementRequest {
        merchant_id: merchant_id.map(|caller| caller.user_id),
        currency: Currency::Usd,
        from,
        to,
    }
}

/// Every posting of the merchant's USD wallet, oldest first.
async fn postings(h: &Harness, merchant: &Caller) -> Vec<PostingRecord> {
    let page = h.app.wallet_history(merchant, Currency::Usd, &PageRequest::first(100)).await;
    let mut records = page.unwrap_or_else(|e| panic!("history: {e}")).items;
    records.reverse();
    records
}

fn sum(records: &[&PostingRecord]) -> i64 {
    records.iter().map(|r| r.posting.amount.amount_minor()).sum()
}

/// A merchant sells, withdraws before the period; in it sells, refunds, transfers and withdraws;
/// sells again after it.
async fn a_merchant_with_a_history(h: &Harness) -> (Caller, Caller, OffsetDateTime, OffsetDateTime) {
    let merchant = h.user(Role::Merchant).await;
    let buyer = h.funded_customer(100_000).await;
    let mug = h.product(&merchant, 1_000, 50).await;
    h.app
        .checkout(&buyer, wallet_cart(&[(mug.product.id, 1)]), None)
        .await
        .expect("sale before");
    let withdrawal = WithdrawalRequest {
        amount: usd(200),
        destination: "bank".into(),
    };
    h.app
        .withdraw(&merchant, withdrawal.clone(), None)
        .await
        .expect("withdrawal before");
    h.clock.advance(Duration::days(1));
    let from = h.clock_now();
    let order = h
        .app
        .checkout(&buyer, wallet_cart(&[(mug.product.id, 2)]), None)
        .await
        .expect("sale in the period")
        .order;
    h.clock.advance(Duration::hours(1));
    let refund = RefundCommand {
        amount: Some(usd(1_000)),
        merchant_id: None,
        reason: "chipped".into(),
    };
    h.app.refund_order(&merchant, order.id(), refund, None).await.expect("refund");
    let transfer = TransferRequest {
        to: Recipient::Id(buyer.user_id),
        amount: usd(300),
        note: String::new(),
    };
    h.app.transfer(&merchant, transfer, None).await.expect("transfer");
    let withdrawal = WithdrawalRequest {
        amount: usd(100),
        ..withdrawal
    };
    h.app.withdraw(&merchant, withdrawal, None).await.expect("withdrawal in the period");
    h.clock.advance(Duration::days(1));
    let to = h.clock_now();
    h.app
        .checkout(&buyer, wallet_cart(&[(mug.product.id, 3)]), None)
        .await
        .expect("sale after");
    (merchant, buyer, from, to)
}

#[tokio::test]
async fn a_statement_adds_up_to_the_merchants_postings_of_the_period() {
    let h = Harness::with_payouts(std::sync::Arc::new(crate::support::PayoutDesk::new(vec![])));
    let (merchant, _, from, to) = a_merchant_with_a_history(&h).await;
    let statement = h.app.statement(&merchant, request(None, from, to)).await.expect("statement");

    let records = postings(&h, &merchant).await;
    let before: Vec<_> = records.iter().filter(|r| r.posting.created_at < from).collect();
    let during: Vec<_> = records
        .iter()
        .filter(|r| r.posting.created_at >= from && r.posting.created_at < to)
        .collect();
    let of_kind = |kind: TransactionKind| -> Vec<&PostingRecord> { during.iter().copied().filter(|r| r.posting.kind == kind).collect() };
    let line = |line: StatementLine| statement.line(line);

    assert_eq!((before.len(), during.len(), records.len()), (2, 4, 7), "the history built");
    assert_eq!(statement.opening_balance(), usd(sum(&before)));
    assert_eq!(statement.opening_balance(), usd(800));
    assert_eq!(
        (line(StatementLine::GrossSales).amount, line(StatementLine::GrossSales).postings),
        (usd(2_000), 1)
    );
    assert_eq!(
        line(StatementLine::GrossSales).amount,
        usd(sum(&of_kind(TransactionKind::Purchase)))
    );
    assert_eq!(line(StatementLine::Refunds).amount, usd(-1_000));
    assert_eq!(line(StatementLine::Refunds).amount, usd(sum(&of_kind(TransactionKind::Refund))));
    assert_eq!(line(StatementLine::TransfersOut).amount, usd(-300));
    assert_eq!(line(StatementLine::Withdrawals).amount, usd(-100));
    assert_eq!(line(StatementLine::TransfersIn).amount, usd(0));
    assert_eq!(statement.net_sales(), usd(1_000));
    assert_eq!(statement.net_change(), usd(sum(&during)));
    assert_eq!(statement.lines().iter().map(|l| l.postings).sum::<u64>(), during.len() as u64);
    let last_in_period = during.last().expect("postings in the period");
    assert_eq!(statement.closing_balance(), usd(last_in_period.posting.balance_after_minor));
    assert_eq!(statement.closing_balance(), usd(1_400));
    assert_eq!(h.balance(&merchant).await, 1_400 + 3_000, "the sale after the period is not in it");
    h.assert_ledger_ok().await;
}

#[tokio::test]
async fn an_admin_reads_any_merchants_statement_and_others_cannot() {
    let h = Harness::with_payouts(std::sync::Arc::new(crate::support::PayoutDesk::new(vec![])));
    let (merchant, buyer, from, to) = a_merchant_with_a_history(&h).await;
    let admin = h.admin().await;
    let other = h.user(Role::Merchant).await;
    let own = h.app.statement(&merchant, request(None, from, to)).await.expect("own");
    let named = h.app.statement(&merchant, request(Some(merchant), from, to)).await.expect("named");
    let by_admin = h.app.statement(&admin, request(Some(merchant), from, to)).await.expect("admin");
    assert_eq!(by_admin, own);
    assert_eq!(named, own);
    assert_eq!(by_admin.merchant_id(), merchant.user_id);

    let refused = |result: Result<Statement, StatementError>| result.expect_err("refused");
    let customer = refused(h.app.statement(&buyer, request(None, from, to)).await);
    assert!(matches!(customer, StatementError::Forbidden), "{customer:?}");
    let customer_named = refused(h.app.statement(&buyer, request(Some(merchant), from, to)).await);
    assert!(matches!(customer_named, StatementError::Forbidden), "{customer_named:?}");
    let someone_elses = refused(h.app.statement(&other, request(Some(merchant), from, to)).await);
    assert!(matches!(someone_elses, StatementError::NotFound), "{someone_elses:?}");
    let unnamed = refused(h.app.statement(&admin, request(None, from, to)).await);
    assert!(matches!(unnamed, StatementError::MerchantRequired), "{unnamed:?}");
    let not_a_merchant = refused(h.app.statement(&admin, request(Some(buyer), from, to)).await);
    assert!(matches!(not_a_merchant, StatementError::NotFound), "{not_a_merchant:?}");
}

#[tokio::test]
async fn a_merchant_without_a_wallet_in_the_currency_has_an_empty_statement() {
    let h = Harness::with_payouts(std::sync::Arc::new(crate::support::PayoutDesk::new(vec![])));
    let merchant = h.user(Role::Merchant).await;
    let eur = StatementRequest {
        currency: Currency::Eur,
        ..request(None, start(), start() + Duration::days(30))
    };
    let statement = h.app.statement(&merchant, eur).await.expect("statement");
    assert_eq!(statement.wallet_id(), None);
    assert_eq!(statement.currency(), Currency::Eur);
    assert_eq!(statement.lines().len(), StatementLine::ALL.len());
    assert!(statement.lines().iter().all(|line| line.amount.is_zero() && line.postings == 0));
    assert!(statement.opening_balance().is_zero() && statement.closing_balance().is_zero());
}

#[tokio::test]
async fn a_period_that_is_empty_or_longer_than_a_leap_year_is_refused() {
    let h = Harness::with_payouts(std::sync::Arc::new(crate::support::PayoutDesk::new(vec![])));
    let merchant = h.user(Role::Merchant).await;
    let cases = [
        (start(), start(), PeriodError::Empty),
        (start(), start() - Duration::days(1), PeriodError::Empty),
        (start(), start() + Duration::days(367), PeriodError::TooLong),
    ];
    for (from, to, expected) in cases {
        match h.app.statement(&merchant, request(None, from, to)).await {
            Err(StatementError::Period(error)) => assert_eq!(error, expected),
            other => panic!("{from} to {to}: {other:?}"),
        }
    }
    let year = h
        .app
        .statement(&merchant, request(None, start(), start() + Duration::days(366)))
        .await;
    assert!(year.is_ok(), "{year:?}");
}

#[tokio::test]
async fn verify_ledger_checks_every_merchant_wallets_statement() {
    let h = Harness::with_payouts(std::sync::Arc::new(crate::support::PayoutDesk::new(vec![])));
    a_merchant_with_a_history(&h).await;
    a_merchant_with_a_history(&h).await;
    let report = h.app.verify_ledger_unchecked().await.expect("verify");
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.statements_checked, 2, "one USD wallet per merchant");
}
