//! What is valid input, written into the OpenAPI document from the same constants the domain
//! checks, so that generated clients and fuzzers know it: patterns, ranges, lengths and enums for
//! amounts, currencies, free text, limits, cursors and idempotency keys.
//!
//! The rules are applied to the generated document by property and parameter name, one table for
//! the whole API, so a field means the same everywhere (`amount`, `currency`, `reason`).

use application::ports::store::InboxOutcome;
use domain::catalog::{Product, Quantity, Stock};
use domain::follow_up::FollowUpState;
use domain::money::Currency;
use domain::order::{Order, OrderStatus};
use domain::user::{Email, Password};
use domain::webhook::{DeliveryStatus, EVENT_TYPES, EndpointUrl, WebhookEndpoint};
use serde_json::{Map, Value, json};

/// Text without control characters other than tab and line breaks (what `extract::Json` accepts).
const TEXT: &str = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$";
/// Such text with at least one character that is not white space.
const NON_BLANK_TEXT: &str = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$";
/// A positive decimal in major units with at most three decimals (no currency has more; each says
/// how many it has, which the schema cannot tie to the currency field).
const POSITIVE_AMOUNT: &str = "^([1-9][0-9]{0,15}(\\.[0-9]{1,3})?|0\\.([1-9][0-9]{0,2}|0[1-9][0-9]?|00[1-9]))$";
/// The same with an optional minus sign: an adjustment credits or debits.
const NONZERO_AMOUNT: &str = "^-?([1-9][0-9]{0,15}(\\.[0-9]{1,3})?|0\\.([1-9][0-9]{0,2}|0[1-9][0-9]?|00[1-9]))$";
/// The opaque `next_cursor` of a page: URL-safe base64 without padding (empty: the first page).
const CURSOR: &str = "^[A-Za-z0-9_-]{0,128}$";
/// 1 to 255 visible ASCII characters.
const IDEMPOTENCY_KEY: &str = "^[!-~]{1,255}$";
const PROVIDER: &str = "^[a-z0-9_-]{1,32}$";
/// Reasons, notes and destinations: the limits the use cases check.
const REASON_CHARS_MAX: usize = 500;
const NOTE_CHARS_MAX: usize = 280;
const DESTINATION_CHARS_MAX: usize = 200;
/// Refresh tokens are URL-safe base64 of 32 bytes; anything printable and short is accepted.
const TOKEN_CHARS_MAX: usize = 128;

/// The rule for property `name` of request schema `schema`, as a JSON Schema fragment.
fn property_rule(schema: &str, name: &str) -> Option<Value> {
    let currencies: Vec<&str> = Currency::ALL.iter().map(|c| c.code()).collect();
    Some(match name {
        "amount" if schema == "AdjustmentRequestBody" => json!({"pattern": NONZERO_AMOUNT, "maxLength": 21}),
        "amount" | "price" | "rate_per_minute" => json!({"pattern": POSITIVE_AMOUNT, "maxLength": 20}),
        "currency" => json!({"enum": currencies}),
        "quantity" => json!({"minimum": 1, "maximum": Quantity::MAX}),
        "stock" | "available" => json!({"minimum": 0, "maximum": Stock::UNITS_MAX}),
        "name" => json!({"pattern": NON_BLANK_TEXT, "minLength": 1, "maxLength": Product::NAME_LEN_MAX}),
        "description" if schema.starts_with("WebhookEndpoint") => {
            json!({"pattern": TEXT, "maxLength": WebhookEndpoint::DESCRIPTION_CHARS_MAX})
        }
        "description" if schema == "HoldRequestBody" => {
            json!({"pattern": TEXT, "maxLength": application::holds::DESCRIPTION_CHARS_MAX})
        }
        "description" => json!({"pattern": TEXT, "maxLength": Product::DESCRIPTION_LEN_MAX}),
        "expires_in_seconds" => json!({
            "minimum": application::holds::HOLD_TTL_MIN.whole_seconds(),
            "maximum": application::holds::HOLD_TTL_MAX.whole_seconds()
        }),
        // https, or plain http where the operator allows it (WEBHOOK_ALLOW_HTTP, and demo mode):
        // which scheme and where it may point are the server's to check (422).
        "url" => json!({"pattern": "^https?://[^\\s@#/?]+[^\\s#]*$", "maxLength": EndpointUrl::CHARS_MAX}),
        "events" => {
            let mut types: Vec<&str> = EVENT_TYPES.iter().map(|kind| kind.name).collect();
            types.push("*");
            json!({"minItems": 1, "maxItems": EVENT_TYPES.len(), "items": {"type": "string", "enum": types}})
        }
        "overlap_seconds" => json!({"minimum": 0, "maximum": 604_800}),
        "reason" if schema == "AdjustmentRequestBody" || schema == "AdminReasonBody" || schema == "RefundAskBody" => {
            json!({"pattern": NON_BLANK_TEXT, "minLength": 1, "maxLength": REASON_CHARS_MAX})
        }
        "reason" => json!({"pattern": TEXT, "maxLength": REASON_CHARS_MAX}),
        "items" => json!({"minItems": 1, "maxItems": Order::ITEMS_MAX}),
        "note" if schema == "RefundDeclineBody" => json!({
            "pattern": NON_BLANK_TEXT,
            "minLength": 1,
            "maxLength": domain::refund_request::TEXT_CHARS_MAX
        }),
        "note" => json!({"pattern": TEXT, "maxLength": NOTE_CHARS_MAX}),
        "reference" => json!({"pattern": TEXT, "maxLength": REASON_CHARS_MAX}),
        "destination" => json!({"pattern": NON_BLANK_TEXT, "minLength": 1, "maxLength": DESTINATION_CHARS_MAX}),
        "email" | "to_email" => json!({"format": "email", "maxLength": Email::LEN_MAX}),
        "password" => json!({"pattern": TEXT, "minLength": Password::LEN_MIN, "maxLength": Password::BYTES_MAX}),
        "refresh_token" => json!({"pattern": "^[!-~]*$", "maxLength": TOKEN_CHARS_MAX}),
        "provider" => json!({"pattern": PROVIDER}),
        _ => return None,
    })
}

