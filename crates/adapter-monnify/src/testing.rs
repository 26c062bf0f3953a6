//! A local stand-in for the parts of Monnify's API this adapter uses: login, transaction
//! initialisation, status, refunds, answering in Monnify's envelope; failing on cue; and building
//! the signed webhooks Monnify would send.

use std::collections::{HashMap, VecDeque};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct Transaction {
    pub transaction_reference: String,
    pub payment_reference: String,
    /// The amount's JSON text as sent, e.g. `2500.00`.
    pub amount: String,
    pub customer_email: String,
    pub status: String,
}

#[derive(Debug, Default)]
struct State {
    credentials: String,
    tokens: Vec<String>,
    transactions: HashMap<String, Transaction>,
    refunds: Vec<Value>,
    failures: Vec<(String, VecDeque<(u16, Value)>)>,
    logins: usize,
    counter: u64,
    refund_status: String,
}

#[derive(Debug, Clone)]
pub struct MonnifyDouble {
    base: String,
    state: Arc<Mutex<State>>,
}

fn envelope(body: Value) -> Value {
    json!({"requestSuccessful": true, "responseMessage": "success", "responseCode": "0", "responseBody": body})
}

/// Monnify's error envelope.
pub fn refusal(message: &str, code: &str) -> Value {
    json!({"requestSuccessful": false, "responseMessage": message, "responseCode": code})
}

impl MonnifyDouble {
    pub async fn start(api_key: &str, secret_key: &str) -> std::io::Result<MonnifyDouble> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let base = format!("http://{}", listener.local_addr()?);
        let state = Arc::new(Mutex::new(State {
            credentials: STANDARD.encode(format!("{api_key}:{secret_key}")),
            refund_status: "IN_PROGRESS".into(),
            ..State::default()
        }));
        let shared = web::Data::new(Arc::clone(&state));
        let server = HttpServer::new(move || App::new().app_data(shared.clone()).default_service(web::to(handle)))
            .workers(1)
            .disable_signals()
            .listen(listener)?
            .run();
        tokio::spawn(server);
        Ok(MonnifyDouble { base, state })
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

    pub fn transaction_for(&self, payment_reference: &str) -> Option<Transaction> {
        self.state()
            .transactions
            .values()
            .find(|t| t.payment_reference == payment_reference)
            .cloned()
    }

    pub fn refunds(&self) -> Vec<Value> {
        self.state().refunds.clone()
    }

    pub fn logins(&self) -> usize {
        self.state().logins
    }

    /// Every token issued so far stops working (as if it expired).
    pub fn revoke_tokens(&self) {
        self.state().tokens.clear();
    }

    pub fn set_refund_status(&self, status: &str) {
        self.state().refund_status = status.to_owned();
    }

    pub fn fail_next(&self, prefix: &str, answers: Vec<(u16, Value)>) {
        self.state().failures.push((prefix.to_owned(), answers.into()));
    }

    /// The customer pays: the transaction becomes `status` (usually `PAID`), and this returns the
    /// `SUCCESSFUL_TRANSACTION` webhook body Monnify would send.
    pub fn pay(&self, transaction_reference: &str, status: &str) -> Option<String> {
        let mut state = self.state();
        let transaction = state.transactions.get_mut(transaction_reference)?;
        transaction.status = status.to_owned();
        Some(
            json!({"eventType": "SUCCESSFUL_TRANSACTION", "eventData": {
                "product": {"reference": transaction.payment_reference, "type": "WEB_SDK"},
                "transactionReference": transaction.transaction_reference, "paymentReference": transaction.payment_reference,
                "paidOn": "2026-11-23 11:28:42.615", "paymentDescription": "payment", "metaData": {},
                "amountPaid": transaction.amount.parse::<f64>().unwrap_or_default(), "totalPayable": transaction.amount.parse::<f64>().unwrap_or_default(),
                "cardDetails": {}, "paymentMethod": "CARD", "currency": "NGN", "settlementAmount": transaction.amount,
                "paymentStatus": status, "customer": {"name": "Customer", "email": transaction.customer_email}}})
            .to_string(),
        )
    }

    /// The webhook Monnify sends when a refund completes or fails.
    pub fn refund_event(refund_reference: &str, transaction_reference: &str, amount: &str, completed: bool) -> String {
        let kind = if completed { "SUCCESSFUL_REFUND" } else { "FAILED_REFUND" };
        let status = if completed { "COMPLETED" } else { "FAILED" };
        json!({"eventType": kind, "eventData": {"refundReference": refund_reference, "transactionReference": transaction_reference,
            "refundAmount": amount.parse::<f64>().unwrap_or_default(), "refundStatus": status, "refundReason": "CUSTOMER_REQUEST"}})
        .to_string()
    }
}

fn bearer_ok(state: &State, req: &HttpRequest) -> bool {
    let header = req.headers().get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
    header
        .strip_prefix("Bearer ")
        .is_some_and(|token| state.tokens.iter().any(|t| t == token))
}

