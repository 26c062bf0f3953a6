//! Domain events as outbox rows: the event's name in `event_type` and its attributes
//! (`DomainEvent::attributes`, the domain's own flat text form, the one merchants' webhooks carry)
//! as a JSON object in `payload`. Decoding inverts `attributes` exactly; a test round-trips every
//! variant.

use std::collections::BTreeMap;
use std::str::FromStr;

use application::ports::store::{StoreError, StoreResult};
use domain::events::DomainEvent;
use domain::ids::Id;
use domain::money::{Currency, Money};
use domain::order::OrderStatus;
use domain::user::Role;
use uuid::Uuid;

use crate::mapping::corrupt;

/// The JSON payload of an event.
pub(crate) fn encode(event: &DomainEvent) -> StoreResult<String> {
    let attributes: BTreeMap<&str, String> = event.attributes().into_iter().collect();
    serde_json::to_string(&attributes).map_err(|error| StoreError::Unexpected(Box::new(error)))
}

pub(crate) fn decode(event_type: &str, payload: &str) -> StoreResult<DomainEvent> {
    let map: BTreeMap<String, String> = serde_json::from_str(payload).map_err(|error| corrupt(format!("outbox payload: {error}")))?;
    let attributes = Attributes { event_type, map };
    decode_account_event(&attributes)
        .or_else(|| decode_commerce_event(&attributes))
        .unwrap_or_else(|| Err(corrupt(format!("unknown event type `{event_type}`"))))
}

struct Attributes<'a> {
    event_type: &'a str,
    map: BTreeMap<String, String>,
}

impl Attributes<'_> {
    fn text(&self, name: &str) -> StoreResult<&str> {
        self.map
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| corrupt(format!("event {} lacks `{name}`", self.event_type)))
    }

    fn id<T: Id>(&self, name: &str) -> StoreResult<T> {
        Uuid::try_parse(self.text(name)?).map(T::from_uuid).map_err(corrupt)
    }

    fn number<T: FromStr>(&self, name: &str) -> StoreResult<T> {
        self.text(name)?
            .parse()
            .map_err(|_| corrupt(format!("event {} has a malformed `{name}`", self.event_type)))
    }

    fn money(&self, name: &str) -> StoreResult<Money> {
        let currency = Currency::parse(self.text("currency")?).map_err(corrupt)?;
        Money::parse(self.text(name)?, currency).map_err(corrupt)
    }

    fn status(&self, name: &str) -> StoreResult<OrderStatus> {
        let text = self.text(name)?;
        OrderStatus::parse(text).ok_or_else(|| corrupt(format!("unknown order status `{text}`")))
    }
}

/// Users, wallets and catalog.
fn decode_account_event(a: &Attributes<'_>) -> Option<StoreResult<DomainEvent>> {
    let decoded = (|| {
        Ok(Some(match a.event_type {
            "user.registered" => DomainEvent::UserRegistered {
                user_id: a.id("user_id")?,
                role: Role::parse(a.text("role")?).ok_or_else(|| corrupt("unknown role"))?,
            },
            "wallet.top_up_completed" => DomainEvent::TopUpCompleted {
                payment_id: a.id("payment_id")?,
                user_id: a.id("user_id")?,
                amount: a.money("amount")?,
            },
            "wallet.withdrawal_completed" => DomainEvent::WithdrawalCompleted {
                withdrawal_id: a.id("withdrawal_id")?,
                user_id: a.id("user_id")?,
                amount: a.money("amount")?,
            },
            "wallet.transfer_completed" => DomainEvent::TransferCompleted {
                transfer_id: a.id("transfer_id")?,
                from: a.id("from_user_id")?,
                to: a.id("to_user_id")?,
                amount: a.money("amount")?,
            },
            "wallet.adjustment_posted" => DomainEvent::AdjustmentPosted {
                transaction_id: a.id("transaction_id")?,
                user_id: a.id("user_id")?,
                amount: a.money("amount")?,
            },
            "product.created" => DomainEvent::ProductCreated {
                product_id: a.id("product_id")?,
                merchant_id: a.id("merchant_id")?,
            },
            "product.updated" => DomainEvent::ProductUpdated {
                product_id: a.id("product_id")?,
            },
            "product.archived" => DomainEvent::ProductArchived {
                product_id: a.id("product_id")?,
            },
            "product.stock_changed" => DomainEvent::StockChanged {
                product_id: a.id("product_id")?,
                available: a.number("available")?,
            },
            _ => return Ok(None),
        }))
    })();
    decoded.transpose()
}

