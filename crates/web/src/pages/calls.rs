//! Calls: start one (billed per started minute from the caller's wallet), watch its duration and
//! cost so far, end it.

use actix_web::{HttpResponse, web};
use application::calls::{CallUseError, StartCall};
use application::idempotency::StoredResponse;
use application::ports::store::UnitOfWork;
use domain::call::{CallError, CallSession, CallStatus};
use domain::ids::CallId;
use domain::money::Money;
use maud::html;
use serde::Deserialize;

use super::{ListQuery, State, parse_id};
use crate::error::PageError;
use crate::form::KeyedForm;
use crate::money;
use crate::once::{self, Once};
use crate::session::Visitor;
use crate::view::{self, Errors, Field};

fn call_error(error: CallUseError) -> PageError {
    match error {
        CallUseError::NotFound => PageError::NotFound,
        CallUseError::Forbidden => PageError::Forbidden,
        other => PageError::internal(other),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct StartForm {
    #[serde(default)]
    receiver: String,
    #[serde(default)]
    rate: String,
}

async fn render<U: UnitOfWork>(
    state: &State<U>,
    visitor: &Visitor,
    query: &ListQuery,
    form: &StartForm,
    errors: &Errors,
) -> Result<maud::Markup, PageError> {
    let caller = visitor.require("/calls")?;
    let calls = state.app.list_calls(&caller, &query.page(20)).await.map_err(call_error)?;
    let currency = state.app.settings.default_currency;
    Ok(html! {
        (view::notice(query.notice.as_deref()))
        section.card aria-labelledby="start-title" {
            h2 #start-title { "Start a call" }
            (errors.summary())
            form.stack method="post" action="/calls/start" {
                (view::csrf(visitor))
                (once::field())
                (Field::new("receiver", "Receiver's e-mail address").kind("email").autocomplete("off").value(&form.receiver).render(errors))
                (Field::new("rate", &format!("Rate per minute ({})", currency.code())).amount().value(&form.rate).render(errors))
                button type="submit" data-busy="Starting…" { "Start call" }
            }
        }
        h2 { "Your calls" }
        @if calls.items.is_empty() { p { "No calls yet." } }
        ul.grid {
            @for call in &calls.items {
                li.card {
                    p { (view::status(call.status.as_str())) " · " (money::format(call.rate_per_minute)) " a minute" }
                    @if call.status == CallStatus::Active {
                        @let cost_id = format!("cost-{}", call.id);
                        p { "Duration " strong { time data-live-since=(view::datetime_attr(call.started_at)) data-cost-id=(cost_id) { "…" } } }
                        p { "Cost so far " strong id=(cost_id) data-rate-minor=(call.rate_per_minute.amount_minor())
                            data-exponent=(call.rate_per_minute.currency().exponent()) data-symbol=(money::symbol(call.rate_per_minute.currency())) { (money::format(call.rate_per_minute)) } }
                        form method="post" action={ "/calls/" (call.id) "/end" } {
                            (view::csrf(visitor))
                            (once::field())
                            button.danger type="submit" data-busy="Ending…" { "End call" }
                        }
                    } @else {
                        p { (call.billed_minutes) " min · charged " (money::format(call.charged)) }
                    }
                    p.muted { "Started " (view::when(call.started_at)) }
                }
            }
        }
        (view::next_link("/calls", calls.next_cursor.map(|c| c.encode())))
    })
}

pub async fn list<U: UnitOfWork>(state: State<U>, visitor: Visitor, query: web::Query<ListQuery>) -> Result<HttpResponse, PageError> {
    let body = render(&state, &visitor, &query, &StartForm::default(), &Errors::default()).await?;
    Ok(view::ok(&visitor, "Calls", body))
}

fn started(_: &CallSession) -> StoredResponse {
    once::redirect("/calls?notice=call-started".to_owned(), "")
}

fn ended(_: &CallSession) -> StoredResponse {
    once::redirect("/calls?notice=call-ended".to_owned(), "")
}

/// Where a refusal of starting a call shows: by the field it is about.
fn start_errors(error: CallUseError, errors: &mut Errors) -> Result<(), PageError> {
    match error {
        CallUseError::ReceiverNotFound => errors.add("receiver", "no user has this e-mail address"),
        error @ CallUseError::Call(CallError::SelfCall) => errors.add("receiver", error.to_string()),
        error @ CallUseError::Call(CallError::Rate | CallError::CannotAffordFirstMinute { .. }) => errors.add("rate", error.to_string()),
        error @ CallUseError::Store(_) => return Err(call_error(error)),
        other => errors.add("", other.to_string()),
    }
    Ok(())
}

pub async fn start<U: UnitOfWork>(state: State<U>, visitor: Visitor, posted: KeyedForm<StartForm>) -> Result<HttpResponse, PageError> {
    let caller = visitor.require("/calls")?;
    let form = posted.form;
    let mut errors = Errors::default();
    let rate = Money::parse_positive(form.rate.trim(), state.app.settings.default_currency).map_err(|e| errors.add("rate", e.to_string()));
    let receiver = match state.app.call_receiver_by_email(&caller, &form.receiver).await {
        Ok(receiver) => Some(receiver),
        Err(error) => {
            start_errors(error, &mut errors)?;
            None
        }
    };
    if let (Some(receiver_id), Ok(rate_per_minute)) = (receiver, rate) {
        let request = StartCall {
            receiver_id,
            rate_per_minute,
        };
        let ran = once::once(&state.app, &caller, posted.key, started, |idempotent| {
            state.app.start_call(&caller, request, idempotent)
        })
        .await?;
        match ran {
            Once::Done(_) | Once::Ran(Ok(_)) => return Ok(view::see_other("/calls?notice=call-started")),
            Once::Ran(Err(error)) => start_errors(error, &mut errors)?,
        }
    }
    let body = render(&state, &visitor, &ListQuery::default(), &form, &errors).await?;
    Ok(view::invalid(&visitor, "Calls", body))
}

#[derive(Debug, Deserialize)]
pub struct Empty {}

pub async fn end<U: UnitOfWork>(
    state: State<U>,
    visitor: Visitor,
    path: web::Path<String>,
    posted: KeyedForm<Empty>,
) -> Result<HttpResponse, PageError> {
    let caller = visitor.require("/calls")?;
    let id = parse_id(&path, CallId::parse)?;
    let ran = once::once(&state.app, &caller, posted.key, ended, |idempotent| {
        state.app.end_call(&caller, id, idempotent)
    })
    .await?;
    match ran {
        Once::Done(_) | Once::Ran(Ok(_)) => Ok(view::see_other("/calls?notice=call-ended")),
        // Ended already: by the other party, or by the job at its limit.
        Once::Ran(Err(CallUseError::Call(CallError::AlreadyEnded))) => Ok(view::see_other("/calls?notice=call-already-ended")),
        Once::Ran(Err(other)) => Err(call_error(other)),
    }
}
