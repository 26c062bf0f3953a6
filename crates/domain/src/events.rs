//! Domain events: one for each lifecycle change, written to the outbox in the same transaction as
//! the change they announce, so that nothing is announced that did not happen and nothing that
//! happened goes unannounced.

use std::collections::BTreeMap;
use std::str::FromStr;

use time::OffsetDateTime;
use uuid::Uuid;

use crate::ids::{
    CallId, EventId, HoldId, Id, OrderId, PaymentId, ProductId, RefundId, RefundRequestId, TransactionId, TransferId, UserId,
    WebhookEndpointId, WithdrawalId,
};
use crate::money::{Currency, Money};
use crate::order::OrderStatus;
use crate::refund_request::RefundRequestStatus;
use crate::user::Role;
use crate::withdrawal::WithdrawalStatus;

/// Something that happened and that merchants' webhooks, the metrics and the audit may want to know.
///
/// Each variant carries ids and the state at the event (amounts, statuses), never a whole object:
/// a receiver that wants more asks the API. [`name`](DomainEvent::name) is the published type, and
/// [`attributes`](DomainEvent::attributes) / [`from_attributes`](DomainEvent::from_attributes) are a
/// lossless flat encoding:
///
/// ```
/// use std::collections::BTreeMap;
/// use domain::events::DomainEvent;
/// use domain::ids::PaymentId;
/// use domain::money::{Currency, Money};
/// use uuid::Uuid;
///
/// let event = DomainEvent::PaymentSucceeded {
///     payment_id: PaymentId::from_uuid(Uuid::from_u128(7)),
///     amount: Money::from_minor(1_250, Currency::Usd),
/// };
/// let attributes: BTreeMap<String, String> =
///     event.attributes().into_iter().map(|(name, value)| (name.to_owned(), value)).collect();
/// assert_eq!(attributes["amount"], "12.50");
/// assert_eq!(attributes["currency"], "USD");
/// assert_eq!(DomainEvent::from_attributes(event.name(), &attributes), Ok(event));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainEvent {
    /// A user signed up (or an admin was created).
    UserRegistered {
        /// The new user.
        user_id: UserId,
        /// The role they registered with.
        role: Role,
    },
    /// A card top-up was paid and credited to the user's wallet.
    TopUpCompleted {
        /// The card payment that brought the money in.
        payment_id: PaymentId,
        /// The user whose wallet was credited.
        user_id: UserId,
        /// What was credited.
        amount: Money,
    },
    /// A withdrawal was requested, approved, rejected, paid or failed (`status`); `reason` is
    /// the admin's for a rejection, the failure's for a failure.
    WithdrawalChanged {
        /// The withdrawal.
        withdrawal_id: WithdrawalId,
        /// The user withdrawing.
        user_id: UserId,
        /// What is withdrawn.
        amount: Money,
        /// Its new status.
        status: WithdrawalStatus,
        /// Why it was rejected or failed; `None` otherwise.
        reason: Option<String>,
    },
    /// A person-to-person transfer was posted.
    TransferCompleted {
        /// The transfer.
        transfer_id: TransferId,
        /// The sender.
        from: UserId,
        /// The receiver.
        to: UserId,
        /// What was moved.
        amount: Money,
    },
    /// An admin posted a manual correction to a user's wallet.
    AdjustmentPosted {
        /// The journal transaction of the correction.
        transaction_id: TransactionId,
        /// The user whose wallet was corrected.
        user_id: UserId,
        /// Signed: positive credits the wallet, negative debits it.
        amount: Money,
    },
    /// A merchant added a product to the catalog.
    ProductCreated {
        /// The new product.
        product_id: ProductId,
        /// The merchant selling it.
        merchant_id: UserId,
    },
    /// A product's name, description, price or sale status changed.
    ProductUpdated {
        /// The product.
        product_id: ProductId,
    },
    /// A product was deleted: off sale for good.
    ProductArchived {
        /// The product.
        product_id: ProductId,
    },
    /// A product's stock changed (restocked, sold, reserved or released).
    StockChanged {
        /// The product.
        product_id: ProductId,
        /// The units available for sale after the change.
        available: i64,
    },
    /// An order moved to a new status, as its audit trail records.
    OrderStatusChanged {
        /// The order.
        order_id: OrderId,
        /// The status before; `None` when the order was just created.
        from: Option<OrderStatus>,
        /// The status after.
        to: OrderStatus,
    },
    /// A dispute of the order's card payment was recorded on the order, whose status does not
    /// change (the money was taken). Its attributes are those of a status change from and to the
    /// order's status, as receivers of `order.disputed` have always been sent.
    OrderDisputed {
        /// The order.
        order_id: OrderId,
        /// The order's status, unchanged.
        status: OrderStatus,
    },
    /// A card payment succeeded.
    PaymentSucceeded {
        /// The payment.
        payment_id: PaymentId,
        /// What the provider took.
        amount: Money,
    },
    /// A card payment failed at the provider.
    PaymentFailed {
        /// The payment.
        payment_id: PaymentId,
    },
    /// A card payment was given up at its expiry.
    PaymentExpired {
        /// The payment.
        payment_id: PaymentId,
    },
    /// Money arrived for a payment that had already been given up; it needs a refund.
    PaymentLateSuccess {
        /// The payment.
        payment_id: PaymentId,
        /// What the provider took, which is to be given back.
        amount: Money,
    },
    /// The buyer disputed a card payment with their bank.
    PaymentDisputed {
        /// The payment.
        payment_id: PaymentId,
    },
    /// A refund reached the buyer.
    RefundSucceeded {
        /// The refund.
        refund_id: RefundId,
        /// The order refunded.
        order_id: OrderId,
        /// What was given back.
        amount: Money,
    },
    /// A refund failed at the provider; the merchant's share is as it was.
    RefundFailed {
        /// The refund.
        refund_id: RefundId,
        /// The order it was for.
        order_id: OrderId,
    },
    /// A buyer's refund request was opened, approved (`refund_id`), declined or withdrawn.
    RefundRequestChanged {
        /// The request.
        request_id: RefundRequestId,
        /// The order it is about.
        order_id: OrderId,
        /// The buyer who asked.
        buyer_id: UserId,
        /// The merchant asked to refund their part.
        merchant_id: UserId,
        /// The request's new status.
        status: RefundRequestStatus,
        /// The refund made when it was approved; `None` otherwise.
        refund_id: Option<RefundId>,
    },
    /// A metered call began; the caller's wallet holds funds for it.
    CallStarted {
        /// The call.
        call_id: CallId,
        /// The user who pays for the call.
        caller_id: UserId,
        /// The user who is paid for it.
        receiver_id: UserId,
    },
    /// A call ended and was charged.
    CallEnded {
        /// The call.
        call_id: CallId,
        /// The minutes billed (every started minute counts).
        minutes: u32,
        /// What the caller paid the receiver.
        charged: Money,
    },
    /// A customer authorised a merchant to capture up to `amount` of their wallet.
    HoldAuthorised {
        /// The hold.
        hold_id: HoldId,
        /// The customer whose wallet it is on.
        user_id: UserId,
        /// The merchant allowed to capture it.
        merchant_id: UserId,
        /// What the hold reserves.
        amount: Money,
    },
    /// The merchant captured `amount` of the hold (`captured` in all so far).
    HoldCaptured {
        /// The hold.
        hold_id: HoldId,
        /// The customer whose wallet it is on.
        user_id: UserId,
        /// The merchant who captured.
        merchant_id: UserId,
        /// What this capture took.
        amount: Money,
        /// What all captures of the hold took so far.
        captured: Money,
    },
    /// The hold was voided; `released` went back to the customer's available balance.
    HoldVoided {
        /// The hold.
        hold_id: HoldId,
        /// The customer whose wallet it is on.
        user_id: UserId,
        /// The merchant it was for.
        merchant_id: UserId,
        /// What went back to the customer's available balance.
        released: Money,
    },
    /// The hold outlived its expiry and was released.
    HoldExpired {
        /// The hold.
        hold_id: HoldId,
        /// The customer whose wallet it is on.
        user_id: UserId,
        /// The merchant it was for.
        merchant_id: UserId,
        /// What went back to the customer's available balance.
        released: Money,
    },
    /// A test event an endpoint's owner asked for; delivered to that endpoint only.
    WebhookEndpointTested {
        /// The endpoint to test.
        endpoint_id: WebhookEndpointId,
    },
}

