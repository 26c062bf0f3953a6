//! The invariants checked after every step, read from the store in one transaction (the store's
//! truth, not the application's caches).

use application::ledger::LedgerReport;
use application::ports::gateway::GatewayRefundStatus;
use application::ports::store::{
    CallRepository, DeliveryFilter, EventOutbox, FollowUpRepository, HoldRepository, LedgerRepository, OrderRepository, PaymentRepository,
    ProductRepository, RefundRepository, Transaction, WalletRepository, WebhookRepository,
};
use domain::ids::WebhookDeliveryId;
use domain::money::Currency;
use domain::payment::{PaymentStatus, RefundStatus};
use domain::wallet::SystemAccount;
use domain::webhook::DeliveryStatus;

use crate::store::SimStore;
use crate::world::{CHECK_POLLS_MAX, World};

/// Every broken invariant, described; empty when all hold.
pub fn check<S: SimStore>(world: &mut World<S>) -> Vec<String> {
    let mut broken = std::mem::take(&mut world.violations);
    match world.backend.driver().block_on(read_and_check(world), CHECK_POLLS_MAX) {
        Some(Ok((found, pending, succeeded))) => {
            broken.extend(found);
            broken.extend(deliveries_sent_again(world, &succeeded));
            // Limbo during the run, in process only (see `limbo`).
            let owed = std::mem::take(&mut world.owed);
            if world.backend.in_process() {
                broken.extend(pending.unpaid(&owed));
            }
            world.pending = pending;
        }
        Some(Err(error)) => broken.push(format!("the store could not be read: {error}")),
        None if world.backend.in_process() => {
            broken.push("the store stayed locked: a task holds a transaction across an await point".into());
        }
        None => broken.push("the invariants could not be read in time".into()),
    }
    broken
}

/// A delivery the store recorded as succeeded is not sent again unless its redelivery was asked
/// for, and every attempt is signed. The deliveries recorded as succeeded since the last check
/// join the watch, with the attempts the receivers had seen of each.
fn deliveries_sent_again<S: SimStore>(world: &mut World<S>, succeeded: &[WebhookDeliveryId]) -> Vec<String> {
    let attempts = world.receiver.attempts_by_delivery();
    let mut broken = world.receiver.unsigned();
    for (delivery, then) in &world.delivered {
        let now = attempts.get(delivery).copied().unwrap_or(0);
        if now > *then {
            broken.push(format!(
                "delivery {delivery} was sent again after it succeeded ({then} attempts, now {now})"
            ));
        }
    }
    for delivery in succeeded {
        if !world.redelivering.contains_key(delivery) {
            let seen = attempts.get(delivery).copied().unwrap_or(0);
            world.delivered.entry(*delivery).or_insert(seen);
        }
    }
    broken
}

/// Every delivery of the known endpoints that the store records as succeeded.
async fn succeeded_deliveries<Tx: WebhookRepository>(
    tx: &mut Tx,
    endpoints: &[(domain::ids::WebhookEndpointId, application::auth::Caller)],
) -> Result<Vec<WebhookDeliveryId>, application::ports::store::StoreError> {
    let filter = DeliveryFilter {
        status: Some(DeliveryStatus::Succeeded),
        event_type: None,
    };
    let mut succeeded = Vec::new();
    for &(endpoint, _) in endpoints {
        let mut page = application::pagination::PageRequest::first(application::pagination::PageRequest::LIMIT_MAX as usize);
        loop {
            let deliveries = tx.list_webhook_deliveries(endpoint, &filter, &page).await?;
            succeeded.extend(deliveries.items.iter().map(|delivery| delivery.id));
            match deliveries.next_cursor {
                Some(after) => page.after = Some(after),
                None => break,
            }
        }
    }
    Ok(succeeded)
}

