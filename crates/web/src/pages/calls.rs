//! Calls: start one (billed per started minute from the caller's wallet), watch its duration and
//! cost so far, end it.

use actix_web::{HttpResponse, web};
use application::calls::{CallUseError, StartCall};
use application::ports::store::UnitOfWork;
use domain::call::CallStatus;
use domain::ids::{CallId, UserId};
use domain::money::Money;
use maud::html;
use serde::Deserialize;

use super::{ListQuery, State, parse_id};
use crate::error::PageError;
use crate::form::Form;
use crate::money;
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
        p.muted { "Your user id, for people who call you: " code { (caller.user_id) } }
        section.card aria-labelledby="start-title" {
            h2 #start-title { "Start a call" }
            (errors.summary())
            form.stack method="post" action="/calls/start" {
                (view::csrf(visitor))
                (Field::new("receiver", "Receiver's user id").value(&form.receiver).render(errors))
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

pub async fn start<U: UnitOfWork>(state: State<U>, visitor: Visitor, Form(form): Form<StartForm>) -> Result<HttpResponse, PageError> {
    let caller = visitor.require("/calls")?;
    let mut errors = Errors::default();
    let receiver = UserId::parse(form.receiver.trim()).map_err(|_| errors.add("receiver", "enter the user id the receiver gave you"));
    let rate = Money::parse_positive(form.rate.trim(), state.app.settings.default_currency).map_err(|e| errors.add("rate", e.to_string()));
    if let (Ok(receiver_id), Ok(rate_per_minute)) = (receiver, rate) {
        let request = StartCall {
            receiver_id,
            rate_per_minute,
        };
        match state.app.start_call(&caller, request, None).await {
            Ok(_) => return Ok(view::see_other("/calls?notice=call-started")),
            Err(CallUseError::ReceiverNotFound) => errors.add("receiver", "no user has this id"),
            Err(error @ CallUseError::Store(_)) => return Err(call_error(error)),
            Err(other) => errors.add("", other.to_string()),
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
    _form: Form<Empty>,
) -> Result<HttpResponse, PageError> {
    let caller = visitor.require("/calls")?;
    let id = parse_id(&path, CallId::parse)?;
    state.app.end_call(&caller, id, None).await.map_err(call_error)?;
    Ok(view::see_other("/calls?notice=call-ended"))
}