impl DomainEvent {
    /// The event's stable name, as published: `order.status_changed`.
    pub fn name(&self) -> &'static str {
        match self {
            DomainEvent::UserRegistered { .. } => "user.registered",
            DomainEvent::TopUpCompleted { .. } => "wallet.top_up_completed",
            DomainEvent::WithdrawalChanged { .. } => "wallet.withdrawal_changed",
            DomainEvent::TransferCompleted { .. } => "wallet.transfer_completed",
            DomainEvent::AdjustmentPosted { .. } => "wallet.adjustment_posted",
            DomainEvent::ProductCreated { .. } => "product.created",
            DomainEvent::ProductUpdated { .. } => "product.updated",
            DomainEvent::ProductArchived { .. } => "product.archived",
            DomainEvent::StockChanged { .. } => "product.stock_changed",
            DomainEvent::OrderStatusChanged { .. } => "order.status_changed",
            DomainEvent::OrderDisputed { .. } => "order.disputed",
            DomainEvent::PaymentSucceeded { .. } => "payment.succeeded",
            DomainEvent::PaymentFailed { .. } => "payment.failed",
            DomainEvent::PaymentExpired { .. } => "payment.expired",
            DomainEvent::PaymentLateSuccess { .. } => "payment.late_success",
            DomainEvent::PaymentDisputed { .. } => "payment.disputed",
            DomainEvent::RefundSucceeded { .. } => "refund.succeeded",
            DomainEvent::RefundFailed { .. } => "refund.failed",
            DomainEvent::RefundRequestChanged { .. } => "refund_request.changed",
            DomainEvent::CallStarted { .. } => "call.started",
            DomainEvent::CallEnded { .. } => "call.ended",
            DomainEvent::HoldAuthorised { .. } => "hold.authorised",
            DomainEvent::HoldCaptured { .. } => "hold.captured",
            DomainEvent::HoldVoided { .. } => "hold.voided",
            DomainEvent::HoldExpired { .. } => "hold.expired",
            DomainEvent::WebhookEndpointTested { .. } => "webhook_endpoint.test",
        }
    }

    /// The event's data as flat name/value pairs, so storage and merchants' webhooks can carry
    /// every event the same way without knowing each variant. Amounts appear as a major-unit
    /// string plus currency. `from_attributes` inverts it exactly.
    pub fn attributes(&self) -> Vec<(&'static str, String)> {
        let built = account_attributes(self).or_else(|| commerce_attributes(self));
        built.map(|built| built.0).unwrap_or_default()
    }

    /// The event named `name` with these attributes: the inverse of `name` and `attributes`.
    pub fn from_attributes(name: &str, attributes: &BTreeMap<String, String>) -> Result<DomainEvent, EventDecodeError> {
        let reader = AttributesReader { name, attributes };
        account_event(&reader)
            .or_else(|| commerce_event(&reader))
            .unwrap_or_else(|| Err(EventDecodeError::UnknownType(name.chars().take(64).collect())))
    }
}

