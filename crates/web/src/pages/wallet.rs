//! The wallet: balance, history with the balance after each line, top-up by card, transfer and
//! withdrawal.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use application::idempotency::StoredResponse;
use application::pagination::{Cursor, PageRequest};
use application::ports::store::{PaymentFilter, UnitOfWork};
use application::top_ups::{TopUpError, TopUpRequest};
use application::transfers::{Recipient, TransferError, TransferRequest};
use application::wallets::WalletQueryError;
use application::withdrawals::{WithdrawalError, WithdrawalRequest};
use domain::money::{Currency, Money};
use domain::payment::{Payment, PaymentStatus};
use domain::wallet::Transfer;
use domain::withdrawal::Withdrawal;
use maud::{Markup, html};
use serde::Deserialize;

use super::State;
use crate::error::PageError;
use crate::form::KeyedForm;
use crate::money;
use crate::once::{self, Once};
use crate::session::{self, RETURN_COOKIE, Visitor};
use crate::view::{self, Errors, Field};

#[derive(Debug, Default, Deserialize)]
pub struct WalletQuery {
    currency: Option<String>,
    cursor: Option<String>,
    notice: Option<String>,
}

/// What the forms posted, to show them again with their errors.
#[derive(Debug, Default, Deserialize)]
pub struct MoneyForm {
    #[serde(default)]
    currency: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    destination: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    None,
    TopUp,
    Transfer,
    Withdraw,
}

fn currency_of<U: UnitOfWork>(state: &State<U>, code: Option<&str>) -> Currency {
    code.and_then(|c| Currency::parse(c).ok())
        .unwrap_or(state.app.settings.default_currency)
}

struct Forms<'a> {
    which: Which,
    form: &'a MoneyForm,
    errors: &'a Errors,
}

fn forms(visitor: &Visitor, currency: Currency, forms: &Forms<'_>) -> Markup {
    let none = Errors::default();
    let errors_of = |which: Which| if forms.which == which { forms.errors } else { &none };
    let value_of = |which: Which, value: &'static str| -> &str {
        if forms.which != which {
            return "";
        }
        match value {
            "amount" => &forms.form.amount,
            "to" => &forms.form.to,
            "note" => &forms.form.note,
            _ => &forms.form.destination,
        }
    };
    let code = currency.code();
    html! {
        div.columns {
            section.card aria-labelledby="top-up-title" {
                h2 #top-up-title { "Top up by card" }
                (errors_of(Which::TopUp).summary())
                form method="post" action="/wallet/top-up" {
                    (view::csrf(visitor))
                    (once::field())
                    input type="hidden" name="currency" value=(code);
                    (Field::new("amount", &format!("Amount ({code})")).amount().value(value_of(Which::TopUp, "amount")).render(errors_of(Which::TopUp)))
                    button type="submit" data-busy="Opening the card page…" { "Top up" }
                }
            }
            section.card aria-labelledby="transfer-title" {
                h2 #transfer-title { "Send money" }
                (errors_of(Which::Transfer).summary())
                form method="post" action="/wallet/transfer" {
                    (view::csrf(visitor))
                    (once::field())
                    input type="hidden" name="currency" value=(code);
                    (Field::new("to", "Recipient's e-mail address").prefix("send-").kind("email").value(value_of(Which::Transfer, "to")).render(errors_of(Which::Transfer)))
                    (Field::new("amount", &format!("Amount ({code})")).prefix("send-").amount().value(value_of(Which::Transfer, "amount")).render(errors_of(Which::Transfer)))
                    (Field::new("note", "Note").prefix("send-").optional().value(value_of(Which::Transfer, "note")).render(errors_of(Which::Transfer)))
                    button type="submit" data-busy="Sending…" { "Send" }
                }
            }
            section.card aria-labelledby="withdraw-title" {
                h2 #withdraw-title { "Withdraw" }
                (errors_of(Which::Withdraw).summary())
                form method="post" action="/wallet/withdraw" {
                    (view::csrf(visitor))
                    (once::field())
                    input type="hidden" name="currency" value=(code);
                    (Field::new("amount", &format!("Amount ({code})")).prefix("out-").amount().value(value_of(Which::Withdraw, "amount")).render(errors_of(Which::Withdraw)))
                    (Field::new("destination", "Bank account").prefix("out-").value(value_of(Which::Withdraw, "destination")).hint("Where the money goes, e.g. an IBAN.").render(errors_of(Which::Withdraw)))
                    button type="submit" data-busy="Requesting…" { "Withdraw" }
                }
            }
        }
    }
}

