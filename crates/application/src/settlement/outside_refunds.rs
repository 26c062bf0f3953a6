//! Refunds made outside the API (in the provider's dashboard), which the gateway reports only as
//! the payment's refunded total: whatever it has refunded beyond the refunds we know of (pending
//! or done) is recorded now, so a total reported twice, or late, changes nothing. The amount is
//! taken from the merchants' shares in merchant id order; each merchant's wallet pays what it can
//! and the rest is posted to the receivables account, with a follow-up stuck for an admin to
//! recover it. The order's refunded amount follows.

use std::collections::BTreeMap;

use domain::follow_up::{FollowUp, FollowUpTask};
use domain::ids::UserId;
use domain::ledger::{Entry, JournalTransaction, TransactionKind};
use domain::money::{Money, MoneyError};
use domain::order::{Actor, Order};
use domain::payment::{Payment, PaymentPurpose, PaymentStatus, ProviderName, Refund, RefundTerms};
use domain::wallet::{SystemAccount, Wallet};
use time::OffsetDateTime;

use super::{EventOutcome, GatewayEventError, SettlementTx};
use crate::effects::{lock_referenced, record_refunds_on_order, refundable_shares};
use crate::ledger::post_locked;
use crate::ports::gateway::PaymentReference;
use crate::ports::store::{FollowUpRepository, LedgerRepository, StoreError, WalletRepository};
use crate::ports::system::{IdGenerator, next_id};

/// Records what the provider refunded of a payment beyond the refunds we know of.
pub(super) async fn record_outside_refunds<Tx: SettlementTx>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    provider: &ProviderName,
    reference: &PaymentReference,
    refunded_total: Money,
    now: OffsetDateTime,
) -> Result<EventOutcome, GatewayEventError> {
    let Some(payment) = lock_referenced(tx, provider, reference).await? else {
        return Ok(EventOutcome::Ignored("unknown payment"));
    };
    let order_id = match payment.purpose() {
        _ if payment.late_success() => return Ok(EventOutcome::Ignored("the refund of a late payment")),
        _ if payment.status() != PaymentStatus::Succeeded => return Ok(EventOutcome::Ignored("the payment did not succeed")),
        PaymentPurpose::TopUp(_) => return flag_outside_top_up_refund(tx, &payment, refunded_total, now).await,
        PaymentPurpose::Order(order_id) => order_id,
    };
    let order = tx
        .lock_order(order_id)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("payment {} has no order", payment.id())))?;
    let known = tx.list_order_refunds(order_id).await?;
    let unrecorded = outside_amount(&known, refunded_total)?;
    if !unrecorded.is_positive() {
        return Ok(EventOutcome::Ignored("every refund is recorded"));
    }
    let targets = outside_targets(&order, &known, unrecorded)?;
    let shortfalls = post_outside_refund(tx, ids, &order, &targets, provider, now).await?;
    let reason = format!("refunded outside the API ({provider})");
    let mut refunds = Vec::with_capacity(targets.len());
    for (merchant, amount) in &targets {
        let terms = RefundTerms {
            order_id,
            payment_id: Some(payment.id()),
            merchant_id: *merchant,
            amount: *amount,
            reason: reason.clone(),
            requested_by: None,
        };
        let refund = Refund::completed(next_id(ids), terms, now);
        tx.insert_refund(&refund).await?;
        if let Some(shortfall) = shortfalls.get(merchant) {
            flag_shortfall(tx, &refund, *shortfall, now).await?;
        }
        refunds.push(refund);
    }
    record_refunds_on_order(tx, ids, order, &refunds, Actor::Gateway(provider.clone()), now).await?;
    tracing::warn!(payment_id = %payment.id(), amount = %unrecorded, "a refund made outside the API was recorded");
    Ok(EventOutcome::Applied)
}

/// A merchant whose wallet could not cover their part of an outside refund owes the rest to the
/// platform: flagged for admins.
async fn flag_shortfall<Tx: FollowUpRepository + Send>(
    tx: &mut Tx,
    refund: &Refund,
    shortfall: Money,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let (merchant, amount) = (refund.merchant_id(), refund.amount());
    let note = format!(
        "a refund made outside the API took {amount} from merchant {merchant}, whose wallet covered all but {shortfall}; that is owed to the platform (receivables)"
    );
    tracing::error!(refund_id = %refund.id(), %merchant, %shortfall, "a merchant could not cover a refund made outside the API: flagged for admins");
    let task = FollowUpTask::RecoverShortfall(refund.id());
    tx.insert_follow_up(&FollowUp::needs_attention(task, note, now)).await
}