/// The attributes of users', wallets' and the catalog's events; `None` for another type.
fn account_attributes(event: &DomainEvent) -> Option<AttributesBuilder> {
    use DomainEvent::*;
    let a = AttributesBuilder::default();
    Some(match event {
        UserRegistered { user_id, role } => a.with("user_id", user_id).with("role", role.as_str()),
        TopUpCompleted {
            payment_id,
            user_id,
            amount,
        } => a.with("payment_id", payment_id).with("user_id", user_id).money("amount", amount),
        WithdrawalChanged {
            withdrawal_id,
            user_id,
            amount,
            status,
            reason,
        } => a
            .with("withdrawal_id", withdrawal_id)
            .with("user_id", user_id)
            .money("amount", amount)
            .with("status", status.as_str())
            .maybe("reason", reason.as_deref()),
        TransferCompleted {
            transfer_id,
            from,
            to,
            amount,
        } => a
            .with("transfer_id", transfer_id)
            .with("from_user_id", from)
            .with("to_user_id", to)
            .money("amount", amount),
        AdjustmentPosted {
            transaction_id,
            user_id,
            amount,
        } => a
            .with("transaction_id", transaction_id)
            .with("user_id", user_id)
            .money("amount", amount),
        ProductCreated { product_id, merchant_id } => a.with("product_id", product_id).with("merchant_id", merchant_id),
        ProductUpdated { product_id } | ProductArchived { product_id } => a.with("product_id", product_id),
        StockChanged { product_id, available } => a.with("product_id", product_id).with("available", available),
        _ => return None,
    })
}

