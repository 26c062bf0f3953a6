//! The simulator's events, in the shape of Stripe's: the `checkout.session.*` events with the
//! session as `data.object`.

use application::ports::gateway::{GatewayEvent, GatewayEventKind, HostedSession, PaymentReference, WebhookError};
use domain::ids::PaymentId;
use domain::money::{Currency, Money};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

fn event(kind: &str, session: &HostedSession, payment_intent: &str, payment_status: &str, now: OffsetDateTime) -> String {
    json!({
        "id": format!("evt_sim_{}", Uuid::now_v7().simple()),
        "object": "event",
        "type": kind,
        "created": now.unix_timestamp(),
        "livemode": false,
        "data": {
            "object": {
                "id": session.session_id,
                "object": "checkout.session",
                "amount_total": session.amount.amount_minor(),
                "currency": session.amount.currency().code().to_ascii_lowercase(),
                "client_reference_id": session.payment_id.to_string(),
                "metadata": { "payment_id": session.payment_id.to_string() },
                "payment_intent": payment_intent,
                "payment_status": payment_status,
                "status": "complete",
            }
        }
    })
    .to_string()
}

pub(crate) fn completed(session: &HostedSession, payment_intent: &str, now: OffsetDateTime) -> String {
    event("checkout.session.completed", session, payment_intent, "paid", now)
}

/// A decline is final in the simulator: the payment failed (an order waits for the buyer to pay
/// again until its deadline).
pub(crate) fn declined(session: &HostedSession, payment_intent: &str, now: OffsetDateTime) -> String {
    event("checkout.session.async_payment_failed", session, payment_intent, "unpaid", now)
}

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

#[derive(Deserialize)]
struct CheckoutSessionObject {
    id: String,
    amount_total: Option<i64>,
    currency: Option<String>,
    client_reference_id: Option<String>,
    payment_intent: Option<String>,
    payment_status: Option<String>,
}

pub(crate) fn parse(body: &[u8]) -> Result<GatewayEvent, WebhookError> {
    let malformed = |e: serde_json::Error| WebhookError::MalformedPayload(e.to_string());
    let event: Event = serde_json::from_slice(body).map_err(malformed)?;
    let kind = match event.kind.as_str() {
        "checkout.session.completed" | "checkout.session.async_payment_failed" | "checkout.session.expired" => {
            let session: CheckoutSessionObject = serde_json::from_value(event.data.object).map_err(malformed)?;
            session_kind(&event.kind, session)?
        }
        _ => GatewayEventKind::Ignored,
    };
    Ok(GatewayEvent {
        event_id: event.id,
        event_type: event.kind,
        kind,
    })
}

fn session_kind(kind: &str, session: CheckoutSessionObject) -> Result<GatewayEventKind, WebhookError> {
    let reference = PaymentReference {
        payment_id: session.client_reference_id.as_deref().and_then(|id| PaymentId::parse(id).ok()),
        session_id: Some(session.id),
        provider_payment_id: session.payment_intent,
    };
    let amount = match (session.amount_total, session.currency.as_deref()) {
        (Some(minor), Some(code)) => {
            let currency = Currency::parse(code).map_err(|e| WebhookError::MalformedPayload(e.to_string()))?;
            Some(Money::from_minor(minor, currency))
        }
        _ => None,
    };
    Ok(match kind {
        "checkout.session.completed" => GatewayEventKind::CheckoutCompleted {
            reference,
            amount,
            paid: session.payment_status.as_deref() == Some("paid"),
        },
        "checkout.session.async_payment_failed" => GatewayEventKind::PaymentFailed {
            reference,
            reason: "the card was declined".into(),
        },
        _ => GatewayEventKind::CheckoutExpired { reference },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use application::ports::gateway::HostedSessionState;

    fn session() -> HostedSession {
        HostedSession {
            session_id: "cs_sim_1".into(),
            payment_id: PaymentId::from_uuid(Uuid::from_u128(9)),
            amount: Money::from_minor(1400, Currency::Usd),
            description: "Order".into(),
            lines: Vec::new(),
            customer_email: "ann@example.com".into(),
            expires_at: OffsetDateTime::UNIX_EPOCH,
            state: HostedSessionState::Open,
        }
    }

    #[test]
    fn a_completed_session_parses_back_into_a_paid_checkout() -> Result<(), WebhookError> {
        let body = completed(&session(), "pi_sim_1", OffsetDateTime::UNIX_EPOCH);
        let event = parse(body.as_bytes())?;
        assert_eq!(event.event_type, "checkout.session.completed");
        let GatewayEventKind::CheckoutCompleted { reference, amount, paid } = event.kind else {
            panic!("wrong kind: {:?}", event.kind);
        };
        assert!(paid);
        assert_eq!(amount, Some(Money::from_minor(1400, Currency::Usd)));
        assert_eq!(reference.payment_id, Some(session().payment_id));
        assert_eq!(reference.provider_payment_id.as_deref(), Some("pi_sim_1"));
        Ok(())
    }

    #[test]
    fn unknown_types_are_ignored_and_garbage_is_malformed() -> Result<(), WebhookError> {
        let other = br#"{"id":"evt_1","type":"customer.created","data":{"object":{}}}"#;
        assert_eq!(parse(other)?.kind, GatewayEventKind::Ignored);
        assert!(matches!(parse(b"{not json"), Err(WebhookError::MalformedPayload(_))));
        assert!(matches!(parse(br#"{"id":"evt_1"}"#), Err(WebhookError::MalformedPayload(_))));
        Ok(())
    }
}
