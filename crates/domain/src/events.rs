//! Domain events: one for each lifecycle change, written to the outbox in the same transaction as
//! the change they announce, so that nothing is announced that did not happen and nothing that
//! happened goes unannounced.

use time::OffsetDateTime;

use crate::ids::{CallId, EventId, OrderId, PaymentId, ProductId, RefundId, TransactionId, TransferId, UserId, WithdrawalId};
use crate::money::Money;
use crate::order::OrderStatus;
use crate::user::Role;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainEvent {
    UserRegistered {
        user_id: UserId,
        role: Role,
    },
    TopUpCompleted {
        payment_id: PaymentId,
        user_id: UserId,
        amount: Money,
    },
    WithdrawalCompleted {
        withdrawal_id: WithdrawalId,
        user_id: UserId,
        amount: Money,
    },
    TransferCompleted {
        transfer_id: TransferId,
        from: UserId,
        to: UserId,
        amount: Money,
    },
    AdjustmentPosted {
        transaction_id: TransactionId,
        user_id: UserId,
        amount: Money,
    },
    ProductCreated {
        product_id: ProductId,
        merchant_id: UserId,
    },
    ProductUpdated {
        product_id: ProductId,
    },
    ProductArchived {
        product_id: ProductId,
    },
    StockChanged {
        product_id: ProductId,
        available: i64,
    },
    OrderStatusChanged {
        order_id: OrderId,
        from: Option<OrderStatus>,
        to: OrderStatus,
    },
    PaymentSucceeded {
        payment_id: PaymentId,
        amount: Money,
    },
    PaymentFailed {
        payment_id: PaymentId,
    },
    PaymentExpired {
        payment_id: PaymentId,
    },
    /// Money arrived for a payment that had already been given up; it needs a refund.
    PaymentLateSuccess {
        payment_id: PaymentId,
        amount: Money,
    },
    PaymentDisputed {
        payment_id: PaymentId,
    },
    RefundSucceeded {
        refund_id: RefundId,
        order_id: OrderId,
        amount: Money,
    },
    RefundFailed {
        refund_id: RefundId,
        order_id: OrderId,
    },
    CallStarted {
        call_id: CallId,
        caller_id: UserId,
        receiver_id: UserId,
    },
    CallEnded {
        call_id: CallId,
        minutes: u32,
        charged: Money,
    },
}

