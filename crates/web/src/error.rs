//! What a page answers when it cannot show what was asked: a page of its own, never a stack
//! trace or a bare status. Refusals of the use cases become 403 and 404 pages; a visitor who is
//! not signed in is sent to the sign-in page, and back afterwards.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpResponse, ResponseError};

use crate::view;

#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("sign in to see this page")]
    SignIn(String),
    #[error("you may not see this page")]
    Forbidden,
    #[error("there is no such page")]
    NotFound,
    #[error("this form has expired or did not come from this site: reload the page and try again")]
    Csrf,
    #[error("{0}")]
    BadRequest(String),
    /// A form sent again while its first submission runs, or its key reused with other values.
    #[error("{0}")]
    Conflict(&'static str),
    /// The methods the page does answer, for `Allow`.
    #[error("this page does not answer that method")]
    MethodNotAllowed(String),
    #[error("too many attempts: wait a minute and try again")]
    TooManyRequests,
    #[error("something went wrong on our side")]
    Internal(String),
}

impl PageError {
    /// An unexpected failure: logged in full, shown as an opaque 500 page.
    pub fn internal(error: impl std::fmt::Display) -> PageError {
        PageError::Internal(error.to_string())
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            PageError::SignIn(_) => StatusCode::SEE_OTHER,
            PageError::Forbidden | PageError::Csrf => StatusCode::FORBIDDEN,
            PageError::NotFound => StatusCode::NOT_FOUND,
            PageError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            PageError::BadRequest(_) => StatusCode::BAD_REQUEST,
            PageError::Conflict(_) => StatusCode::CONFLICT,
            PageError::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            PageError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let PageError::SignIn(next) = self {
            let location = format!("/sign-in?next={}", view::url_encode(next));
            return HttpResponse::SeeOther().insert_header((header::LOCATION, location)).finish();
        }
        if let PageError::Internal(detail) = self {
            tracing::error!(%detail, "page failed");
        }
        let status = self.status_code();
        let mut response = HttpResponse::build(status);
        if status == StatusCode::TOO_MANY_REQUESTS {
            response.insert_header((header::RETRY_AFTER, "60"));
        }
        if let PageError::MethodNotAllowed(allow) = self {
            response.insert_header((header::ALLOW, allow.clone()));
        }
        response
            .content_type("text/html; charset=utf-8")
            .body(view::error_page(status, &self.to_string()).into_string())
    }
}
