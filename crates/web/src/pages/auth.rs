//! Sign up, sign in and sign out. The session cookie gets the pair `App::login` issues; signing
//! out revokes the refresh token's family with `App::logout`, so a copied cookie dies too.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use application::auth::{LoginError, RegisterError, Registration, Session};
use application::ports::store::UnitOfWork;
use domain::user::Role;
use maud::{Markup, html};
use serde::Deserialize;

use super::State;
use crate::error::PageError;
use crate::form::Form;
use crate::session::{self, SEED_COOKIE, SESSION_COOKIE, Visitor};
use crate::view::{self, Errors, Field};

#[derive(Debug, Default, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
    notice: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Credentials {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    next: String,
}

/// Only a path of this site: never `//evil.example`, `/\\evil.example` or an absolute URL, and
/// nothing a browser would strip (a tab or line break inside `/\t/evil.example` is dropped).
fn local(next: Option<&str>) -> &str {
    match next {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && path.chars().all(|c| c.is_ascii_graphic() && c != '\\') => path,
        _ => "/catalog",
    }
}

/// Counts an attempt against the client address's quota, the one the API's `/auth` routes use.
async fn limit<U: UnitOfWork>(state: &State<U>, req: &HttpRequest) -> Result<(), PageError> {
    let Some(quota) = state.settings.auth_quota else {
        return Ok(());
    };
    let ip = req.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default();
    match state.limiter.check(&format!("auth:{ip}"), quota).await {
        Ok(decision) if !decision.allowed => Err(PageError::TooManyRequests),
        Ok(_) => Ok(()),
        Err(error) => {
            tracing::warn!(%error, "rate limiter unavailable; sign-in allowed");
            Ok(())
        }
    }
}

/// Signed in: the session cookie, a new CSRF seed (a seed planted before sign-in is worthless
/// after it), and on to `next`.
fn signed_in<U: UnitOfWork>(state: &State<U>, session: &Session, next: &str) -> HttpResponse {
    let secure = state.settings.secure_cookies;
    let now = state.app.clock.now();
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, next.to_owned()))
        .append_header((header::SET_COOKIE, session::session_cookie(session, now, secure)))
        .append_header((
            header::SET_COOKIE,
            session::set_cookie(SEED_COOKIE, &session::random_token(), 365 * 24 * 3600, secure),
        ))
        .finish()
}

fn sign_up_page(visitor: &Visitor, form: &Credentials, errors: &Errors) -> Markup {
    let merchant = form.role == "merchant";
    let hint = format!(
        "At least {} characters, with a letter and a digit, not your e-mail's name.",
        domain::user::Password::LEN_MIN
    );
    html! {
        (errors.summary())
        form.stack method="post" action="/sign-up" novalidate {
            (view::csrf(visitor))
            (Field::new("email", "E-mail address").kind("email").value(&form.email).autocomplete("email").render(errors))
            (Field::new("password", "Password").kind("password").autocomplete("new-password")
                .hint(&hint).render(errors))
            fieldset.field {
                legend { "I want to" }
                label { input type="radio" name="role" value="customer" checked[!merchant]; " buy (customer)" }
                br;
                label { input type="radio" name="role" value="merchant" checked[merchant]; " sell (merchant)" }
                @if let Some(error) = errors.get("role") { p.field-error { (error) } }
            }
            button type="submit" data-busy="Creating your account…" { "Create account" }
        }
        p { "Already have an account? " a href="/sign-in" { "Sign in" } }
    }
}

pub async fn sign_up_form(visitor: Visitor) -> HttpResponse {
    view::ok(
        &visitor,
        "Create an account",
        sign_up_page(&visitor, &Credentials::default(), &Errors::default()),
    )
}

fn register_errors(error: RegisterError) -> Result<Errors, PageError> {
    Ok(match error {
        RegisterError::Email(e) => Errors::one("email", e.to_string()),
        RegisterError::EmailTaken => Errors::one("email", "that e-mail address is already registered: sign in instead"),
        RegisterError::Password(e) => Errors::one("password", e.to_string()),
        RegisterError::RoleNotAllowed(_) => Errors::one("role", "choose customer or merchant"),
        other => return Err(PageError::internal(other)),
    })
}

