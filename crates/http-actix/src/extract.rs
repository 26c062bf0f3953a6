//! Request extractors: JSON bodies with errors that name the field, bearer authentication,
//! idempotency keys, pagination and path ids.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use application::auth::Caller;
use application::idempotency::IdempotencyKey;
use application::pagination::PageRequest;
use application::ports::security::{TokenError, TokenIssuer};
use application::ports::system::Clock;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use utoipa::IntoParams;

use crate::problem::ApiError;
use crate::standing::StandingCheck;

/// What the authentication extractors need; registered as app data.
#[derive(Debug, Clone)]
pub struct AuthContext {
    pub tokens: Arc<dyn TokenIssuer>,
    pub clock: Arc<dyn Clock>,
    /// Refuses the tokens of suspended users; none where only the token is checked.
    pub standing: Option<StandingCheck>,
}

/// A JSON body. Syntax errors are 400; a body of the wrong shape (missing, unknown or mistyped
/// fields) is 422 naming the field's path. The raw bytes are kept for idempotency fingerprints.
#[derive(Debug)]
pub struct Json<T> {
    pub value: T,
    pub raw: Bytes,
}

/// A JSON body that may be left out: an empty (or blank) body is the type's default.
pub fn parse_optional_json<T: DeserializeOwned + Default>(raw: &[u8]) -> Result<T, ApiError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    parse_json(raw)
}

pub fn parse_json<T: DeserializeOwned>(raw: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(raw);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        match inner.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof | serde_json::error::Category::Io => {
                ApiError::bad_request("malformed_json", format!("the body is not valid JSON: {inner}"))
            }
            // A data error may hide a syntax error further on (`{} {}`): report the syntax first.
            serde_json::error::Category::Data if serde_json::from_slice::<serde::de::IgnoredAny>(raw).is_err() => {
                ApiError::bad_request("malformed_json", "the body is not a single valid JSON document")
            }
            serde_json::error::Category::Data => {
                let message = strip_position(&inner.to_string());
                let field = match (missing_field(&message), path.as_str()) {
                    (Some(name), ".") => name.to_owned(),
                    (Some(name), parent) => format!("{parent}.{name}"),
                    (None, ".") => "body".to_owned(),
                    (None, _) => path,
                };
                ApiError::invalid_field(field, message)
            }
        }
    })?;
    deserializer
        .end()
        .map_err(|e| ApiError::bad_request("malformed_json", format!("trailing characters after the JSON body: {e}")))?;
    // Serde fills a struct from an array too (`[]` is every field's default): every body here
    // is an object, so anything else is the wrong type.
    if raw.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::invalid_field(
            "body".to_owned(),
            "the body must be a JSON object".to_owned(),
        ));
    }
    if let Ok(document) = serde_json::from_slice::<serde_json::Value>(raw) {
        refuse_control_characters(&document, &mut String::new())?;
    }
    Ok(value)
}

/// Every string of a request, wherever it goes (a name, a reason, a note, a destination), is
/// free of control characters other than tab and line breaks: PostgreSQL refuses NUL, and the
/// others have no business in a payment record or a log line. Refused with the field named.
fn refuse_control_characters(value: &serde_json::Value, path: &mut String) -> Result<(), ApiError> {
    match value {
        serde_json::Value::String(text) => {
            if text.chars().any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r')) {
                let field = if path.is_empty() { "body".to_owned() } else { path.clone() };
                return Err(ApiError::invalid_field(
                    field,
                    "must not contain control characters (NUL, escape, ...)",
                ));
            }
            Ok(())
        }
        serde_json::Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                let length = path.len();
                path.push_str(&format!("[{index}]"));
                refuse_control_characters(item, path)?;
                path.truncate(length);
            }
            Ok(())
        }
        serde_json::Value::Object(fields) => {
            for (name, item) in fields {
                let length = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(name);
                refuse_control_characters(item, path)?;
                path.truncate(length);
            }
            Ok(())
        }
        serde_json::Value::Null | serde_json::Value::Bool(_) | serde_json::Value::Number(_) => Ok(()),
    }
}

/// serde_json appends "at line 1 column 12" to messages; the field name says more.
/// The field serde says is missing (`missing field `currency``): the error's path names the
/// object that lacks it, not the field.
fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.split('`').next()
}

fn strip_position(message: &str) -> String {
    match message.find(" at line ") {
        Some(index) => message[..index].to_owned(),
        None => message.to_owned(),
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_json = req
            .mime_type()
            .ok()
            .flatten()
            .is_some_and(|mime| mime.subtype() == "json" || mime.suffix().is_some_and(|s| s == "json"));
        let bytes = Bytes::from_request(req, payload);
        Box::pin(async move {
            if !is_json {
                return Err(ApiError::new(
                    actix_web::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "Unsupported media type",
                    "send the body as application/json",
                ));
            }
            let raw = bytes.await.map_err(|error| payload_error(&error))?;
            let value = parse_json(&raw)?;
            Ok(Json { value, raw })
        })
    }
}

fn payload_error(error: &actix_web::Error) -> ApiError {
    let status = error.as_response_error().status_code();
    if status == actix_web::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            status,
            "body_too_large",
            "Body too large",
            "the request body exceeds the size limit",
        )
    } else {
        ApiError::bad_request("unreadable_body", "the request body could not be read")
    }
}

