//! Paystack's webhook events and verification answers, as gateway events.
//!
//! Paystack events carry no id and no timestamp. Ids are derived from the event's type and what
//! it is about (the transaction reference; for refunds also the refund), so a redelivery is
//! recognised as a duplicate; every success is confirmed with the verify API before it is applied.

use application::ports::gateway::GatewayEvent;
use application::ports::gateway::{ConfirmedPayment, GatewayError, GatewayEventKind, GatewayRefundStatus, PaymentReference, WebhookError};
use domain::ids::PaymentId;
use domain::money::{Currency, Money};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::api::Transaction;

#[derive(Deserialize)]
struct Event {
    event: String,
    #[serde(default)]
    data: serde_json::Value,
}

/// The fields of a `charge.*` event's transaction this adapter reads.
#[derive(Deserialize)]
struct Charge {
    reference: String,
    amount: serde_json::Value,
    currency: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    metadata: serde_json::Value,
}

/// A `refund.*` event's data: the transaction it refunds, how much, and (once processed) the
/// processor's reference. It names neither our refund nor Paystack's refund id.
#[derive(Deserialize)]
struct RefundData {
    transaction_reference: String,
    amount: serde_json::Value,
    currency: String,
    #[serde(default)]
    refund_reference: Option<String>,
    #[serde(default)]
    id: Option<serde_json::Value>,
}

fn malformed(error: impl std::fmt::Display) -> WebhookError {
    WebhookError::MalformedPayload(error.to_string())
}

/// An amount in the currency's subunit, which Paystack sends as a number or as a string.
pub(crate) fn money(value: &serde_json::Value, currency: &str) -> Result<Money, String> {
    let currency = Currency::parse(&currency.to_ascii_uppercase()).map_err(|e| e.to_string())?;
    let subunits = match value {
        serde_json::Value::Number(number) => number.as_i64(),
        serde_json::Value::String(text) => text.trim().parse::<i64>().ok(),
        _ => None,
    }
    .filter(|amount| *amount >= 0)
    .ok_or_else(|| format!("unexpected amount {value}"))?;
    if currency.exponent() != 2 {
        return Err(format!(
            "Paystack amounts are in hundredths; {currency} has {} decimals",
            currency.exponent()
        ));
    }
    Ok(Money::from_minor(subunits, currency))
}

/// Paystack's refund statuses: `pending`, `processing`, `needs-attention` are not settled;
/// `processed` is done; `failed` (and a reversed refund) gave the money back to us.
pub(crate) fn refund_status(status: &str) -> GatewayRefundStatus {
    match status {
        "processed" => GatewayRefundStatus::Succeeded,
        "failed" | "reversed" => GatewayRefundStatus::Failed,
        _ => GatewayRefundStatus::Pending,
    }
}

/// What the verify API says: only `success` is paid (`abandoned`, `failed`, `ongoing`,
/// `pending`, `processing`, `queued` and `reversed` are not).
pub(crate) fn confirmed(transaction: &Transaction, reference: &str) -> Result<ConfirmedPayment, GatewayError> {
    if transaction.reference != reference {
        return Err(GatewayError::Unexpected(format!(
            "Paystack verified {} when asked about {reference}",
            transaction.reference
        )));
    }
    let amount = money(&serde_json::Value::from(transaction.amount), &transaction.currency).map_err(GatewayError::Unexpected)?;
    Ok(ConfirmedPayment {
        paid: transaction.status == "success",
        amount: Some(amount),
    })
}

/// Our payment id: the reference we chose, or the metadata we sent with it.
fn payment_id(reference: &str, metadata: &serde_json::Value) -> Option<PaymentId> {
    PaymentId::parse(reference).ok().or_else(|| {
        metadata
            .get("payment_id")
            .and_then(|v| v.as_str())
            .and_then(|v| PaymentId::parse(v).ok())
    })
}

fn charge_kind(data: serde_json::Value) -> Result<(String, GatewayEventKind), WebhookError> {
    let charge: Charge = serde_json::from_value(data).map_err(malformed)?;
    let reference = PaymentReference {
        payment_id: payment_id(&charge.reference, &charge.metadata),
        session_id: Some(charge.reference.clone()),
        provider_payment_id: Some(charge.reference.clone()),
    };
    let amount = money(&charge.amount, &charge.currency).map_err(WebhookError::MalformedPayload)?;
    let kind = match charge.status.as_deref() {
        None | Some("success") => GatewayEventKind::PaymentSucceeded {
            reference,
            amount: Some(amount),
        },
        Some(other) => GatewayEventKind::PaymentAttemptFailed {
            reference,
            reason: format!("Paystack reports {other}"),
        },
    };
    Ok((charge.reference, kind))
}