/// The broken invariants, and what is pending.
async fn read_and_check<S: SimStore>(
    world: &World<S>,
) -> Result<(Vec<String>, crate::limbo::Pending, Vec<WebhookDeliveryId>), application::ports::store::StoreError> {
    let mut broken = Vec::new();
    let mut tx = world.backend.begin_check().await?;
    let report = LedgerReport::from_audit(tx.audit_ledger().await?);
    if !report.is_ok() {
        broken.push(format!("ledger: {:?}", report.problems));
    }
    for &(product_id, stocked, _) in &world.products {
        let Some((_, stock)) = tx.find_product(product_id).await? else {
            broken.push(format!("product {product_id} vanished"));
            continue;
        };
        if stock.available() < 0 || stock.reserved() < 0 {
            broken.push(format!("product {product_id}: negative stock {stock:?}"));
        }
        if stock.available() + stock.reserved() > stocked {
            broken.push(format!("product {product_id}: more stock than was stocked ({stocked}): {stock:?}"));
        }
    }
    broken.extend(reservations_held(&mut tx, world).await?);
    broken.extend(approved_requests_refunded(&mut tx).await?);
    broken.extend(calls_billed_as_started(&mut tx, world).await?);
    for &(order_id, ..) in &world.orders {
        let Some(order) = tx.find_order(order_id).await? else {
            broken.push(format!("order {order_id} vanished"));
            continue;
        };
        let total = order.total().amount_minor();
        if order.refunded().amount_minor() > total {
            broken.push(format!("order {order_id}: refunded {} of {total}", order.refunded()));
        }
        let refunds = tx.list_order_refunds(order_id).await?;
        let owed: i64 = refunds
            .iter()
            .filter(|r| r.status() != RefundStatus::Failed)
            .map(|r| r.amount().amount_minor())
            .sum();
        if owed > total {
            broken.push(format!("order {order_id}: refunds of {owed} on a total of {total}"));
        }
        let succeeded: i64 = refunds
            .iter()
            .filter(|r| r.status() == RefundStatus::Succeeded)
            .map(|r| r.amount().amount_minor())
            .sum();
        if order.refunded().amount_minor() > succeeded.max(owed) {
            broken.push(format!(
                "order {order_id}: refunded {} but its refunds sum to {owed}",
                order.refunded()
            ));
        }
        if let Some(payment) = tx.find_order_payment(order_id).await?
            && payment.amount() != order.total()
        {
            broken.push(format!(
                "order {order_id}: paid {} for a total of {}",
                payment.amount(),
                order.total()
            ));
        }
    }
    let pending = crate::limbo::Pending::read(&mut tx).await?;
    let succeeded = succeeded_deliveries(&mut tx, &world.endpoints).await?;
    tx.rollback().await?;
    Ok((broken, pending, succeeded))
}

/// Every call is billed for the minutes it started and no more than it held: `charged` is
/// `billed_minutes` at the call's rate, and billed minutes never exceed the authorised ones. An
/// ended call holds nothing any more; a call in progress is covered by its pending hold.
async fn calls_billed_as_started<Tx, S: SimStore>(
    tx: &mut Tx,
    world: &World<S>,
) -> Result<Vec<String>, application::ports::store::StoreError>
where
    Tx: CallRepository + HoldRepository + Send,
{
    let mut broken = Vec::new();
    for &(call_id, ..) in &world.calls {
        let Some(call) = tx.find_call(call_id).await? else {
            broken.push(format!("call {call_id} vanished"));
            continue;
        };
        let billed = call.rate_per_minute.amount_minor() * i64::from(call.billed_minutes);
        if call.charged.amount_minor() != billed {
            broken.push(format!(
                "call {call_id}: charged {} for {} minutes at {}",
                call.charged, call.billed_minutes, call.rate_per_minute
            ));
        }
        let hold = tx.find_hold(call.hold_id).await?.map(|hold| hold.status);
        let pending = hold == Some(domain::wallet::HoldStatus::Pending);
        if pending != (call.status == domain::call::CallStatus::Active) {
            broken.push(format!("call {call_id} is {:?} and its hold {hold:?}", call.status));
        }
        if call.billed_minutes > call.authorized_minutes {
            broken.push(format!(
                "call {call_id}: billed {} minutes of {} authorised",
                call.billed_minutes, call.authorized_minutes
            ));
        }
    }
    Ok(broken)
}

