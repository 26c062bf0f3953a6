//! Stripe events as gateway events.
//!
//! Events are read leniently, field by field, rather than through async-stripe's generated event
//! types: a webhook endpoint sends objects in the API version it was created with, and the
//! generated types refuse objects that lack a field of the version the library pins. The few
//! fields used here are stable across versions.

use std::collections::HashMap;

use application::ports::gateway::{GatewayEvent, GatewayEventKind, GatewayRefundStatus, PaymentReference, RefundUpdate, WebhookError};
use domain::ids::{PaymentId, RefundId};
use domain::money::{Currency, Money};
use serde::Deserialize;

#[derive(Deserialize)]
struct Event {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    data: Data,
}

#[derive(Deserialize)]
struct Data {
    object: serde_json::Value,
}

/// An id field that may arrive as a string or, when expanded, as an object with an `id`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Expandable {
    Id(String),
    Object { id: String },
}

impl Expandable {
    fn id(self) -> String {
        match self {
            Expandable::Id(id) | Expandable::Object { id } => id,
        }
    }
}

#[derive(Deserialize)]
struct CheckoutSessionObject {
    id: String,
    amount_total: Option<i64>,
    currency: Option<String>,
    client_reference_id: Option<String>,
    #[serde(default)]
    metadata: Option<HashMap<String, String>>,
    payment_intent: Option<Expandable>,
    payment_status: Option<String>,
}

