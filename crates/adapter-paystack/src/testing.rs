//! A local stand-in for the parts of Paystack's API this adapter uses: transaction
//! initialisation and verification, refunds (create and list), answering in Paystack's envelope
//! with its error shapes (`status: false` and a message, with 400, 401 or 404); failing on cue
//! (429, 5xx, anything); and building, signing and sending the webhooks Paystack would send.

use std::collections::{BTreeMap, VecDeque};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

/// A transaction as the double holds it.
#[derive(Debug, Clone)]
pub struct Transaction {
    pub id: u64,
    pub reference: String,
    /// In the currency's subunit.
    pub amount: i64,
    pub currency: String,
    pub email: String,
    pub callback_url: String,
    pub metadata: Value,
    /// `abandoned` until paid (`success`), or whatever a test sets.
    pub status: String,
}

/// A refund as the double holds it.
#[derive(Debug, Clone)]
pub struct Refund {
    pub id: u64,
    pub transaction_reference: String,
    pub amount: i64,
    pub currency: String,
    pub status: String,
    pub merchant_note: String,
}

/// A request the double received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    /// With the query string.
    pub path: String,
    pub body: Value,
}

#[derive(Debug, Default)]
struct State {
    secret_key: String,
    transactions: BTreeMap<String, Transaction>,
    refunds: Vec<Refund>,
    requests: Vec<Received>,
    failures: Vec<(String, VecDeque<(u16, Value)>)>,
    counter: u64,
    refund_status: String,
}

#[derive(Debug, Clone)]
pub struct PaystackDouble {
    base: String,
    secret_key: String,
    state: Arc<Mutex<State>>,
}

fn ok(message: &str, data: Value) -> (u16, Value) {
    (200, json!({"status": true, "message": message, "data": data}))
}

/// Paystack's error shape: `status: false` and a message.
pub fn refusal(message: &str) -> Value {
    json!({"status": false, "message": message})
}

/// Paystack's validation error shape (400), with its `meta`, `type` and `code`.
pub fn validation_error(message: &str) -> Value {
    json!({"status": false, "message": message, "meta": {"nextStep": "Ensure that the value(s) you're passing are valid."},
        "type": "validation_error", "code": "invalid_params"})
}

impl Transaction {
    fn json(&self) -> Value {
        let paid = self.status == "success";
        json!({"id": self.id, "domain": "test", "status": self.status, "reference": self.reference, "amount": self.amount,
            "message": null, "gateway_response": if paid { "Successful" } else { "The transaction was not completed" },
            "paid_at": if paid { Value::from("2026-11-30T00:10:00.000Z") } else { Value::Null },
            "created_at": "2026-11-30T00:00:00.000Z", "channel": "card", "currency": self.currency, "ip_address": "100.64.11.35",
            "metadata": self.metadata, "fees": if paid { self.amount / 100 } else { 0 }, "fees_split": null,
            "authorization": {"authorization_code": "AUTH_test", "bin": "408408", "last4": "4081", "exp_month": "12", "exp_year": "2030",
                "channel": "card", "card_type": "visa", "bank": "TEST BANK", "country_code": "NG", "brand": "visa", "reusable": true},
            "customer": {"id": 89929267, "first_name": null, "last_name": null, "email": self.email, "customer_code": "CUS_test",
                "phone": null, "metadata": null, "risk_action": "default"},
            "plan": null, "split": {}, "order_id": null, "requested_amount": self.amount, "transaction_date": "2026-11-30T00:00:00.000Z"})
    }
}

impl Refund {
    fn json(&self, transaction: Option<&Transaction>) -> Value {
        json!({"integration": 412829, "transaction": transaction.map_or(Value::Null, Transaction::json), "dispute": null,
            "settlement": null, "id": self.id, "domain": "test", "currency": self.currency, "amount": self.amount,
            "deducted_amount": self.amount, "fully_deducted": true, "status": self.status, "refunded_by": "api@example.com",
            "merchant_note": self.merchant_note, "customer_note": "Refund", "expected_at": "2026-12-07T00:00:00.000Z",
            "channel": "card", "createdAt": "2026-11-30T00:00:00.000Z", "updatedAt": "2026-11-30T00:00:00.000Z"})
    }
}