/// The rule for a parameter of this name.
fn parameter_rule(path: &str, name: &str) -> Option<Value> {
    let currencies: Vec<&str> = Currency::ALL.iter().map(|c| c.code()).collect();
    let statuses: Vec<&str> = OrderStatus::ALL.iter().map(|s| s.as_str()).collect();
    let states: Vec<&str> = [FollowUpState::Stuck, FollowUpState::Pending, FollowUpState::Done]
        .iter()
        .map(|s| s.as_str())
        .collect();
    Some(match name {
        "limit" => json!({"minimum": 1, "maximum": application::pagination::PageRequest::LIMIT_MAX}),
        "cursor" => json!({"pattern": CURSOR}),
        "currency" => json!({"enum": currencies}),
        "Idempotency-Key" => json!({"pattern": IDEMPOTENCY_KEY}),
        "status" if path == "/api/v1/payments" => {
            json!({"enum": domain::payment::PaymentStatus::ALL.map(domain::payment::PaymentStatus::as_str)})
        }
        "kind" if path == "/api/v1/payments" => json!({"enum": ["top_up", "order"]}),
        "status" if path == "/api/v1/admin/payments" => {
            json!({"enum": domain::payment::PaymentStatus::ALL.map(domain::payment::PaymentStatus::as_str)})
        }
        "status" if path == "/api/v1/admin/refunds" => json!({"enum": ["pending", "succeeded", "failed"]}),
        "status" if path == "/api/v1/refund-requests" => {
            json!({"enum": domain::refund_request::RefundRequestStatus::ALL.map(domain::refund_request::RefundRequestStatus::as_str)})
        }
        "active" if path == "/api/v1/admin/inventory" => json!({"enum": ["true", "false"]}),
        "kind" if path == "/api/v1/admin/journal" => {
            json!({"enum": domain::ledger::TransactionKind::ALL.map(domain::ledger::TransactionKind::as_str)})
        }
        "status" if path == "/api/v1/admin/calls" => json!({"enum": ["active", "ended"]}),
        "kind" if path == "/api/v1/admin/payments" => json!({"enum": ["top_up", "order"]}),
        "provider" if path.starts_with("/api/v1/admin/") => json!({"pattern": PROVIDER}),
        "role" if path == "/api/v1/admin/users" => json!({"enum": ["customer", "merchant", "admin"]}),
        "status" if path == "/api/v1/admin/users" => json!({"enum": ["active", "suspended"]}),
        "email" if path == "/api/v1/admin/users" => json!({"format": "email", "maxLength": Email::LEN_MAX}),
        "status" if path == "/api/v1/admin/withdrawals" => {
            json!({"enum": domain::withdrawal::WithdrawalStatus::ALL.map(domain::withdrawal::WithdrawalStatus::as_str)})
        }
        "status" if path.ends_with("/deliveries") => {
            json!({"enum": DeliveryStatus::ALL.map(DeliveryStatus::as_str)})
        }
        "event_type" if path == "/api/v1/admin/webhook-events" => {
            json!({"pattern": "^[^\\u0000-\\u001F\\u007F-\\u009F]+$", "minLength": 1, "maxLength": 255})
        }
        "q" if path == "/api/v1/products" => {
            json!({"pattern": "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u001F\\u007F-\\u009F]*$", "minLength": 1, "maxLength": domain::catalog::ProductSearch::CHARS_MAX})
        }
        "outcome" if path == "/api/v1/admin/webhook-events" => json!({"enum": InboxOutcome::KINDS}),
        "event_type" => json!({"enum": EVENT_TYPES.iter().map(|kind| kind.name).collect::<Vec<_>>()}),
        "status" => json!({"enum": statuses}),
        "state" => json!({"enum": states}),
        _ => return None,
    })
}