/// The attributes of orders', payments', refunds', calls', holds' and test events.
fn commerce_attributes(event: &DomainEvent) -> Option<AttributesBuilder> {
    use DomainEvent::*;
    let a = AttributesBuilder::default();
    Some(match event {
        OrderStatusChanged { order_id, from, to } => a
            .with("order_id", order_id)
            .maybe("from", from.map(OrderStatus::as_str))
            .with("to", to.as_str()),
        OrderDisputed { order_id, status } => a
            .with("order_id", order_id)
            .with("from", status.as_str())
            .with("to", status.as_str()),
        PaymentSucceeded { payment_id, amount } | PaymentLateSuccess { payment_id, amount } => {
            a.with("payment_id", payment_id).money("amount", amount)
        }
        PaymentFailed { payment_id } | PaymentExpired { payment_id } | PaymentDisputed { payment_id } => a.with("payment_id", payment_id),
        RefundSucceeded {
            refund_id,
            order_id,
            amount,
        } => a.with("refund_id", refund_id).with("order_id", order_id).money("amount", amount),
        RefundFailed { refund_id, order_id } => a.with("refund_id", refund_id).with("order_id", order_id),
        RefundRequestChanged {
            request_id,
            order_id,
            buyer_id,
            merchant_id,
            status,
            refund_id,
        } => a
            .with("refund_request_id", request_id)
            .with("order_id", order_id)
            .with("buyer_id", buyer_id)
            .with("merchant_id", merchant_id)
            .with("status", status.as_str())
            .maybe("refund_id", refund_id.map(|id| id.to_string()).as_deref()),
        CallStarted {
            call_id,
            caller_id,
            receiver_id,
        } => a
            .with("call_id", call_id)
            .with("caller_id", caller_id)
            .with("receiver_id", receiver_id),
        CallEnded { call_id, minutes, charged } => a.with("call_id", call_id).with("minutes", minutes).money("charged", charged),
        HoldAuthorised {
            hold_id,
            user_id,
            merchant_id,
            amount,
        } => a
            .with("hold_id", hold_id)
            .with("user_id", user_id)
            .with("merchant_id", merchant_id)
            .money("amount", amount),
        HoldCaptured {
            hold_id,
            user_id,
            merchant_id,
            amount,
            captured,
        } => a
            .with("hold_id", hold_id)
            .with("user_id", user_id)
            .with("merchant_id", merchant_id)
            .money("amount", amount)
            .with("captured", captured.to_major_string()),
        HoldVoided {
            hold_id,
            user_id,
            merchant_id,
            released,
        }
        | HoldExpired {
            hold_id,
            user_id,
            merchant_id,
            released,
        } => a
            .with("hold_id", hold_id)
            .with("user_id", user_id)
            .with("merchant_id", merchant_id)
            .money("released", released),
        WebhookEndpointTested { endpoint_id } => a.with("endpoint_id", endpoint_id),
        _ => return None,
    })
}

