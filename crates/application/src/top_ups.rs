//! Card top-ups of a wallet. The gateway is called between two transactions, never inside one; a
//! retry under the same idempotency key resumes from the committed payment and asks the gateway
//! again with the same provider key (`checkout-<payment id>`). The wallet is credited when the
//! provider's event says the payment succeeded (`settlement`).

use domain::ids::{UserId, WalletId};
use domain::money::{Currency, Money};
use domain::payment::{Payment, PaymentPurpose, PaymentStatus, ProviderName};
use domain::user::Email;
use domain::wallet::SystemAccount;
use time::OffsetDateTime;

use crate::caller::Caller;
use crate::context::App;
use crate::effects::system_account_has_room;
use crate::idempotency::{Claim, IdempotencyError, Idempotent, Key, RecoveryPoint};
use crate::payments::resumed_payment;
use crate::ports::gateway::{CheckoutLine, CheckoutRequest, GatewayError, RouteError};
use crate::ports::store::{IdempotencyRepository, PaymentRepository, StoreError, UnitOfWork, UserRepository, WalletRepository};
use crate::transact::{transact, work};
use crate::{keyed, retryable};

/// A card top-up of the caller's wallet.
#[derive(Debug, Clone)]
pub struct TopUpRequest {
    /// How much; its currency is the wallet's.
    pub amount: Money,
    /// Which provider; routed by currency when `None`.
    pub provider: Option<ProviderName>,
}