fn refund_kind(event: &str, data: serde_json::Value, body: &[u8]) -> Result<(String, GatewayEventKind), WebhookError> {
    let refund: RefundData = serde_json::from_value(data).map_err(malformed)?;
    let status = match event {
        "refund.processed" => GatewayRefundStatus::Succeeded,
        "refund.failed" => GatewayRefundStatus::Failed,
        _ => GatewayRefundStatus::Pending,
    };
    let provider_refund_id = refund.id.as_ref().map(|id| match id {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    });
    // Two refunds of one transaction differ by Paystack's id or the processor's reference when
    // the event has them; otherwise the body itself tells them apart, and a redelivery (the same
    // body) is still the same event.
    let which = provider_refund_id
        .clone()
        .or_else(|| refund.refund_reference.clone().filter(|r| !r.is_empty()))
        .unwrap_or_else(|| hex::encode(&Sha256::digest(body)[..12]));
    let kind = GatewayEventKind::PaymentRefundUpdated {
        reference: PaymentReference {
            payment_id: PaymentId::parse(&refund.transaction_reference).ok(),
            session_id: None,
            provider_payment_id: Some(refund.transaction_reference.clone()),
        },
        amount: money(&refund.amount, &refund.currency).map_err(WebhookError::MalformedPayload)?,
        status,
        provider_refund_id,
    };
    Ok((format!("{}:{which}", refund.transaction_reference), kind))
}

/// Parses a verified webhook.
pub(crate) fn parse(body: &[u8]) -> Result<GatewayEvent, WebhookError> {
    let event: Event = serde_json::from_slice(body).map_err(malformed)?;
    let (about, kind) = match event.event.as_str() {
        "charge.success" => charge_kind(event.data)?,
        "refund.processed" | "refund.failed" | "refund.pending" | "refund.processing" => refund_kind(&event.event, event.data, body)?,
        _ => (hex::encode(Sha256::digest(body)), GatewayEventKind::Ignored),
    };
    Ok(GatewayEvent {
        event_id: format!("{}:{about}", event.event),
        event_type: event.event,
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PAYMENT: &str = "0190f0a4-3b5c-7cde-8f00-112233445566";

    #[test]
    fn a_successful_charge_is_a_payment_in_its_subunits() -> Result<(), WebhookError> {
        let body = json!({"event": "charge.success", "data": {"id": 302961, "domain": "live", "status": "success", "reference": PAYMENT,
            "amount": 10000, "currency": "GHS", "metadata": {"payment_id": PAYMENT}, "customer": {"email": "a@b.c"}}});
        let event = parse(body.to_string().as_bytes())?;
        assert_eq!(event.event_id, format!("charge.success:{PAYMENT}"));
        let GatewayEventKind::PaymentSucceeded { reference, amount } = event.kind else {
            panic!("wrong kind: {:?}", event.kind);
        };
        assert_eq!(amount, Some(Money::from_minor(10_000, Currency::Ghs)));
        assert_eq!(reference.payment_id.map(|p| p.to_string()).as_deref(), Some(PAYMENT));
        assert_eq!(reference.session_id.as_deref(), Some(PAYMENT));
        Ok(())
    }

    #[test]
    fn refund_events_name_the_transaction_and_amount() -> Result<(), WebhookError> {
        let body = json!({"event": "refund.processed", "data": {"status": "processed", "transaction_reference": PAYMENT,
            "refund_reference": "132013318360", "amount": "5000", "currency": "NGN", "processor": "mpgs_zen", "domain": "live"}});
        let event = parse(body.to_string().as_bytes())?;
        assert_eq!(event.event_id, format!("refund.processed:{PAYMENT}:132013318360"));
        assert!(matches!(
            event.kind,
            GatewayEventKind::PaymentRefundUpdated { status: GatewayRefundStatus::Succeeded, amount, .. } if amount == Money::from_minor(5000, Currency::Ngn)
        ));
        let pending = json!({"event": "refund.pending", "data": {"status": "pending", "transaction_reference": PAYMENT,
            "refund_reference": null, "amount": 20000, "currency": "NGN"}});
        let first = parse(pending.to_string().as_bytes())?;
        assert!(matches!(
            first.kind,
            GatewayEventKind::PaymentRefundUpdated {
                status: GatewayRefundStatus::Pending,
                ..
            }
        ));
        assert_eq!(
            first.event_id,
            parse(pending.to_string().as_bytes())?.event_id,
            "a redelivery is the same event"
        );
        Ok(())
    }

    #[test]
    fn other_events_are_ignored_and_garbage_is_refused() -> Result<(), WebhookError> {
        let other = json!({"event": "transfer.success", "data": {"reference": "x"}});
        assert_eq!(parse(other.to_string().as_bytes())?.kind, GatewayEventKind::Ignored);
        assert!(parse(b"{}").is_err());
        let bad_amount = json!({"event": "charge.success", "data": {"reference": PAYMENT, "amount": -5, "currency": "NGN"}});
        assert!(parse(bad_amount.to_string().as_bytes()).is_err());
        let bad_currency = json!({"event": "charge.success", "data": {"reference": PAYMENT, "amount": 5, "currency": "JPY"}});
        assert!(parse(bad_currency.to_string().as_bytes()).is_err());
        Ok(())
    }

    #[test]
    fn refund_statuses_map_to_ours() {
        assert_eq!(refund_status("processed"), GatewayRefundStatus::Succeeded);
        assert_eq!(refund_status("failed"), GatewayRefundStatus::Failed);
        for pending in ["pending", "processing", "needs-attention"] {
            assert_eq!(refund_status(pending), GatewayRefundStatus::Pending);
        }
    }
}
