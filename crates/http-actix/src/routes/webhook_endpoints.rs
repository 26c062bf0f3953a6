//! Outbound webhook endpoints: merchants register where their events go, admins the platform's
//! (every event); their deliveries, redelivery, test events and the catalogue of event types.
//!
//! Every delivery is a POST of `{"id", "type", "created", "api_version", "data": {"object"}}`
//! signed with the endpoint's secret: `Payments-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of
//! "<t>.<body>">`, one `v1` per secret while a rolled secret still signs; `Payments-Event-Id`
//! lets receivers deduplicate, since an event may arrive more than once.

use actix_web::{HttpResponse, web};
use application::ports::store::{DeliveryFilter, UnitOfWork};
use application::webhooks::{EndpointUpdate, NewEndpoint};
use domain::ids::{WebhookDeliveryId, WebhookEndpointId};
use domain::webhook::{DeliveryStatus, EVENT_TYPES};
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::IntoParams;

use super::State;
use crate::dto::{
    PageOf, RedeliverRangeRequest, RedeliveryResponse, RollSecretRequest, WebhookDeliveryResponse, WebhookEndpointPatch,
    WebhookEndpointRequest, WebhookEndpointResponse, WebhookEventTypeResponse,
};
use crate::extract::{Authenticated, Json, PageQuery, path_id};
use crate::problem::{ApiError, Problem};
use crate::respond::ok;