/// Every approved refund request names a refund of its own order and merchant, of the amount it
/// asked (when it named one), not failed; a request whose refund failed names a failed one; and
/// no refund approves two requests.
async fn approved_requests_refunded<Tx>(tx: &mut Tx) -> Result<Vec<String>, application::ports::store::StoreError>
where
    Tx: RefundRepository + Send,
{
    use application::pagination::PageRequest;
    use application::ports::store::RefundRequestFilter;
    use domain::refund_request::RefundRequestStatus;
    let (mut broken, mut named) = (Vec::new(), std::collections::HashSet::new());
    for status in [RefundRequestStatus::Approved, RefundRequestStatus::RefundFailed] {
        let filter = RefundRequestFilter {
            status: Some(status),
            ..RefundRequestFilter::default()
        };
        let mut page = PageRequest::first(PageRequest::LIMIT_MAX as usize);
        loop {
            let requests = tx.list_refund_requests(&filter, &page).await?;
            for request in &requests.items {
                let Some(refund_id) = request.record().refund_id else {
                    broken.push(format!("refund request {} is {status} without a refund", request.id()));
                    continue;
                };
                if !named.insert(refund_id) {
                    broken.push(format!("refund {refund_id} approves two refund requests"));
                }
                let refund = tx.find_refund(refund_id).await?;
                let failed = refund.as_ref().is_some_and(|refund| refund.status() == RefundStatus::Failed);
                let matches = refund.as_ref().is_some_and(|refund| {
                    refund.order_id() == request.order_id()
                        && refund.merchant_id() == request.merchant_id()
                        && request.amount().is_none_or(|amount| refund.amount() == amount)
                });
                if !matches || failed != (status == RefundRequestStatus::RefundFailed) {
                    broken.push(format!(
                        "refund request {} ({status}): its refund {refund:?} is not what it says",
                        request.id()
                    ));
                }
            }
            match requests.next_cursor {
                Some(cursor) => page.after = Some(cursor),
                None => break,
            }
        }
    }
    Ok(broken)
}

/// Each product's reserved units are exactly those that orders still awaiting their money hold:
/// a unit released twice or sold from another order's reservation breaks this, while the totals
/// above still agree. Read from every order in the store, including those whose request failed
/// after its commit.
async fn reservations_held<Tx, S: SimStore>(tx: &mut Tx, world: &World<S>) -> Result<Vec<String>, application::ports::store::StoreError>
where
    Tx: OrderRepository + ProductRepository + Send,
{
    use application::pagination::PageRequest;
    use application::ports::store::{AdminOrderFilter, OrderFilter};
    use domain::order::OrderStatus;
    let mut held: std::collections::HashMap<domain::ids::ProductId, i64> = std::collections::HashMap::new();
    for status in [OrderStatus::Created, OrderStatus::PaymentPending, OrderStatus::Authorised] {
        let filter = OrderFilter::All(AdminOrderFilter {
            status: Some(status),
            ..AdminOrderFilter::default()
        });
        let mut page = PageRequest::first(PageRequest::LIMIT_MAX as usize);
        loop {
            let orders = tx.list_orders(filter, &page).await?;
            for item in orders.items.iter().flat_map(|order| order.items()) {
                if item.captured.is_none() {
                    *held.entry(item.product_id).or_default() += i64::from(item.quantity.get());
                }
            }
            match orders.next_cursor {
                Some(cursor) => page.after = Some(cursor),
                None => break,
            }
        }
    }
    let mut broken = Vec::new();
    for &(product_id, ..) in &world.products {
        let Some((_, stock)) = tx.find_product(product_id).await? else {
            continue;
        };
        let expected = held.get(&product_id).copied().unwrap_or(0);
        if stock.reserved() != expected {
            broken.push(format!(
                "product {product_id}: {} units reserved, but orders awaiting their money hold {expected}",
                stock.reserved()
            ));
        }
    }
    Ok(broken)
}

