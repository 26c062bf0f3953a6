//! The OpenAPI document, generated from the handlers' annotations (utoipa), served at
//! `/api/v1/openapi.json`, with Swagger UI (vendored: no internet needed) at `/docs/`.

use utoipa::openapi::content::Content;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::Ref;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{
    admin, admin_reads, admin_withdrawals, auth, calls, catalog, checkout_return, holds, ops, orders, providers, refund_requests,
    simulator, statements, wallets, webhook_endpoints, webhooks,
};

mod rules;

/// The document as served: generated from the handlers, with the rules of valid input written in.
/// It is served as the JSON the rules made, not parsed back into utoipa's model, which cannot hold
/// every rule (the enum of an array's items, a `oneOf` of required fields) and would drop them.
pub fn document() -> serde_json::Value {
    let mut value = serde_json::to_value(ApiDoc::openapi()).expect("an OpenAPI document is JSON");
    rules::apply(&mut value);
    value
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let scheme = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build();
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// Operation ids default to the handler's name, which repeats across modules (`list`, `show`);
/// prefixing the tag makes them unique, as OpenAPI requires. The tag is written in snake case
/// (`refund_requests_approve`), since generated clients name their methods after the ids.
struct UniqueOperationIds;

impl Modify for UniqueOperationIds {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let operations = [&mut item.get, &mut item.post, &mut item.put, &mut item.patch, &mut item.delete];
            for operation in operations.into_iter().flatten() {
                let tag = operation.tags.as_ref().and_then(|tags| tags.first()).cloned().unwrap_or_default();
                let tag = tag.replace([' ', '-'], "_");
                if let Some(id) = operation.operation_id.as_mut() {
                    *id = format!("{tag}_{id}");
                }
            }
        }
    }
}

/// The answers any operation of a kind may give, added where a handler does not list them itself:
/// 401 wherever a token is required, 400/413/415/422 wherever a JSON body is read, 429 on every
/// rate-limited `/api` route.
struct CommonResponses;

fn problem_response(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content("application/problem+json", Content::new(Some(Ref::from_schema_name("Problem"))))
        .build()
}

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [&mut item.get, &mut item.post, &mut item.put, &mut item.patch, &mut item.delete];
            for operation in operations.into_iter().flatten() {
                let mut common: Vec<(&str, &str)> = Vec::new();
                if operation.security.as_ref().is_some_and(|s| !s.is_empty()) {
                    common.push(("401", "Missing, malformed, forged or expired access token"));
                }
                if operation.request_body.is_some() {
                    common.push(("400", "Malformed JSON"));
                    common.push(("413", "Body larger than the limit"));
                    common.push(("415", "Body is not application/json"));
                    common.push(("422", "A field is missing, of the wrong type or out of range (named in `errors`)"));
                }
                if path.starts_with("/api/") {
                    common.push(("429", "Rate limited; `Retry-After` says when to retry"));
                }
                let parameters = operation.parameters.as_deref().unwrap_or_default();
                let has = |name: &str| {
                    parameters
                        .iter()
                        .any(|p| matches!(p, utoipa::openapi::RefOr::T(p) if p.name == name))
                };
                if has("limit") || has("cursor") {
                    common.push(("400", "`limit` out of range, or a `cursor` this API did not hand out"));
                }
                if has("Idempotency-Key") {
                    common.push(("400", "A malformed `Idempotency-Key`"));
                    common.push((
                        "409",
                        "A request with this `Idempotency-Key` is still running (`idempotency_key_in_use`)",
                    ));
                    common.push((
                        "422",
                        "This `Idempotency-Key` was used for another request (`idempotency_key_reused`)",
                    ));
                }
                if path.contains("{currency}") {
                    common.push(("422", "An unsupported currency"));
                }
                if path.contains("{id}") || path.contains("{user_id}") {
                    common.push(("404", "No such resource of yours"));
                }
                for (status, description) in common {
                    let responses = &mut operation.responses.responses;
                    responses
                        .entry(status.to_owned())
                        .or_insert_with(|| problem_response(description).into());
                }
            }
        }
    }
}

/// One schema per event type of the catalogue (`WebhookEvent.order.paid`, ...), the body of a
/// delivery of that type, versioned by `api_version`, and `WebhookEvent`, any of them.
struct WebhookEventSchemas;

impl Modify for WebhookEventSchemas {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut any = Vec::new();
        for kind in domain::webhook::EVENT_TYPES {
            let name = format!("WebhookEvent.{}", kind.name);
            let schema = serde_json::json!({
                "type": "object",
                "description": kind.description,
                "required": ["id", "type", "created", "api_version", "data"],
                "properties": {
                    "id": {"type": "string", "format": "uuid", "description": "The event's id: the same on every delivery of it"},
                    "type": {"type": "string", "enum": [kind.name]},
                    "created": {"type": "string", "format": "date-time"},
                    "api_version": {"type": "string", "enum": [domain::webhook::API_VERSION]},
                    "data": {
                        "type": "object",
                        "required": ["object"],
                        "properties": {"object": object_schema(kind.object)},
                    },
                },
            });
            if let Ok(schema) = serde_json::from_value(schema) {
                components.schemas.insert(name.clone(), schema);
                any.push(serde_json::json!({"$ref": format!("#/components/schemas/{name}")}));
            }
        }
        let one_of = serde_json::json!({"oneOf": any, "description": "The body of a webhook delivery"});
        if let Ok(schema) = serde_json::from_value(one_of) {
            components.schemas.insert("WebhookEvent".to_owned(), schema);
        }
    }
}

