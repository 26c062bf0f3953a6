//! Effects several capabilities share, inside a use case's transaction: recording events, moving
//! an order through its states with its audit trail and events, paying an order's merchants,
//! recording refunds on an order, and the platform's bound on system accounts.

use std::collections::BTreeMap;

use domain::events::{DomainEvent, OutboxEvent};
use domain::ids::{UserId, WalletId};
use domain::ledger::{Entry, JournalTransaction, LedgerError, Posting, TransactionKind};
use domain::money::{Currency, Money, MoneyError};
use domain::order::{Actor, Order, OrderError, StatusChange};
use domain::payment::{Payment, ProviderName, Refund};
use domain::wallet::SystemAccount;
use time::OffsetDateTime;

use crate::ledger::{PostingError, post};
use crate::ports::gateway::PaymentReference;
use crate::ports::store::{EventOutbox, LedgerRepository, OrderRepository, PaymentLookup, PaymentRepository, StoreError, WalletRepository};
use crate::ports::system::{IdGenerator, next_id};

/// An event to publish, stamped with a new id.
pub(crate) fn event(ids: &dyn IdGenerator, happened: DomainEvent, at: OffsetDateTime) -> OutboxEvent {
    OutboxEvent {
        id: next_id(ids),
        event: happened,
        occurred_at: at,
    }
}

/// Publishes one event.
pub(crate) async fn publish<Tx: EventOutbox + Send>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    happened: DomainEvent,
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    tx.enqueue_events(&[event(ids, happened, at)]).await
}

/// The `order.status_changed` events of these changes.
pub(crate) fn status_events(ids: &dyn IdGenerator, changes: &[StatusChange]) -> Vec<OutboxEvent> {
    changes
        .iter()
        .map(|change| {
            let changed = DomainEvent::OrderStatusChanged {
                order_id: change.order_id,
                from: change.from,
                to: change.to,
            };
            event(ids, changed, change.at)
        })
        .collect()
}

/// Writes an order's new state, its audit trail entry and its event, with `more` events.
pub(crate) async fn record_order_change<Tx>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    order: &Order,
    change: StatusChange,
    more: Vec<OutboxEvent>,
) -> Result<(), StoreError>
where
    Tx: OrderRepository + EventOutbox + Send,
{
    tx.update_order(order).await?;
    record_status_changes(tx, ids, std::slice::from_ref(&change), more).await
}

/// Appends changes to the audit trail and publishes their events, with `more` events.
pub(crate) async fn record_status_changes<Tx>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    changes: &[StatusChange],
    more: Vec<OutboxEvent>,
) -> Result<(), StoreError>
where
    Tx: OrderRepository + EventOutbox + Send,
{
    tx.append_status_changes(changes).await?;
    let mut events = status_events(ids, changes);
    events.extend(more);
    tx.enqueue_events(&events).await
}

/// Credits each merchant's share of a paid order from `source` (a gateway's clearing account), as
/// one journal transaction.
pub(crate) async fn pay_merchants<Tx>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    order: &Order,
    source: WalletId,
    now: OffsetDateTime,
) -> Result<(), PostingError>
where
    Tx: WalletRepository + LedgerRepository + Send,
{
    let refused = |error: MoneyError| LedgerError::Wallet {
        wallet_id: source,
        source: error.into(),
    };
    let shares = order.merchant_totals().map_err(refused)?;
    let mut entries = vec![Entry::debit(source, order.total()).map_err(refused)?];
    for (merchant, share) in shares {
        let wallet = tx.ensure_user_wallet(merchant, order.currency(), next_id(ids), now).await?;
        entries.push(Entry::credit(wallet, share));
    }
    let journal = JournalTransaction::new(
        next_id(ids),
        TransactionKind::Purchase,
        format!("order:{}", order.id()),
        entries,
        now,
    )?;
    post(tx, &journal).await?;
    Ok(())
}

/// The refundable part of each merchant's share: the share minus refunds pending or done.
pub(crate) fn refundable_shares(order: &Order, refunds: &[Refund]) -> Result<BTreeMap<UserId, Money>, MoneyError> {
    let mut shares = order.merchant_totals()?;
    for refund in refunds.iter().filter(|refund| refund.counts_against_share()) {
        if let Some(share) = shares.get_mut(&refund.merchant_id()) {
            *share = share.checked_sub(refund.amount())?;
        }
    }
    Ok(shares)
}