/// After `World::quiesce`: the application's clearing account for the provider says what the
/// provider says it holds (paid less refunded), and no refund or payment is left pending.
pub fn reconcile<S: SimStore>(world: &World<S>) -> Vec<String> {
    let provider_net = world.gateway.provider().net_minor();
    let read = async {
        let mut tx = world.backend.begin_read().await?;
        let name = domain::payment::ProviderName::parse(crate::gateway::PROVIDER).unwrap_or_else(|e| panic!("{e}"));
        let clearing = SystemAccount::GatewayClearing(name);
        let wallet = tx.find_system_wallet(&clearing, Currency::Usd).await?;
        let mut pending = Vec::new();
        for &(order_id, ..) in &world.orders {
            for refund in tx.list_order_refunds(order_id).await? {
                if refund.status() == RefundStatus::Pending {
                    pending.push(format!("refund {} of order {order_id} is still pending", refund.id()));
                }
            }
        }
        let (refunds, sessions) = {
            let provider = world.gateway.provider();
            (provider.refunds.clone(), provider.sessions.clone())
        };
        // A late success is refunded under `late-success-<payment>` without a refund of ours:
        // the totals below account for it.
        for refund in refunds.iter().filter(|r| !r.provider_refund_id.starts_with("re_late-success-")) {
            let ours = tx.find_refund(refund.refund_id).await?;
            let agrees = match (refund.status, ours.as_ref().map(|r| r.status())) {
                (GatewayRefundStatus::Succeeded, Some(RefundStatus::Succeeded)) => true,
                (GatewayRefundStatus::Succeeded, _) => false,
                (_, Some(RefundStatus::Succeeded)) => false,
                _ => true,
            };
            if !agrees {
                let ours = ours.map(|r| format!("{:?} of {}", r.status(), r.amount()));
                pending.push(format!(
                    "refund {}: the provider says {:?} of {}, we say {ours:?}",
                    refund.refund_id, refund.status, refund.amount
                ));
            }
        }
        // What the provider holds of late successes flagged for admins: not in our books, and
        // not refunded until a person acts.
        let mut flagged_minor = 0;
        for session in sessions.iter().filter(|s| s.paid) {
            let ours = tx.find_payment(session.payment_id).await?;
            // A payment made after we gave up on it is a late success: taken in and refunded.
            let settled = ours
                .as_ref()
                .is_some_and(|p| p.status() == PaymentStatus::Succeeded || p.late_success());
            // A late top-up is credited after all; a late order payment goes back.
            let late_for_order = ours
                .as_ref()
                .is_some_and(|p| p.late_success() && matches!(p.purpose(), domain::payment::PaymentPurpose::Order(_)));
            if late_for_order {
                let key = format!("re_late-success-{}", session.payment_id);
                let refunded = refunds.iter().find(|r| r.provider_refund_id == key).map(|r| r.status);
                let task = domain::follow_up::FollowUpTask::LateSuccessRefund(session.payment_id);
                let follow_up = tx.lock_follow_up(&task).await?;
                // A refusal is flagged for admins (`Stuck`): a person takes it from there.
                let flagged = follow_up
                    .as_ref()
                    .is_some_and(|f| f.state == domain::follow_up::FollowUpState::Stuck);
                let unrefunded = refunded != Some(GatewayRefundStatus::Succeeded);
                if unrefunded && flagged {
                    flagged_minor += session.amount.amount_minor();
                }
                if unrefunded && !flagged {
                    let follow_up = follow_up.map(|f| (f.state, f.attempts, f.last_error));
                    pending.push(format!(
                        "payment {}: a late success of {}, not refunded at the provider ({refunded:?}), follow-up {follow_up:?}",
                        session.payment_id, session.amount
                    ));
                }
            }
            let ours = ours.map(|p| p.status());
            if !settled {
                pending.push(format!("payment {}: paid at the provider, {ours:?} here", session.payment_id));
            }
        }
        if let Some(at) = tx.oldest_unpublished_event().await? {
            pending.push(format!("the outbox still holds an event of {at}: the relay left it"));
        }
        if let Some(last_round) = world.last_round {
            pending.extend(crate::limbo::after_quiesce(&mut tx, last_round).await?);
        }
        tx.rollback().await?;
        let clearing_minor = wallet.map_or(0, |w| w.balance().amount_minor());
        Ok::<_, application::ports::store::StoreError>((clearing_minor, flagged_minor, pending))
    };
    match world.backend.driver().block_on(read, CHECK_POLLS_MAX) {
        Some(Ok((clearing_minor, flagged_minor, mut broken))) => {
            if -clearing_minor != provider_net - flagged_minor {
                broken.push(format!(
                    "the provider holds {provider_net} for the platform ({flagged_minor} of it flagged late successes) but the clearing account says {}",
                    -clearing_minor
                ));
            }
            broken
        }
        Some(Err(error)) => vec![format!("the store could not be read: {error}")],
        None => vec!["the store stayed locked after the run".into()],
    }
}
