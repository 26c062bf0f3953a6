//! The OpenAPI document, generated from the handlers' annotations (utoipa), served at
//! `/api/v1/openapi.json`, with Swagger UI (vendored: no internet needed) at `/docs/`.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{admin, auth, calls, catalog, ops, orders, simulator, wallets, webhooks};

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let scheme = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build();
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// Operation ids default to the handler's name, which repeats across modules (`list`, `show`);
/// prefixing the tag makes them unique, as OpenAPI requires.
struct UniqueOperationIds;

impl Modify for UniqueOperationIds {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let operations = [&mut item.get, &mut item.post, &mut item.put, &mut item.patch, &mut item.delete];
            for operation in operations.into_iter().flatten() {
                let tag = operation.tags.as_ref().and_then(|tags| tags.first()).cloned().unwrap_or_default();
                if let Some(id) = operation.operation_id.as_mut() {
                    *id = format!("{tag}_{id}");
                }
            }
        }
    }
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
        wallets::list, wallets::show, wallets::history, wallets::top_up, wallets::withdraw, wallets::withdrawal, wallets::payment,
        wallets::transfer, wallets::transfer_details,
        catalog::list, catalog::create, catalog::show, catalog::update, catalog::deactivate, catalog::set_stock, catalog::merchant_products,
        orders::create, orders::list_mine, orders::show, orders::cancel, orders::fulfil, orders::refund, orders::merchant_sales, orders::admin_list,
        calls::start, calls::end, calls::list,
        admin::adjust, admin::verify_ledger, admin::audit,
        webhooks::receive,
        simulator::show, simulator::pay, simulator::decline,
        ops::live, ops::ready, ops::metrics,
    ),
    modifiers(&BearerAuth, &UniqueOperationIds),
    tags(
        (name = "auth", description = "Accounts and tokens"),
        (name = "wallets", description = "Balances, history, top-ups, withdrawals and transfers"),
        (name = "catalog", description = "Products and stock"),
        (name = "orders", description = "Checkout, fulfilment and refunds"),
        (name = "calls", description = "Calls billed per started minute"),
        (name = "admin", description = "Adjustments, ledger verification, audit trail"),
        (name = "webhooks", description = "Signed events from card gateways"),
        (name = "simulator", description = "Hosted pages of the simulated card gateway (demo mode)"),
        (name = "ops", description = "Health"),
    )
)]
pub struct ApiDoc;