pub async fn sign_up<U: UnitOfWork>(
    state: State<U>,
    req: HttpRequest,
    visitor: Visitor,
    Form(form): Form<Credentials>,
) -> Result<HttpResponse, PageError> {
    limit(&state, &req).await?;
    let role = if form.role == "merchant" { Role::Merchant } else { Role::Customer };
    let registration = Registration {
        email: form.email.clone(),
        password: form.password.clone(),
        role,
    };
    if let Err(error) = state.app.register(registration, None).await {
        let errors = register_errors(error)?;
        return Ok(view::invalid(&visitor, "Create an account", sign_up_page(&visitor, &form, &errors)));
    }
    let session = state.app.login(&form.email, &form.password).await.map_err(PageError::internal)?;
    let next = if role == Role::Merchant {
        "/merchant?notice=welcome"
    } else {
        "/catalog?notice=welcome"
    };
    Ok(signed_in(&state, &session, next))
}

fn sign_in_page(visitor: &Visitor, form: &Credentials, errors: &Errors) -> Markup {
    html! {
        (errors.summary())
        form.stack method="post" action="/sign-in" novalidate {
            (view::csrf(visitor))
            input type="hidden" name="next" value=(local(Some(&form.next)));
            (Field::new("email", "E-mail address").kind("email").value(&form.email).autocomplete("username").render(errors))
            (Field::new("password", "Password").kind("password").autocomplete("current-password").render(errors))
            button type="submit" data-busy="Signing in…" { "Sign in" }
        }
        p { "New here? " a href="/sign-up" { "Create an account" } }
    }
}

pub async fn sign_in_form(visitor: Visitor, query: web::Query<NextQuery>) -> HttpResponse {
    let form = Credentials {
        next: local(query.next.as_deref()).to_owned(),
        ..Credentials::default()
    };
    let body = html! { (view::notice(query.notice.as_deref())) (sign_in_page(&visitor, &form, &Errors::default())) };
    view::ok(&visitor, "Sign in", body)
}

pub async fn sign_in<U: UnitOfWork>(
    state: State<U>,
    req: HttpRequest,
    visitor: Visitor,
    Form(form): Form<Credentials>,
) -> Result<HttpResponse, PageError> {
    limit(&state, &req).await?;
    match state.app.login(&form.email, &form.password).await {
        Ok(session) => Ok(signed_in(&state, &session, local(Some(&form.next)))),
        Err(error @ (LoginError::InvalidCredentials | LoginError::Suspended)) => {
            let errors = Errors::one("password", error.to_string());
            let form = Credentials {
                password: String::new(),
                ..form
            };
            Ok(view::invalid(&visitor, "Sign in", sign_in_page(&visitor, &form, &errors)))
        }
        Err(other) => Err(PageError::internal(other)),
    }
}

#[derive(Debug, Deserialize)]
pub struct Nothing {}

pub async fn sign_out<U: UnitOfWork>(state: State<U>, visitor: Visitor, _form: Form<Nothing>) -> Result<HttpResponse, PageError> {
    if let Some(refresh) = visitor.refresh_token() {
        state.app.logout(refresh).await.map_err(PageError::internal)?;
    }
    let secure = state.settings.secure_cookies;
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/sign-in?notice=signed-out"))
        .append_header((header::SET_COOKIE, session::clear_cookie(SESSION_COOKIE, secure)))
        .finish())
}

#[cfg(test)]
mod tests {
    use super::local;

    #[test]
    fn only_paths_of_this_site_are_followed_after_sign_in() {
        assert_eq!(local(Some("/orders/1?x=2")), "/orders/1?x=2");
        for next in [
            "//evil.example",
            "/\\evil.example",
            "/\t/evil.example",
            "https://evil.example",
            "evil",
            "",
        ] {
            assert_eq!(local(Some(next)), "/catalog", "{next:?}");
        }
        assert_eq!(local(None), "/catalog");
    }
}
