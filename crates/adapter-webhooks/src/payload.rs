//! The body receivers get, and its signature.
//!
//! The body is serialised from structs (fields in declaration order) and the attributes in the
//! order given, never through `serde_json::Value`, whose map order depends on a crate feature: a
//! retry must send the very bytes the first attempt sent.

use application::ports::webhooks::OutgoingWebhook;
use serde::ser::{Serialize, SerializeMap, Serializer};
use time::UtcOffset;
use time::format_description::well_known::Rfc3339;

#[derive(serde::Serialize)]
struct Payload<'a> {
    id: String,
    #[serde(rename = "type")]
    event_type: &'a str,
    created: String,
    api_version: &'a str,
    data: Data<'a>,
}

#[derive(serde::Serialize)]
struct Data<'a> {
    object: Attributes<'a>,
}

/// The attributes as a JSON object, in their order.
struct Attributes<'a>(&'a [(String, String)]);

impl Serialize for Attributes<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// The JSON body of `webhook`; the same webhook always renders the same bytes.
///
/// # Errors
/// Only a creation time outside years 0 to 9999, which RFC 3339 cannot write.
pub fn render(webhook: &OutgoingWebhook) -> Result<Vec<u8>, String> {
    let created = webhook
        .created_at
        .to_offset(UtcOffset::UTC)
        .format(&Rfc3339)
        .map_err(|e| format!("the event's creation time cannot be written: {e}"))?;
    let payload = Payload {
        id: webhook.event_id.to_string(),
        event_type: &webhook.event_type,
        created,
        api_version: webhook.api_version,
        data: Data {
            object: Attributes(&webhook.object),
        },
    };
    serde_json::to_vec(&payload).map_err(|e| format!("the event cannot be serialised: {e}"))
}

/// The `payments-signature` value: `t=<signed_at>` and one `v1=` per secret, in order (only
/// `t=` if there is no secret, which no receiver will accept).
pub fn signature(webhook: &OutgoingWebhook, body: &[u8]) -> String {
    let secrets: Vec<&[u8]> = webhook.secrets.iter().map(String::as_bytes).collect();
    stripe_signature::sign_all(&secrets, webhook.signed_at.unix_timestamp(), body)
}

#[cfg(test)]
mod tests {
    use domain::ids::{EventId, WebhookDeliveryId};
    use time::macros::datetime;
    use uuid::Uuid;

    use super::*;

    fn webhook() -> OutgoingWebhook {
        OutgoingWebhook {
            url: "https://shop.example/hooks".into(),
            delivery_id: WebhookDeliveryId::from_uuid(Uuid::nil()),
            event_id: EventId::from_uuid(Uuid::from_u128(0x0190_f0a4_3b5c_7cde_8f00_1122_3344_5566)),
            event_type: "order.paid".into(),
            created_at: datetime!(2026-03-01 13:45:06.5 +01:00),
            api_version: "2026-11-29",
            object: vec![
                ("order_id".into(), "o_1".into()),
                ("amount".into(), "12.50".into()),
                ("currency".into(), "NGN".into()),
                ("note".into(), "says \"hi\"\n".into()),
            ],
            secrets: vec!["whsec_a".into(), "whsec_b".into()],
            signed_at: datetime!(2026-03-01 12:45:07 UTC),
        }
    }

    #[test]
    fn the_body_keeps_the_fields_in_order_in_utc() {
        let body = render(&webhook()).map(String::from_utf8);
        let expected = concat!(
            r#"{"id":"0190f0a4-3b5c-7cde-8f00-112233445566","type":"order.paid","#,
            r#""created":"2026-03-01T12:45:06.5Z","api_version":"2026-11-29","#,
            r#""data":{"object":{"order_id":"o_1","amount":"12.50","currency":"NGN","note":"says \"hi\"\n"}}}"#,
        );
        assert_eq!(body, Ok(Ok(expected.to_owned())));
    }

    #[test]
    fn the_same_webhook_renders_and_signs_the_same_bytes() {
        let first = render(&webhook()).unwrap_or_default();
        assert_eq!(render(&webhook()), Ok(first.clone()));
        let header = signature(&webhook(), &first);
        assert!(header.starts_with("t=1772369107,v1="), "{header}");
        assert_eq!(header.matches("v1=").count(), 2, "{header}");
        assert_eq!(signature(&webhook(), &first), header);
    }
}
