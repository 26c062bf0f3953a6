//! Manual capture. A wallet order checked out with `capture: manual` is `authorised`: its stock is
//! reserved and one hold per merchant keeps that merchant's part of the buyer's money. Each
//! merchant settles its part when it fulfils: it captures some or all of its items (the money
//! moves to its wallet, the captured units are sold, the others go back on sale, the rest of the
//! hold is released) or voids the part. The buyer (while nothing is captured) or an admin voids
//! every part still pending at once; the job voids a part whose hold expired. Once every part is
//! settled the order is `paid` for what was captured, or `cancelled` when nothing was.
//!
//! Every settlement locks the order first, then the stock of its parts' products, the wallets and
//! the holds (the lock order), so a capture, a void and an expiry of one part serialise on the
//! order: whichever commits first settles the part and the others find it settled.

use std::collections::BTreeMap;

use domain::catalog::{Quantity, Stock, StockError};
use domain::events::DomainEvent;
use domain::ids::{HoldId, OrderId, ProductId, UserId, WalletId};
use domain::ledger::{Entry, JournalTransaction, LedgerError, TransactionKind};
use domain::money::{Money, MoneyError};
use domain::order::{Actor, CaptureMethod, Order, OrderError, OrderStatus};
use domain::wallet::{Hold, HoldError, Wallet};
use time::OffsetDateTime;

use crate::caller::Caller;
use crate::context::App;
use crate::effects::{event, record_status_changes};
use crate::from_posting_error;
use crate::idempotency::{IdempotencyError, Idempotent, Key};
use crate::ledger::post_locked;
use crate::ports::store::{
    EventOutbox, HoldRepository, IdempotencyRepository, LedgerRepository, OrderRepository, ProductRepository, StoreError, UnitOfWork,
    WalletRepository,
};
use crate::ports::system::{IdGenerator, next_id};
use crate::transact::{transact, work};
use crate::{keyed, repositories, retryable};

