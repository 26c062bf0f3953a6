//! A thin client of the payment API.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

pub const PASSWORD: &str = "load test password 1";

#[derive(Debug, Clone)]
pub struct Api {
    http: reqwest::Client,
}

/// One answer: status (0 for a transport failure), body, and how long it took.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub elapsed: Duration,
}

#[derive(Debug, Clone)]
pub struct Account {
    pub id: String,
    pub email: String,
    pub token: String,
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

    pub async fn send(&self, method: reqwest::Method, url: &str, token: Option<&str>, body: Option<&Value>, key: Option<&str>) -> Answer {
        let started = Instant::now();
        let mut request = self.http.request(method, url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let body = response.json::<Value>().await.unwrap_or(Value::Null);
                Answer {
                    status,
                    body,
                    elapsed: started.elapsed(),
                }
            }
            Err(_) => Answer {
                status: 0,
                body: Value::Null,
                elapsed: started.elapsed(),
            },
        }
    }

    pub async fn get(&self, url: &str, token: Option<&str>) -> Answer {
        self.send(reqwest::Method::GET, url, token, None, None).await
    }

    pub async fn post(&self, url: &str, token: Option<&str>, body: &Value) -> Answer {
        self.send(reqwest::Method::POST, url, token, Some(body), None).await
    }

    /// A call that must succeed (seeding, checks).
    pub async fn expect(&self, answer: Answer, what: &str) -> anyhow::Result<Value> {
        if !(200..300).contains(&answer.status) {
            bail!("{what} failed with {}: {}", answer.status, answer.body);
        }
        Ok(answer.body)
    }

    pub async fn login(&self, base: &str, email: &str, password: &str) -> anyhow::Result<Account> {
        let answer = self
            .post(
                &format!("{base}/api/v1/auth/login"),
                None,
                &json!({"email": email, "password": password}),
            )
            .await;
        let body = self.expect(answer, &format!("login of {email}")).await?;
        Ok(Account {
            id: body["user"]["id"].as_str().unwrap_or_default().to_owned(),
            email: email.to_owned(),
            token: body["access_token"].as_str().unwrap_or_default().to_owned(),
        })
    }

    pub async fn register(&self, base: &str, email: &str, role: &str) -> anyhow::Result<Account> {
        let answer = self
            .post(
                &format!("{base}/api/v1/auth/register"),
                None,
                &json!({"email": email, "password": PASSWORD, "role": role}),
            )
            .await;
        self.expect(answer, &format!("registration of {email}")).await?;
        self.login(base, email, PASSWORD).await
    }
}