/// Refunds that are final at once (from a wallet, or made in the provider's dashboard): the order
/// records their total, with its events.
pub(crate) async fn record_refunds_on_order<Tx>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    order: Order,
    refunds: &[Refund],
    actor: Actor,
    now: OffsetDateTime,
) -> Result<(), OrderRefundError>
where
    Tx: OrderRepository + EventOutbox + Send,
{
    let mut total = Money::zero(order.currency());
    for refund in refunds {
        total = total.checked_add(refund.amount())?;
    }
    let reason = refunds.first().map_or("refunded", |refund| refund.reason());
    let (order, change) = order.record_refund(total, actor, reason, now)?;
    let succeeded = refunds.iter().map(|refund| {
        let succeeded = DomainEvent::RefundSucceeded {
            refund_id: refund.id(),
            order_id: order.id(),
            amount: refund.amount(),
        };
        event(ids, succeeded, now)
    });
    record_order_change(tx, ids, &order, change, succeeded.collect()).await?;
    Ok(())
}

/// Why refunds could not be recorded on their order.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OrderRefundError {
    #[error(transparent)]
    Order(#[from] OrderError),
    #[error(transparent)]
    Money(#[from] MoneyError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<domain::order::TransitionError> for OrderRefundError {
    fn from(error: domain::order::TransitionError) -> Self {
        OrderRefundError::Order(OrderError::Transition(error))
    }
}

/// Whether system account `account` stays within the platform's bound once its balance changes
/// by `change` (see `domain::ledger::SYSTEM_BALANCE_MAX_MINOR`). A plain read: a race past the
/// bound by a few payments is within the room the bound leaves.
pub(crate) async fn system_account_has_room<Tx: WalletRepository + Send>(
    tx: &mut Tx,
    account: &SystemAccount,
    change: Money,
) -> Result<bool, StoreError> {
    let wallet = tx.find_system_wallet(account, change.currency()).await?;
    Ok(wallet.is_none_or(|wallet| domain::ledger::stays_within_bound(&wallet, change)))
}

/// The clearing account of a provider in `currency`, created on first use.
pub(crate) async fn clearing_wallet<Tx: WalletRepository + Send>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    provider: &ProviderName,
    currency: Currency,
    now: OffsetDateTime,
) -> Result<WalletId, StoreError> {
    let clearing = SystemAccount::GatewayClearing(provider.clone());
    tx.ensure_system_wallet(&clearing, currency, next_id(ids), now).await
}

/// Locks the payment a provider's event or answer refers to, if it is ours.
pub(crate) async fn lock_referenced<Tx: PaymentRepository + Send>(
    tx: &mut Tx,
    provider: &ProviderName,
    reference: &PaymentReference,
) -> Result<Option<Payment>, StoreError> {
    let lookup = reference
        .payment_id
        .map(PaymentLookup::Ours)
        .or_else(|| reference.session_id.clone().map(PaymentLookup::Session))
        .or_else(|| reference.provider_payment_id.clone().map(PaymentLookup::ProviderPayment));
    match lookup {
        Some(lookup) => tx.lock_payment(provider, &lookup).await,
        None => Ok(None),
    }
}

/// The balance a journal transaction left `wallet` with.
pub(crate) fn balance_after(postings: &[Posting], wallet: WalletId, currency: Currency) -> Money {
    postings
        .iter()
        .find(|posting| posting.wallet_id == wallet)
        .map_or(Money::zero(currency), |posting| {
            Money::from_minor(posting.balance_after_minor, currency)
        })
}

/// Implements `From<PostingError>` for use-case errors with `Store` and `Ledger` variants; with a
/// second argument, a refused overdraft becomes that variant (`{ available }`).
#[macro_export]
macro_rules! from_posting_error {
    ($error:ident) => {
        impl From<$crate::ledger::PostingError> for $error {
            fn from(error: $crate::ledger::PostingError) -> Self {
                match error {
                    $crate::ledger::PostingError::Store(error) => $error::Store(error),
                    $crate::ledger::PostingError::Ledger(error) => $error::Ledger(error),
                }
            }
        }
    };
    ($error:ident, $insufficient:ident) => {
        impl From<$crate::ledger::PostingError> for $error {
            fn from(error: $crate::ledger::PostingError) -> Self {
                match error {
                    $crate::ledger::PostingError::Store(error) => $error::Store(error),
                    $crate::ledger::PostingError::Ledger(error) => match error.insufficient_funds() {
                        Some((_, available, _)) => $error::$insufficient { available },
                        None => $error::Ledger(error),
                    },
                }
            }
        }
    };
}