/// Why capturing or voiding a manual-capture order's part fails.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The order does not exist, or the caller may not see it.
    #[error("the order does not exist")]
    NotFound,
    /// The caller may not settle this part (the text says why).
    #[error("{0}")]
    Forbidden(&'static str),
    /// The order was paid at checkout: nothing to capture.
    #[error("the order was paid at checkout: only orders placed with manual capture are captured or voided")]
    NotManual,
    /// The order is not authorised: every part is settled.
    #[error("the order is {0}: nothing of it awaits capture")]
    NotAuthorised(OrderStatus),
    /// The order refused the change (its state machine, or its amounts).
    #[error(transparent)]
    Order(#[from] OrderError),
    /// The hold refused the operation (not pending, too large, another wallet).
    #[error(transparent)]
    Hold(#[from] HoldError),
    /// The order's stock could not be committed or released.
    #[error(transparent)]
    Stock(#[from] StockError),
    /// The ledger refused the journal transaction (it would overdraw a wallet, or it does not balance).
    #[error(transparent)]
    Ledger(LedgerError),
    /// The idempotency key is held by a request still running, was used for a different request, or
    /// was completed by another request meanwhile (replay its response).
    #[error(transparent)]
    Idempotency(IdempotencyError),
    /// Storage failed: an outage, a timeout, a conflict that outlasted the retries, or a commit whose
    /// outcome is unknown (`StoreError::OutcomeUnknown`).
    #[error(transparent)]
    Store(#[from] StoreError),
}

keyed!(CaptureError);
retryable!(CaptureError);
from_posting_error!(CaptureError);

impl From<MoneyError> for CaptureError {
    fn from(error: MoneyError) -> Self {
        CaptureError::Order(OrderError::Money(error))
    }
}

repositories!(CaptureTx: ProductRepository, OrderRepository, WalletRepository, LedgerRepository, HoldRepository, EventOutbox);

/// What a caller asks of an authorised order.
#[derive(Debug, Clone)]
enum Request {
    /// A merchant takes these units of its items (all of them when `None`).
    Capture(Option<Vec<(ProductId, Quantity)>>),
    /// A merchant ends its own part; the buyer or an admin every part still pending.
    Void,
}

/// One merchant's part as it is settled: how many units of each of its products it takes.
#[derive(Debug, Clone)]
struct PartSettlement {
    merchant: UserId,
    captured: BTreeMap<ProductId, u32>,
}

/// Why parts end: settled by someone, or left to expire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Settled,
    Expired,
}

impl<U: UnitOfWork> App<U> {
    /// A merchant of an authorised order captures its part: the units named (all of its items
    /// when `items` is `None`; items not named are not taken), paid into its wallet from the hold;
    /// what it does not take is released, money and stock.
    pub async fn capture_order(
        &self,
        caller: &Caller,
        order_id: OrderId,
        items: Option<Vec<(ProductId, Quantity)>>,
        idempotent: Option<Idempotent<Order>>,
    ) -> Result<Order, CaptureError> {
        self.settle_order(caller, order_id, Request::Capture(items), idempotent).await
    }

    /// Voids an authorised order: a merchant its own part; the buyer (while nothing has been
    /// captured) or an admin every part still pending, in one transaction.
    pub async fn void_order(
        &self,
        caller: &Caller,
        order_id: OrderId,
        idempotent: Option<Idempotent<Order>>,
    ) -> Result<Order, CaptureError> {
        self.settle_order(caller, order_id, Request::Void, idempotent).await
    }

    async fn settle_order(
        &self,
        caller: &Caller,
        order_id: OrderId,
        request: Request,
        idempotent: Option<Idempotent<Order>>,
    ) -> Result<Order, CaptureError> {
        let (ids, now, key, caller) = (self.ids.as_ref(), self.clock.now(), self.key(idempotent.as_ref()), *caller);
        let request = &request;
        let order = transact(&self.store, |tx| {
            work(settle_requested(tx, ids, key, &caller, order_id, request, now))
        })
        .await?;
        self.invalidate_catalog(&order.product_ids()).await;
        Ok(order)
    }

    /// The job's part for an order's hold past its expiry: the merchant's part is voided (the
    /// hold `expired`), its stock released. Returns whether it was.
    pub(crate) async fn expire_order_part(&self, order_id: OrderId, hold_id: HoldId) -> Result<bool, CaptureError> {
        let (ids, now) = (self.ids.as_ref(), self.clock.now());
        let expired = transact(&self.store, |tx| {
            work(async move {
                let order = tx.lock_order(order_id).await?.ok_or(CaptureError::NotFound)?;
                let hold = tx.find_hold(hold_id).await?.ok_or(CaptureError::NotFound)?;
                let Some(merchant) = hold
                    .payee
                    .filter(|merchant| hold.is_expired_at(now) && order.pending_merchants().contains(merchant))
                else {
                    return Ok(None);
                };
                let part = PartSettlement {
                    merchant,
                    captured: BTreeMap::new(),
                };
                let order = settle(tx, ids, order, &[part], (Actor::System, Ending::Expired), now).await?;
                tracing::info!(%order_id, %hold_id, "an order's part expired uncaptured and was voided");
                Ok::<_, CaptureError>(Some(order))
            })
        })
        .await?;
        if let Some(order) = &expired {
            self.invalidate_catalog(&order.product_ids()).await;
        }
        Ok(expired.is_some())
    }
}

/// Claims the key, locks the order, checks who may do what, and settles the parts it concerns.
async fn settle_requested<Tx: CaptureTx + IdempotencyRepository>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    key: Key<'_, Order>,
    caller: &Caller,
    order_id: OrderId,
    request: &Request,
    now: OffsetDateTime,
) -> Result<Order, CaptureError> {
    key.claim(tx, now).await?;
    let order = tx.lock_order(order_id).await?.ok_or(CaptureError::NotFound)?;
    let parts = parts_to_settle(&order, caller, request)?;
    let order = settle(tx, ids, order, &parts, (Actor::User(caller.user_id), Ending::Settled), now).await?;
    key.complete(tx, &order, now).await?;
    Ok(order)
}

/// The parts `request` settles, if `caller` may: anyone but the buyer, the order's merchants and
/// admins is told the order does not exist.
fn parts_to_settle(order: &Order, caller: &Caller, request: &Request) -> Result<Vec<PartSettlement>, CaptureError> {
    let (user, merchant) = (caller.user_id, order.has_merchant(caller.user_id));
    if !(order.buyer_id() == user || merchant || caller.is_admin()) {
        return Err(CaptureError::NotFound);
    }
    if order.capture_method() != CaptureMethod::Manual {
        return Err(CaptureError::NotManual);
    }
    if order.status() != OrderStatus::Authorised {
        return Err(CaptureError::NotAuthorised(order.status()));
    }
    let pending = order.pending_merchants();
    match request {
        Request::Capture(_) | Request::Void if merchant && !pending.contains(&user) => Err(OrderError::NoPendingPart(user).into()),
        Request::Capture(items) if merchant => Ok(vec![PartSettlement {
            merchant: user,
            captured: captured_units(order, user, items.as_deref())?,
        }]),
        Request::Capture(_) => Err(CaptureError::Forbidden("only the order's merchants capture their parts")),
        Request::Void if merchant => Ok(vec![PartSettlement {
            merchant: user,
            captured: BTreeMap::new(),
        }]),
        Request::Void if !caller.is_admin() && order.anything_captured() => Err(CaptureError::Forbidden(
            "a merchant has captured its part: only the merchants can void theirs",
        )),
        Request::Void => Ok(pending
            .into_iter()
            .map(|merchant| PartSettlement {
                merchant,
                captured: BTreeMap::new(),
            })
            .collect()),
    }
}

/// The units a merchant takes: those named (each product once), or all of its items.
fn captured_units(
    order: &Order,
    merchant: UserId,
    items: Option<&[(ProductId, Quantity)]>,
) -> Result<BTreeMap<ProductId, u32>, OrderError> {
    let Some(items) = items else {
        let all = order.items().iter().filter(|item| item.merchant_id == merchant);
        return Ok(all.map(|item| (item.product_id, item.quantity.get())).collect());
    };
    let mut captured = BTreeMap::new();
    for (product_id, quantity) in items {
        if captured.insert(*product_id, quantity.get()).is_some() {
            return Err(OrderError::DuplicateProduct(*product_id));
        }
    }
    Ok(captured)
}

/// Settles `parts` of a locked, authorised order: the order's items record what was captured,
/// the stock is sold or released, each part's hold is captured (in one journal transaction, the
/// buyer's wallet to the merchants') or released, with their events.
async fn settle<Tx: CaptureTx>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    mut order: Order,
    parts: &[PartSettlement],
    (actor, ending): (Actor, Ending),
    now: OffsetDateTime,
) -> Result<Order, CaptureError> {
    let mut changes = Vec::new();
    for part in parts {
        let (settled, change) = order.settle_part(part.merchant, &part.captured, actor.clone(), now)?;
        order = settled;
        changes.extend(change);
    }
    let taken = taken_by_merchant(&order, parts)?;
    let mut stock = tx.lock_stock(&part_products(&order, parts)).await?;
    settle_stock(&order, parts, &mut stock)?;
    let holds = tx.find_order_holds(order.id()).await?;
    let buyer_wallet = holds
        .first()
        .map(|hold| hold.wallet_id)
        .ok_or_else(|| StoreError::Corrupt(format!("authorised order {} has no holds", order.id())))?;
    let mut wallet_ids = vec![buyer_wallet];
    for (merchant, amount) in &taken {
        if amount.is_positive() {
            wallet_ids.push(tx.ensure_user_wallet(*merchant, order.currency(), next_id(ids), now).await?);
        }
    }
    let mut wallets = tx.lock_wallets(&wallet_ids).await?;
    let mut events = Vec::new();
    for part in parts {
        let hold = holds
            .iter()
            .find(|hold| hold.payee == Some(part.merchant))
            .ok_or_else(|| StoreError::Corrupt(format!("order {} has no hold for merchant {}", order.id(), part.merchant)))?;
        let hold = tx.lock_hold(hold.id).await?.ok_or(CaptureError::NotFound)?;
        let taken = taken.get(&part.merchant).copied().unwrap_or(Money::zero(order.currency()));
        let (hold, happened) = settle_hold(hold, wallet_mut(&mut wallets, buyer_wallet)?, taken, ending, &order, now)?;
        tx.update_hold(&hold).await?;
        events.push(event(ids, happened, now));
    }
    pay_captured(tx, ids, &order, &taken, &mut wallets, buyer_wallet, now).await?;
    tx.update_stock(&stock).await?;
    tx.update_order(&order).await?;
    events.extend(stock.iter().map(|row| {
        let changed = DomainEvent::StockChanged {
            product_id: row.product_id,
            available: row.available(),
        };
        event(ids, changed, now)
    }));
    record_status_changes(tx, ids, &changes, events).await?;
    Ok(order)
}

/// What each settling merchant takes: the line totals of its captured units.
fn taken_by_merchant(order: &Order, parts: &[PartSettlement]) -> Result<BTreeMap<UserId, Money>, MoneyError> {
    let mut taken = BTreeMap::new();
    for part in parts {
        let mut amount = Money::zero(order.currency());
        for item in order.items().iter().filter(|item| item.merchant_id == part.merchant) {
            amount = amount.checked_add(item.line_total()?)?;
        }
        taken.insert(part.merchant, amount);
    }
    Ok(taken)
}

/// The products of the settling parts, in product id order (the order stock is locked in).
fn part_products(order: &Order, parts: &[PartSettlement]) -> Vec<ProductId> {
    let mut products: Vec<ProductId> = order
        .items()
        .iter()
        .filter(|item| parts.iter().any(|part| part.merchant == item.merchant_id))
        .map(|item| item.product_id)
        .collect();
    products.sort();
    products
}

/// The captured units of the settling parts are sold; the others go back on sale.
fn settle_stock(order: &Order, parts: &[PartSettlement], stock: &mut [Stock]) -> Result<(), CaptureError> {
    for item in order
        .items()
        .iter()
        .filter(|item| parts.iter().any(|part| part.merchant == item.merchant_id))
    {
        let row = stock
            .iter_mut()
            .find(|row| row.product_id == item.product_id)
            .ok_or_else(|| StoreError::Corrupt(format!("product {} of order {} has no stock row", item.product_id, order.id())))?;
        let taken = item.bought();
        if let Ok(sold) = Quantity::new(i64::from(taken)) {
            row.commit(sold)?;
        }
        if let Ok(released) = Quantity::new(i64::from(item.quantity.get() - taken)) {
            row.release(released)?;
        }
    }
    Ok(())
}

/// Captures `taken` of a part's hold and releases the rest, or ends it with nothing taken.
fn settle_hold(
    hold: Hold,
    buyer: &mut Wallet,
    taken: Money,
    ending: Ending,
    order: &Order,
    now: OffsetDateTime,
) -> Result<(Hold, DomainEvent), CaptureError> {
    let (hold_id, user_id, released) = (hold.id, order.buyer_id(), hold.remaining());
    let merchant_id = hold
        .payee
        .ok_or_else(|| StoreError::Corrupt(format!("hold {hold_id} of order {} has no payee", order.id())))?;
    if taken.is_positive() {
        let hold = hold.capture(buyer, taken, now)?;
        let captured = DomainEvent::HoldCaptured {
            hold_id,
            user_id,
            merchant_id,
            amount: taken,
            captured: hold.captured,
        };
        return Ok((hold, captured));
    }
    Ok(match ending {
        Ending::Settled => {
            let voided = DomainEvent::HoldVoided {
                hold_id,
                user_id,
                merchant_id,
                released,
            };
            (hold.release(buyer, now)?, voided)
        }
        Ending::Expired => {
            let expired = DomainEvent::HoldExpired {
                hold_id,
                user_id,
                merchant_id,
                released,
            };
            (hold.expire(buyer, now)?, expired)
        }
    })
}

/// Moves what the merchants took from the buyer's wallet to theirs, as one journal transaction;
/// with nothing taken, writes the wallets whose holds were released.
async fn pay_captured<Tx: CaptureTx>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    order: &Order,
    taken: &BTreeMap<UserId, Money>,
    wallets: &mut [Wallet],
    buyer_wallet: WalletId,
    now: OffsetDateTime,
) -> Result<(), CaptureError> {
    let mut total = Money::zero(order.currency());
    let mut credits = Vec::new();
    for (merchant, amount) in taken.iter().filter(|(_, amount)| amount.is_positive()) {
        let wallet = wallets
            .iter()
            .find(|wallet| wallet.user_id() == Some(*merchant))
            .ok_or_else(|| StoreError::Corrupt("a merchant's wallet was not locked".into()))?;
        credits.push(Entry::credit(wallet.id(), *amount));
        total = total.checked_add(*amount)?;
    }
    if credits.is_empty() {
        tx.update_wallets(wallets).await?;
        return Ok(());
    }
    let mut entries = vec![Entry::debit(buyer_wallet, total)?];
    entries.extend(credits);
    let reference = format!("order:{}", order.id());
    let journal =
        JournalTransaction::new(next_id(ids), TransactionKind::Purchase, reference, entries, now).map_err(CaptureError::Ledger)?;
    post_locked(tx, &journal, wallets).await?;
    Ok(())
}

fn wallet_mut(wallets: &mut [Wallet], id: WalletId) -> Result<&mut Wallet, StoreError> {
    wallets
        .iter_mut()
        .find(|wallet| wallet.id() == id)
        .ok_or_else(|| StoreError::Corrupt(format!("wallet {id} was not locked")))
}