/// The token of an `Authorization: Bearer <token>` header. The scheme is case-insensitive (RFC
/// 9110 11.1); every reader of the header (authentication, rate limits, metrics) uses this one.
pub fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim_start().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod text_tests {
    use serde::Deserialize;

    use super::parse_json;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Body {
        note: String,
        items: Vec<Item>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Item {
        name: String,
    }

    #[test]
    fn control_characters_are_refused_with_the_field_named() {
        let ok = br#"{"note": "two\nlines\tand a tab", "items": [{"name": "mug"}]}"#;
        assert!(parse_json::<Body>(ok).is_ok());
        for (body, field) in [
            (&br#"{"note": "nul\u0000", "items": []}"#[..], "note"),
            (&br#"{"note": "", "items": [{"name": "esc\u001b[31m"}]}"#[..], "items[0].name"),
            (&br#"{"note": "del\u007f", "items": []}"#[..], "note"),
        ] {
            let error = parse_json::<Body>(body).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(error.contains(field) && error.contains("control characters"), "{error}");
        }
    }
}

#[cfg(test)]
mod bearer_tests {
    use super::bearer_token;

    #[test]
    fn the_bearer_scheme_is_read_without_regard_to_case() {
        for header in ["Bearer abc", "bearer abc", "BEARER abc", "  Bearer   abc  "] {
            assert_eq!(bearer_token(header), Some("abc"), "{header}");
        }
        for header in ["Basic abc", "Bearer", "Bearer ", "Bearerabc", ""] {
            assert_eq!(bearer_token(header), None, "{header}");
        }
    }
}

/// The authenticated caller, from `Authorization: Bearer <access token>`.
#[derive(Debug, Clone, Copy)]
pub struct Authenticated(pub Caller);

fn authenticate(req: &HttpRequest) -> Result<Option<Caller>, ApiError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("the Authorization header is not text"))?;
    let token = bearer_token(text).ok_or_else(|| ApiError::unauthorized("use `Authorization: Bearer <access token>`"))?;
    let context = req
        .app_data::<web::Data<AuthContext>>()
        .ok_or_else(|| ApiError::internal(std::io::Error::other("authentication is not configured")))?;
    match context.tokens.verify_access_token(token, context.clock.now()) {
        Ok(claims) => Ok(Some(Caller {
            user_id: claims.user_id,
            role: claims.role,
        })),
        Err(TokenError::Expired) => Err(ApiError::unauthorized("the access token has expired; refresh it")),
        Err(TokenError::Invalid) => Err(ApiError::unauthorized("the access token is invalid")),
    }
}

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = futures::future::LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let caller = authenticate(req);
        let standing = req
            .app_data::<web::Data<AuthContext>>()
            .and_then(|context| context.standing.clone());
        Box::pin(async move {
            let caller = caller?.ok_or_else(|| ApiError::unauthorized("an access token is required"))?;
            if let Some(standing) = standing
                && !standing.allows(caller.user_id).await?
            {
                return Err(crate::errors::account_suspended());
            }
            Ok(Authenticated(caller))
        })
    }
}

/// The caller if a valid token was sent, for public routes that show more to owners.
#[derive(Debug, Clone, Copy)]
pub struct MaybeAuthenticated(pub Option<Caller>);

impl FromRequest for MaybeAuthenticated {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(authenticate(req).map(MaybeAuthenticated))
    }
}

/// The `Idempotency-Key` header, if sent.
#[derive(Debug, Clone)]
pub struct IdempotencyHeader(pub Option<IdempotencyKey>);

impl FromRequest for IdempotencyHeader {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let result = match req.headers().get("idempotency-key") {
            None => Ok(IdempotencyHeader(None)),
            Some(value) => value
                .to_str()
                .ok()
                .and_then(|text| IdempotencyKey::parse(text).ok())
                .map(|key| IdempotencyHeader(Some(key)))
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_idempotency_key",
                        "Idempotency-Key must have 1 to 255 visible ASCII characters",
                    )
                    .with_field("Idempotency-Key", "1 to 255 visible ASCII characters")
                }),
        };
        std::future::ready(result)
    }
}

/// `?limit=&cursor=` of list routes.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1 to 100 (default 20).
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageQuery {
    pub fn page(&self) -> Result<PageRequest, ApiError> {
        Ok(PageRequest::parse(self.limit, self.cursor.as_deref())?)
    }
}

/// Parses an id from the path; a malformed one is a 404, since no resource can have it.
pub fn path_id<T>(text: &str, parse: impl Fn(&str) -> Result<T, domain::ids::IdError>) -> Result<T, ApiError> {
    parse(text).map_err(|error| ApiError::not_found(format!("no {} with id `{}`", error.kind, error.text)))
}

/// Query-string errors (wrong types, unknown values) as problems.
pub fn query_error(error: actix_web::error::QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::bad_request("invalid_query", format!("the query string is invalid: {error}")).into()
}

/// Path errors as problems.
pub fn path_error(error: actix_web::error::PathError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::not_found(format!("no such resource: {error}")).into()
}
