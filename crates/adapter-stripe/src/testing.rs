//! A local stand-in for the parts of Stripe's API this adapter uses, answering with the JSON
//! shapes of Stripe's API reference (including the fields async-stripe requires), replaying
//! responses per idempotency key as Stripe does, and failing on cue. It also builds and signs the
//! webhook events Stripe would send.

use std::collections::{HashMap, VecDeque};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

/// A request the double received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub idempotency_key: Option<String>,
    /// The form body, decoded into `key -> value` (`line_items[0][quantity]` stays one key).
    pub form: HashMap<String, String>,
}

#[derive(Debug, Default)]
struct State {
    requests: Vec<Recorded>,
    /// Scripted answers, per path prefix, used before the normal behaviour.
    failures: Vec<(String, VecDeque<(u16, Value)>)>,
    replies: HashMap<String, Value>,
    sessions: HashMap<String, Value>,
    refund_status: String,
    counter: u64,
}

#[derive(Debug, Clone)]
pub struct StripeDouble {
    base: String,
    state: Arc<Mutex<State>>,
}

fn decode(text: &str) -> String {
    let bytes = text.replace('+', " ").into_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(byte) = u8::from_str_radix(&String::from_utf8_lossy(&bytes[i + 1..i + 3]), 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn form(body: &[u8]) -> HashMap<String, String> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter_map(|pair| pair.split_once('=').map(|(k, v)| (decode(k), decode(v))))
        .collect()
}

fn int(form: &HashMap<String, String>, key: &str) -> i64 {
    form.get(key).and_then(|v| v.parse().ok()).unwrap_or(0)
}

impl StripeDouble {
    /// Starts the double on a free port.
    pub async fn start() -> std::io::Result<StripeDouble> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let base = format!("http://{}", listener.local_addr()?);
        let state = Arc::new(Mutex::new(State {
            refund_status: "succeeded".into(),
            ..State::default()
        }));
        let shared = web::Data::new(Arc::clone(&state));
        let server = HttpServer::new(move || App::new().app_data(shared.clone()).default_service(web::to(handle)))
            .workers(1)
            .disable_signals()
            .listen(listener)?
            .run();
        tokio::spawn(server);
        Ok(StripeDouble { base, state })
    }

    /// The API base to configure the adapter with.
    pub fn url(&self) -> String {
        format!("{}/", self.base)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state().requests.clone()
    }

    /// The next requests to a path starting with `prefix` get these answers, in order.
    pub fn fail_next(&self, prefix: &str, answers: Vec<(u16, Value)>) {
        self.state().failures.push((prefix.to_owned(), answers.into()));
    }

    /// Refunds are created in this status from now on (`succeeded`, `pending`, `failed`).
    pub fn set_refund_status(&self, status: &str) {
        self.state().refund_status = status.to_owned();
    }

    /// A session the double created.
    pub fn session(&self, id: &str) -> Option<Value> {
        self.state().sessions.get(id).cloned()
    }

    /// The payer completes a session on Stripe's page: it is `complete` and `paid` from now on
    /// (what `checkout.session.completed` then reports).
    pub fn complete_session(&self, id: &str, payment_intent: &str) -> Option<Value> {
        let mut state = self.state();
        let session = state.sessions.get_mut(id)?;
        *session = paid_session(session, payment_intent);
        Some(session.clone())
    }

    /// Stripe's error body.
    pub fn error(kind: &str, code: &str, message: &str) -> Value {
        json!({"error": {"type": kind, "code": code, "message": message, "decline_code": if code == "card_declined" { json!("insufficient_funds") } else { Value::Null }}})
    }
}

fn session_json(id: &str, base: &str, form: &HashMap<String, String>) -> Value {
    let mut total = 0;
    let mut index = 0;
    while form.contains_key(&format!("line_items[{index}][quantity]")) {
        total += int(form, &format!("line_items[{index}][price_data][unit_amount]")) * int(form, &format!("line_items[{index}][quantity]"));
        index += 1;
    }
    let currency = form
        .get("line_items[0][price_data][currency]")
        .cloned()
        .unwrap_or_else(|| "usd".into());
    json!({
        "id": id, "object": "checkout.session", "created": 1_700_000_000, "expires_at": int(form, "expires_at"), "livemode": false,
        "mode": "payment", "payment_status": "unpaid", "status": "open",
        "automatic_tax": {"enabled": false, "liability": null, "status": null}, "custom_fields": [], "custom_text": {},
        "payment_method_types": ["card"], "shipping_options": [],
        "url": format!("{base}/checkout/{id}"), "amount_total": total, "amount_subtotal": total, "currency": currency,
        "client_reference_id": form.get("client_reference_id"), "customer_email": form.get("customer_email"),
        "metadata": {"payment_id": form.get("metadata[payment_id]")},
        "payment_intent": null, "success_url": form.get("success_url"), "cancel_url": form.get("cancel_url"),
    })
}

