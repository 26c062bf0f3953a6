//! What actors ask of the application, as values: a request can be started, dropped by a
//! restart, and retried under the same idempotency key.

use std::sync::Arc;

use application::App;
use application::adjustments::AdjustmentRequest;
use application::auth::{Caller, Registration};
use application::calls::StartCall;
use application::checkout::{Checkout, CheckoutCommand};
use application::holds::{CaptureRequest, HoldRequest};
use application::idempotency::{IdempotencyKey, IdempotencyScope, Idempotent, StoredResponse};
use application::ports::store::UnitOfWork;
use application::refund_requests::AskRefund;
use application::refunds::RefundCommand;
use application::top_ups::TopUpRequest;
use application::transfers::{Recipient, TransferRequest};
use application::webhooks::{EndpointUpdate, NewEndpoint};
use application::withdrawals::WithdrawalRequest;
use domain::catalog::Quantity;
use domain::ids::{CallId, HoldId, OrderId, ProductId, RefundRequestId, UserId, WebhookDeliveryId, WebhookEndpointId};
use domain::money::{Currency, Money};
use domain::order::{CaptureMethod, PaymentMethod};
use domain::user::Role;

use crate::executor::Task;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pay {
    Wallet,
    WalletHold,
    Card,
}

#[derive(Debug, Clone)]
pub enum Request {
    Register {
        email: String,
        role: Role,
    },
    TopUp {
        buyer: Caller,
        amount_minor: i64,
    },
    Checkout {
        buyer: Caller,
        items: Vec<(ProductId, i64)>,
        pay: Pay,
    },
    PayAgain {
        buyer: Caller,
        order: OrderId,
    },
    Cancel {
        caller: Caller,
        order: OrderId,
    },
    Capture {
        caller: Caller,
        order: OrderId,
    },
    Void {
        caller: Caller,
        order: OrderId,
    },
    Fulfil {
        caller: Caller,
        order: OrderId,
    },
    Refund {
        caller: Caller,
        order: OrderId,
        amount_minor: Option<i64>,
    },
    /// A buyer asks for (part of) the order's money back.
    AskRefund {
        buyer: Caller,
        order: OrderId,
        amount_minor: Option<i64>,
    },
    /// A merchant or the admin approves or declines a request; its buyer withdraws it.
    DecideRefund {
        caller: Caller,
        request: RefundRequestId,
        decision: Decision,
    },
    /// A customer calls another user at a rate per started minute, held from their wallet.
    StartCall {
        caller: Caller,
        receiver: UserId,
        rate_minor: i64,
    },
    /// A party ends the call; it is billed for the minutes started.
    EndCall {
        caller: Caller,
        call: CallId,
    },
    Transfer {
        from: Caller,
        to: UserId,
        amount_minor: i64,
    },
    Withdraw {
        caller: Caller,
        amount_minor: i64,
    },
    /// A customer authorises a merchant to take up to an amount from their wallet later.
    AuthoriseHold {
        customer: Caller,
        merchant: UserId,
        amount_minor: i64,
    },
    /// The merchant takes part of a hold (or all that is left), or the last part of it.
    CaptureHold {
        caller: Caller,
        hold: HoldId,
        amount_minor: Option<i64>,
        final_capture: bool,
    },
    /// Its customer, its merchant or an admin releases what is left of a hold.
    VoidHold {
        caller: Caller,
        hold: HoldId,
    },
    /// A merchant or the admin registers a webhook endpoint (sometimes with a URL refused).
    CreateEndpoint {
        caller: Caller,
        every_event: bool,
        bad_url: bool,
    },
    /// Its owner (or someone else, who must be refused) disables, enables, rolls the secret of,
    /// tests or deletes an endpoint.
    ManageEndpoint {
        caller: Caller,
        endpoint: WebhookEndpointId,
        action: EndpointAction,
    },
    /// Its endpoint's owner (or someone else) asks for a delivery again.
    Redeliver {
        caller: Caller,
        delivery: WebhookDeliveryId,
    },
    /// An admin credits or debits a user's wallet, with a reason.
    Adjust {
        caller: Caller,
        user: UserId,
        amount_minor: i64,
    },
}