impl DomainEvent {
    /// The event's stable name, as published: `order.status_changed`.
    pub fn name(&self) -> &'static str {
        match self {
            DomainEvent::UserRegistered { .. } => "user.registered",
            DomainEvent::TopUpCompleted { .. } => "wallet.top_up_completed",
            DomainEvent::WithdrawalCompleted { .. } => "wallet.withdrawal_completed",
            DomainEvent::TransferCompleted { .. } => "wallet.transfer_completed",
            DomainEvent::AdjustmentPosted { .. } => "wallet.adjustment_posted",
            DomainEvent::ProductCreated { .. } => "product.created",
            DomainEvent::ProductUpdated { .. } => "product.updated",
            DomainEvent::ProductArchived { .. } => "product.archived",
            DomainEvent::StockChanged { .. } => "product.stock_changed",
            DomainEvent::OrderStatusChanged { .. } => "order.status_changed",
            DomainEvent::PaymentSucceeded { .. } => "payment.succeeded",
            DomainEvent::PaymentFailed { .. } => "payment.failed",
            DomainEvent::PaymentExpired { .. } => "payment.expired",
            DomainEvent::PaymentLateSuccess { .. } => "payment.late_success",
            DomainEvent::PaymentDisputed { .. } => "payment.disputed",
            DomainEvent::RefundSucceeded { .. } => "refund.succeeded",
            DomainEvent::RefundFailed { .. } => "refund.failed",
            DomainEvent::CallStarted { .. } => "call.started",
            DomainEvent::CallEnded { .. } => "call.ended",
        }
    }

    /// The event's data as flat name/value pairs, so storage can serialise every event the same
    /// way without knowing each variant. Amounts appear as a major-unit string plus currency.
    pub fn attributes(&self) -> Vec<(&'static str, String)> {
        fn money(attributes: &mut Vec<(&'static str, String)>, name: &'static str, amount: &Money) {
            attributes.push((name, amount.to_major_string()));
            attributes.push(("currency", amount.currency().code().to_owned()));
        }
        let mut out = Vec::new();
        match self {
            DomainEvent::UserRegistered { user_id, role } => {
                out.push(("user_id", user_id.to_string()));
                out.push(("role", role.as_str().to_owned()));
            }
            DomainEvent::TopUpCompleted {
                payment_id,
                user_id,
                amount,
            } => {
                out.push(("payment_id", payment_id.to_string()));
                out.push(("user_id", user_id.to_string()));
                money(&mut out, "amount", amount);
            }
            DomainEvent::WithdrawalCompleted {
                withdrawal_id,
                user_id,
                amount,
            } => {
                out.push(("withdrawal_id", withdrawal_id.to_string()));
                out.push(("user_id", user_id.to_string()));
                money(&mut out, "amount", amount);
            }
            DomainEvent::TransferCompleted {
                transfer_id,
                from,
                to,
                amount,
            } => {
                out.push(("transfer_id", transfer_id.to_string()));
                out.push(("from_user_id", from.to_string()));
                out.push(("to_user_id", to.to_string()));
                money(&mut out, "amount", amount);
            }
            DomainEvent::AdjustmentPosted {
                transaction_id,
                user_id,
                amount,
            } => {
                out.push(("transaction_id", transaction_id.to_string()));
                out.push(("user_id", user_id.to_string()));
                money(&mut out, "amount", amount);
            }
            DomainEvent::ProductCreated { product_id, merchant_id } => {
                out.push(("product_id", product_id.to_string()));
                out.push(("merchant_id", merchant_id.to_string()));
            }
            DomainEvent::ProductUpdated { product_id } | DomainEvent::ProductArchived { product_id } => {
                out.push(("product_id", product_id.to_string()));
            }
            DomainEvent::StockChanged { product_id, available } => {
                out.push(("product_id", product_id.to_string()));
                out.push(("available", available.to_string()));
            }
            DomainEvent::OrderStatusChanged { order_id, from, to } => {
                out.push(("order_id", order_id.to_string()));
                if let Some(from) = from {
                    out.push(("from", from.as_str().to_owned()));
                }
                out.push(("to", to.as_str().to_owned()));
            }
            DomainEvent::PaymentSucceeded { payment_id, amount } | DomainEvent::PaymentLateSuccess { payment_id, amount } => {
                out.push(("payment_id", payment_id.to_string()));
                money(&mut out, "amount", amount);
            }
            DomainEvent::PaymentFailed { payment_id }
            | DomainEvent::PaymentExpired { payment_id }
            | DomainEvent::PaymentDisputed { payment_id } => {
                out.push(("payment_id", payment_id.to_string()));
            }
            DomainEvent::RefundSucceeded {
                refund_id,
                order_id,
                amount,
            } => {
                out.push(("refund_id", refund_id.to_string()));
                out.push(("order_id", order_id.to_string()));
                money(&mut out, "amount", amount);
            }
            DomainEvent::RefundFailed { refund_id, order_id } => {
                out.push(("refund_id", refund_id.to_string()));
                out.push(("order_id", order_id.to_string()));
            }
            DomainEvent::CallStarted {
                call_id,
                caller_id,
                receiver_id,
            } => {
                out.push(("call_id", call_id.to_string()));
                out.push(("caller_id", caller_id.to_string()));
                out.push(("receiver_id", receiver_id.to_string()));
            }
            DomainEvent::CallEnded { call_id, minutes, charged } => {
                out.push(("call_id", call_id.to_string()));
                out.push(("minutes", minutes.to_string()));
                money(&mut out, "charged", charged);
            }
        }
        out
    }
}

/// An event as stored in the outbox, waiting to be published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEvent {
    pub id: EventId,
    pub event: DomainEvent,
    pub occurred_at: OffsetDateTime,
}