/// Why a top-up fails.
#[derive(Debug, thiserror::Error)]
pub enum TopUpError {
    /// Zero or less: a negative top-up would move money out of the wallet to the provider.
    #[error("a top-up must be of a positive amount")]
    Amount,
    /// No provider for the currency, or the one the payer named cannot take it.
    #[error(transparent)]
    Route(RouteError),
    /// The gateway's clearing account would pass the system bound ([`domain::ledger::SYSTEM_BALANCE_MAX_MINOR`]).
    #[error("the platform takes no more {0} through this gateway: its limit is reached")]
    PlatformLimit(Currency),
    /// The provider closed (or would not open) the checkout, so the payment was cancelled.
    #[error("the checkout of this top-up was closed before it opened ({0})")]
    CheckoutClosed(&'static str),
    /// The payment provider failed or refused; whether asking again may help is `GatewayError::may_pass`.
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    /// The idempotency key is held by a request still running, was used for a different request, or
    /// was completed by another request meanwhile (replay its response).
    #[error(transparent)]
    Idempotency(IdempotencyError),
    /// Storage failed: an outage, a timeout, a conflict that outlasted the retries, or a commit whose
    /// outcome is unknown (`StoreError::OutcomeUnknown`).
    #[error(transparent)]
    Store(#[from] StoreError),
}

keyed!(TopUpError);
retryable!(TopUpError);

impl<U: UnitOfWork> App<U> {
    /// Opens a card checkout that credits the wallet once the gateway confirms payment.
    #[tracing::instrument(name = "start_top_up", skip_all, fields(user_id = %caller.user_id))]
    pub async fn start_top_up(
        &self,
        caller: &Caller,
        request: TopUpRequest,
        idempotent: Option<Idempotent<Payment>>,
    ) -> Result<Payment, TopUpError> {
        if !request.amount.is_positive() {
            return Err(TopUpError::Amount);
        }
        let currency = request.amount.currency();
        let gateway = self
            .gateways
            .route(request.provider.as_ref(), currency)
            .map_err(TopUpError::Route)?
            .clone();
        let key = self.key(idempotent.as_ref());
        let (payment, email) = self.open_top_up(caller.user_id, &request, gateway.provider(), key).await?;
        if let Some(answer) = settled_top_up(&payment)? {
            return self.finish_top_up(answer, key).await;
        }
        let gateway = self.gateways.get(payment.provider()).cloned().unwrap_or(gateway);
        let session = match gateway.create_checkout(top_up_checkout(&payment, &email)).await {
            Ok(session) => session,
            Err(error) => {
                // A retry under the key resumes a temporary failure; otherwise nothing will.
                if !(error.may_pass() && key.resumable()) {
                    self.abandon_payment(&payment).await;
                }
                return Err(error.into());
            }
        };
        let payment = payment.attach_session(session.session_id, session.checkout_url, self.clock.now());
        self.finish_top_up(payment, key).await
    }

    /// The top-up's first transaction: claims the key and records the pending payment, or finds
    /// the payment an earlier attempt under the key recorded.
    async fn open_top_up(
        &self,
        payer: UserId,
        request: &TopUpRequest,
        provider: &ProviderName,
        key: Key<'_, Payment>,
    ) -> Result<(Payment, Email), TopUpError> {
        let now = self.clock.now();
        let purpose = PaymentPurpose::TopUp(payer);
        let expires_at = now + self.settings.checkout_ttl;
        let payment = Payment::open(self.next_id(), purpose, payer, provider.clone(), request.amount, now, expires_at);
        let (payment, wallet_id) = (&payment, self.next_id());
        transact(&self.store, |tx| work(open_or_resume_top_up(tx, payment, wallet_id, key, now))).await
    }

    /// Records the session (if new) and the key's response.
    async fn finish_top_up(&self, payment: Payment, key: Key<'_, Payment>) -> Result<Payment, TopUpError> {
        let now = self.clock.now();
        let payment_ref = &payment;
        transact(&self.store, |tx| {
            work(async move {
                tx.update_payment(payment_ref).await?;
                key.complete(tx, payment_ref, now).await
            })
        })
        .await?;
        Ok(payment)
    }
}

async fn open_or_resume_top_up<Tx>(
    tx: &mut Tx,
    payment: &Payment,
    wallet_id: WalletId,
    key: Key<'_, Payment>,
    now: OffsetDateTime,
) -> Result<(Payment, Email), TopUpError>
where
    Tx: IdempotencyRepository + UserRepository + PaymentRepository + WalletRepository + Send,
{
    let claim = key.claim(tx, now).await?;
    let payer = payment.payer_id();
    let user = tx
        .find_user(payer)
        .await?
        .ok_or_else(|| StoreError::Corrupt("caller has no user row".into()))?;
    if let Claim::Resume(point) = claim {
        return Ok((resumed_payment(tx, &point, payer).await?, user.email));
    }
    // The payment will be debited from the clearing account.
    let clearing = SystemAccount::GatewayClearing(payment.provider().clone());
    let debit = Money::from_minor(-payment.amount().amount_minor(), payment.currency());
    if !system_account_has_room(tx, &clearing, debit).await? {
        return Err(TopUpError::PlatformLimit(payment.currency()));
    }
    tx.ensure_user_wallet(payer, payment.currency(), wallet_id, now).await?;
    tx.insert_payment(payment).await?;
    key.mark(tx, &RecoveryPoint::Payment(payment.id())).await?;
    Ok((payment.clone(), user.email))
}

/// What the provider's hosted page shows for a top-up.
fn top_up_checkout(payment: &Payment, email: &Email) -> CheckoutRequest {
    CheckoutRequest {
        payment_id: payment.id(),
        amount: payment.amount(),
        description: format!("Wallet top-up of {}", payment.amount()),
        lines: vec![CheckoutLine {
            name: format!("{} wallet top-up", payment.currency()),
            unit_amount: payment.amount(),
            quantity: 1,
        }],
        customer_email: email.to_string(),
        expires_at: payment.expires_at(),
        idempotency_key: format!("checkout-{}", payment.id()),
    }
}

/// A resumed top-up that needs no new checkout: its answer (it has a session, or it was paid),
/// or why it cannot go on.
fn settled_top_up(payment: &Payment) -> Result<Option<Payment>, TopUpError> {
    match payment.status() {
        PaymentStatus::Pending if payment.awaits_checkout() => Ok(None),
        PaymentStatus::Pending | PaymentStatus::Succeeded => Ok(Some(payment.clone())),
        other => Err(TopUpError::CheckoutClosed(other.as_str())),
    }
}
