//! A typed client of the payment API, generated from the OpenAPI document the server serves.
//!
//! [`Client`] has one method per operation (`orders_create`, `wallets_top_up`, ...), named after
//! the operation ids of the document, with typed requests and answers in [`types`]; an error answer
//! is an [`Error::ErrorResponse`] carrying the RFC 7807 [`types::Problem`]. The code is generated
//! by progenitor (see [`codegen`] with the `codegen` feature) and checked in as `src/generated.rs`;
//! a black-box test regenerates it from the live document and fails when they differ, so the
//! client cannot drift from the server.
//!
//! ```no_run
//! # async fn example() -> Result<(), api_client::Error<api_client::types::Problem>> {
//! use api_client::{Client, Credentials, types};
//!
//! let anonymous = Client::new("http://localhost:8080", Credentials::anonymous());
//! let login = types::LoginRequest {
//!     email: "admin@example.com".parse().expect("an address"),
//!     password: "demo password 1".parse().expect("a password"),
//! };
//! let session = anonymous.auth_login(&login).await?.into_inner();
//! let admin = anonymous.with_token(&session.access_token);
//! let wallets = admin.wallets_list().await?.into_inner();
//! println!("{} wallets", wallets.items.len());
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

#[cfg(feature = "codegen")]
pub mod codegen;

#[allow(
    missing_debug_implementations,
    missing_docs,
    clippy::all,
    clippy::unwrap_used,
    reason = "generated code"
)]
#[rustfmt::skip]
mod generated;

pub use generated::*;
pub use progenitor_client::{Error, ResponseValue};

/// Who is calling: the bearer token sent with every request of a [`Client`], if any.
#[derive(Clone, Default)]
pub struct Credentials {
    bearer: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let bearer = self.bearer.as_ref().map(|_| "<redacted>");
        formatter.debug_struct("Credentials").field("bearer", &bearer).finish()
    }
}

impl Credentials {
    /// No credentials: for registration, login and the public catalog.
    pub fn anonymous() -> Credentials {
        Credentials::default()
    }

    /// An access token from `auth_login` or `auth_refresh`.
    pub fn bearer(token: impl Into<String>) -> Credentials {
        Credentials {
            bearer: Some(token.into()),
        }
    }

    /// Adds the `Authorization` header; the generated client calls it before sending.
    fn apply(&self, request: &mut reqwest::Request) {
        let Some(token) = &self.bearer else { return };
        // A token that cannot be a header value is not sent, and the server answers 401.
        if let Ok(mut value) = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")) {
            value.set_sensitive(true);
            request.headers_mut().insert(reqwest::header::AUTHORIZATION, value);
        }
    }
}

impl Client {
    /// The same server and connection pool, calling as the holder of `token`.
    pub fn with_token(&self, token: &str) -> Client {
        Client::new_with_client(self.baseurl(), self.client().clone(), Credentials::bearer(token))
    }
}
