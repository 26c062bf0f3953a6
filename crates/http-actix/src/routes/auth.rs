//! Registration, login, token refresh and logout.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use application::auth::Registration;
use application::idempotency::StoredResponse;
use application::ports::store::UnitOfWork;
use domain::user::{Role, User};

use super::State;
use crate::dto::{LoginRequest, RefreshRequest, RegisterRequest, RoleChoice, SessionResponse, UserResponse};
use crate::extract::{Authenticated, IdempotencyHeader, Json};
use crate::problem::{ApiError, Problem};
use crate::respond::{idempotently, ok, stored};

fn render_user(user: &User) -> StoredResponse {
    stored(StatusCode::CREATED, &UserResponse::from(user), Some("/api/v1/auth/me".to_owned()))
}

/// Creates a customer or merchant account (with an empty wallet in the default currency).
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth",
    request_body = RegisterRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retried request safe")),
    responses(
        (status = 201, description = "Registered", body = UserResponse),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "E-mail address taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid e-mail, password or role", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn register<U: UnitOfWork>(
    state: State<U>,
    req: HttpRequest,
    key: IdempotencyHeader,
    body: Json<RegisterRequest>,
) -> Result<HttpResponse, ApiError> {
    let request = body.value;
    let role = match request.role {
        RoleChoice::Customer => Role::Customer,
        RoleChoice::Merchant => Role::Merchant,
    };
    let registration = Registration {
        email: request.email,
        password: request.password,
        role,
    };
    idempotently(&state, None, key, (&req, &body.raw), render_user, |idempotent| {
        state.app.register(registration, idempotent)
    })
    .await
}

/// Exchanges an e-mail address and password for an access token and a refresh token.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = SessionResponse),
        (status = 401, description = "Wrong e-mail address or password", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Missing fields", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many attempts", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn login<U: UnitOfWork>(state: State<U>, body: Json<LoginRequest>) -> Result<HttpResponse, ApiError> {
    let session = state.app.login(&body.value.email, &body.value.password).await?;
    Ok(ok(&SessionResponse::new(&session, state.app.clock.now())))
}

/// Rotates a refresh token: the old one is spent, a new pair is returned. Presenting a spent
/// token revokes every session descending from the same login.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "New tokens", body = SessionResponse),
        (status = 401, description = "Unknown, expired, revoked or reused refresh token", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn refresh<U: UnitOfWork>(state: State<U>, body: Json<RefreshRequest>) -> Result<HttpResponse, ApiError> {
    let session = state.app.refresh(refresh_token(&body.value)?).await?;
    Ok(ok(&SessionResponse::new(&session, state.app.clock.now())))
}

/// The refresh token of a request, if it has the shape of one this API hands out (printable ASCII,
/// at most 128 characters); anything else is refused before it is looked up.
fn refresh_token(body: &RefreshRequest) -> Result<&str, ApiError> {
    let token = body.refresh_token.as_str();
    if token.len() <= 128 && token.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(token)
    } else {
        Err(ApiError::invalid_field("refresh_token", "at most 128 printable ASCII characters"))
    }
}

/// Ends the session of a refresh token (and its descendants).
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    request_body = RefreshRequest,
    responses((status = 204, description = "Logged out (also when the token was unknown)")))]
pub async fn logout<U: UnitOfWork>(state: State<U>, body: Json<RefreshRequest>) -> Result<HttpResponse, ApiError> {
    state.app.logout(refresh_token(&body.value)?).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The authenticated user.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = UserResponse),
        (status = 401, description = "Missing, invalid or expired token", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn me<U: UnitOfWork>(state: State<U>, caller: Authenticated) -> Result<HttpResponse, ApiError> {
    let user = state.app.profile(caller.0.user_id).await?;
    Ok(ok(&UserResponse::from(&user)))
}