impl PaystackDouble {
    /// A double that accepts `secret_key` and signs its webhooks with it.
    pub async fn start(secret_key: &str) -> std::io::Result<PaystackDouble> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let base = format!("http://{}", listener.local_addr()?);
        let state = Arc::new(Mutex::new(State {
            secret_key: secret_key.to_owned(),
            refund_status: "pending".into(),
            ..State::default()
        }));
        let shared = web::Data::new(Arc::clone(&state));
        let server = HttpServer::new(move || App::new().app_data(shared.clone()).default_service(web::to(handle)))
            .workers(1)
            .disable_signals()
            .listen(listener)?
            .run();
        tokio::spawn(server);
        Ok(PaystackDouble {
            base,
            secret_key: secret_key.to_owned(),
            state,
        })
    }

    pub fn url(&self) -> String {
        self.base.clone()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn transactions(&self) -> Vec<Transaction> {
        self.state().transactions.values().cloned().collect()
    }

    pub fn transaction(&self, reference: &str) -> Option<Transaction> {
        self.state().transactions.get(reference).cloned()
    }

    pub fn refunds(&self) -> Vec<Refund> {
        self.state().refunds.clone()
    }

    /// Every request received, oldest first.
    pub fn requests(&self) -> Vec<Received> {
        self.state().requests.clone()
    }

    /// The status new refunds are created with (`pending` unless set).
    pub fn set_refund_status(&self, status: &str) {
        self.state().refund_status = status.to_owned();
    }

    /// Moves a refund to `status` (`processing`, `processed`, `failed`).
    pub fn settle_refund(&self, id: u64, status: &str) {
        if let Some(refund) = self.state().refunds.iter_mut().find(|r| r.id == id) {
            status.clone_into(&mut refund.status);
        }
    }

    /// The next requests whose path (`/refund`) or method and path (`POST /refund`) start with
    /// `prefix` get these answers instead.
    pub fn fail_next(&self, prefix: &str, answers: Vec<(u16, Value)>) {
        self.state().failures.push((prefix.to_owned(), answers.into()));
    }

    /// Sets a transaction's status as the verify API reports it.
    pub fn set_status(&self, reference: &str, status: &str) {
        if let Some(transaction) = self.state().transactions.get_mut(reference) {
            status.clone_into(&mut transaction.status);
        }
    }

    /// The customer pays: the transaction succeeds, and this returns the `charge.success`
    /// webhook body Paystack would send.
    pub fn pay(&self, reference: &str) -> Option<String> {
        let mut state = self.state();
        let transaction = state.transactions.get_mut(reference)?;
        "success".clone_into(&mut transaction.status);
        Some(json!({"event": "charge.success", "data": transaction.json()}).to_string())
    }

    /// The `refund.*` webhook Paystack sends as a refund moves (`pending`, `processing`,
    /// `processed`, `failed`), in its documented shape: the transaction reference, the amount as
    /// a string, and the processor's reference once processed; not the refund's id.
    pub fn refund_event(&self, id: u64, status: &str) -> Option<String> {
        let state = self.state();
        let refund = state.refunds.iter().find(|r| r.id == id)?;
        let email = state
            .transactions
            .get(&refund.transaction_reference)
            .map(|t| t.email.clone())
            .unwrap_or_default();
        let processor_reference = match status {
            "processed" | "failed" => Value::from(format!("PRC_{}", refund.id)),
            _ => Value::Null,
        };
        Some(
            json!({"event": format!("refund.{status}"), "data": {"status": status, "transaction_reference": refund.transaction_reference,
                "refund_reference": processor_reference, "amount": refund.amount.to_string(), "currency": refund.currency,
                "processor": "mpgs_zen", "customer": {"first_name": null, "last_name": null, "email": email},
                "integration": 412829, "domain": "test"}})
            .to_string(),
        )
    }

    /// `x-paystack-signature` for a body, as Paystack computes it.
    pub fn sign(&self, body: &str) -> String {
        crate::sign(&self.secret_key, body.as_bytes())
    }

    /// Sends a webhook signed as Paystack would to `url`; the status and body of the answer.
    ///
    /// # Errors
    /// The receiver could not be reached.
    pub async fn send_webhook(&self, url: &str, body: &str) -> Result<(u16, String), reqwest::Error> {
        crate::ensure_crypto_provider();
        let response = reqwest::Client::new()
            .post(url)
            .header("content-type", "application/json")
            .header(crate::SIGNATURE_HEADER, self.sign(body))
            .body(body.to_owned())
            .send()
            .await?;
        let status = response.status().as_u16();
        Ok((status, response.text().await?))
    }
}

fn initialize(state: &mut State, body: &Value) -> (u16, Value) {
    let (Some(email), Some(amount)) = (body["email"].as_str(), body["amount"].as_i64()) else {
        return (400, validation_error("Invalid Email Address Passed"));
    };
    if amount <= 0 {
        return (400, validation_error("Invalid Amount Sent"));
    }
    let reference = body["reference"]
        .as_str()
        .map_or_else(|| format!("T{}", state.counter), str::to_owned);
    if !reference.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.=".contains(&b)) {
        return (400, validation_error("Invalid transaction reference"));
    }
    if state.transactions.contains_key(&reference) {
        return (400, refusal("Duplicate Transaction Reference"));
    }
    let access_code = format!("ac{:08}", state.counter);
    let transaction = Transaction {
        id: 4_000_000 + state.counter,
        reference: reference.clone(),
        amount,
        currency: body["currency"].as_str().unwrap_or("NGN").to_owned(),
        email: email.to_owned(),
        callback_url: body["callback_url"].as_str().unwrap_or_default().to_owned(),
        metadata: body["metadata"].clone(),
        status: "abandoned".into(),
    };
    state.transactions.insert(reference.clone(), transaction);
    ok(
        "Authorization URL created",
        json!({"authorization_url": format!("https://checkout.paystack.com/{access_code}"), "access_code": access_code, "reference": reference}),
    )
}

