//! Settlement of provider events (verified webhooks) and of the provider's answers to our calls.
//!
//! Every event is recorded in the webhook inbox in the same transaction as its effect, so a
//! redelivered event finds its id and does nothing. Events only ever move a payment forward: a
//! success for a payment that already succeeded changes nothing, and a success for one that was
//! given up (expired, cancelled, failed) is flagged as a *late success* and handled (an order's
//! money is refunded; a top-up is credited after all), never dropped.

mod outside_refunds;
mod payments;
mod refunds;

use domain::catalog::StockError;
use domain::ids::ProductId;
use domain::ledger::LedgerError;
use domain::money::{Money, MoneyError};
use domain::order::{OrderError, TransitionError};
use domain::payment::{Payment, ProviderName, RefundTransitionError};
use time::OffsetDateTime;

use crate::context::App;
use crate::effects::OrderRefundError;
use crate::orders::OrderCommandError;
use crate::ports::gateway::{GatewayError, GatewayEvent, GatewayEventKind, PaymentGateway, RefundUpdate, WebhookError, WebhookHeaders};
use crate::ports::store::{
    EventOutbox, FollowUpRepository, InboxOutcome, LedgerRepository, OrderRepository, PaymentRepository, ProductRepository,
    ReceivedWebhook, RefundRepository, StoreError, UnitOfWork, WalletRepository, WebhookInbox,
};
use crate::ports::system::{IdGenerator, next_id};
use crate::transact::{transact, work};
use crate::{from_posting_error, retryable};