/// A field's JSON text exactly as sent (`2500.50` stays `2500.50`).
fn raw_field(raw: &[u8], name: &str) -> String {
    serde_json::from_slice::<HashMap<String, Box<serde_json::value::RawValue>>>(raw)
        .ok()
        .and_then(|fields| fields.get(name).map(|v| v.get().to_owned()))
        .unwrap_or_default()
}

fn route(state: &mut State, req: &HttpRequest, body: &Value, raw: &[u8]) -> (u16, Value) {
    state.counter += 1;
    let n = state.counter;
    let path = req.path().to_owned();
    if path == "/api/v1/auth/login" {
        let header = req.headers().get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
        if header != format!("Basic {}", state.credentials) {
            return (401, refusal("Full authentication is required to access this resource", "99"));
        }
        state.logins += 1;
        let token = format!("token-{n}");
        state.tokens.push(token.clone());
        return (200, envelope(json!({"accessToken": token, "expiresIn": 3600})));
    }
    if !bearer_ok(state, req) {
        return (401, refusal("Invalid token", "99"));
    }
    match (req.method().as_str(), path.as_str()) {
        ("POST", "/api/v1/merchant/transactions/init-transaction") => {
            let reference = format!("MNFY|{n}|20261123|{n:06}");
            let amount = raw_field(raw, "amount");
            let transaction = Transaction {
                transaction_reference: reference.clone(),
                payment_reference: body["paymentReference"].as_str().unwrap_or_default().to_owned(),
                amount,
                customer_email: body["customerEmail"].as_str().unwrap_or_default().to_owned(),
                status: "PENDING".into(),
            };
            state.transactions.insert(reference.clone(), transaction.clone());
            (
                200,
                envelope(
                    json!({"transactionReference": reference, "paymentReference": transaction.payment_reference,
                "merchantName": "Test", "apiKey": "MK_TEST", "enabledPaymentMethod": ["CARD", "ACCOUNT_TRANSFER"],
                "checkoutUrl": format!("https://sandbox.sdk.monnify.com/checkout/{reference}")}),
                ),
            )
        }
        ("POST", "/api/v1/refunds/initiate-refund") if state.refunds.iter().any(|r| r["refundReference"] == body["refundReference"]) => {
            (400, refusal("Duplicate refund reference", "99"))
        }
        ("POST", "/api/v1/refunds/initiate-refund") => {
            let mut recorded = body.clone();
            recorded["refundAmount"] = Value::String(raw_field(raw, "refundAmount"));
            state.refunds.push(recorded);
            (
                200,
                envelope(
                    json!({"refundReference": body["refundReference"], "transactionReference": body["transactionReference"],
                "refundAmount": body["refundAmount"], "refundReason": body["refundReason"], "refundStatus": state.refund_status,
                "refundType": "PARTIAL_REFUND", "comment": "Transaction refund is in progress."}),
                ),
            )
        }
        ("GET", path) if path.starts_with("/api/v1/refunds/") => {
            let reference = path.trim_start_matches("/api/v1/refunds/");
            match state.refunds.iter().find(|r| r["refundReference"] == reference) {
                Some(r) => (
                    200,
                    envelope(
                        json!({"refundReference": r["refundReference"], "transactionReference": r["transactionReference"],
                        "refundAmount": r["refundAmount"], "refundStatus": state.refund_status, "refundType": "PARTIAL_REFUND"}),
                    ),
                ),
                None => (404, refusal("No refund has been initiated for supplied refund reference", "R7")),
            }
        }
        ("GET", status) if status.starts_with("/api/v2/transactions/") => {
            let reference = status.trim_start_matches("/api/v2/transactions/").replace("%7C", "|");
            match state.transactions.get(&reference) {
                Some(t) => (
                    200,
                    envelope(
                        json!({"transactionReference": t.transaction_reference, "paymentReference": t.payment_reference,
                    "amountPaid": if t.status == "PENDING" { "0.00".to_owned() } else { t.amount.clone() }, "totalPayable": t.amount,
                    "paymentStatus": t.status, "currency": "NGN"}),
                    ),
                ),
                None => (404, refusal("Could not find transaction", "99")),
            }
        }
        _ => (404, refusal("Not found", "99")),
    }
}

async fn handle(req: HttpRequest, raw: web::Bytes, state: web::Data<Arc<Mutex<State>>>) -> HttpResponse {
    let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    let (status, answer) = {
        let mut state = state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let path = req.path().to_owned();
        let scripted = state
            .failures
            .iter_mut()
            .find(|(prefix, answers)| path.starts_with(prefix.as_str()) && !answers.is_empty())
            .and_then(|(_, a)| a.pop_front());
        scripted.unwrap_or_else(|| route(&mut state, &req, &body, &raw))
    };
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR))
        .content_type("application/json")
        .body(answer.to_string())
}
