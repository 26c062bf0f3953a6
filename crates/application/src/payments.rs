//! Card payments (of orders and top-ups) as their payers and admins see them, and the payment
//! steps checkout and top-up share.

use domain::ids::{PaymentId, UserId};
use domain::payment::Payment;

use crate::caller::Caller;
use crate::context::App;
use crate::idempotency::RecoveryPoint;
use crate::pagination::{Page, PageRequest};
use crate::ports::store::{PaymentFilter, PaymentLookup, PaymentRepository, StoreError, UnitOfWork};
use crate::retryable;
use crate::transact::{transact, transact_lagging, work};

/// Why reading a payment fails.
#[derive(Debug, thiserror::Error)]
pub enum PaymentQueryError {
    /// The payment does not exist, or is not the caller's.
    #[error("the payment does not exist")]
    NotFound,
    /// Storage failed: an outage, a timeout, a conflict that outlasted the retries, or a commit whose
    /// outcome is unknown (`StoreError::OutcomeUnknown`).
    #[error(transparent)]
    Store(#[from] StoreError),
}

retryable!(PaymentQueryError);

impl<U: UnitOfWork> App<U> {
    /// A card payment (top-up or order checkout), for its payer or an admin.
    pub async fn payment_details(&self, caller: &Caller, id: PaymentId) -> Result<Payment, PaymentQueryError> {
        self.payment_by_id(id)
            .await?
            .filter(|payment| payment.payer_id() == caller.user_id || caller.is_admin())
            .ok_or(PaymentQueryError::NotFound)
    }

    /// The caller's own card payments (order checkouts and top-ups), newest first.
    pub async fn my_payments(
        &self,
        caller: &Caller,
        filter: PaymentFilter,
        page: &PageRequest,
    ) -> Result<Page<Payment>, PaymentQueryError> {
        let payer = caller.user_id;
        Ok(transact_lagging(&self.store, |tx| work(tx.list_payer_payments(payer, filter, page))).await?)
    }

    pub(crate) async fn payment_by_id(&self, id: PaymentId) -> Result<Option<Payment>, StoreError> {
        transact(&self.store, |tx| work(tx.find_payment(id))).await
    }

    /// Marks a payment whose checkout could not be opened as failed.
    pub(crate) async fn abandon_payment(&self, payment: &Payment) {
        let now = self.clock.now();
        let lookup = PaymentLookup::Ours(payment.id());
        let (provider, lookup) = (payment.provider(), &lookup);
        let outcome = transact(&self.store, |tx| {
            work(async move {
                if let Some(locked) = tx.lock_payment(provider, lookup).await?
                    && let Ok(failed) = locked.fail(now)
                {
                    tx.update_payment(&failed).await?;
                }
                Ok::<_, StoreError>(())
            })
        })
        .await;
        if let Err(error) = outcome {
            tracing::error!(%error, payment_id = %payment.id(), "could not mark the abandoned payment failed; the expiry job will");
        }
    }
}

/// The payment an earlier attempt under the key committed, which must be the caller's.
pub(crate) async fn resumed_payment<Tx: PaymentRepository + Send>(
    tx: &mut Tx,
    point: &RecoveryPoint,
    payer: UserId,
) -> Result<Payment, StoreError> {
    let RecoveryPoint::Payment(id) = point else {
        return Err(StoreError::Corrupt(format!("a payment request's key points at {}", point.code())));
    };
    tx.find_payment(*id)
        .await?
        .filter(|payment| payment.payer_id() == payer)
        .ok_or_else(|| StoreError::Corrupt(format!("the key's payment {id} is missing")))
}