/// The attributes of an event's object, every one a string (`?`: not always present).
fn object_schema(attributes: &[&str]) -> serde_json::Value {
    let properties: serde_json::Map<String, serde_json::Value> = attributes
        .iter()
        .map(|name| (name.trim_end_matches('?').to_owned(), serde_json::json!({"type": "string"})))
        .collect();
    let required: Vec<&str> = attributes.iter().filter(|name| !name.ends_with('?')).copied().collect();
    serde_json::json!({"type": "object", "properties": properties, "required": required, "additionalProperties": false})
}

#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "Payments API",
        version = "1.0.0",
        description = "Wallets on a double-entry ledger, a catalog with stock, orders paid by wallet or card, refunds and metered calls. \
Amounts are decimal strings in major units next to an ISO 4217 currency. Errors are RFC 7807 problem documents. \
POSTs that move money or create something accept an `Idempotency-Key` header."
    ),
    paths(
        auth::register, auth::login, auth::refresh, auth::logout, auth::me,
        wallets::list, wallets::show, wallets::history, wallets::top_up, wallets::withdraw, wallets::withdrawals, wallets::withdrawal, wallets::payments, wallets::payment,
        wallets::transfer, wallets::transfer_details,
        catalog::list, catalog::create, catalog::show, catalog::update, catalog::delete, catalog::set_stock, catalog::merchant_products,
        orders::create, orders::list_mine, orders::show, orders::cancel, orders::pay_again, orders::capture, orders::void, orders::fulfil, orders::refund, orders::merchant_sales, orders::admin_list,
        refund_requests::ask, refund_requests::list, refund_requests::show, refund_requests::approve, refund_requests::decline, refund_requests::withdraw,
        calls::start, calls::end, calls::list,
        holds::authorise, holds::show, holds::capture, holds::void,
        admin::adjust, admin::verify_ledger, admin::audit, admin::users, admin::user, admin::suspend, admin::reactivate, admin::actions, admin::cancel_order, admin::follow_ups,
        admin_reads::payments, admin_reads::payment, admin_reads::refunds, admin_reads::refund, admin_reads::inventory, admin_reads::wallets, admin_reads::wallet, admin_reads::journal, admin_reads::journal_transaction,
        admin_reads::transfers, admin_reads::transfer, admin_reads::calls, admin_reads::call, admin_reads::webhook_events, admin_reads::webhook_event,
        admin_withdrawals::list, admin_withdrawals::approve, admin_withdrawals::reject, admin_withdrawals::mark_paid, admin_withdrawals::mark_failed,
        statements::show,
        webhooks::receive,
        providers::list,
        webhook_endpoints::create, webhook_endpoints::list, webhook_endpoints::show, webhook_endpoints::update, webhook_endpoints::delete,
        webhook_endpoints::roll_secret, webhook_endpoints::test, webhook_endpoints::deliveries, webhook_endpoints::redeliver_range,
        webhook_endpoints::redeliver, webhook_endpoints::event_types,
        simulator::show, simulator::pay, simulator::decline,
        checkout_return::complete, checkout_return::cancelled,
        ops::live, ops::ready, ops::metrics,
    ),
    modifiers(&BearerAuth, &UniqueOperationIds, &CommonResponses, &WebhookEventSchemas),
    tags(
        (name = "auth", description = "Accounts and tokens"),
        (name = "wallets", description = "Balances, history, top-ups, withdrawals and transfers"),
        (name = "catalog", description = "Products and stock"),
        (name = "orders", description = "Checkout, fulfilment and refunds"),
        (name = "refund requests", description = "Buyers ask for money back; the merchant of the share or an admin approves (refunds) or declines"),
        (name = "calls", description = "Calls billed per started minute"),
        (name = "holds", description = "Customers authorise merchants to capture from their wallets, in parts, until the hold expires"),
        (name = "admin", description = "Adjustments, ledger verification, audit trail"),
        (name = "statements", description = "Merchants' statements from the ledger, as JSON or CSV"),
        (name = "webhooks", description = "Signed events from card gateways"),
        (name = "providers", description = "The card providers offered and the currencies they take"),
        (name = "webhook-endpoints", description = "Where merchants and the platform receive signed events, and their deliveries"),
        (name = "simulator", description = "Hosted pages of the simulated card gateway (demo mode)"),
        (name = "checkout", description = "Where card providers send the payer back"),
        (name = "ops", description = "Health"),
    )
)]
pub struct ApiDoc;