/// Why stored or received attributes are not an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventDecodeError {
    /// No event has this name (cut to 64 characters); a newer writer's event, or a corrupt row.
    #[error("unknown event type `{0}`")]
    UnknownType(String),
    /// A required attribute is absent.
    #[error("event {event} lacks `{attribute}`")]
    Missing {
        /// The event's name.
        event: String,
        /// The attribute that is missing.
        attribute: &'static str,
    },
    /// An attribute is present but does not parse (an id, an amount, a status...).
    #[error("event {event} has a malformed `{attribute}`")]
    Malformed {
        /// The event's name.
        event: String,
        /// The attribute that does not parse.
        attribute: &'static str,
    },
}

#[derive(Default)]
struct AttributesBuilder(Vec<(&'static str, String)>);

impl AttributesBuilder {
    fn with(mut self, name: &'static str, value: impl std::fmt::Display) -> Self {
        self.0.push((name, value.to_string()));
        self
    }

    fn maybe(self, name: &'static str, value: Option<&str>) -> Self {
        match value {
            Some(value) => self.with(name, value),
            None => self,
        }
    }

    fn money(self, name: &'static str, amount: &Money) -> Self {
        self.with(name, amount.to_major_string()).with("currency", amount.currency().code())
    }
}

struct AttributesReader<'a> {
    name: &'a str,
    attributes: &'a BTreeMap<String, String>,
}

impl AttributesReader<'_> {
    fn missing(&self, attribute: &'static str) -> EventDecodeError {
        EventDecodeError::Missing {
            event: self.name.to_owned(),
            attribute,
        }
    }

    fn malformed(&self, attribute: &'static str) -> EventDecodeError {
        EventDecodeError::Malformed {
            event: self.name.to_owned(),
            attribute,
        }
    }

    fn text(&self, attribute: &'static str) -> Result<&str, EventDecodeError> {
        self.attributes
            .get(attribute)
            .map(String::as_str)
            .ok_or_else(|| self.missing(attribute))
    }

    fn id<T: Id>(&self, attribute: &'static str) -> Result<T, EventDecodeError> {
        Uuid::try_parse(self.text(attribute)?)
            .map(T::from_uuid)
            .map_err(|_| self.malformed(attribute))
    }

    fn number<T: FromStr>(&self, attribute: &'static str) -> Result<T, EventDecodeError> {
        self.text(attribute)?.parse().map_err(|_| self.malformed(attribute))
    }

    fn money(&self, attribute: &'static str) -> Result<Money, EventDecodeError> {
        let currency = Currency::parse(self.text("currency")?).map_err(|_| self.malformed("currency"))?;
        Money::parse(self.text(attribute)?, currency).map_err(|_| self.malformed(attribute))
    }

    fn status(&self, attribute: &'static str) -> Result<OrderStatus, EventDecodeError> {
        OrderStatus::parse(self.text(attribute)?).ok_or_else(|| self.malformed(attribute))
    }

    fn role(&self, attribute: &'static str) -> Result<Role, EventDecodeError> {
        Role::parse(self.text(attribute)?).ok_or_else(|| self.malformed(attribute))
    }
}