async fn render<U: UnitOfWork>(state: &State<U>, visitor: &Visitor, query: &WalletQuery, which: &Forms<'_>) -> Result<Markup, PageError> {
    let caller = visitor.require("/wallet")?;
    let currency = currency_of(state, query.currency.as_deref());
    let wallets = state.app.list_wallets(&caller).await.map_err(PageError::internal)?;
    let wallet = wallets.iter().find(|w| w.currency() == currency);
    let page = PageRequest {
        limit: 20,
        after: query.cursor.as_deref().and_then(|c| Cursor::decode(c).ok()),
    };
    let history = match state.app.wallet_history(&caller, currency, &page).await {
        Ok(history) => Some(history),
        Err(WalletQueryError::NotFound(_)) => None,
        Err(other) => return Err(PageError::internal(other)),
    };
    let withdrawals = state
        .app
        .my_withdrawals(&caller, &PageRequest::first(5))
        .await
        .map_err(PageError::internal)?;
    let returning = query.notice.as_deref() == Some("top-up-pending");
    let pending = PaymentFilter {
        status: Some(PaymentStatus::Pending),
        top_ups: Some(true),
    };
    let pending = state
        .app
        .my_payments(&caller, pending, &PageRequest::first(5))
        .await
        .map_err(PageError::internal)?;
    Ok(html! {
        (view::notice(query.notice.as_deref()))
        @if wallets.len() > 1 {
            nav.actions aria-label="Wallets" { @for w in &wallets { a href={ "/wallet?currency=" (w.currency().code()) } { (w.currency().code()) } } }
        }
        @match wallet {
            Some(wallet) => {
                p.muted { "Balance" }
                p.balance #balance { (money::format(wallet.balance())) }
                @if wallet.held().is_positive() { p { "Of which held: " (money::format(wallet.held())) " · available: " strong #available { (money::format(wallet.available())) } } }
            }
            None => { p { "You have no " (currency.code()) " wallet yet: a top-up opens it." } }
        }
        @for payment in &pending.items {
            // Right after the provider's page, reloads itself until the provider's webhook settles
            // the top-up; otherwise (a checkout left open) it must not reload a form being filled.
            div.progress role="status" data-refresh=[returning.then_some("3")] {
                span.spinner aria-hidden="true" {}
                span { "A top-up of " (money::format(payment.amount())) " is waiting for the card provider." }
                @if let Some(url) = payment.checkout_url() { a href=(url) { "Open the payment page" } }
            }
        }
        (forms(visitor, currency, which))
        h2 { "History" }
        @match &history {
            Some(history) if !history.items.is_empty() => {
                div.table-wrap { table #history {
                    thead { tr { th scope="col" { "When" } th scope="col" { "What" } th.num scope="col" { "Amount" } th.num scope="col" { "Balance after" } } }
                    tbody {
                        @for record in &history.items {
                            tr {
                                td { (view::when(record.posting.created_at)) }
                                td { (record.posting.kind.as_str().replace('_', " ")) }
                                td.num { (money::format(record.posting.amount)) }
                                td.num { (money::format(Money::from_minor(record.posting.balance_after_minor, currency))) }
                            }
                        }
                    }
                } }
                (view::next_link(&format!("/wallet?currency={}", currency.code()), history.next_cursor.map(|c| c.encode())))
            }
            _ => { p { "No movements yet." } }
        }
        @if !withdrawals.items.is_empty() {
            h2 { "Withdrawals" }
            ul { @for w in &withdrawals.items { li { (view::when(w.created_at())) " " (money::format(w.amount())) " to " (w.destination()) " " (view::status(w.status().as_str())) } } }
        }
    })
}

pub async fn show<U: UnitOfWork>(state: State<U>, visitor: Visitor, query: web::Query<WalletQuery>) -> Result<HttpResponse, PageError> {
    let none = Forms {
        which: Which::None,
        form: &MoneyForm::default(),
        errors: &Errors::default(),
    };
    let body = render(&state, &visitor, &query, &none).await?;
    Ok(view::ok(&visitor, "Your wallet", body))
}

async fn invalid<U: UnitOfWork>(
    state: &State<U>,
    visitor: &Visitor,
    which: Which,
    form: &MoneyForm,
    errors: Errors,
) -> Result<HttpResponse, PageError> {
    let query = WalletQuery {
        currency: Some(form.currency.clone()),
        ..WalletQuery::default()
    };
    let forms = Forms {
        which,
        form,
        errors: &errors,
    };
    let body = render(state, visitor, &query, &forms).await?;
    Ok(view::invalid(visitor, "Your wallet", body))
}

fn amount_of<U: UnitOfWork>(state: &State<U>, form: &MoneyForm) -> Result<Money, Errors> {
    let currency = currency_of(state, Some(&form.currency));
    Money::parse_positive(form.amount.trim(), currency).map_err(|e| Errors::one("amount", e.to_string()))
}

/// Where a top-up's form sends the browser: the provider's page, or the wallet when the
/// provider has no page to show.
fn top_up_answer(payment: &Payment) -> StoredResponse {
    match payment.checkout_url() {
        Some(url) => once::redirect(url.to_owned(), ""),
        None => once::redirect("/wallet?notice=top-up-pending".to_owned(), ""),
    }
}

/// To the provider's page, noting that the wallet is where to come back; a page of this site
/// as it is.
fn follow<U>(state: &State<U>, answer: &StoredResponse) -> HttpResponse {
    let location = once::location(answer).unwrap_or("/wallet");
    if location.starts_with('/') {
        return view::see_other(location);
    }
    let secure = state.settings.secure_cookies;
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location.to_owned()))
        .append_header((header::SET_COOKIE, session::set_cookie(RETURN_COOKIE, "/wallet", 3600, secure)))
        .finish()
}

