//! A merchant's webhook endpoints (the platform's, for an admin): adding one (its signing secret
//! shown once), its deliveries, and a test event.

use actix_web::{HttpResponse, web};
use application::pagination::PageRequest;
use application::ports::store::{DeliveryFilter, UnitOfWork};
use application::webhooks::{NewEndpoint, WebhookUseError};
use domain::ids::WebhookEndpointId;
use domain::webhook::{WebhookEndpoint, WebhookError};
use maud::{Markup, html};
use serde::Deserialize;

use super::{ListQuery, State, parse_id};
use crate::error::PageError;
use crate::form::Form;
use crate::session::Visitor;
use crate::view::{self, Errors, Field};

fn webhook_error(error: WebhookUseError) -> PageError {
    match error {
        WebhookUseError::Forbidden => PageError::Forbidden,
        WebhookUseError::NotFound | WebhookUseError::DeliveryNotFound => PageError::NotFound,
        other => PageError::internal(other),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct EndpointForm {
    #[serde(default)]
    url: String,
    #[serde(default)]
    description: String,
}

fn state_of(endpoint: &WebhookEndpoint) -> &'static str {
    match (endpoint.enabled, endpoint.failing_since) {
        (false, _) => "disabled",
        (true, Some(_)) => "failing",
        (true, None) => "active",
    }
}

async fn render<U: UnitOfWork>(state: &State<U>, visitor: &Visitor, form: &EndpointForm, errors: &Errors) -> Result<Markup, PageError> {
    let caller = visitor.require("/merchant/webhooks")?;
    let endpoints = state
        .app
        .webhook_endpoints(&caller, &PageRequest::first(100))
        .await
        .map_err(webhook_error)?;
    Ok(html! {
        p { "Each event about your orders, payments and products is sent, signed, to every endpoint that takes it." }
        @if endpoints.items.is_empty() { p { "No endpoint yet." } } @else {
            div.table-wrap { table {
                thead { tr { th scope="col" { "URL" } th scope="col" { "Description" } th scope="col" { "State" } } }
                tbody {
                    @for endpoint in &endpoints.items {
                        tr {
                            td { a href={ "/merchant/webhooks/" (endpoint.id) } { (endpoint.url.as_str()) } }
                            td { (endpoint.description) }
                            td { (view::status(state_of(endpoint))) }
                        }
                    }
                }
            } }
        }
        section.card aria-labelledby="endpoint-title" {
            h2 #endpoint-title { "Add an endpoint" }
            (errors.summary())
            form.stack method="post" action="/merchant/webhooks" {
                (view::csrf(visitor))
                (Field::new("url", "URL").kind("url").value(&form.url).hint("https://, reachable from the internet.").render(errors))
                (Field::new("description", "Description").optional().value(&form.description).render(errors))
                button type="submit" data-busy="Adding…" { "Add endpoint" }
            }
        }
        p { a href="/merchant" { "← Merchant console" } }
    })
}

pub async fn list<U: UnitOfWork>(state: State<U>, visitor: Visitor) -> Result<HttpResponse, PageError> {
    let body = render(&state, &visitor, &EndpointForm::default(), &Errors::default()).await?;
    Ok(view::ok(&visitor, "Webhook endpoints", body))
}

pub async fn create<U: UnitOfWork>(state: State<U>, visitor: Visitor, Form(form): Form<EndpointForm>) -> Result<HttpResponse, PageError> {
    let caller = visitor.require("/merchant/webhooks")?;
    let new = NewEndpoint {
        url: form.url.trim().to_owned(),
        events: vec!["*".to_owned()],
        description: form.description.trim().to_owned(),
    };
    let errors = match state.app.create_webhook_endpoint(&caller, new).await {
        Ok(endpoint) => {
            // The secret is shown this once, as the API shows it only in its creation's answer.
            let body = html! {
                p.notice role="status" { "The endpoint is added. Keep its signing secret now: it is not shown again." }
                dl.facts {
                    dt { "URL" } dd { (endpoint.url.as_str()) }
                    dt { "Signing secret" } dd { code #secret { (endpoint.secret) } }
                }
                p { a href={ "/merchant/webhooks/" (endpoint.id) } { "Its deliveries" } " · " a href="/merchant/webhooks" { "All endpoints" } }
            };
            return Ok(view::ok(&visitor, "Endpoint added", body));
        }
        Err(WebhookUseError::Invalid(error @ WebhookError::Url(_))) => Errors::one("url", error.to_string()),
        Err(WebhookUseError::Invalid(error @ WebhookError::Description { .. })) => Errors::one("description", error.to_string()),
        Err(WebhookUseError::Invalid(error)) => Errors::one("", error.to_string()),
        Err(other) => return Err(webhook_error(other)),
    };
    let body = render(&state, &visitor, &form, &errors).await?;
    Ok(view::invalid(&visitor, "Webhook endpoints", body))
}

pub async fn show<U: UnitOfWork>(
    state: State<U>,
    visitor: Visitor,
    path: web::Path<String>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, PageError> {
    let id = parse_id(&path, WebhookEndpointId::parse)?;
    let here = format!("/merchant/webhooks/{id}");
    let caller = visitor.require(&here)?;
    let endpoint = state.app.webhook_endpoint(&caller, id).await.map_err(webhook_error)?;
    let deliveries = state
        .app
        .webhook_deliveries(&caller, id, &DeliveryFilter::default(), &query.page(50))
        .await
        .map_err(webhook_error)?;
    let body = html! {
        (view::notice(query.notice.as_deref()))
        dl.facts {
            dt { "URL" } dd { (endpoint.url.as_str()) }
            dt { "State" } dd { (view::status(state_of(&endpoint))) @if let Some(reason) = &endpoint.disabled_reason { " " (reason) } }
            dt { "Since" } dd { (view::when(endpoint.created_at)) }
        }
        form method="post" action={ (here) "/test" } {
            (view::csrf(&visitor))
            button.secondary type="submit" data-busy="Sending…" { "Send a test event" }
        }
        h2 { "Deliveries" }
        @if deliveries.items.is_empty() { p { "No delivery yet." } } @else {
            div.table-wrap { table {
                thead { tr { th scope="col" { "Event" } th scope="col" { "Queued" } th scope="col" { "State" } th.num scope="col" { "Attempts" } th scope="col" { "Last answer" } } }
                tbody {
                    @for delivery in &deliveries.items {
                        tr {
                            td { (delivery.event_type) }
                            td { (view::when(delivery.queued_at)) }
                            td { (view::status(delivery.status.as_str())) }
                            td.num { (delivery.attempts) }
                            td { @if let Some(attempt) = &delivery.last_attempt {
                                (attempt.status_code.map(|c| c.to_string()).unwrap_or_else(|| "no answer".to_owned()))
                                " in " (attempt.latency_ms) " ms" } }
                        }
                    }
                }
            } }
        }
        (view::next_link(&here, deliveries.next_cursor.map(|c| c.encode())))
        p { a href="/merchant/webhooks" { "← Webhook endpoints" } }
    };
    Ok(view::ok(&visitor, "Webhook endpoint", body))
}

#[derive(Debug, Deserialize)]
pub struct Empty {}

pub async fn test<U: UnitOfWork>(
    state: State<U>,
    visitor: Visitor,
    path: web::Path<String>,
    _form: Form<Empty>,
) -> Result<HttpResponse, PageError> {
    let id = parse_id(&path, WebhookEndpointId::parse)?;
    let caller = visitor.require(&format!("/merchant/webhooks/{id}"))?;
    state.app.test_webhook_endpoint(&caller, id).await.map_err(webhook_error)?;
    Ok(view::see_other(&format!("/merchant/webhooks/{id}?notice=test-sent")))
}