/// Users, wallets and catalog; `None` for another type.
fn account_event(a: &AttributesReader<'_>) -> Option<Result<DomainEvent, EventDecodeError>> {
    let decoded = || -> Result<Option<DomainEvent>, EventDecodeError> {
        Ok(Some(match a.name {
            "user.registered" => DomainEvent::UserRegistered {
                user_id: a.id("user_id")?,
                role: a.role("role")?,
            },
            "wallet.top_up_completed" => DomainEvent::TopUpCompleted {
                payment_id: a.id("payment_id")?,
                user_id: a.id("user_id")?,
                amount: a.money("amount")?,
            },
            "wallet.withdrawal_changed" => DomainEvent::WithdrawalChanged {
                withdrawal_id: a.id("withdrawal_id")?,
                user_id: a.id("user_id")?,
                amount: a.money("amount")?,
                status: WithdrawalStatus::parse(a.text("status")?).ok_or_else(|| a.malformed("status"))?,
                reason: a.attributes.get("reason").cloned(),
            },
            // Stored before withdrawals had a lifecycle, when every withdrawal was paid at once.
            "wallet.withdrawal_completed" => DomainEvent::WithdrawalChanged {
                withdrawal_id: a.id("withdrawal_id")?,
                user_id: a.id("user_id")?,
                amount: a.money("amount")?,
                status: WithdrawalStatus::Paid,
                reason: None,
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
    };
    decoded().transpose()
}

/// Orders, payments, refunds and calls; `None` for another type.
fn commerce_event(a: &AttributesReader<'_>) -> Option<Result<DomainEvent, EventDecodeError>> {
    let decoded = || -> Result<Option<DomainEvent>, EventDecodeError> {
        Ok(Some(match a.name {
            "order.status_changed" => DomainEvent::OrderStatusChanged {
                order_id: a.id("order_id")?,
                from: a.attributes.contains_key("from").then(|| a.status("from")).transpose()?,
                to: a.status("to")?,
            },
            "order.disputed" => DomainEvent::OrderDisputed {
                order_id: a.id("order_id")?,
                status: a.status("to")?,
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
            "refund_request.changed" => DomainEvent::RefundRequestChanged {
                request_id: a.id("refund_request_id")?,
                order_id: a.id("order_id")?,
                buyer_id: a.id("buyer_id")?,
                merchant_id: a.id("merchant_id")?,
                status: RefundRequestStatus::parse(a.text("status")?).ok_or_else(|| a.malformed("status"))?,
                refund_id: a.attributes.contains_key("refund_id").then(|| a.id("refund_id")).transpose()?,
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
            "hold.authorised" => DomainEvent::HoldAuthorised {
                hold_id: a.id("hold_id")?,
                user_id: a.id("user_id")?,
                merchant_id: a.id("merchant_id")?,
                amount: a.money("amount")?,
            },
            "hold.captured" => DomainEvent::HoldCaptured {
                hold_id: a.id("hold_id")?,
                user_id: a.id("user_id")?,
                merchant_id: a.id("merchant_id")?,
                amount: a.money("amount")?,
                captured: a.money("captured")?,
            },
            "hold.voided" => DomainEvent::HoldVoided {
                hold_id: a.id("hold_id")?,
                user_id: a.id("user_id")?,
                merchant_id: a.id("merchant_id")?,
                released: a.money("released")?,
            },
            "hold.expired" => DomainEvent::HoldExpired {
                hold_id: a.id("hold_id")?,
                user_id: a.id("user_id")?,
                merchant_id: a.id("merchant_id")?,
                released: a.money("released")?,
            },
            "webhook_endpoint.test" => DomainEvent::WebhookEndpointTested {
                endpoint_id: a.id("endpoint_id")?,
            },
            _ => return Ok(None),
        }))
    };
    decoded().transpose()
}

/// An event as stored in the outbox, waiting to be published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEvent {
    /// The event's id, which every delivery and retry carries so receivers can dedupe.
    pub id: EventId,
    /// What happened.
    pub event: DomainEvent,
    /// When it happened: the time of the transaction that wrote it.
    pub occurred_at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

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
            DomainEvent::WithdrawalChanged {
                withdrawal_id: id::<WithdrawalId>(4),
                user_id: id(5),
                amount: jpy,
                status: WithdrawalStatus::Paid,
                reason: None,
            },
            DomainEvent::WithdrawalChanged {
                withdrawal_id: id::<WithdrawalId>(44),
                user_id: id(5),
                amount: jpy,
                status: WithdrawalStatus::Rejected,
                reason: Some("unknown account".into()),
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
            DomainEvent::OrderDisputed {
                order_id: id(48),
                status: OrderStatus::Fulfilled,
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
            DomainEvent::RefundRequestChanged {
                request_id: id::<RefundRequestId>(44),
                order_id: id(45),
                buyer_id: id(46),
                merchant_id: id(47),
                status: RefundRequestStatus::Open,
                refund_id: None,
            },
            DomainEvent::RefundRequestChanged {
                request_id: id(48),
                order_id: id(45),
                buyer_id: id(46),
                merchant_id: id(47),
                status: RefundRequestStatus::Approved,
                refund_id: Some(id(49)),
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
            DomainEvent::WebhookEndpointTested { endpoint_id: id(31) },
            DomainEvent::HoldAuthorised {
                hold_id: id::<HoldId>(32),
                user_id: id(33),
                merchant_id: id(34),
                amount: usd,
            },
            DomainEvent::HoldCaptured {
                hold_id: id(35),
                user_id: id(36),
                merchant_id: id(37),
                amount: Money::from_minor(250, Currency::Usd),
                captured: usd,
            },
            DomainEvent::HoldVoided {
                hold_id: id(38),
                user_id: id(39),
                merchant_id: id(40),
                released: usd,
            },
            DomainEvent::HoldExpired {
                hold_id: id(41),
                user_id: id(42),
                merchant_id: id(43),
                released: Money::from_minor(7, Currency::Jpy),
            },
        ]
    }

    #[test]
    fn every_event_is_rebuilt_from_its_attributes() -> Result<(), EventDecodeError> {
        for event in account_events().into_iter().chain(commerce_events()) {
            let attributes: BTreeMap<String, String> = event.attributes().into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            assert_eq!(DomainEvent::from_attributes(event.name(), &attributes)?, event, "{attributes:?}");
        }
        Ok(())
    }

    /// The catalogue of public types says which attributes each type's object has.
    #[test]
    fn every_event_has_the_attributes_its_public_type_declares() {
        for event in account_events().into_iter().chain(commerce_events()) {
            let declared = crate::webhook::EVENT_TYPES
                .iter()
                .find(|kind| kind.name == event.public_type())
                .unwrap_or_else(|| panic!("{} is not in the catalogue", event.public_type()));
            let names: Vec<&str> = event.attributes().iter().map(|(name, _)| *name).collect();
            for name in &names {
                let listed = declared.object.iter().any(|d| d.trim_end_matches('?') == *name);
                assert!(listed, "{}: `{name}` is not declared", declared.name);
            }
            for required in declared.object.iter().filter(|d| !d.ends_with('?')) {
                assert!(names.contains(required), "{}: `{required}` is missing", declared.name);
            }
        }
    }

    #[test]
    fn unknown_types_and_missing_or_malformed_attributes_are_refused() {
        let none = BTreeMap::new();
        assert!(matches!(
            DomainEvent::from_attributes("user.vanished", &none),
            Err(EventDecodeError::UnknownType(_))
        ));
        assert!(matches!(
            DomainEvent::from_attributes("payment.failed", &none),
            Err(EventDecodeError::Missing { .. })
        ));
        let bad: BTreeMap<String, String> = [("payment_id".to_owned(), "not-a-uuid".to_owned())].into();
        assert!(matches!(
            DomainEvent::from_attributes("payment.failed", &bad),
            Err(EventDecodeError::Malformed { .. })
        ));
    }
}
