//! A merchant's webhook endpoints (the platform's, for an admin): adding one (its signing secret
//! shown once), its deliveries and redelivering one, a test event, rolling its signing secret
//! (the new one shown once), disabling, enabling and deleting it.

use actix_web::{HttpResponse, web};
use application::pagination::PageRequest;
use application::ports::store::{DeliveryFilter, UnitOfWork};
use application::webhooks::{EndpointUpdate, NewEndpoint, SECRET_OVERLAP_MAX, WebhookUseError};
use domain::ids::{WebhookDeliveryId, WebhookEndpointId};
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

async fn render<U: UnitOfWork>(
    state: &State<U>,
    visitor: &Visitor,
    notice: Option<&str>,
    form: &EndpointForm,
    errors: &Errors,
) -> Result<Markup, PageError> {
    let caller = visitor.require("/merchant/webhooks")?;
    let endpoints = state
        .app
        .webhook_endpoints(&caller, &PageRequest::first(100))
        .await
        .map_err(webhook_error)?;
    Ok(html! {
        (view::notice(notice))
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

pub async fn list<U: UnitOfWork>(state: State<U>, visitor: Visitor, query: web::Query<ListQuery>) -> Result<HttpResponse, PageError> {
    let body = render(
        &state,
        &visitor,
        query.notice.as_deref(),
        &EndpointForm::default(),
        &Errors::default(),
    )
    .await?;
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
    let body = render(&state, &visitor, None, &form, &errors).await?;
    Ok(view::invalid(&visitor, "Webhook endpoints", body))
}

/// The choices of how long a rolled secret keeps signing beside the new one.
const OVERLAPS: &[(i64, &str)] = &[
    (0, "No overlap: the old secret stops at once"),
    (3_600, "An hour"),
    (86_400, "A day"),
    (604_800, "A week"),
];

/// An endpoint's actions: a test event, rolling its secret, turning it off or on, deleting it.
fn actions(visitor: &Visitor, endpoint: &WebhookEndpoint, errors: &Errors) -> Markup {
    let here = format!("/merchant/webhooks/{}", endpoint.id);
    let overlap_error = errors.get("overlap");
    html! {
        div.actions {
            form.inline method="post" action={ (here) "/test" } {
                (view::csrf(visitor))
                button.secondary type="submit" data-busy="Sending…" { "Send a test event" }
            }
            @if endpoint.enabled {
                form.inline method="post" action={ (here) "/disable" } {
                    (view::csrf(visitor))
                    button.secondary type="submit" { "Disable" }
                }
            } @else {
                form.inline method="post" action={ (here) "/enable" } {
                    (view::csrf(visitor))
                    button.secondary type="submit" { "Enable" }
                }
            }
        }
        section.card aria-labelledby="roll-title" {
            h2 #roll-title { "Roll the signing secret" }
            p { "A new secret signs every delivery from now on; it is shown once. The old one can keep signing beside it while your receiver switches." }
            (errors.summary())
            form.stack method="post" action={ (here) "/roll-secret" } data-confirm="Replace the signing secret?" {
                (view::csrf(visitor))
                div.field.invalid[overlap_error.is_some()] {
                    label for="f-overlap" { "The old secret keeps signing for" }
                    select #f-overlap name="overlap" aria-describedby=[overlap_error.map(|_| "f-overlap-error")] {
                        @for (seconds, label) in OVERLAPS { option value=(seconds) selected[*seconds == 86_400] { (label) } }
                    }
                    @if let Some(error) = overlap_error { p.field-error #f-overlap-error { (error) } }
                }
                button type="submit" { "Roll secret" }
            }
        }
        section.card aria-labelledby="delete-title" {
            h2 #delete-title { "Delete the endpoint" }
            p { "It receives nothing more, and its deliveries are deleted with it." }
            form method="post" action={ (here) "/delete" } data-confirm="Delete this endpoint and its deliveries?" {
                (view::csrf(visitor))
                button.danger type="submit" { "Delete endpoint" }
            }
        }
    }
}

async fn endpoint_page<U: UnitOfWork>(
    state: &State<U>,
    visitor: &Visitor,
    id: WebhookEndpointId,
    query: &ListQuery,
    errors: &Errors,
) -> Result<Markup, PageError> {
    let here = format!("/merchant/webhooks/{id}");
    let caller = visitor.require(&here)?;
    let endpoint = state.app.webhook_endpoint(&caller, id).await.map_err(webhook_error)?;
    let deliveries = state
        .app
        .webhook_deliveries(&caller, id, &DeliveryFilter::default(), &query.page(50))
        .await
        .map_err(webhook_error)?;
    Ok(html! {
        (view::notice(query.notice.as_deref()))
        dl.facts {
            dt { "URL" } dd { (endpoint.url.as_str()) }
            dt { "State" } dd { (view::status(state_of(&endpoint))) @if let Some(reason) = &endpoint.disabled_reason { " " (reason) } }
            dt { "Since" } dd { (view::when(endpoint.created_at)) }
            @if let Some(retiring) = &endpoint.retiring {
                dt { "Old secret" } dd { "still signs until " (view::when(retiring.until)) }
            }
        }
        (actions(visitor, &endpoint, errors))
        h2 { "Deliveries" }
        @if deliveries.items.is_empty() { p { "No delivery yet." } } @else {
            div.table-wrap { table #deliveries {
                thead { tr { th scope="col" { "Event" } th scope="col" { "Queued" } th scope="col" { "State" } th.num scope="col" { "Attempts" } th scope="col" { "Last answer" } th scope="col" { "Again" } } }
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
                            td {
                                form.inline method="post" action={ (here) "/deliveries/" (delivery.id) "/redeliver" } {
                                    (view::csrf(visitor))
                                    button.secondary type="submit" aria-label={ "Redeliver " (delivery.event_type) " queued " (view::when(delivery.queued_at)) } { "Redeliver" }
                                }
                            }
                        }
                    }
                }
            } }
        }
        (view::next_link(&here, deliveries.next_cursor.map(|c| c.encode())))
        p { a href="/merchant/webhooks" { "← Webhook endpoints" } }
    })
}