/// The request schemas, by name: response schemas describe what the API sends and keep theirs.
const REQUEST_SCHEMAS: &[&str] = &[
    "RegisterRequest",
    "LoginRequest",
    "RefreshRequest",
    "TopUpRequestBody",
    "WithdrawalRequestBody",
    "TransferRequestBody",
    "ProductRequest",
    "ProductPatch",
    "StockRequest",
    "OrderItemRequest",
    "OrderRequest",
    "RefundRequestBody",
    "RefundAskBody",
    "RefundDeclineBody",
    "CallRequest",
    "AdjustmentRequestBody",
    "WebhookEndpointRequest",
    "WebhookEndpointPatch",
    "RollSecretRequest",
    "HoldRequestBody",
    "CaptureRequestBody",
    "WithdrawalDecisionBody",
    "PayAgainRequest",
    "OrderCaptureRequest",
    "AdminReasonBody",
];

/// Merges `rule` into a (possibly nullable) property or parameter schema.
fn merge(schema: &mut Value, rule: &Value) {
    let (Some(schema), Some(rule)) = (schema.as_object_mut(), rule.as_object()) else {
        return;
    };
    for (key, value) in rule {
        schema.insert(key.clone(), value.clone());
    }
    // An enum of a nullable field must admit null too (JSON Schema checks `enum` on its own).
    let nullable = schema
        .get("type")
        .and_then(Value::as_array)
        .is_some_and(|t| t.iter().any(|t| t == "null"));
    if nullable && let Some(Value::Array(values)) = schema.get_mut("enum") {
        values.push(Value::Null);
    }
}

/// A transfer names its recipient by exactly one of id and e-mail address.
fn one_recipient(transfer: &mut Value) {
    let Some(transfer) = transfer.as_object_mut() else {
        return;
    };
    for field in ["to_user_id", "to_email"] {
        if let Some(types) = transfer
            .get_mut("properties")
            .and_then(|p| p.get_mut(field))
            .and_then(|f| f.get_mut("type"))
        {
            *types = json!("string");
        }
    }
    transfer.insert(
        "oneOf".to_owned(),
        json!([{"required": ["to_user_id"], "not": {"required": ["to_email"]}}, {"required": ["to_email"], "not": {"required": ["to_user_id"]}}]),
    );
}

/// Writes the rules into the document.
pub(crate) fn apply(document: &mut Value) {
    if let Some(transfer) = document.pointer_mut("/components/schemas/TransferRequestBody") {
        one_recipient(transfer);
    }
    if let Some(schemas) = document.pointer_mut("/components/schemas").and_then(Value::as_object_mut) {
        for name in REQUEST_SCHEMAS {
            let properties = schemas
                .get_mut(*name)
                .and_then(|s| s.get_mut("properties"))
                .and_then(Value::as_object_mut);
            for (property, schema) in properties.into_iter().flat_map(Map::iter_mut) {
                if let Some(rule) = property_rule(name, property) {
                    merge(schema, &rule);
                }
            }
        }
    }
    let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    let operations = paths.iter_mut().flat_map(|(path, item)| {
        let operations = item.as_object_mut().into_iter().flat_map(|item| item.values_mut());
        operations.map(move |operation| (path.as_str(), operation))
    });
    for (path, operation) in operations {
        let parameters = operation.get_mut("parameters").and_then(Value::as_array_mut);
        for parameter in parameters.into_iter().flatten() {
            let name = parameter.get("name").and_then(Value::as_str);
            let Some(rule) = name.and_then(|name| parameter_rule(path, name)) else {
                continue;
            };
            if let Some(schema) = parameter.get_mut("schema") {
                merge(schema, &rule);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    /// Rules utoipa's model cannot hold reach the served document (they were once dropped when
    /// the document was parsed back into that model).
    #[test]
    fn rules_beyond_utoipas_model_reach_the_served_document() {
        let document = crate::openapi::document();
        let schemas = &document["components"]["schemas"];
        let events = &schemas["WebhookEndpointRequest"]["properties"]["events"];
        assert_eq!(events["items"]["type"], "string");
        assert!(
            events["items"]["enum"]
                .as_array()
                .is_some_and(|types| types.contains(&"order.paid".into())),
            "{events}"
        );
        assert_eq!(events["minItems"], 1);
        let recipients = schemas["TransferRequestBody"]["oneOf"].as_array().map(Vec::len);
        assert_eq!(recipients, Some(2), "a transfer names exactly one recipient");
    }
}