fn create_refund(state: &mut State, body: &Value) -> (u16, Value) {
    let reference = match &body["transaction"] {
        Value::String(text) => text.clone(),
        Value::Number(id) => state
            .transactions
            .values()
            .find(|t| Some(t.id) == id.as_u64())
            .map(|t| t.reference.clone())
            .unwrap_or_default(),
        _ => return (400, validation_error("Transaction reference or id is required")),
    };
    let Some(transaction) = state.transactions.get(&reference).cloned() else {
        return (404, refusal("Transaction not found"));
    };
    if transaction.status != "success" {
        return (400, refusal("Cannot refund a transaction that was not successful"));
    }
    let amount = body["amount"].as_i64().unwrap_or(transaction.amount);
    let refunded: i64 = state
        .refunds
        .iter()
        .filter(|r| r.transaction_reference == reference && r.status != "failed")
        .map(|r| r.amount)
        .sum();
    if amount <= 0 || amount + refunded > transaction.amount {
        return (400, validation_error("Refund amount cannot be more than the transaction amount"));
    }
    let refund = Refund {
        id: 3_000_000 + state.counter,
        transaction_reference: reference,
        amount,
        currency: body["currency"].as_str().unwrap_or(&transaction.currency).to_owned(),
        status: state.refund_status.clone(),
        merchant_note: body["merchant_note"].as_str().unwrap_or_default().to_owned(),
    };
    state.refunds.push(refund.clone());
    ok("Refund has been queued for processing", refund.json(Some(&transaction)))
}

fn route(state: &mut State, req: &HttpRequest, body: &Value) -> (u16, Value) {
    state.counter += 1;
    let authorised = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|h| h == format!("Bearer {}", state.secret_key));
    if !authorised {
        return (401, refusal("Invalid key"));
    }
    let path = req.path().to_owned();
    match (req.method().as_str(), path.as_str()) {
        ("POST", "/transaction/initialize") => initialize(state, body),
        ("GET", verify) if verify.starts_with("/transaction/verify/") => {
            let reference = verify.trim_start_matches("/transaction/verify/");
            match state.transactions.get(reference) {
                Some(t) => ok("Verification successful", t.json()),
                None => (400, refusal("Transaction reference not found")),
            }
        }
        ("POST", "/refund") => create_refund(state, body),
        ("GET", "/refund") => {
            let wanted = req
                .query_string()
                .split('&')
                .find_map(|pair| pair.strip_prefix("reference="))
                .unwrap_or_default()
                .to_owned();
            let listed: Vec<Value> = state
                .refunds
                .iter()
                .filter(|r| wanted.is_empty() || r.transaction_reference == wanted)
                .map(|r| r.json(None))
                .collect();
            let total = listed.len();
            (
                200,
                json!({"status": true, "message": "Refunds retrieved", "data": listed, "meta": {"total": total, "page": 1}}),
            )
        }
        ("GET", fetch) if fetch.starts_with("/refund/") => {
            let id = fetch.trim_start_matches("/refund/").parse::<u64>().ok();
            match state.refunds.iter().find(|r| Some(r.id) == id) {
                Some(refund) => ok(
                    "Refund retrieved",
                    refund.json(state.transactions.get(&refund.transaction_reference)),
                ),
                None => (404, refusal("Refund not found")),
            }
        }
        _ => (404, refusal("The requested resource was not found")),
    }
}

async fn handle(req: HttpRequest, raw: web::Bytes, state: web::Data<Arc<Mutex<State>>>) -> HttpResponse {
    let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    let (status, answer) = {
        let mut state = state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let path = req.path().to_owned();
        let with_query = match req.query_string() {
            "" => path.clone(),
            query => format!("{path}?{query}"),
        };
        state.requests.push(Received {
            method: req.method().to_string(),
            path: with_query,
            body: body.clone(),
        });
        let request_line = format!("{} {path}", req.method());
        let scripted = state
            .failures
            .iter_mut()
            .find(|(prefix, answers)| {
                (path.starts_with(prefix.as_str()) || request_line.starts_with(prefix.as_str())) && !answers.is_empty()
            })
            .and_then(|(_, a)| a.pop_front());
        scripted.unwrap_or_else(|| route(&mut state, &req, &body))
    };
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR))
        .content_type("application/json")
        .body(answer.to_string())
}
