//! The card providers this server offers, so clients know what `provider` may name.

use actix_web::HttpResponse;
use application::ports::store::UnitOfWork;
use domain::money::Currency;

use super::State;
use crate::dto::{ProviderResponse, ProviderRouteResponse, ProvidersResponse};

/// The configured card providers with the currencies each takes, and per currency the providers
/// a card payment goes to, in order (the first unless a top-up or order names `provider`). Public:
/// it says nothing about any account.
#[utoipa::path(get, path = "/api/v1/providers", tag = "providers",
    responses((status = 200, description = "The card providers offered", body = ProvidersResponse)))]
pub async fn list<U: UnitOfWork>(state: State<U>) -> HttpResponse {
    let gateways = &state.app.gateways;
    let providers = gateways
        .providers()
        .map(|name| ProviderResponse {
            name: name.to_string(),
            currencies: gateways.currencies(name).iter().map(|c| c.code().to_owned()).collect(),
        })
        .collect();
    let routes = Currency::ALL
        .into_iter()
        .filter_map(|currency| {
            let candidates = gateways.candidates(currency);
            (!candidates.is_empty()).then(|| ProviderRouteResponse {
                currency: currency.code().to_owned(),
                providers: candidates.iter().map(|g| g.provider().to_string()).collect(),
            })
        })
        .collect();
    HttpResponse::Ok().json(ProvidersResponse { providers, routes })
}