impl Request {
    /// Whether the use case takes an idempotency key (the webhook endpoints' do not: they have
    /// no money effect, and a repeated one is harmless or refused).
    pub fn takes_key(&self) -> bool {
        !matches!(
            self,
            Request::CreateEndpoint { .. } | Request::ManageEndpoint { .. } | Request::Redeliver { .. }
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointAction {
    Disable,
    Enable,
    RollSecret,
    Test,
    Delete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Decline,
    Withdraw,
}

/// A request with its idempotency key, if the actor sent one.
#[derive(Debug, Clone)]
pub struct Keyed {
    pub request: Request,
    pub key: Option<String>,
}

/// How a request ended, as the model needs it.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// What the request created or changed, named by id, when it succeeded.
    pub effect: Option<String>,
    /// A card order it created, or an order it created.
    pub order: Option<(OrderId, Pay)>,
    /// The checkout session whose page it gave the payer, who may now pay it.
    pub session: Option<String>,
    /// The refund request it opened.
    pub asked: Option<RefundRequestId>,
    /// The call it started.
    pub call: Option<CallId>,
    /// The hold it authorised.
    pub hold: Option<HoldId>,
    /// The webhook endpoint it registered.
    pub endpoint: Option<WebhookEndpointId>,
    /// Whether it failed in a way a retry under the same key may get past.
    pub may_pass: bool,
    pub error: Option<String>,
}

fn usd(minor: i64) -> Money {
    Money::from_minor(minor, Currency::Usd)
}

fn blank<T>(_: &T) -> StoredResponse {
    StoredResponse {
        status: 200,
        body: Vec::new(),
        location: None,
    }
}

fn idempotent<T>(caller: &Caller, key: Option<&str>, fingerprint: &str) -> Option<Idempotent<T>> {
    let key = IdempotencyKey::parse(key?).ok()?;
    Some(Idempotent {
        scope: IdempotencyScope {
            principal: Some(caller.user_id),
            key,
        },
        fingerprint: fingerprint.to_owned(),
        render: blank::<T>,
    })
}

/// Failures a retry may get past: storage unavailable, in conflict, timed out or unsure whether it
/// committed, the provider busy or unreadable, the key still held by a request that died.
fn passes(text: &str) -> bool {
    [
        "unavailable",
        "conflict",
        "timed out",
        "outcome of the commit is unknown",
        "rate limiting",
        "unexpected gateway",
        "still being processed",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

fn outcome<T, E: std::fmt::Display>(result: Result<T, E>, effect: impl FnOnce(&T) -> String) -> Outcome {
    match result {
        Ok(value) => Outcome {
            effect: Some(effect(&value)),
            ..Outcome::default()
        },
        Err(error) => {
            let text = error.to_string();
            Outcome {
                may_pass: passes(&text),
                error: Some(text),
                ..Outcome::default()
            }
        }
    }
}

fn session_of<E>(result: &Result<Checkout, E>) -> Option<String> {
    let payment = result.as_ref().ok()?.payment.as_ref()?;
    payment.provider_session_id().map(str::to_owned)
}

fn items(items: &[(ProductId, i64)]) -> Vec<(ProductId, Quantity)> {
    // An invalid quantity is sent as the largest one, which no stock covers.
    let quantity = |n: i64| Quantity::new(n).or_else(|_| Quantity::new(i64::from(Quantity::MAX)));
    items.iter().filter_map(|&(id, n)| quantity(n).ok().map(|q| (id, q))).collect()
}

/// Starts the request as a future the scheduler polls.
pub fn start<U: UnitOfWork>(app: &Arc<App<U>>, keyed: Keyed) -> Task<Outcome> {
    let app = Arc::clone(app);
    Box::pin(async move {
        let fingerprint = format!("{:?}", keyed.request);
        let key = keyed.key.as_deref();
        match keyed.request {
            Request::Register { email, role } => {
                let registration = Registration {
                    email,
                    password: "correct horse 9".into(),
                    role,
                };
                outcome(app.register(registration, None).await, |user| user.id.to_string())
            }
            Request::TopUp { buyer, amount_minor } => {
                let request = TopUpRequest {
                    amount: usd(amount_minor),
                    provider: None,
                };
                let result = app.start_top_up(&buyer, request, idempotent(&buyer, key, &fingerprint)).await;
                let session = result.as_ref().ok().and_then(|p| p.provider_session_id().map(str::to_owned));
                Outcome {
                    session,
                    ..outcome(result, |payment| payment.id().to_string())
                }
            }
            Request::Checkout { buyer, items: cart, pay } => {
                let (payment_method, capture) = match pay {
                    Pay::Wallet => (PaymentMethod::Wallet, CaptureMethod::Automatic),
                    Pay::WalletHold => (PaymentMethod::Wallet, CaptureMethod::Manual),
                    Pay::Card => (PaymentMethod::Card, CaptureMethod::Automatic),
                };
                let command = CheckoutCommand {
                    items: items(&cart),
                    payment_method,
                    provider: None,
                    capture,
                };
                let result = app.checkout(&buyer, command, idempotent(&buyer, key, &fingerprint)).await;
                let order = result.as_ref().ok().map(|checkout| (checkout.order.id(), pay));
                Outcome {
                    order,
                    session: session_of(&result),
                    ..outcome(result, |checkout| checkout.order.id().to_string())
                }
            }
            Request::PayAgain { buyer, order } => {
                let result = app.pay_again(&buyer, order, None, idempotent(&buyer, key, &fingerprint)).await;
                Outcome {
                    session: session_of(&result),
                    ..outcome(result, |checkout| {
                        checkout
                            .payment
                            .as_ref()
                            .map_or_else(String::new, |payment| payment.id().to_string())
                    })
                }
            }
            Request::Cancel { caller, order } => {
                let result = if caller.role == Role::Admin {
                    app.admin_cancel_order(&caller, order, "simulated").await
                } else {
                    app.cancel_order(&caller, order).await
                };
                outcome(result, |order| order.status().as_str().to_owned())
            }
            Request::Capture { caller, order } => {
                let result = app
                    .capture_order(&caller, order, None, idempotent(&caller, key, &fingerprint))
                    .await;
                outcome(result, |order| order.id().to_string())
            }
            Request::Void { caller, order } => {
                let result = app.void_order(&caller, order, idempotent(&caller, key, &fingerprint)).await;
                outcome(result, |order| order.id().to_string())
            }
            Request::Fulfil { caller, order } => outcome(app.fulfil_order(&caller, order).await, |o| o.status().as_str().to_owned()),
            Request::Refund {
                caller,
                order,
                amount_minor,
            } => {
                let command = RefundCommand {
                    amount: amount_minor.map(usd),
                    merchant_id: (caller.role == Role::Merchant).then_some(caller.user_id),
                    reason: "simulated".into(),
                };
                let result = app
                    .refund_order(&caller, order, command, idempotent(&caller, key, &fingerprint))
                    .await;
                outcome(result, |refunds| {
                    let mut ids: Vec<String> = refunds.iter().map(|r| r.id().to_string()).collect();
                    ids.sort();
                    ids.join(",")
                })
            }
            Request::AskRefund {
                buyer,
                order,
                amount_minor,
            } => {
                let ask = AskRefund {
                    merchant_id: None,
                    amount: amount_minor.map(usd),
                    reason: "simulated".into(),
                };
                let result = app.request_refund(&buyer, order, ask, idempotent(&buyer, key, &fingerprint)).await;
                Outcome {
                    asked: result.as_ref().ok().map(|request| request.id()),
                    ..outcome(result, |request| request.id().to_string())
                }
            }
            Request::DecideRefund { caller, request, decision } => match decision {
                Decision::Approve => {
                    let result = app
                        .approve_refund_request(&caller, request, idempotent(&caller, key, &fingerprint))
                        .await;
                    outcome(result, |refunds| {
                        let mut ids: Vec<String> = refunds.iter().map(|r| r.id().to_string()).collect();
                        ids.sort();
                        ids.join(",")
                    })
                }
                Decision::Decline => {
                    let result = app.decline_refund_request(&caller, request, "simulated").await;
                    outcome(result, |request| request.status().as_str().to_owned())
                }
                Decision::Withdraw => {
                    let result = app.withdraw_refund_request(&caller, request).await;
                    outcome(result, |request| request.status().as_str().to_owned())
                }
            },
            Request::AuthoriseHold {
                customer,
                merchant,
                amount_minor,
            } => {
                let request = HoldRequest {
                    merchant_id: merchant,
                    amount: usd(amount_minor),
                    description: "simulated".into(),
                    expires_in: None,
                    customer_id: None,
                };
                let result = app
                    .authorise_hold(&customer, request, idempotent(&customer, key, &fingerprint))
                    .await;
                Outcome {
                    hold: result.as_ref().ok().map(|hold| hold.id),
                    ..outcome(result, |hold| hold.id.to_string())
                }
            }
            Request::CaptureHold {
                caller,
                hold,
                amount_minor,
                final_capture,
            } => {
                let request = CaptureRequest {
                    amount: amount_minor.map(usd),
                    final_capture,
                };
                let result = app
                    .capture_hold(&caller, hold, request, idempotent(&caller, key, &fingerprint))
                    .await;
                outcome(result, |hold| hold.id.to_string())
            }
            Request::VoidHold { caller, hold } => {
                let result = app.void_hold(&caller, hold, idempotent(&caller, key, &fingerprint)).await;
                outcome(result, |hold| hold.id.to_string())
            }
            Request::CreateEndpoint {
                caller,
                every_event,
                bad_url,
            } => {
                let new = NewEndpoint {
                    url: if bad_url {
                        "ftp://receiver.example/hooks".into()
                    } else {
                        "https://receiver.example/hooks".into()
                    },
                    events: if every_event {
                        vec!["*".into()]
                    } else {
                        vec!["order.paid".into(), "order.refunded".into()]
                    },
                    description: "simulated".into(),
                };
                let result = app.create_webhook_endpoint(&caller, new).await;
                Outcome {
                    endpoint: result.as_ref().ok().map(|created| created.id),
                    ..outcome(result, |created| created.id.to_string())
                }
            }
            Request::ManageEndpoint { caller, endpoint, action } => {
                let enabled = |enabled| EndpointUpdate {
                    url: None,
                    events: None,
                    description: None,
                    enabled: Some(enabled),
                };
                match action {
                    EndpointAction::Disable => outcome(app.update_webhook_endpoint(&caller, endpoint, enabled(false)).await, |e| {
                        e.id.to_string()
                    }),
                    EndpointAction::Enable => outcome(app.update_webhook_endpoint(&caller, endpoint, enabled(true)).await, |e| {
                        e.id.to_string()
                    }),
                    EndpointAction::RollSecret => {
                        outcome(app.roll_webhook_secret(&caller, endpoint, time::Duration::hours(1)).await, |_| {
                            endpoint.to_string()
                        })
                    }
                    EndpointAction::Test => outcome(app.test_webhook_endpoint(&caller, endpoint).await, |()| endpoint.to_string()),
                    EndpointAction::Delete => outcome(app.delete_webhook_endpoint(&caller, endpoint).await, |()| endpoint.to_string()),
                }
            }
            Request::Redeliver { caller, delivery } => {
                outcome(app.redeliver_webhook(&caller, delivery).await, |delivery| delivery.id.to_string())
            }
            Request::Adjust {
                caller,
                user,
                amount_minor,
            } => {
                let request = AdjustmentRequest {
                    user_id: user,
                    amount: usd(amount_minor),
                    reason: "simulated correction".into(),
                };
                let result = app.adjust_wallet(&caller, request, idempotent(&caller, key, &fingerprint)).await;
                outcome(result, |adjustment| adjustment.transaction_id.to_string())
            }
            Request::StartCall {
                caller,
                receiver,
                rate_minor,
            } => {
                let start = StartCall {
                    receiver_id: receiver,
                    rate_per_minute: usd(rate_minor),
                };
                let result = app.start_call(&caller, start, idempotent(&caller, key, &fingerprint)).await;
                Outcome {
                    call: result.as_ref().ok().map(|call| call.id),
                    ..outcome(result, |call| call.id.to_string())
                }
            }
            Request::EndCall { caller, call } => {
                let result = app.end_call(&caller, call, idempotent(&caller, key, &fingerprint)).await;
                outcome(result, |call| format!("{} {}", call.id, call.charged))
            }
            Request::Transfer { from, to, amount_minor } => {
                let request = TransferRequest {
                    to: Recipient::Id(to),
                    amount: usd(amount_minor),
                    note: String::new(),
                };
                let result = app.transfer(&from, request, idempotent(&from, key, &fingerprint)).await;
                outcome(result, |transfer| transfer.id.to_string())
            }
            Request::Withdraw { caller, amount_minor } => {
                let request = WithdrawalRequest {
                    amount: usd(amount_minor),
                    destination: "acct_simulated".into(),
                };
                let result = app.withdraw(&caller, request, idempotent(&caller, key, &fingerprint)).await;
                outcome(result, |withdrawal| withdrawal.id().to_string())
            }
        }
    })
}