pub async fn top_up<U: UnitOfWork>(state: State<U>, visitor: Visitor, posted: KeyedForm<MoneyForm>) -> Result<HttpResponse, PageError> {
    let caller = visitor.require("/wallet")?;
    let form = posted.form;
    let amount = match amount_of(&state, &form) {
        Ok(amount) => amount,
        Err(errors) => return invalid(&state, &visitor, Which::TopUp, &form, errors).await,
    };
    let request = TopUpRequest { amount, provider: None };
    let ran = once::once(&state.app, &caller, posted.key, top_up_answer, |idempotent| {
        state.app.start_top_up(&caller, request, idempotent)
    })
    .await?;
    match ran {
        Once::Done(answer) => Ok(follow(&state, &answer)),
        Once::Ran(Ok(payment)) => Ok(follow(&state, &top_up_answer(&payment))),
        Once::Ran(Err(TopUpError::Store(error))) => Err(PageError::internal(error)),
        Once::Ran(Err(error)) => invalid(&state, &visitor, Which::TopUp, &form, Errors::one("amount", error.to_string())).await,
    }
}

fn transfer_errors(error: TransferError) -> Result<Errors, PageError> {
    Ok(match error {
        error @ (TransferError::RecipientNotFound | TransferError::SelfTransfer) => Errors::one("to", error.to_string()),
        error @ TransferError::NonPositiveAmount => Errors::one("amount", error.to_string()),
        error @ TransferError::InsufficientFunds { .. } => Errors::one("amount", error.to_string()),
        error @ TransferError::Note => Errors::one("note", error.to_string()),
        TransferError::Store(error) => return Err(PageError::internal(error)),
        other => Errors::one("", other.to_string()),
    })
}

fn transferred(transfer: &Transfer) -> StoredResponse {
    let currency = transfer.amount.currency().code();
    once::redirect(format!("/wallet?currency={currency}&notice=transferred"), "")
}

pub async fn transfer<U: UnitOfWork>(state: State<U>, visitor: Visitor, posted: KeyedForm<MoneyForm>) -> Result<HttpResponse, PageError> {
    let caller = visitor.require("/wallet")?;
    let form = posted.form;
    let amount = match amount_of(&state, &form) {
        Ok(amount) => amount,
        Err(errors) => return invalid(&state, &visitor, Which::Transfer, &form, errors).await,
    };
    let request = TransferRequest {
        to: Recipient::Email(form.to.trim().to_owned()),
        amount,
        note: form.note.clone(),
    };
    let ran = once::once(&state.app, &caller, posted.key, transferred, |idempotent| {
        state.app.transfer(&caller, request, idempotent)
    })
    .await?;
    match ran {
        Once::Done(answer) => Ok(view::see_other(once::location(&answer).unwrap_or("/wallet"))),
        Once::Ran(Ok(transfer)) => Ok(view::see_other(once::location(&transferred(&transfer)).unwrap_or("/wallet"))),
        Once::Ran(Err(error)) => {
            let errors = transfer_errors(error)?;
            invalid(&state, &visitor, Which::Transfer, &form, errors).await
        }
    }
}

fn withdrawal_errors(error: WithdrawalError) -> Result<Errors, PageError> {
    Ok(match error {
        error @ WithdrawalError::Destination => Errors::one("destination", error.to_string()),
        error @ WithdrawalError::InsufficientFunds { .. } => Errors::one("amount", error.to_string()),
        WithdrawalError::Store(error) => return Err(PageError::internal(error)),
        other => Errors::one("", other.to_string()),
    })
}

fn withdrawn(withdrawal: &Withdrawal) -> StoredResponse {
    let currency = withdrawal.amount().currency().code();
    once::redirect(format!("/wallet?currency={currency}&notice=withdrawal"), "")
}

pub async fn withdraw<U: UnitOfWork>(state: State<U>, visitor: Visitor, posted: KeyedForm<MoneyForm>) -> Result<HttpResponse, PageError> {
    let caller = visitor.require("/wallet")?;
    let form = posted.form;
    let amount = match amount_of(&state, &form) {
        Ok(amount) => amount,
        Err(errors) => return invalid(&state, &visitor, Which::Withdraw, &form, errors).await,
    };
    let request = WithdrawalRequest {
        amount,
        destination: form.destination.clone(),
    };
    let ran = once::once(&state.app, &caller, posted.key, withdrawn, |idempotent| {
        state.app.withdraw(&caller, request, idempotent)
    })
    .await?;
    match ran {
        Once::Done(answer) => Ok(view::see_other(once::location(&answer).unwrap_or("/wallet"))),
        Once::Ran(Ok(withdrawal)) => Ok(view::see_other(once::location(&withdrawn(&withdrawal)).unwrap_or("/wallet"))),
        Once::Ran(Err(error)) => {
            let errors = withdrawal_errors(error)?;
            invalid(&state, &visitor, Which::Withdraw, &form, errors).await
        }
    }
}