/// What became of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventOutcome {
    /// Applied in full.
    Applied,
    /// The event id was seen before.
    Duplicate,
    /// Verified, but nothing to do (unknown type, unknown payment, already settled).
    Ignored(&'static str),
    /// Money arrived for a payment that had been given up.
    LateSuccess,
    /// Verified, but not ours to apply (a checkout session we did not create); logged.
    Refused(&'static str),
}

/// Why a provider's webhook is not applied. Verification failures are the caller's (400); the
/// rest are ours, and the provider retries.
#[derive(Debug, thiserror::Error)]
pub enum GatewayEventError {
    /// The webhook's path names a provider that is not configured.
    #[error("no gateway called {0} is configured")]
    UnknownProvider(String),
    /// The signature or payload is not acceptable.
    #[error(transparent)]
    Verification(#[from] WebhookError),
    /// The event's amount is not the payment's.
    #[error("the event is for {received} but the payment is for {expected}")]
    AmountMismatch {
        /// The payment's amount.
        expected: Money,
        /// The amount the event reports.
        received: Money,
    },
    /// The provider (asked directly) does not confirm the success.
    #[error("the gateway does not confirm that this payment succeeded")]
    NotConfirmed,
    /// The payment provider failed or refused; whether asking again may help is `GatewayError::may_pass`.
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    /// The ledger refused the journal transaction (it would overdraw a wallet, or it does not balance).
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The order refused the change (its state machine, or its amounts).
    #[error(transparent)]
    Order(#[from] OrderError),
    /// The order's stock could not be committed.
    #[error(transparent)]
    Stock(#[from] StockError),
    /// A refund's settlement was refused (not pending).
    #[error(transparent)]
    Refund(#[from] RefundTransitionError),
    /// Amount arithmetic overflowed or mixed currencies.
    #[error(transparent)]
    Money(#[from] MoneyError),
    /// Storage failed: an outage, a timeout, a conflict that outlasted the retries, or a commit whose
    /// outcome is unknown (`StoreError::OutcomeUnknown`).
    #[error(transparent)]
    Store(#[from] StoreError),
}

retryable!(GatewayEventError);
from_posting_error!(GatewayEventError);

impl From<TransitionError> for GatewayEventError {
    fn from(error: TransitionError) -> Self {
        GatewayEventError::Order(OrderError::Transition(error))
    }
}

impl From<OrderRefundError> for GatewayEventError {
    fn from(error: OrderRefundError) -> Self {
        match error {
            OrderRefundError::Order(error) => GatewayEventError::Order(error),
            OrderRefundError::Money(error) => GatewayEventError::Money(error),
            OrderRefundError::Store(error) => GatewayEventError::Store(error),
        }
    }
}

impl From<OrderCommandError> for GatewayEventError {
    fn from(error: OrderCommandError) -> Self {
        match error {
            OrderCommandError::Store(error) => GatewayEventError::Store(error),
            OrderCommandError::Transition(error) => error.into(),
            OrderCommandError::Stock(error) => GatewayEventError::Stock(error),
            OrderCommandError::CheckoutNotClosed(error) => GatewayEventError::Gateway(error),
            OrderCommandError::CheckoutCompleted => {
                GatewayEventError::Store(StoreError::Corrupt("a checkout completed during settlement".into()))
            }
            OrderCommandError::NotFound | OrderCommandError::Forbidden | OrderCommandError::Reason => {
                GatewayEventError::Store(StoreError::Corrupt("a payment points at a missing order".into()))
            }
        }
    }
}

// What settling a provider's event may touch.
crate::repositories!(pub(crate) SettlementTx:
    WebhookInbox,
    PaymentRepository,
    OrderRepository,
    ProductRepository,
    WalletRepository,
    LedgerRepository,
    RefundRepository,
    FollowUpRepository,
    EventOutbox,
);

/// Effects of one event inside its transaction.
struct Applied {
    outcome: EventOutcome,
    /// Products whose cached stock is now stale.
    products: Vec<ProductId>,
    /// A late success whose money must go back through the gateway.
    refund_late: Option<Payment>,
}

impl Applied {
    fn just(outcome: EventOutcome) -> Applied {
        Applied {
            outcome,
            products: Vec::new(),
            refund_late: None,
        }
    }
}

/// The longest event id or type recorded in the webhook inbox.
const EVENT_NAME_CHARS_MAX: usize = 255;

/// An event's id and type are stored in the inbox: even signed, they must be short, printable
/// text (PostgreSQL refuses NUL, and a log line must not be forged).
fn check_event_names(event: &GatewayEvent) -> Result<(), WebhookError> {
    for (what, text) in [("id", &event.event_id), ("type", &event.event_type)] {
        if !is_event_name(text) {
            return Err(WebhookError::MalformedPayload(format!(
                "the event {what} must be 1 to {EVENT_NAME_CHARS_MAX} printable characters"
            )));
        }
    }
    Ok(())
}

/// Short, printable text, fit for the inbox and a log line.
fn is_event_name(text: &str) -> bool {
    !text.is_empty() && text.chars().count() <= EVENT_NAME_CHARS_MAX && !text.chars().any(char::is_control)
}

/// For providers that want it, asks the gateway itself before believing a success, and uses the
/// amount it reports.
async fn confirm_success(gateway: &dyn PaymentGateway, mut event: GatewayEvent) -> Result<GatewayEvent, GatewayEventError> {
    let (reference, amount) = match &mut event.kind {
        GatewayEventKind::CheckoutCompleted {
            reference,
            amount,
            paid: true,
        }
        | GatewayEventKind::PaymentSucceeded { reference, amount } => (reference.clone(), amount),
        _ => return Ok(event),
    };
    match gateway.confirm_payment(&reference).await? {
        None => Ok(event),
        Some(confirmed) if !confirmed.paid => {
            tracing::warn!(event_id = %event.event_id, "a success event the gateway does not confirm: refused");
            Err(GatewayEventError::NotConfirmed)
        }
        Some(confirmed) => {
            if confirmed.amount.is_some() {
                *amount = confirmed.amount;
            }
            Ok(event)
        }
    }
}

impl<U: UnitOfWork> App<U> {
    /// Verifies a webhook with the named provider's gateway and applies it.
    #[tracing::instrument(name = "receive_webhook", skip_all, fields(provider = %provider.chars().take(32).collect::<String>()))]
    pub async fn receive_webhook(&self, provider: &str, headers: &WebhookHeaders, body: &[u8]) -> Result<EventOutcome, GatewayEventError> {
        let name = ProviderName::parse(provider).map_err(|_| GatewayEventError::UnknownProvider(provider.chars().take(32).collect()))?;
        let gateway = self
            .gateways
            .get(&name)
            .ok_or_else(|| GatewayEventError::UnknownProvider(name.to_string()))?;
        let event = gateway.verify_webhook(headers, body, self.clock.now())?;
        check_event_names(&event)?;
        let event = confirm_success(gateway.as_ref(), event).await?;
        self.apply_gateway_event(&name, &event).await
    }

    /// Applies a verified gateway event exactly once.
    #[tracing::instrument(name = "apply_gateway_event", skip_all, fields(%provider, event_id = %event.event_id, event_type = %event.event_type))]
    pub async fn apply_gateway_event(&self, provider: &ProviderName, event: &GatewayEvent) -> Result<EventOutcome, GatewayEventError> {
        let (ids, now) = (self.ids.as_ref(), self.clock.now());
        let applied = transact(&self.store, |tx| work(apply_once(tx, ids, provider, event, now))).await?;
        if !applied.products.is_empty() {
            self.invalidate_catalog(&applied.products).await;
        }
        if let Some(payment) = &applied.refund_late {
            self.refund_late_success(payment).await;
        }
        tracing::info!(provider = %provider, event_id = %event.event_id, event_type = %event.event_type, outcome = ?applied.outcome, "gateway event handled");
        Ok(applied.outcome)
    }

    /// Records the gateway's answer about one of our refunds.
    pub(crate) async fn apply_refund_update(
        &self,
        provider: &ProviderName,
        update: &RefundUpdate,
    ) -> Result<EventOutcome, GatewayEventError> {
        let (ids, now) = (self.ids.as_ref(), self.clock.now());
        transact(&self.store, |tx| work(refunds::settle_refund(tx, ids, provider, update, now))).await
    }
}

/// Records the event in the inbox and applies it, unless it was seen before.
async fn apply_once<Tx: SettlementTx>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    provider: &ProviderName,
    event: &GatewayEvent,
    now: OffsetDateTime,
) -> Result<Applied, GatewayEventError> {
    let received = ReceivedWebhook {
        id: next_id(ids),
        provider: provider.clone(),
        event_id: event.event_id.clone(),
        event_type: event.event_type.clone(),
        payment_id: event.kind.reference().and_then(|reference| reference.payment_id),
        provider_reference: event
            .kind
            .reference()
            .and_then(|reference| reference.provider_payment_id.as_deref().or(reference.session_id.as_deref()))
            .filter(|text| is_event_name(text))
            .map(str::to_owned),
        received_at: now,
        outcome: None,
    };
    if !tx.record_webhook_event(&received).await? {
        return Ok(Applied::just(EventOutcome::Duplicate));
    }
    let applied = apply_event(tx, ids, provider, &event.kind, now).await?;
    if let Some(outcome) = applied.outcome.for_inbox() {
        tx.record_webhook_outcome(received.id, &outcome).await?;
    }
    Ok(applied)
}

impl EventOutcome {
    /// How the inbox records this outcome; a duplicate is not recorded again.
    fn for_inbox(&self) -> Option<InboxOutcome> {
        let (kind, detail) = match self {
            EventOutcome::Applied => ("applied", None),
            EventOutcome::Duplicate => return None,
            EventOutcome::Ignored(why) => ("ignored", Some(*why)),
            EventOutcome::LateSuccess => ("late_success", None),
            EventOutcome::Refused(why) => ("refused", Some(*why)),
        };
        Some(InboxOutcome {
            kind,
            detail: detail.map(str::to_owned),
        })
    }
}

async fn apply_event<Tx: SettlementTx>(
    tx: &mut Tx,
    ids: &dyn IdGenerator,
    provider: &ProviderName,
    kind: &GatewayEventKind,
    now: OffsetDateTime,
) -> Result<Applied, GatewayEventError> {
    use crate::cancellation::PaymentEnd;
    match kind {
        GatewayEventKind::CheckoutCompleted {
            reference,
            amount,
            paid: true,
        }
        | GatewayEventKind::PaymentSucceeded { reference, amount } => {
            payments::settle_success(tx, ids, provider, reference, *amount, now).await
        }
        GatewayEventKind::CheckoutCompleted { paid: false, .. } => Ok(Applied::just(EventOutcome::Ignored("payment not settled yet"))),
        GatewayEventKind::PaymentFailed { reference, reason } => payments::settle_declined(tx, ids, provider, reference, reason, now).await,
        GatewayEventKind::CheckoutExpired { reference } => {
            let given_up = payments::GivenUp {
                end: PaymentEnd::Expired,
                reason: "the checkout expired",
            };
            payments::settle_given_up(tx, ids, provider, reference, given_up, now).await
        }
        GatewayEventKind::PaymentAttemptFailed { .. } => Ok(Applied::just(EventOutcome::Ignored(
            "an attempt failed; the checkout is still open",
        ))),
        GatewayEventKind::Refunded {
            reference,
            refunds,
            refunded_total,
        } => {
            let outcome = refunds::settle_refunded(tx, ids, provider, reference, refunds, *refunded_total, now).await?;
            Ok(Applied::just(outcome))
        }
        GatewayEventKind::RefundUpdated(update) => Ok(Applied::just(refunds::settle_refund(tx, ids, provider, update, now).await?)),
        GatewayEventKind::PaymentRefundUpdated {
            reference,
            amount,
            status,
            provider_refund_id,
        } => {
            let named = refunds::PaymentRefund {
                reference,
                amount: *amount,
                status: *status,
                provider_refund_id: provider_refund_id.as_deref(),
            };
            Ok(Applied::just(
                refunds::settle_refund_of_payment(tx, ids, provider, named, now).await?,
            ))
        }
        GatewayEventKind::DisputeOpened { reference, reason, .. } => {
            payments::record_dispute(tx, ids, provider, reference, reason, now).await
        }
        GatewayEventKind::Ignored => Ok(Applied::just(EventOutcome::Ignored("event type not handled"))),
    }
}
