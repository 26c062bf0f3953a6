//! Inbound webhooks from card gateways. The raw body is verified against the provider's
//! signature before anything in it is believed.

use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use application::ports::gateway::WebhookHeaders;
use application::ports::store::UnitOfWork;
use application::settlement::{EventOutcome, GatewayEventError};

use super::State;
use crate::dto::WebhookAck;
use crate::problem::{ApiError, Problem};
use crate::respond::ok;

/// Receives a provider's event. Duplicates and unknown event types are acknowledged (200) without
/// effect; a bad signature is 400 and nothing is applied.
#[utoipa::path(post, path = "/api/v1/webhooks/{provider}", tag = "webhooks",
    params(("provider" = String, Path, description = "simulated, stripe, monnify or paystack")),
    request_body(content = String, description = "The provider's event, exactly as sent", content_type = "application/json"),
    responses(
        (status = 200, description = "Received", body = WebhookAck),
        (status = 400, description = "Missing, malformed, wrong or stale signature, or malformed event", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown provider", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The event contradicts our payment (amount or currency)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn receive<U: UnitOfWork>(
    state: State<U>,
    req: HttpRequest,
    path: web::Path<String>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let headers = WebhookHeaders::new(
        req.headers()
            .iter()
            .filter_map(|(name, value)| value.to_str().ok().map(|v| (name.as_str().to_owned(), v.to_owned()))),
    );
    let received = state.app.receive_webhook(&path, &headers, &body).await;
    // Labelled by configured provider only: the path is the sender's choice.
    let provider = state
        .app
        .gateways
        .providers()
        .map(ToString::to_string)
        .find(|name| *name == *path)
        .unwrap_or_else(|| "unknown".to_owned());
    let counted = match &received {
        Ok(outcome) => outcome_name(outcome),
        Err(GatewayEventError::Verification(_)) => "verification_failed",
        Err(GatewayEventError::UnknownProvider(_)) => "unknown_provider",
        Err(_) => "failed",
    };
    metrics::counter!("webhook_events_total", "provider" => provider, "outcome" => counted).increment(1);
    let outcome = outcome_name(&received?);
    Ok(ok(&WebhookAck {
        received: true,
        outcome: outcome.to_owned(),
    }))
}

fn outcome_name(outcome: &EventOutcome) -> &'static str {
    match outcome {
        EventOutcome::Applied => "applied",
        EventOutcome::Duplicate => "duplicate",
        EventOutcome::Ignored(_) => "ignored",
        EventOutcome::LateSuccess => "late_success",
        EventOutcome::Refused(_) => "refused",
    }
}