/// Orders, payments, refunds and calls.
fn decode_commerce_event(a: &Attributes<'_>) -> Option<StoreResult<DomainEvent>> {
    let decoded = (|| {
        Ok(Some(match a.event_type {
            "order.status_changed" => DomainEvent::OrderStatusChanged {
                order_id: a.id("order_id")?,
                from: a.map.contains_key("from").then(|| a.status("from")).transpose()?,
                to: a.status("to")?,
            },
            "payment.succeeded" => DomainEvent::PaymentSucceeded {
                payment_id: a.id("payment_id")?,
                amount: a.money("amount")?,
            },
            "payment.failed" => DomainEvent::PaymentFailed {
                payment_id: a.id("payment_id")?,
            },
            "payment.expired" => DomainEvent::PaymentExpired {
                payment_id: a.id("payment_id")?,
            },
            "payment.late_success" => DomainEvent::PaymentLateSuccess {
                payment_id: a.id("payment_id")?,
                amount: a.money("amount")?,
            },
            "payment.disputed" => DomainEvent::PaymentDisputed {
                payment_id: a.id("payment_id")?,
            },
            "refund.succeeded" => DomainEvent::RefundSucceeded {
                refund_id: a.id("refund_id")?,
                order_id: a.id("order_id")?,
                amount: a.money("amount")?,
            },
            "refund.failed" => DomainEvent::RefundFailed {
                refund_id: a.id("refund_id")?,
                order_id: a.id("order_id")?,
            },
            "call.started" => DomainEvent::CallStarted {
                call_id: a.id("call_id")?,
                caller_id: a.id("caller_id")?,
                receiver_id: a.id("receiver_id")?,
            },
            "call.ended" => DomainEvent::CallEnded {
                call_id: a.id("call_id")?,
                minutes: a.number("minutes")?,
                charged: a.money("charged")?,
            },
            _ => return Ok(None),
        }))
    })();
    decoded.transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::ids::{CallId, OrderId, PaymentId, ProductId, RefundId, TransactionId, TransferId, UserId, WithdrawalId};

    fn id<T: Id>(n: u128) -> T {
        T::from_uuid(Uuid::from_u128(n))
    }

    fn usd() -> Money {
        Money::from_minor(1250, Currency::Usd)
    }

    /// Amounts in currencies with 2, 0 and 3 decimals.
    fn account_events() -> Vec<DomainEvent> {
        let jpy = Money::from_minor(500, Currency::Jpy);
        let kwd = Money::from_minor(1_005, Currency::Kwd);
        vec![
            DomainEvent::UserRegistered {
                user_id: id::<UserId>(1),
                role: Role::Merchant,
            },
            DomainEvent::TopUpCompleted {
                payment_id: id::<PaymentId>(2),
                user_id: id(3),
                amount: usd(),
            },
            DomainEvent::WithdrawalCompleted {
                withdrawal_id: id::<WithdrawalId>(4),
                user_id: id(5),
                amount: jpy,
            },
            DomainEvent::TransferCompleted {
                transfer_id: id::<TransferId>(6),
                from: id(7),
                to: id(8),
                amount: kwd,
            },
            DomainEvent::AdjustmentPosted {
                transaction_id: id::<TransactionId>(9),
                user_id: id(10),
                amount: Money::from_minor(-3, Currency::Eur),
            },
            DomainEvent::ProductCreated {
                product_id: id::<ProductId>(11),
                merchant_id: id(12),
            },
            DomainEvent::ProductUpdated { product_id: id(13) },
            DomainEvent::ProductArchived { product_id: id(14) },
            DomainEvent::StockChanged {
                product_id: id(15),
                available: 42,
            },
        ]
    }

    fn commerce_events() -> Vec<DomainEvent> {
        let usd = usd();
        vec![
            DomainEvent::OrderStatusChanged {
                order_id: id::<OrderId>(16),
                from: None,
                to: OrderStatus::Created,
            },
            DomainEvent::OrderStatusChanged {
                order_id: id(17),
                from: Some(OrderStatus::Paid),
                to: OrderStatus::PartiallyRefunded,
            },
            DomainEvent::PaymentSucceeded {
                payment_id: id(18),
                amount: usd,
            },
            DomainEvent::PaymentFailed { payment_id: id(19) },
            DomainEvent::PaymentExpired { payment_id: id(20) },
            DomainEvent::PaymentLateSuccess {
                payment_id: id(21),
                amount: usd,
            },
            DomainEvent::PaymentDisputed { payment_id: id(22) },
            DomainEvent::RefundSucceeded {
                refund_id: id::<RefundId>(23),
                order_id: id(24),
                amount: usd,
            },
            DomainEvent::RefundFailed {
                refund_id: id(25),
                order_id: id(26),
            },
            DomainEvent::CallStarted {
                call_id: id::<CallId>(27),
                caller_id: id(28),
                receiver_id: id(29),
            },
            DomainEvent::CallEnded {
                call_id: id(30),
                minutes: 3,
                charged: usd,
            },
        ]
    }

    #[test]
    fn every_event_survives_the_outbox() -> StoreResult<()> {
        for event in account_events().into_iter().chain(commerce_events()) {
            let payload = encode(&event)?;
            assert_eq!(decode(event.name(), &payload)?, event, "{payload}");
        }
        Ok(())
    }

    #[test]
    fn an_unknown_event_type_is_corrupt() {
        assert!(matches!(decode("user.vanished", "{}"), Err(StoreError::Corrupt(_))));
        assert!(matches!(decode("payment.failed", "{}"), Err(StoreError::Corrupt(_))));
    }
}