/// What the gateway has refunded beyond the refunds we know of that have not failed.
fn outside_amount(known: &[Refund], refunded_total: Money) -> Result<Money, MoneyError> {
    let mut recorded = Money::zero(refunded_total.currency());
    for refund in known.iter().filter(|refund| refund.counts_against_share()) {
        recorded = recorded.checked_add(refund.amount())?;
    }
    refunded_total.checked_sub(recorded)
}

/// Which merchants' shares an outside refund of `amount` takes, in merchant id order.
fn outside_targets(order: &Order, known: &[Refund], amount: Money) -> Result<Vec<(UserId, Money)>, GatewayEventError> {
    let shares = refundable_shares(order, known)?;
    let mut left = amount;
    let mut targets = Vec::new();
    for (merchant, share) in shares {
        if !left.is_positive() {
            break;
        }
        let take = if share.amount_minor() < left.amount_minor() { share } else { left };
        if take.is_positive() {
            targets.push((merchant, take));
            left = left.checked_sub(take)?;
        }
    }
    if left.is_positive() {
        return Err(GatewayEventError::AmountMismatch {
            expected: amount.checked_sub(left)?,
            received: amount,
        });
    }
    Ok(targets)
}

/// Posts an outside refund: each merchant's wallet pays what it can of its part, the receivables
/// account the rest, and the gateway's clearing account receives the whole. Returns each
/// merchant's shortfall.
async fn post_outside_refund<Tx>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    order: &Order,
    targets: &[(UserId, Money)],
    provider: &ProviderName,
    now: OffsetDateTime,
) -> Result<BTreeMap<UserId, Money>, GatewayEventError>
where
    Tx: WalletRepository + LedgerRepository + Send,
{
    let currency = order.currency();
    let clearing = SystemAccount::GatewayClearing(provider.clone());
    let clearing = tx.ensure_system_wallet(&clearing, currency, next_id(ids), now).await?;
    let receivables = tx
        .ensure_system_wallet(&SystemAccount::Receivables, currency, next_id(ids), now)
        .await?;
    let mut merchant_wallets = Vec::with_capacity(targets.len());
    for (merchant, _) in targets {
        merchant_wallets.push(tx.ensure_user_wallet(*merchant, currency, next_id(ids), now).await?);
    }
    let mut all = merchant_wallets.clone();
    all.extend([clearing, receivables]);
    // Every wallet of the journal, locked together in id order.
    let mut wallets = tx.lock_wallets(&all).await?;
    let mut entries = Vec::with_capacity(targets.len() * 2 + 1);
    let mut shortfalls = BTreeMap::new();
    let mut total = Money::zero(currency);
    for ((merchant, amount), wallet_id) in targets.iter().zip(&merchant_wallets) {
        let available = wallets
            .iter()
            .find(|wallet| wallet.id() == *wallet_id)
            .map_or(Money::zero(currency), Wallet::available);
        let covered = Money::from_minor(available.amount_minor().clamp(0, amount.amount_minor()), currency);
        let shortfall = amount.checked_sub(covered)?;
        if covered.is_positive() {
            entries.push(Entry::debit(*wallet_id, covered)?);
        }
        if shortfall.is_positive() {
            entries.push(Entry::debit(receivables, shortfall)?);
            shortfalls.insert(*merchant, shortfall);
        }
        total = total.checked_add(*amount)?;
    }
    entries.push(Entry::credit(clearing, total));
    let journal = JournalTransaction::new(next_id(ids), TransactionKind::Refund, format!("order:{}", order.id()), entries, now)?;
    post_locked(tx, &journal, &mut wallets).await?;
    Ok(shortfalls)
}

/// A top-up refunded outside the API: its wallet was credited and may have been spent, so an
/// admin must decide what to recover. Flagged once per payment.
async fn flag_outside_top_up_refund<Tx: FollowUpRepository + Send>(
    tx: &mut Tx,
    payment: &Payment,
    refunded_total: Money,
    now: OffsetDateTime,
) -> Result<EventOutcome, GatewayEventError> {
    let note = format!(
        "top-up {} of {} was refunded outside the API ({refunded_total} in all); the wallet of user {} still holds it: adjust it",
        payment.id(),
        payment.amount(),
        payment.payer_id()
    );
    tracing::error!(payment_id = %payment.id(), %refunded_total, "a top-up was refunded outside the API: flagged for admins");
    let task = FollowUpTask::OutsideTopUpRefund(payment.id());
    if tx.lock_follow_up(&task).await?.is_none() {
        tx.insert_follow_up(&FollowUp::needs_attention(task, note, now)).await?;
    }
    Ok(EventOutcome::Applied)
}
