//! A user as the back office sees them (`App::admin_user`): their standing and wallets, and the
//! form of a wallet adjustment (`App::adjust_wallet`), a credit or debit against the platform's
//! adjustments account that needs a reason and carries an idempotency key.

use actix_web::{HttpResponse, web};
use application::adjustments::{Adjustment, AdjustmentError, AdjustmentRequest};
use application::idempotency::StoredResponse;
use application::ports::store::UnitOfWork;
use domain::ids::UserId;
use domain::money::{Currency, Money};
use domain::user::User;
use domain::wallet::Wallet;
use maud::{Markup, html};
use serde::Deserialize;

use super::admin::{invalid, page};
use super::admin_reads::read_error;
use super::{ListQuery, State, parse_id};
use crate::error::PageError;
use crate::form::KeyedForm;
use crate::money;
use crate::once::{self, Once};
use crate::session::Visitor;
use crate::view::{self, Errors, Field};

#[derive(Debug, Default, Deserialize)]
pub struct AdjustmentForm {
    #[serde(default)]
    currency: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    reason: String,
}

fn adjustment_form(visitor: &Visitor, user: &User, default: Currency, form: &AdjustmentForm, errors: &Errors) -> Markup {
    let chosen = Currency::parse(&form.currency).unwrap_or(default);
    let currency_error = errors.get("currency");
    html! {
        section.card aria-labelledby="adjust-title" {
            h2 #adjust-title { "Adjust a wallet" }
            p { "A correction through the ledger, against the platform's adjustments account. The reason goes to the audit trail." }
            (errors.summary())
            form.stack method="post" action={ "/admin/users/" (user.id) "/adjust" } data-confirm="Post this adjustment?" {
                (view::csrf(visitor))
                (once::field())
                div.field.invalid[currency_error.is_some()] {
                    label for="f-currency" { "Currency" }
                    select #f-currency name="currency" aria-describedby=[currency_error.map(|_| "f-currency-error")] {
                        @for currency in Currency::ALL { option value=(currency.code()) selected[currency == chosen] { (currency.code()) } }
                    }
                    @if let Some(error) = currency_error { p.field-error #f-currency-error { (error) } }
                }
                (Field::new("amount", "Amount").amount().value(&form.amount).hint("Positive credits the wallet; negative (such as -5.00) debits it.").render(errors))
                (Field::new("reason", "Reason").value(&form.reason).render(errors))
                button type="submit" data-busy="Posting…" { "Post adjustment" }
            }
        }
    }
}

fn wallets(wallets: &[Wallet]) -> Markup {
    html! {
        h2 { "Wallets" }
        @if wallets.is_empty() { p { "No wallet yet." } } @else {
            div.table-wrap { table #wallets {
                thead { tr { th scope="col" { "Currency" } th.num scope="col" { "Balance" } th.num scope="col" { "Held" } th.num scope="col" { "Available" } th scope="col" { "Journal" } } }
                tbody {
                    @for wallet in wallets {
                        tr {
                            td { (wallet.currency().code()) }
                            td.num { (money::format(wallet.balance())) }
                            td.num { (money::format(wallet.held())) }
                            td.num { (money::format(wallet.available())) }
                            td { a href={ "/admin/ledger?wallet=" (wallet.id()) } { "Its transactions" } }
                        }
                    }
                }
            } }
        }
    }
}

async fn render<U: UnitOfWork>(
    state: &State<U>,
    visitor: &Visitor,
    id: UserId,
    form: &AdjustmentForm,
    errors: &Errors,
    notice: Option<&str>,
) -> Result<(String, Markup), PageError> {
    let caller = visitor.require(&format!("/admin/users/{id}"))?;
    let (user, owned) = state.app.admin_user(&caller, id).await.map_err(read_error)?;
    let body = html! {
        dl.facts #user {
            dt { "E-mail" } dd { (user.email.as_str()) }
            dt { "Role" } dd { (user.role.as_str()) }
            dt { "Since" } dd { (view::when(user.created_at)) }
            dt { "Standing" } dd { @if user.is_suspended() { (view::status("suspended")) } @else { (view::status("active")) } }
        }
        (wallets(&owned))
        (adjustment_form(visitor, &user, state.app.settings.default_currency, form, errors))
        p { a href="/admin/users" { "← Users" } }
    };
    Ok((user.email.as_str().to_owned(), html! { (view::notice(notice)) (body) }))
}

/// `GET /admin/users/{id}`.
pub async fn show<U: UnitOfWork>(
    state: State<U>,
    visitor: Visitor,
    path: web::Path<String>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, PageError> {
    let id = parse_id(&path, UserId::parse)?;
    let (title, body) = render(
        &state,
        &visitor,
        id,
        &AdjustmentForm::default(),
        &Errors::default(),
        query.notice.as_deref(),
    )
    .await?;
    Ok(page(&visitor, &title, None, body))
}

fn adjusted(adjustment: &Adjustment) -> StoredResponse {
    once::redirect(format!("/admin/users/{}?notice=adjusted", adjustment.user_id), "")
}

fn adjustment_errors(error: AdjustmentError) -> Result<Errors, PageError> {
    Ok(match error {
        AdjustmentError::Forbidden => return Err(PageError::Forbidden),
        AdjustmentError::UserNotFound => return Err(PageError::NotFound),
        AdjustmentError::Store(error) => return Err(PageError::internal(error)),
        error @ AdjustmentError::Reason => Errors::one("reason", error.to_string()),
        error @ (AdjustmentError::Zero | AdjustmentError::InsufficientFunds { .. } | AdjustmentError::PlatformLimit(_)) => {
            Errors::one("amount", error.to_string())
        }
        other => Errors::one("", other.to_string()),
    })
}

/// `POST /admin/users/{id}/adjust`: posts the adjustment once per form.
pub async fn adjust<U: UnitOfWork>(
    state: State<U>,
    visitor: Visitor,
    path: web::Path<String>,
    posted: KeyedForm<AdjustmentForm>,
) -> Result<HttpResponse, PageError> {
    let id = parse_id(&path, UserId::parse)?;
    let caller = visitor.require(&format!("/admin/users/{id}"))?;
    let form = posted.form;
    let errors = match Currency::parse(form.currency.trim()) {
        Err(error) => Errors::one("currency", error.to_string()),
        Ok(currency) => match Money::parse(form.amount.trim(), currency) {
            Err(error) => Errors::one("amount", error.to_string()),
            Ok(amount) => {
                let request = AdjustmentRequest {
                    user_id: id,
                    amount,
                    reason: form.reason.clone(),
                };
                let ran = once::once(&state.app, &caller, posted.key, adjusted, |idempotent| {
                    state.app.adjust_wallet(&caller, request, idempotent)
                })
                .await?;
                match ran {
                    Once::Done(_) | Once::Ran(Ok(_)) => return Ok(view::see_other(&format!("/admin/users/{id}?notice=adjusted"))),
                    Once::Ran(Err(error)) => adjustment_errors(error)?,
                }
            }
        },
    };
    let (title, body) = render(&state, &visitor, id, &form, &errors, None).await?;
    Ok(invalid(&visitor, &title, body))
}