#[derive(Deserialize)]
struct PaymentIntentObject {
    id: String,
    amount_received: Option<i64>,
    amount: Option<i64>,
    currency: Option<String>,
    #[serde(default)]
    metadata: Option<HashMap<String, String>>,
    last_payment_error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct RefundObject {
    id: String,
    amount: Option<i64>,
    currency: Option<String>,
    status: Option<String>,
    #[serde(default)]
    metadata: Option<HashMap<String, String>>,
}

#[derive(Deserialize)]
struct RefundList {
    #[serde(default)]
    data: Vec<RefundObject>,
}

/// Since API version 2022-11-15 a charge carries `amount_refunded` and no `refunds` list.
#[derive(Deserialize)]
struct ChargeObject {
    payment_intent: Option<Expandable>,
    refunds: Option<RefundList>,
    amount_refunded: Option<i64>,
    currency: Option<String>,
}

#[derive(Deserialize)]
struct DisputeObject {
    amount: Option<i64>,
    currency: Option<String>,
    payment_intent: Option<Expandable>,
    reason: Option<String>,
}

fn malformed(error: impl std::fmt::Display) -> WebhookError {
    WebhookError::MalformedPayload(error.to_string())
}

fn object<T: for<'de> Deserialize<'de>>(value: serde_json::Value) -> Result<T, WebhookError> {
    serde_json::from_value(value).map_err(malformed)
}

fn money(minor: Option<i64>, currency: Option<&str>) -> Result<Option<Money>, WebhookError> {
    match (minor, currency) {
        (Some(minor), Some(code)) => Ok(Some(Money::from_minor(minor, Currency::parse(code).map_err(malformed)?))),
        _ => Ok(None),
    }
}

fn our_payment(metadata: Option<&HashMap<String, String>>) -> Option<PaymentId> {
    metadata.and_then(|m| m.get("payment_id")).and_then(|id| PaymentId::parse(id).ok())
}

pub(crate) fn refund_status(status: Option<&str>) -> GatewayRefundStatus {
    match status {
        Some("succeeded") => GatewayRefundStatus::Succeeded,
        Some("failed" | "canceled") => GatewayRefundStatus::Failed,
        // pending, requires_action, or anything newer: not settled yet.
        _ => GatewayRefundStatus::Pending,
    }
}

fn refund_update(refund: RefundObject) -> Result<RefundUpdate, WebhookError> {
    Ok(RefundUpdate {
        refund_id: refund
            .metadata
            .as_ref()
            .and_then(|m| m.get("refund_id"))
            .and_then(|id| RefundId::parse(id).ok()),
        amount: money(refund.amount, refund.currency.as_deref())?,
        status: refund_status(refund.status.as_deref()),
        provider_refund_id: refund.id,
    })
}

fn session_kind(kind: &str, value: serde_json::Value) -> Result<GatewayEventKind, WebhookError> {
    let session: CheckoutSessionObject = object(value)?;
    let reference = PaymentReference {
        payment_id: session
            .client_reference_id
            .as_deref()
            .and_then(|id| PaymentId::parse(id).ok())
            .or_else(|| our_payment(session.metadata.as_ref())),
        session_id: Some(session.id),
        provider_payment_id: session.payment_intent.map(Expandable::id),
    };
    let amount = money(session.amount_total, session.currency.as_deref())?;
    Ok(match kind {
        "checkout.session.completed" => {
            let paid = matches!(session.payment_status.as_deref(), Some("paid" | "no_payment_required"));
            GatewayEventKind::CheckoutCompleted { reference, amount, paid }
        }
        "checkout.session.async_payment_succeeded" => GatewayEventKind::PaymentSucceeded { reference, amount },
        "checkout.session.async_payment_failed" => GatewayEventKind::PaymentFailed {
            reference,
            reason: "the delayed payment failed".into(),
        },
        _ => GatewayEventKind::CheckoutExpired { reference },
    })
}

fn payment_intent_kind(kind: &str, value: serde_json::Value) -> Result<GatewayEventKind, WebhookError> {
    let intent: PaymentIntentObject = object(value)?;
    let reference = PaymentReference {
        payment_id: our_payment(intent.metadata.as_ref()),
        session_id: None,
        provider_payment_id: Some(intent.id),
    };
    Ok(match kind {
        "payment_intent.succeeded" => {
            let amount = money(intent.amount_received.or(intent.amount), intent.currency.as_deref())?;
            GatewayEventKind::PaymentSucceeded { reference, amount }
        }
        _ => {
            let reason = intent
                .last_payment_error
                .as_ref()
                .and_then(|e| e.get("message"))
                .and_then(|m| m.as_str())
                .unwrap_or("the payment attempt failed");
            // With Checkout a failed attempt leaves the session open for another card.
            GatewayEventKind::PaymentAttemptFailed {
                reference,
                reason: reason.to_owned(),
            }
        }
    })
}

pub(crate) fn parse(body: &[u8]) -> Result<GatewayEvent, WebhookError> {
    let event: Event = serde_json::from_slice(body).map_err(malformed)?;
    let value = event.data.object;
    let kind = match event.kind.as_str() {
        "checkout.session.completed"
        | "checkout.session.async_payment_succeeded"
        | "checkout.session.async_payment_failed"
        | "checkout.session.expired" => session_kind(&event.kind, value)?,
        "payment_intent.succeeded" | "payment_intent.payment_failed" => payment_intent_kind(&event.kind, value)?,
        "charge.refunded" => {
            let charge: ChargeObject = object(value)?;
            let refunds = charge
                .refunds
                .map(|list| list.data)
                .unwrap_or_default()
                .into_iter()
                .map(refund_update)
                .collect::<Result<_, _>>()?;
            let reference = PaymentReference {
                provider_payment_id: charge.payment_intent.map(Expandable::id),
                ..PaymentReference::default()
            };
            let refunded_total = money(charge.amount_refunded, charge.currency.as_deref())?;
            GatewayEventKind::Refunded {
                reference,
                refunds,
                refunded_total,
            }
        }
        "refund.created" | "refund.updated" | "refund.failed" | "charge.refund.updated" => {
            GatewayEventKind::RefundUpdated(refund_update(object(value)?)?)
        }
        "charge.dispute.created" => {
            let dispute: DisputeObject = object(value)?;
            GatewayEventKind::DisputeOpened {
                reference: PaymentReference {
                    provider_payment_id: dispute.payment_intent.map(Expandable::id),
                    ..PaymentReference::default()
                },
                amount: money(dispute.amount, dispute.currency.as_deref())?,
                reason: dispute.reason.unwrap_or_else(|| "unspecified".into()),
            }
        }
        _ => GatewayEventKind::Ignored,
    };
    Ok(GatewayEvent {
        event_id: event.id,
        event_type: event.kind,
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(kind: &str, object: serde_json::Value) -> Vec<u8> {
        json!({"id": "evt_1", "object": "event", "type": kind, "created": 1, "livemode": false, "pending_webhooks": 1, "data": {"object": object}})
            .to_string()
            .into_bytes()
    }

    const PAYMENT: &str = "0190f0a4-3b5c-7cde-8f00-112233445566";

    #[test]
    fn a_completed_session_names_our_payment_its_intent_and_amount() -> Result<(), WebhookError> {
        let session = json!({"id": "cs_1", "object": "checkout.session", "amount_total": 2500, "currency": "usd",
            "client_reference_id": PAYMENT, "payment_intent": "pi_1", "payment_status": "paid", "status": "complete"});
        let parsed = parse(&event("checkout.session.completed", session))?;
        let GatewayEventKind::CheckoutCompleted { reference, amount, paid } = parsed.kind else {
            panic!("wrong kind: {:?}", parsed.kind);
        };
        assert!(paid);
        assert_eq!(amount, Some(Money::from_minor(2500, Currency::Usd)));
        assert_eq!(reference.payment_id.map(|p| p.to_string()).as_deref(), Some(PAYMENT));
        assert_eq!(
            (reference.session_id.as_deref(), reference.provider_payment_id.as_deref()),
            (Some("cs_1"), Some("pi_1"))
        );
        Ok(())
    }

    #[test]
    fn an_unpaid_completed_session_awaits_its_async_payment() -> Result<(), WebhookError> {
        let session = json!({"id": "cs_1", "payment_status": "unpaid", "payment_intent": {"id": "pi_2", "object": "payment_intent"}});
        let parsed = parse(&event("checkout.session.completed", session))?;
        assert!(
            matches!(parsed.kind, GatewayEventKind::CheckoutCompleted { paid: false, ref reference, .. } if reference.provider_payment_id.as_deref() == Some("pi_2"))
        );
        Ok(())
    }

    #[test]
    fn a_delayed_payment_settles_or_fails_the_session_later() -> Result<(), WebhookError> {
        let session = json!({"id": "cs_3", "amount_total": 2500, "currency": "usd", "metadata": {"payment_id": PAYMENT},
            "payment_intent": "pi_3", "payment_status": "paid"});
        let succeeded = parse(&event("checkout.session.async_payment_succeeded", session.clone()))?;
        let GatewayEventKind::PaymentSucceeded { reference, amount } = succeeded.kind else {
            panic!("wrong kind: {:?}", succeeded.kind);
        };
        assert_eq!(amount, Some(Money::from_minor(2500, Currency::Usd)));
        assert_eq!(reference.payment_id.map(|p| p.to_string()).as_deref(), Some(PAYMENT));
        assert_eq!(reference.provider_payment_id.as_deref(), Some("pi_3"));
        let failed = parse(&event("checkout.session.async_payment_failed", session.clone()))?;
        assert!(
            matches!(failed.kind, GatewayEventKind::PaymentFailed { ref reference, .. } if reference.session_id.as_deref() == Some("cs_3"))
        );
        let expired = parse(&event("checkout.session.expired", session))?;
        assert!(matches!(expired.kind, GatewayEventKind::CheckoutExpired { .. }));
        Ok(())
    }

    #[test]
    fn refunds_disputes_and_intents_map_to_their_kinds() -> Result<(), WebhookError> {
        let refund = json!({"id": "re_1", "amount": 500, "currency": "usd", "status": "succeeded", "metadata": {"refund_id": PAYMENT}});
        let parsed = parse(&event("refund.updated", refund.clone()))?;
        assert!(matches!(
            parsed.kind,
            GatewayEventKind::RefundUpdated(RefundUpdate {
                status: GatewayRefundStatus::Succeeded,
                refund_id: Some(_),
                ..
            })
        ));
        let charge =
            json!({"id": "ch_1", "payment_intent": "pi_1", "amount_refunded": 500, "refunds": {"object": "list", "data": [refund]}});
        let parsed = parse(&event("charge.refunded", charge))?;
        assert!(matches!(parsed.kind, GatewayEventKind::Refunded { ref refunds, .. } if refunds.len() == 1));
        // The current API version: the total, and no list.
        let charge = json!({"id": "ch_1", "payment_intent": "pi_1", "amount_refunded": 700, "currency": "usd"});
        let GatewayEventKind::Refunded {
            refunds,
            refunded_total,
            reference,
        } = parse(&event("charge.refunded", charge))?.kind
        else {
            panic!("not a refund event");
        };
        assert_eq!((refunds.len(), refunded_total), (0, Some(Money::from_minor(700, Currency::Usd))));
        assert_eq!(reference.provider_payment_id.as_deref(), Some("pi_1"));
        let dispute = json!({"id": "dp_1", "amount": 2500, "currency": "usd", "payment_intent": "pi_1", "reason": "fraudulent"});
        assert!(matches!(
            parse(&event("charge.dispute.created", dispute))?.kind,
            GatewayEventKind::DisputeOpened { .. }
        ));
        let failed =
            json!({"id": "pi_1", "metadata": {"payment_id": PAYMENT}, "last_payment_error": {"message": "Your card was declined."}});
        assert!(
            matches!(parse(&event("payment_intent.payment_failed", failed))?.kind, GatewayEventKind::PaymentAttemptFailed { ref reason, .. } if reason == "Your card was declined.")
        );
        assert_eq!(
            parse(&event("customer.created", json!({"id": "cus_1"})))?.kind,
            GatewayEventKind::Ignored
        );
        Ok(())
    }

    #[test]
    fn malformed_events_are_refused() {
        assert!(parse(b"not json").is_err());
        assert!(parse(&event("checkout.session.completed", json!({"no_id": true}))).is_err());
        assert!(
            parse(&event(
                "checkout.session.completed",
                json!({"id": "cs_1", "amount_total": 1, "currency": "zzz"})
            ))
            .is_err()
        );
    }
}
