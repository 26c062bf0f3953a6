//! The load generator's view of the API: the typed client generated from the OpenAPI document
//! (`api-client`), timed.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::Context;
use api_client::types::{self, Problem};
use api_client::{Client, Credentials, ResponseValue};

pub const PASSWORD: &str = "load test password 1";

/// A typed call's result.
pub type Called<T> = Result<ResponseValue<T>, api_client::Error<Problem>>;

/// The HTTP connection pool every client of every account shares.
#[derive(Debug, Clone)]
pub struct Api {
    http: reqwest::Client,
}

/// One answer: status (0 for a transport failure or an unreadable answer), how long it took, and
/// the body of a success.
#[derive(Debug)]
pub struct Answer<T = ()> {
    pub status: u16,
    pub elapsed: Duration,
    pub body: Option<T>,
}

impl<T> Answer<T> {
    /// The same answer without its body, for the statistics.
    pub fn status_only(self) -> Answer {
        Answer {
            status: self.status,
            elapsed: self.elapsed,
            body: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Account {
    pub id: uuid::Uuid,
    pub email: String,
    pub token: String,
}

/// Times a typed call and keeps its status and, on success, its body.
pub async fn timed<T>(call: impl Future<Output = Called<T>>) -> Answer<T> {
    let started = Instant::now();
    let called = call.await;
    let elapsed = started.elapsed();
    match called {
        Ok(value) => Answer {
            status: value.status().as_u16(),
            elapsed,
            body: Some(value.into_inner()),
        },
        Err(error) => Answer {
            status: error.status().map_or(0, |status| status.as_u16()),
            elapsed,
            body: None,
        },
    }
}

/// The body of a call that must succeed (seeding, checks), or what went wrong.
pub async fn expect<T>(call: impl Future<Output = Called<T>>, what: &str) -> anyhow::Result<T> {
    match call.await {
        Ok(value) => Ok(value.into_inner()),
        Err(api_client::Error::ErrorResponse(problem)) => {
            anyhow::bail!("{what} failed with {}: {}", problem.status().as_u16(), problem.detail)
        }
        Err(error) => Err(error).context(what.to_owned()),
    }
}

/// A value of a generated type with a format (an amount, an e-mail address) from text the
/// load generator made.
pub fn parse<T: std::str::FromStr>(text: &str) -> anyhow::Result<T>
where
    T::Err: std::fmt::Display,
{
    text.parse().map_err(|error| anyhow::anyhow!("{text:?}: {error}"))
}

impl Api {
    pub fn new(connections_per_host: usize) -> anyhow::Result<Api> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(connections_per_host)
            .timeout(Duration::from_secs(30))
            .build()
            .context("the HTTP client")?;
        Ok(Api { http })
    }

    /// The client of the instance at `base`, calling anonymously.
    pub fn anonymous(&self, base: &str) -> Client {
        Client::new_with_client(base, self.http.clone(), Credentials::anonymous())
    }

    /// The client of the instance at `base`, calling as `account`.
    pub fn client(&self, base: &str, account: &Account) -> Client {
        Client::new_with_client(base, self.http.clone(), Credentials::bearer(account.token.clone()))
    }

    pub async fn login(&self, base: &str, email: &str, password: &str) -> anyhow::Result<Account> {
        let request = types::LoginRequest {
            email: parse(email)?,
            password: parse(password)?,
        };
        let session = expect(self.anonymous(base).auth_login(&request), &format!("login of {email}")).await?;
        Ok(Account {
            id: session.user.id,
            email: email.to_owned(),
            token: session.access_token,
        })
    }

    pub async fn register(&self, base: &str, email: &str, role: &str) -> anyhow::Result<Account> {
        let request = types::RegisterRequest {
            email: parse(email)?,
            password: parse(PASSWORD)?,
            role: Some(parse(role)?),
        };
        let anonymous = self.anonymous(base);
        expect(anonymous.auth_register(None, &request), &format!("registration of {email}")).await?;
        self.login(base, email, PASSWORD).await
    }
}
