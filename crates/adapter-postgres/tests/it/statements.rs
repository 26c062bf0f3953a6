//! Merchant statements on PostgreSQL: the figures against the merchant's postings, and
//! `verify_ledger` finding a merchant wallet whose statement does not close at its balance.

use std::sync::Arc;

use application::pagination::PageRequest;
use application::ports::system::ManualClock;
use application::refunds::RefundCommand;
use application::statements::{StatementLine, StatementRequest};
use application::transfers::{Recipient, TransferRequest};
use application::withdrawals::WithdrawalRequest;
use domain::ledger::TransactionKind;
use domain::money::Currency;
use domain::order::PaymentMethod;
use domain::user::Role;
use time::{Duration, OffsetDateTime};

use crate::support::{Harness, cart, usd};

#[tokio::test]
async fn a_statement_adds_up_to_the_postings_and_verify_ledger_holds_it_to_the_balance() {
    let h = Harness::new().await;
    let merchant = h.user(Role::Merchant).await;
    let buyer = h.funded_customer(100_000).await;
    let mug = h.product(&merchant, 1_000, 50).await;
    // A second instance whose clock the test moves, a year ahead of the setup above.
    // Whole seconds: PostgreSQL keeps microseconds, and the test compares stored times with `from`.
    let start = OffsetDateTime::now_utc().replace_nanosecond(0).expect("whole seconds");
    let clock = Arc::new(ManualClock::new(start + Duration::days(365)));
    let app = h.instance_at(clock.clone());
    let sell = |units: i64| cart(&[(mug.product.id, units)], PaymentMethod::Wallet);
    app.checkout(&buyer, sell(1), None).await.expect("sale before");
    let withdrawal = |minor| WithdrawalRequest {
        amount: usd(minor),
        destination: "bank".into(),
    };
    app.withdraw(&merchant, withdrawal(200), None).await.expect("withdrawal before");
    clock.advance(Duration::days(1));
    let from = {
        use application::ports::system::Clock;
        clock.now()
    };
    let order = app.checkout(&buyer, sell(2), None).await.expect("sale in the period").order;
    clock.advance(Duration::hours(1));
    let refund = RefundCommand {
        amount: Some(usd(1_000)),
        merchant_id: None,
        reason: "chipped".into(),
    };
    app.refund_order(&merchant, order.id(), refund, None).await.expect("refund");
    let transfer = TransferRequest {
        to: Recipient::Id(buyer.user_id),
        amount: usd(300),
        note: String::new(),
    };
    app.transfer(&merchant, transfer, None).await.expect("transfer");
    app.withdraw(&merchant, withdrawal(100), None)
        .await
        .expect("withdrawal in the period");
    clock.advance(Duration::days(1));
    let to = from + Duration::days(1);
    app.checkout(&buyer, sell(3), None).await.expect("sale after");

    let request = StatementRequest {
        merchant_id: None,
        currency: Currency::Usd,
        from,
        to,
    };
    let statement = app.statement(&merchant, request).await.expect("statement");
    let mut records = app
        .wallet_history(&merchant, Currency::Usd, &PageRequest::first(100))
        .await
        .expect("history")
        .items;
    records.reverse();
    let in_period = |at: OffsetDateTime| at >= from && at < to;
    let sum_where = |keep: &dyn Fn(&application::ports::store::PostingRecord) -> bool| -> i64 {
        records.iter().filter(|r| keep(r)).map(|r| r.posting.amount.amount_minor()).sum()
    };
    let during_of = |kind: TransactionKind| sum_where(&|r| in_period(r.posting.created_at) && r.posting.kind == kind);
    assert_eq!(records.len(), 7, "the history built");
    assert_eq!(statement.opening_balance(), usd(sum_where(&|r| r.posting.created_at < from)));
    assert_eq!(statement.opening_balance(), usd(800));
    assert_eq!(
        statement.line(StatementLine::GrossSales).amount,
        usd(during_of(TransactionKind::Purchase))
    );
    assert_eq!(statement.line(StatementLine::GrossSales).amount, usd(2_000));
    assert_eq!(
        statement.line(StatementLine::Refunds).amount,
        usd(during_of(TransactionKind::Refund))
    );
    assert_eq!(statement.line(StatementLine::Refunds).amount, usd(-1_000));
    assert_eq!(statement.line(StatementLine::TransfersOut).amount, usd(-300));
    assert_eq!(statement.line(StatementLine::Withdrawals).amount, usd(-100));
    assert_eq!(statement.net_change(), usd(sum_where(&|r| in_period(r.posting.created_at))));
    assert_eq!(statement.closing_balance(), usd(1_400));
    assert_eq!(h.balance(&merchant).await, 4_400, "the sale after the period is not in it");

    let report = h.app.verify_ledger_unchecked().await.expect("verify");
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.statements_checked, 1, "the one merchant's USD wallet");

    let client = h.database.raw_client().await;
    let wallet = statement.wallet_id().expect("a wallet").as_uuid();
    client
        .execute("UPDATE wallets SET balance = balance + 1 WHERE id = $1", &[&wallet])
        .await
        .expect("tamper");
    let report = h.app.verify_ledger_unchecked().await.expect("verify");
    let expected = format!("the all-time statement of merchant wallet {wallet} closes at 4400 but the wallet caches balance 4401");
    assert!(report.problems.contains(&expected), "{:?}", report.problems);
}