/// Registers an endpoint. The answer carries its signing secret, shown this once.
#[utoipa::path(post, path = "/api/v1/webhook-endpoints", tag = "webhook-endpoints", security(("bearer" = [])),
    request_body = WebhookEndpointRequest,
    responses(
        (status = 201, description = "Registered, with its secret", body = WebhookEndpointResponse),
        (status = 403, description = "Customers have no endpoints", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A URL that is not https, or that points where webhooks may not go; an unknown event type", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create<U: UnitOfWork>(
    state: State<U>,
    caller: Authenticated,
    body: Json<WebhookEndpointRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.value;
    let new = NewEndpoint {
        url: body.url,
        events: body.events,
        description: body.description,
    };
    let endpoint = state.app.create_webhook_endpoint(&caller.0, new).await?;
    Ok(HttpResponse::Created().json(WebhookEndpointResponse::with_secret(&endpoint)))
}

/// A merchant's endpoints, or every endpoint for an admin; newest first.
#[utoipa::path(get, path = "/api/v1/webhook-endpoints", tag = "webhook-endpoints", security(("bearer" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "A page of endpoints (without secrets)", body = PageOf<WebhookEndpointResponse>),
        (status = 403, description = "Customers have no endpoints", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list<U: UnitOfWork>(state: State<U>, caller: Authenticated, query: web::Query<PageQuery>) -> Result<HttpResponse, ApiError> {
    let page = state.app.webhook_endpoints(&caller.0, &query.page()?).await?;
    Ok(ok(&PageOf::from_page(&page, WebhookEndpointResponse::hidden)))
}

#[utoipa::path(get, path = "/api/v1/webhook-endpoints/{id}", tag = "webhook-endpoints", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Endpoint id")),
    responses(
        (status = 200, description = "The endpoint (without its secret)", body = WebhookEndpointResponse),
        (status = 403, description = "Customers have no endpoints", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn show<U: UnitOfWork>(state: State<U>, caller: Authenticated, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path, WebhookEndpointId::parse)?;
    let endpoint = state.app.webhook_endpoint(&caller.0, id).await?;
    Ok(ok(&WebhookEndpointResponse::hidden(&endpoint)))
}

#[utoipa::path(patch, path = "/api/v1/webhook-endpoints/{id}", tag = "webhook-endpoints", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Endpoint id")),
    request_body = WebhookEndpointPatch,
    responses(
        (status = 200, description = "Changed", body = WebhookEndpointResponse),
        (status = 403, description = "Customers have no endpoints", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A URL or event type that is not acceptable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn update<U: UnitOfWork>(
    state: State<U>,
    caller: Authenticated,
    path: web::Path<String>,
    body: Json<WebhookEndpointPatch>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path, WebhookEndpointId::parse)?;
    let body = body.value;
    let update = EndpointUpdate {
        url: body.url,
        events: body.events,
        description: body.description,
        enabled: body.enabled,
    };
    let endpoint = state.app.update_webhook_endpoint(&caller.0, id, update).await?;
    Ok(ok(&WebhookEndpointResponse::hidden(&endpoint)))
}

/// Deletes the endpoint and its deliveries.
#[utoipa::path(delete, path = "/api/v1/webhook-endpoints/{id}", tag = "webhook-endpoints", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Endpoint id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Customers have no endpoints", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete<U: UnitOfWork>(state: State<U>, caller: Authenticated, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path, WebhookEndpointId::parse)?;
    state.app.delete_webhook_endpoint(&caller.0, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Replaces the signing secret. The old one keeps signing (a second `v1`) for the overlap, so that
/// receivers can switch without missing a delivery. The answer carries the new secret, once.
#[utoipa::path(post, path = "/api/v1/webhook-endpoints/{id}/roll-secret", tag = "webhook-endpoints", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Endpoint id")),
    request_body = RollSecretRequest,
    responses(
        (status = 200, description = "Rolled, with the new secret", body = WebhookEndpointResponse),
        (status = 403, description = "Customers have no endpoints", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An overlap out of range", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn roll_secret<U: UnitOfWork>(
    state: State<U>,
    caller: Authenticated,
    path: web::Path<String>,
    body: Json<RollSecretRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path, WebhookEndpointId::parse)?;
    let overlap = time::Duration::seconds(body.value.overlap_seconds);
    let endpoint = state.app.roll_webhook_secret(&caller.0, id, overlap).await?;
    Ok(ok(&WebhookEndpointResponse::with_secret(&endpoint)))
}

/// Sends the endpoint a `webhook_endpoint.test` event (it alone receives it).
#[utoipa::path(post, path = "/api/v1/webhook-endpoints/{id}/test", tag = "webhook-endpoints", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Endpoint id")),
    responses(
        (status = 202, description = "Queued; it is delivered like any event"),
        (status = 403, description = "Customers have no endpoints", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn test<U: UnitOfWork>(state: State<U>, caller: Authenticated, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path, WebhookEndpointId::parse)?;
    state.app.test_webhook_endpoint(&caller.0, id).await?;
    Ok(HttpResponse::Accepted().finish())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// pending, succeeded or failed.
    pub status: Option<String>,
    /// Only deliveries of this event type.
    pub event_type: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// The endpoint's deliveries, newest first, with each one's last attempt.
#[utoipa::path(get, path = "/api/v1/webhook-endpoints/{id}/deliveries", tag = "webhook-endpoints", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Endpoint id"), DeliveryQuery),
    responses(
        (status = 200, description = "A page of deliveries", body = PageOf<WebhookDeliveryResponse>),
        (status = 403, description = "Customers have no endpoints", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn deliveries<U: UnitOfWork>(
    state: State<U>,
    caller: Authenticated,
    path: web::Path<String>,
    query: web::Query<DeliveryQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path, WebhookEndpointId::parse)?;
    let status = match query.status.as_deref() {
        None => None,
        Some(text) => Some(
            DeliveryStatus::parse(text)
                .ok_or_else(|| ApiError::bad_request("invalid_query", "status must be pending, succeeded or failed"))?,
        ),
    };
    if let Some(kind) = query.event_type.as_deref().filter(|kind| !domain::webhook::is_event_type(kind)) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("event_type: {kind:?} is not an event type (see /api/v1/webhook-event-types)"),
        ));
    }
    let filter = DeliveryFilter {
        status,
        event_type: query.event_type.clone(),
    };
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor.clone(),
    }
    .page()?;
    let deliveries = state.app.webhook_deliveries(&caller.0, id, &filter, &page).await?;
    Ok(ok(&PageOf::from_page(&deliveries, |delivery| {
        WebhookDeliveryResponse::from(delivery)
    })))
}

/// Queues again every delivery of the endpoint whose event occurred in the range.
#[utoipa::path(post, path = "/api/v1/webhook-endpoints/{id}/redeliver", tag = "webhook-endpoints", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Endpoint id")),
    request_body = RedeliverRangeRequest,
    responses(
        (status = 202, description = "Queued again", body = RedeliveryResponse),
        (status = 403, description = "Customers have no endpoints", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A range that ends before it starts or spans more than 30 days", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn redeliver_range<U: UnitOfWork>(
    state: State<U>,
    caller: Authenticated,
    path: web::Path<String>,
    body: Json<RedeliverRangeRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path, WebhookEndpointId::parse)?;
    let instant = |field: &str, text: &str| {
        OffsetDateTime::parse(text, &Rfc3339).map_err(|_| ApiError::invalid_field(field, "must be an RFC 3339 date and time"))
    };
    let (from, to) = (instant("from", &body.value.from)?, instant("to", &body.value.to)?);
    let requeued = state.app.redeliver_webhooks(&caller.0, id, from, to).await?;
    Ok(HttpResponse::Accepted().json(RedeliveryResponse { requeued }))
}

/// Queues one delivery again, whatever became of it.
#[utoipa::path(post, path = "/api/v1/webhook-deliveries/{id}/redeliver", tag = "webhook-endpoints", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Delivery id")),
    responses(
        (status = 202, description = "Queued again", body = WebhookDeliveryResponse),
        (status = 403, description = "Customers have no endpoints", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn redeliver<U: UnitOfWork>(state: State<U>, caller: Authenticated, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path, WebhookDeliveryId::parse)?;
    let delivery = state.app.redeliver_webhook(&caller.0, id).await?;
    Ok(HttpResponse::Accepted().json(WebhookDeliveryResponse::from(&delivery)))
}

/// The event types endpoints can subscribe to, with the attributes of each one's object. The
/// payload of every type is described by the `WebhookEvent` schemas of this document.
#[utoipa::path(get, path = "/api/v1/webhook-event-types", tag = "webhook-endpoints",
    responses((status = 200, description = "Every event type", body = Vec<WebhookEventTypeResponse>)))]
pub async fn event_types<U: UnitOfWork>(_state: State<U>) -> HttpResponse {
    let types: Vec<WebhookEventTypeResponse> = EVENT_TYPES
        .iter()
        .map(|kind| WebhookEventTypeResponse {
            event_type: kind.name.to_owned(),
            description: kind.description.to_owned(),
            object: kind.object.iter().map(|name| (*name).to_owned()).collect(),
        })
        .collect();
    ok(&types)
}
