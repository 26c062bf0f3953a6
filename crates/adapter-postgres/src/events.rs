//! Domain events as outbox rows: the event's name in `event_type` and its attributes
//! (`DomainEvent::attributes`, the domain's own flat text form, the one merchants' webhooks carry)
//! as a JSON object in `payload`. The codec itself is the domain's (`DomainEvent::from_attributes`).

use std::collections::BTreeMap;

use application::ports::store::{StoreError, StoreResult};
use domain::events::DomainEvent;

use crate::mapping::corrupt;

/// The JSON payload of an event.
pub(crate) fn encode(event: &DomainEvent) -> StoreResult<String> {
    let attributes: BTreeMap<&str, String> = event.attributes().into_iter().collect();
    serde_json::to_string(&attributes).map_err(|error| StoreError::Unexpected(Box::new(error)))
}

pub(crate) fn decode(event_type: &str, payload: &str) -> StoreResult<DomainEvent> {
    let attributes: BTreeMap<String, String> =
        serde_json::from_str(payload).map_err(|error| corrupt(format!("outbox payload: {error}")))?;
    DomainEvent::from_attributes(event_type, &attributes).map_err(corrupt)
}

#[cfg(test)]
mod tests {
    use domain::ids::PaymentId;
    use domain::money::{Currency, Money};
    use uuid::Uuid;

    use super::*;

    #[test]
    fn an_event_survives_its_row() -> StoreResult<()> {
        let event = DomainEvent::PaymentSucceeded {
            payment_id: PaymentId::from_uuid(Uuid::from_u128(7)),
            amount: Money::from_minor(1_005, Currency::Kwd),
        };
        assert_eq!(decode(event.name(), &encode(&event)?)?, event);
        Ok(())
    }

    #[test]
    fn a_payload_that_is_not_an_event_is_corrupt() {
        assert!(matches!(decode("user.vanished", "{}"), Err(StoreError::Corrupt(_))));
        assert!(matches!(decode("payment.failed", "{}"), Err(StoreError::Corrupt(_))));
        assert!(matches!(decode("payment.failed", "[1]"), Err(StoreError::Corrupt(_))));
    }
}