fn answer(state: &mut State, method: &str, path: &str, form: &HashMap<String, String>, base: &str) -> (u16, Value) {
    state.counter += 1;
    let n = state.counter;
    match (method, path) {
        ("POST", "/v1/checkout/sessions") => {
            let id = format!("cs_test_{n}");
            let session = session_json(&id, base, form);
            state.sessions.insert(id, session.clone());
            (200, session)
        }
        ("POST", "/v1/refunds") => (
            200,
            json!({"id": format!("re_test_{n}"), "object": "refund", "amount": int(form, "amount"), "created": 1_700_000_000,
                   "currency": "usd", "payment_intent": form.get("payment_intent"), "status": state.refund_status,
                   "metadata": {"refund_id": form.get("metadata[refund_id]"), "payment_id": form.get("metadata[payment_id]")}}),
        ),
        ("POST", expire) if expire.starts_with("/v1/checkout/sessions/") && expire.ends_with("/expire") => {
            let id = expire
                .trim_start_matches("/v1/checkout/sessions/")
                .trim_end_matches("/expire")
                .to_owned();
            match state.sessions.get_mut(&id) {
                Some(session) if session["status"] == "open" => {
                    session["status"] = json!("expired");
                    (200, session.clone())
                }
                Some(_) => (
                    400,
                    StripeDouble::error(
                        "invalid_request_error",
                        "checkout_session_not_open",
                        "Only open sessions can be expired.",
                    ),
                ),
                None => (
                    404,
                    StripeDouble::error("invalid_request_error", "resource_missing", "No such checkout.session"),
                ),
            }
        }
        ("GET", session) if session.starts_with("/v1/checkout/sessions/") => {
            let id = session.trim_start_matches("/v1/checkout/sessions/");
            match state.sessions.get(id) {
                Some(session) => (200, session.clone()),
                None => (
                    404,
                    StripeDouble::error("invalid_request_error", "resource_missing", "No such checkout.session"),
                ),
            }
        }
        _ => (
            404,
            StripeDouble::error("invalid_request_error", "resource_missing", "Unrecognized request URL"),
        ),
    }
}

async fn handle(req: HttpRequest, body: web::Bytes, state: web::Data<Arc<Mutex<State>>>) -> HttpResponse {
    let form = form(&body);
    let key = req
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (method, path) = (req.method().as_str().to_owned(), req.path().to_owned());
    let base = format!("http://{}", req.connection_info().host());
    let (status, body) = {
        let mut state = state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        state.requests.push(Recorded {
            method: method.clone(),
            path: path.clone(),
            idempotency_key: key.clone(),
            form: form.clone(),
        });
        let scripted = state
            .failures
            .iter_mut()
            .find(|(prefix, answers)| path.starts_with(prefix.as_str()) && !answers.is_empty())
            .and_then(|(_, a)| a.pop_front());
        match (scripted, key.as_ref().and_then(|k| state.replies.get(k).cloned())) {
            (Some(answer), _) => answer,
            (None, Some(replayed)) => (200, replayed),
            (None, None) => {
                let (status, body) = answer(&mut state, &method, &path, &form, &base);
                if let (200, Some(key)) = (status, key) {
                    state.replies.insert(key, body.clone());
                }
                (status, body)
            }
        }
    };
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR))
        .content_type("application/json")
        .body(body.to_string())
}

/// A Stripe event envelope around `object`.
pub fn event(id: &str, kind: &str, object: Value) -> String {
    json!({"id": id, "object": "event", "api_version": "2026-09-30.endive", "created": time::OffsetDateTime::now_utc().unix_timestamp(),
           "livemode": false, "pending_webhooks": 1, "request": {"id": null, "idempotency_key": null}, "type": kind, "data": {"object": object}})
    .to_string()
}

/// The session as Stripe sends it once paid, with its PaymentIntent.
pub fn paid_session(session: &Value, payment_intent: &str) -> Value {
    let mut session = session.clone();
    session["payment_status"] = json!("paid");
    session["status"] = json!("complete");
    session["payment_intent"] = json!(payment_intent);
    session
}

/// `Stripe-Signature` for `body`, signed now with `secret`.
pub fn signature(secret: &str, body: &str) -> String {
    stripe_signature::sign(secret.as_bytes(), time::OffsetDateTime::now_utc().unix_timestamp(), body.as_bytes())
}
