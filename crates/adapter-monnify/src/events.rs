//! Monnify's webhook events and status answers, as gateway events.

use application::ports::gateway::{
    ConfirmedPayment, GatewayError, GatewayEvent, GatewayEventKind, GatewayRefundStatus, PaymentReference, RefundUpdate, WebhookError,
};
use domain::ids::{PaymentId, RefundId};
use domain::money::{Currency, Money};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::api::TransactionStatus;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Event {
    event_type: String,
    event_data: serde_json::Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Transaction {
    transaction_reference: String,
    payment_reference: Option<String>,
    amount_paid: Option<serde_json::Value>,
    total_payable: Option<serde_json::Value>,
    currency: Option<String>,
    payment_status: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RefundData {
    refund_reference: String,
    refund_amount: Option<serde_json::Value>,
    refund_status: Option<String>,
}

fn malformed(error: impl std::fmt::Display) -> WebhookError {
    WebhookError::MalformedPayload(error.to_string())
}

/// An amount that Monnify may send as a number or as a string.
fn money(value: Option<&serde_json::Value>, currency: Option<&str>) -> Result<Option<Money>, String> {
    let text = match value {
        None | Some(serde_json::Value::Null) => return Ok(None),
        Some(serde_json::Value::String(text)) => text.clone(),
        Some(serde_json::Value::Number(number)) => number.to_string(),
        Some(other) => return Err(format!("unexpected amount {other}")),
    };
    let currency = Currency::parse(currency.unwrap_or("NGN")).map_err(|e| e.to_string())?;
    let text = text.strip_suffix(".0").unwrap_or(&text);
    Money::parse(text, currency).map(Some).map_err(|e| format!("amount {text}: {e}"))
}

pub(crate) fn refund_status(status: &str) -> GatewayRefundStatus {
    match status {
        "COMPLETED" | "REFUNDED" | "SUCCESSFUL" => GatewayRefundStatus::Succeeded,
        "FAILED" => GatewayRefundStatus::Failed,
        // IN_PROGRESS, INITIATED, PENDING or anything newer: not settled yet.
        _ => GatewayRefundStatus::Pending,
    }
}

/// The paid statuses. An overpayment settles the order (the excess needs a manual refund).
fn is_paid(status: &str) -> bool {
    matches!(status, "PAID" | "OVERPAID")
}

pub(crate) fn confirmed(status: &TransactionStatus) -> Result<ConfirmedPayment, GatewayError> {
    let currency = status.currency.as_deref();
    let paid = is_paid(&status.payment_status);
    // What was due is what the order is worth; an overpayment's excess is not ours to keep.
    let due = if status.payment_status == "OVERPAID" {
        status.total_payable.as_ref()
    } else {
        status.amount_paid.as_ref()
    };
    let amount = money(due, currency).map_err(GatewayError::Unexpected)?;
    if status.payment_status == "OVERPAID" {
        tracing::warn!(paid = ?status.amount_paid, due = ?status.total_payable, "Monnify reports an overpayment: refund the excess by hand");
    }
    Ok(ConfirmedPayment { paid, amount })
}

fn transaction_kind(data: serde_json::Value) -> Result<(String, GatewayEventKind), WebhookError> {
    let transaction: Transaction = serde_json::from_value(data).map_err(malformed)?;
    let reference = PaymentReference {
        payment_id: transaction.payment_reference.as_deref().and_then(|r| PaymentId::parse(r).ok()),
        session_id: Some(transaction.transaction_reference.clone()),
        provider_payment_id: Some(transaction.transaction_reference.clone()),
    };
    let status = transaction.payment_status.unwrap_or_else(|| "PAID".into());
    let due = if status == "OVERPAID" {
        transaction.total_payable.as_ref()
    } else {
        transaction.amount_paid.as_ref()
    };
    let amount = money(due, transaction.currency.as_deref()).map_err(WebhookError::MalformedPayload)?;
    let kind = if is_paid(&status) {
        GatewayEventKind::PaymentSucceeded { reference, amount }
    } else {
        GatewayEventKind::PaymentAttemptFailed {
            reference,
            reason: format!("Monnify reports {status}"),
        }
    };
    Ok((transaction.transaction_reference, kind))
}

fn refund_kind(event_type: &str, data: serde_json::Value) -> Result<(String, GatewayEventKind), WebhookError> {
    let refund: RefundData = serde_json::from_value(data).map_err(malformed)?;
    let status = match event_type {
        "FAILED_REFUND" => GatewayRefundStatus::Failed,
        _ => refund
            .refund_status
            .as_deref()
            .map_or(GatewayRefundStatus::Succeeded, refund_status),
    };
    let update = RefundUpdate {
        refund_id: RefundId::parse(&refund.refund_reference).ok(),
        amount: money(refund.refund_amount.as_ref(), Some("NGN")).map_err(WebhookError::MalformedPayload)?,
        status,
        provider_refund_id: refund.refund_reference.clone(),
    };
    Ok((refund.refund_reference, GatewayEventKind::RefundUpdated(update)))
}

/// Parses a verified webhook. Monnify events have no id: the event's type and the reference it is
/// about make one, so a redelivery is recognised as a duplicate.
pub(crate) fn parse(body: &[u8]) -> Result<GatewayEvent, WebhookError> {
    let event: Event = serde_json::from_slice(body).map_err(malformed)?;
    let (reference, kind) = match event.event_type.as_str() {
        "SUCCESSFUL_TRANSACTION" => transaction_kind(event.event_data)?,
        "SUCCESSFUL_REFUND" | "FAILED_REFUND" => refund_kind(&event.event_type, event.event_data)?,
        _ => (hex::encode(Sha256::digest(body)), GatewayEventKind::Ignored),
    };
    Ok(GatewayEvent {
        event_id: format!("{}:{reference}", event.event_type),
        event_type: event.event_type,
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PAYMENT: &str = "0190f0a4-3b5c-7cde-8f00-112233445566";

    #[test]
    fn a_successful_transaction_is_a_payment_in_naira() -> Result<(), WebhookError> {
        let body = json!({"eventType": "SUCCESSFUL_TRANSACTION", "eventData": {"transactionReference": "MNFY|1|2|3", "paymentReference": PAYMENT,
            "amountPaid": 3000.5, "totalPayable": 3000.5, "settlementAmount": "2990.00", "currency": "NGN", "paymentStatus": "PAID"}});
        let event = parse(body.to_string().as_bytes())?;
        assert_eq!(event.event_id, "SUCCESSFUL_TRANSACTION:MNFY|1|2|3");
        let GatewayEventKind::PaymentSucceeded { reference, amount } = event.kind else {
            panic!("wrong kind: {:?}", event.kind);
        };
        assert_eq!(amount, Some(Money::from_minor(300_050, Currency::Ngn)));
        assert_eq!(reference.payment_id.map(|p| p.to_string()).as_deref(), Some(PAYMENT));
        Ok(())
    }

    #[test]
    fn string_amounts_refund_events_and_unknown_types_parse() -> Result<(), WebhookError> {
        let body = json!({"eventType": "SUCCESSFUL_TRANSACTION", "eventData": {"transactionReference": "MNFY|9", "paymentReference": "x", "amountPaid": "100.00", "currency": "NGN", "paymentStatus": "PARTIALLY_PAID"}});
        assert!(matches!(
            parse(body.to_string().as_bytes())?.kind,
            GatewayEventKind::PaymentAttemptFailed { .. }
        ));
        let refund = json!({"eventType": "FAILED_REFUND", "eventData": {"refundReference": PAYMENT, "refundAmount": 1200, "refundStatus": "FAILED"}});
        let event = parse(refund.to_string().as_bytes())?;
        assert!(matches!(
            event.kind,
            GatewayEventKind::RefundUpdated(RefundUpdate {
                status: GatewayRefundStatus::Failed,
                refund_id: Some(_),
                ..
            })
        ));
        let other = json!({"eventType": "SETTLEMENT", "eventData": {}});
        assert_eq!(parse(other.to_string().as_bytes())?.kind, GatewayEventKind::Ignored);
        assert!(parse(b"{}").is_err());
        Ok(())
    }
}
