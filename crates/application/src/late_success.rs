//! Late successes: money that arrived for an order already cancelled goes back through the
//! gateway, in full, under the provider idempotency key `late-success-<payment id>` and with the
//! same refund id every time (the payment's: `late_success_refund_id`), so that asking again is
//! the same request to the provider. The follow-up recorded with the late success ends when the
//! refund succeeds, by the gateway's answer or by its refund event: a pending refund is asked
//! about again, a failed one is flagged for admins.

use domain::follow_up::FollowUpTask;
use domain::ids::{PaymentId, RefundId};
use domain::payment::Payment;

use crate::context::App;
use crate::follow_ups::{Attempt, Failure};
use crate::ports::gateway::{GatewayError, GatewayRefundStatus, RefundRequest};
use crate::ports::store::{StoreError, UnitOfWork};

impl<U: UnitOfWork> App<U> {
    /// Refunds a late success right after it was recorded; the job retries if this fails.
    pub(crate) async fn refund_late_success(&self, payment: &Payment) {
        if let Err(error) = self.attempt_late_success_refund(payment, Attempt::Inline).await {
            tracing::warn!(%error, payment_id = %payment.id(), "could not record the late-success refund's attempt");
        }
    }

    /// The job's attempt at refunding a late success.
    pub(crate) async fn retry_late_success_refund(&self, id: PaymentId) -> Result<(), StoreError> {
        match self.payment_by_id(id).await? {
            Some(payment) => self.attempt_late_success_refund(&payment, Attempt::Claimed).await,
            None => self.follow_up_done(FollowUpTask::LateSuccessRefund(id)).await,
        }
    }

    async fn attempt_late_success_refund(&self, payment: &Payment, attempt: Attempt) -> Result<(), StoreError> {
        let task = FollowUpTask::LateSuccessRefund(payment.id());
        let error = match self.send_late_success_refund(payment).await {
            Ok(()) => return self.follow_up_done(task).await,
            Err(error) => error,
        };
        let failure = if error.may_pass() {
            tracing::warn!(%error, payment_id = %payment.id(), "a late success is not refunded yet; the follow-up job will ask again");
            Failure::Temporary
        } else {
            tracing::error!(%error, payment_id = %payment.id(), "a late success could not be refunded: flagged for admins");
            Failure::Final
        };
        self.record_failed_attempt(task, &error.to_string(), failure, attempt).await
    }

    /// One attempt at refunding a late success in full, under the payment's provider key. Only a
    /// refund the provider reports as succeeded is done.
    async fn send_late_success_refund(&self, payment: &Payment) -> Result<(), LateRefundSetback> {
        let gateway = self
            .gateways
            .get(payment.provider())
            .ok_or_else(|| GatewayError::InvalidRequest(format!("no gateway called {} is configured", payment.provider())))?;
        let provider_payment_id = payment
            .provider_payment_id()
            .ok_or_else(|| GatewayError::InvalidRequest("the provider gave no payment id to refund".to_owned()))?;
        let request = RefundRequest {
            refund_id: late_success_refund_id(payment.id()),
            payment_id: payment.id(),
            provider_payment_id: provider_payment_id.to_owned(),
            amount: payment.amount(),
            reason: "payment arrived after the order was cancelled".to_owned(),
            idempotency_key: format!("late-success-{}", payment.id()),
        };
        let refund = gateway.refund(request).await?;
        match refund.status {
            GatewayRefundStatus::Succeeded => {
                tracing::warn!(payment_id = %payment.id(), provider_refund_id = %refund.provider_refund_id, "late success refunded");
                Ok(())
            }
            GatewayRefundStatus::Pending => Err(LateRefundSetback::Pending(refund.provider_refund_id)),
            GatewayRefundStatus::Failed => Err(LateRefundSetback::Failed(refund.provider_refund_id)),
        }
    }
}

/// The id a late success's refund goes by at the provider: the payment's own, the same on every
/// attempt, so that a retry under the provider key sends the same request (Stripe refuses a key
/// reused with other parameters), and the provider's refund events name the payment. No refund
/// of ours ever has it: the late success's refund is not one of ours.
pub(crate) fn late_success_refund_id(payment: PaymentId) -> RefundId {
    RefundId::from_uuid(payment.as_uuid())
}

/// Why an attempt at refunding a late success did not finish it.
#[derive(Debug, thiserror::Error)]
enum LateRefundSetback {
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    #[error("the provider has not settled refund {0} yet")]
    Pending(String),
    #[error("the provider reports refund {0} failed")]
    Failed(String),
}

impl LateRefundSetback {
    /// Whether asking again may finish the refund: a pending refund settles in time, a failed one
    /// stays failed under the same key.
    fn may_pass(&self) -> bool {
        match self {
            LateRefundSetback::Gateway(error) => error.may_pass(),
            LateRefundSetback::Pending(_) => true,
            LateRefundSetback::Failed(_) => false,
        }
    }
}