pub async fn show<U: UnitOfWork>(
    state: State<U>,
    visitor: Visitor,
    path: web::Path<String>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, PageError> {
    let id = parse_id(&path, WebhookEndpointId::parse)?;
    let body = endpoint_page(&state, &visitor, id, &query, &Errors::default()).await?;
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

#[derive(Debug, Deserialize)]
pub struct RollForm {
    #[serde(default)]
    overlap: String,
}

/// Rolls the signing secret and shows the new one, this once, as creation does.
pub async fn roll_secret<U: UnitOfWork>(
    state: State<U>,
    visitor: Visitor,
    path: web::Path<String>,
    Form(form): Form<RollForm>,
) -> Result<HttpResponse, PageError> {
    let id = parse_id(&path, WebhookEndpointId::parse)?;
    let caller = visitor.require(&format!("/merchant/webhooks/{id}"))?;
    let max = SECRET_OVERLAP_MAX.whole_seconds();
    let errors = match form.overlap.trim().parse::<i64>() {
        Err(_) => Errors::one(
            "overlap",
            format!("choose how long the old secret keeps signing, 0 to {max} seconds"),
        ),
        Ok(seconds) => match state.app.roll_webhook_secret(&caller, id, time::Duration::seconds(seconds)).await {
            Ok(endpoint) => {
                let body = html! {
                    p.notice role="status" { "The signing secret is replaced. Keep the new one now: it is not shown again." }
                    dl.facts {
                        dt { "URL" } dd { (endpoint.url.as_str()) }
                        dt { "Signing secret" } dd { code #secret { (endpoint.secret) } }
                        @if let Some(retiring) = &endpoint.retiring { dt { "Old secret" } dd { "still signs until " (view::when(retiring.until)) } }
                    }
                    p { a href={ "/merchant/webhooks/" (endpoint.id) } { "Back to the endpoint" } }
                };
                return Ok(view::ok(&visitor, "Secret rolled", body));
            }
            Err(error @ WebhookUseError::Overlap { .. }) => Errors::one("overlap", error.to_string()),
            Err(other) => return Err(webhook_error(other)),
        },
    };
    let body = endpoint_page(&state, &visitor, id, &ListQuery::default(), &errors).await?;
    Ok(view::invalid(&visitor, "Webhook endpoint", body))
}

async fn set_enabled<U: UnitOfWork>(state: &State<U>, visitor: &Visitor, path: &str, enabled: bool) -> Result<HttpResponse, PageError> {
    let id = parse_id(path, WebhookEndpointId::parse)?;
    let caller = visitor.require(&format!("/merchant/webhooks/{id}"))?;
    let update = EndpointUpdate {
        enabled: Some(enabled),
        ..EndpointUpdate::default()
    };
    state
        .app
        .update_webhook_endpoint(&caller, id, update)
        .await
        .map_err(webhook_error)?;
    let notice = if enabled { "endpoint-enabled" } else { "endpoint-disabled" };
    Ok(view::see_other(&format!("/merchant/webhooks/{id}?notice={notice}")))
}

pub async fn enable<U: UnitOfWork>(
    state: State<U>,
    visitor: Visitor,
    path: web::Path<String>,
    _form: Form<Empty>,
) -> Result<HttpResponse, PageError> {
    set_enabled(&state, &visitor, &path, true).await
}

pub async fn disable<U: UnitOfWork>(
    state: State<U>,
    visitor: Visitor,
    path: web::Path<String>,
    _form: Form<Empty>,
) -> Result<HttpResponse, PageError> {
    set_enabled(&state, &visitor, &path, false).await
}

pub async fn delete<U: UnitOfWork>(
    state: State<U>,
    visitor: Visitor,
    path: web::Path<String>,
    _form: Form<Empty>,
) -> Result<HttpResponse, PageError> {
    let id = parse_id(&path, WebhookEndpointId::parse)?;
    let caller = visitor.require(&format!("/merchant/webhooks/{id}"))?;
    state.app.delete_webhook_endpoint(&caller, id).await.map_err(webhook_error)?;
    Ok(view::see_other("/merchant/webhooks?notice=endpoint-deleted"))
}

/// Queues one delivery again; the use case finds it only among the caller's endpoints'.
pub async fn redeliver<U: UnitOfWork>(
    state: State<U>,
    visitor: Visitor,
    path: web::Path<(String, String)>,
    _form: Form<Empty>,
) -> Result<HttpResponse, PageError> {
    let (endpoint, delivery) = path.into_inner();
    let endpoint = parse_id(&endpoint, WebhookEndpointId::parse)?;
    let delivery = parse_id(&delivery, WebhookDeliveryId::parse)?;
    let caller = visitor.require(&format!("/merchant/webhooks/{endpoint}"))?;
    let delivery = state.app.redeliver_webhook(&caller, delivery).await.map_err(webhook_error)?;
    Ok(view::see_other(&format!(
        "/merchant/webhooks/{}?notice=redelivered",
        delivery.endpoint_id
    )))
}
