//! Card payments through a gateway, and refunds.
//!
//! A `Payment` starts `pending` when a checkout session is opened and is settled exactly once, by
//! a verified gateway event (`succeeded` or `failed`), by the expiry job (`expired`) or by the
//! buyer (`cancelled`). A success that arrives after the payment was already settled otherwise is
//! a *late success*: money was taken for an order we no longer honour, so it must be refunded or
//! flagged, never silently dropped.

use std::fmt;

use time::OffsetDateTime;

use crate::ids::{OrderId, PaymentId, RefundId, UserId};
use crate::money::{Currency, Money};

/// The name of a payment gateway provider: `stripe`, `monnify`, `simulated`. A new provider is a new
/// adapter, so this is a validated name rather than a closed enum.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProviderName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a provider name has 1 to 32 characters among a-z, 0-9, `_` and `-`")]
pub struct ProviderNameError;

impl ProviderName {
    pub fn parse(text: &str) -> Result<ProviderName, ProviderNameError> {
        let valid = !text.is_empty()
            && text.len() <= 32
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if valid {
            Ok(ProviderName(text.to_owned()))
        } else {
            Err(ProviderNameError)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProviderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentStatus {
    Pending,
    Succeeded,
    Failed,
    Expired,
    Cancelled,
}

impl PaymentStatus {
    pub const ALL: [PaymentStatus; 5] = [
        PaymentStatus::Pending,
        PaymentStatus::Succeeded,
        PaymentStatus::Failed,
        PaymentStatus::Expired,
        PaymentStatus::Cancelled,
    ];

    pub fn successors(self) -> &'static [PaymentStatus] {
        use PaymentStatus::*;
        match self {
            Pending => &[Succeeded, Failed, Expired, Cancelled],
            Succeeded | Failed | Expired | Cancelled => &[],
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Pending => "pending",
            PaymentStatus::Succeeded => "succeeded",
            PaymentStatus::Failed => "failed",
            PaymentStatus::Expired => "expired",
            PaymentStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<PaymentStatus> {
        PaymentStatus::ALL.into_iter().find(|status| status.as_str() == text)
    }
}

/// What a payment pays for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentPurpose {
    /// A card checkout of an order.
    Order(OrderId),
    /// A top-up of the user's wallet in the payment's currency.
    TopUp(UserId),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a payment cannot go from {from:?} to {to:?}")]
pub struct PaymentTransitionError {
    pub from: PaymentStatus,
    pub to: PaymentStatus,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub id: PaymentId,
    pub purpose: PaymentPurpose,
    pub payer_id: UserId,
    pub provider: ProviderName,
    pub amount: Money,
    pub status: PaymentStatus,
    /// The provider's checkout session (Stripe `cs_...`, Monnify transaction reference).
    pub provider_session_id: Option<String>,
    /// The provider's payment object, once known (Stripe `pi_...`), needed for refunds.
    pub provider_payment_id: Option<String>,
    pub checkout_url: Option<String>,
    pub disputed: bool,
    /// Set when a success arrived after the payment had been settled otherwise.
    pub late_success: bool,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl Payment {
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        id: PaymentId,
        purpose: PaymentPurpose,
        payer_id: UserId,
        provider: ProviderName,
        amount: Money,
        at: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Payment {
        Payment {
            id,
            purpose,
            payer_id,
            provider,
            amount,
            status: PaymentStatus::Pending,
            provider_session_id: None,
            provider_payment_id: None,
            checkout_url: None,
            disputed: false,
            late_success: false,
            created_at: at,
            expires_at,
            updated_at: at,
        }
    }

    pub fn currency(&self) -> Currency {
        self.amount.currency()
    }

    /// Records the gateway's checkout session once it exists.
    pub fn attach_session(mut self, session_id: String, checkout_url: String, at: OffsetDateTime) -> Payment {
        self.provider_session_id = Some(session_id);
        self.checkout_url = Some(checkout_url);
        self.updated_at = at;
        self
    }

    fn settle(mut self, to: PaymentStatus, at: OffsetDateTime) -> Result<Payment, PaymentTransitionError> {
        if !self.status.successors().contains(&to) {
            return Err(PaymentTransitionError { from: self.status, to });
        }
        self.status = to;
        self.updated_at = at;
        Ok(self)
    }

    pub fn succeed(mut self, provider_payment_id: Option<String>, at: OffsetDateTime) -> Result<Payment, PaymentTransitionError> {
        if provider_payment_id.is_some() {
            self.provider_payment_id = provider_payment_id;
        }
        self.settle(PaymentStatus::Succeeded, at)
    }

    pub fn fail(self, at: OffsetDateTime) -> Result<Payment, PaymentTransitionError> {
        self.settle(PaymentStatus::Failed, at)
    }

    pub fn expire(self, at: OffsetDateTime) -> Result<Payment, PaymentTransitionError> {
        self.settle(PaymentStatus::Expired, at)
    }

    pub fn cancel(self, at: OffsetDateTime) -> Result<Payment, PaymentTransitionError> {
        self.settle(PaymentStatus::Cancelled, at)
    }

    /// Flags a success for a payment that had already failed, expired or been cancelled.
    pub fn flag_late_success(mut self, provider_payment_id: Option<String>, at: OffsetDateTime) -> Payment {
        if provider_payment_id.is_some() {
            self.provider_payment_id = provider_payment_id;
        }
        self.late_success = true;
        self.updated_at = at;
        self
    }

    pub fn record_dispute(mut self, at: OffsetDateTime) -> Payment {
        self.disputed = true;
        self.updated_at = at;
        self
    }

    pub fn is_expired_at(&self, now: OffsetDateTime) -> bool {
        self.status == PaymentStatus::Pending && self.expires_at <= now
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefundStatus {
    Pending,
    Succeeded,
    Failed,
}

impl RefundStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RefundStatus::Pending => "pending",
            RefundStatus::Succeeded => "succeeded",
            RefundStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<RefundStatus> {
        match text {
            "pending" => Some(RefundStatus::Pending),
            "succeeded" => Some(RefundStatus::Succeeded),
            "failed" => Some(RefundStatus::Failed),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a refund cannot go from {from:?} to {to:?}")]
pub struct RefundTransitionError {
    pub from: RefundStatus,
    pub to: RefundStatus,
}

/// Money given back to a buyer from one merchant's share of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    pub id: RefundId,
    pub order_id: OrderId,
    /// The card payment refunded through its gateway; `None` for a wallet payment.
    pub payment_id: Option<PaymentId>,
    pub merchant_id: UserId,
    pub amount: Money,
    pub status: RefundStatus,
    pub provider_refund_id: Option<String>,
    pub reason: String,
    /// Who asked for it; `None` for a refund made outside the API (the provider's dashboard).
    pub requested_by: Option<UserId>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl Refund {
    fn settle(mut self, to: RefundStatus, at: OffsetDateTime) -> Result<Refund, RefundTransitionError> {
        if self.status != RefundStatus::Pending {
            return Err(RefundTransitionError { from: self.status, to });
        }
        self.status = to;
        self.updated_at = at;
        Ok(self)
    }

    pub fn succeed(self, at: OffsetDateTime) -> Result<Refund, RefundTransitionError> {
        self.settle(RefundStatus::Succeeded, at)
    }

    pub fn fail(self, at: OffsetDateTime) -> Result<Refund, RefundTransitionError> {
        self.settle(RefundStatus::Failed, at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn payment() -> Payment {
        let at = OffsetDateTime::UNIX_EPOCH;
        Payment::open(
            PaymentId::from_uuid(Uuid::from_u128(1)),
            PaymentPurpose::Order(OrderId::from_uuid(Uuid::from_u128(2))),
            UserId::from_uuid(Uuid::from_u128(3)),
            ProviderName::parse("simulated").unwrap_or_else(|e| panic!("{e}")),
            Money::from_minor(500, Currency::Usd),
            at,
            at + time::Duration::minutes(30),
        )
    }

    #[test]
    fn a_payment_settles_once() -> Result<(), PaymentTransitionError> {
        let at = OffsetDateTime::UNIX_EPOCH;
        let paid = payment().succeed(Some("pi_1".into()), at)?;
        assert_eq!(paid.status, PaymentStatus::Succeeded);
        assert_eq!(
            paid.clone().fail(at),
            Err(PaymentTransitionError {
                from: PaymentStatus::Succeeded,
                to: PaymentStatus::Failed
            })
        );
        assert!(paid.succeed(None, at).is_err());
        Ok(())
    }

    #[test]
    fn an_expired_payment_cannot_succeed_but_can_be_flagged() -> Result<(), PaymentTransitionError> {
        let at = OffsetDateTime::UNIX_EPOCH;
        let expired = payment().expire(at)?;
        assert!(expired.clone().succeed(None, at).is_err());
        let flagged = expired.flag_late_success(Some("pi_9".into()), at);
        assert!(flagged.late_success);
        assert_eq!(flagged.status, PaymentStatus::Expired);
        Ok(())
    }

    #[test]
    fn provider_names_are_lower_case_words() {
        assert!(ProviderName::parse("stripe").is_ok());
        assert!(ProviderName::parse("Stripe").is_err());
        assert!(ProviderName::parse("").is_err());
        assert!(ProviderName::parse("a b").is_err());
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        #[derive(Debug, Clone)]
        enum Step {
            Succeed,
            Fail,
            Expire,
            Cancel,
            FlagLateSuccess,
        }

        fn step() -> impl Strategy<Value = Step> {
            prop_oneof![
                Just(Step::Succeed),
                Just(Step::Fail),
                Just(Step::Expire),
                Just(Step::Cancel),
                Just(Step::FlagLateSuccess),
            ]
        }

        proptest! {
            #[test]
            fn a_payment_settles_at_most_once_along_declared_transitions(steps in prop::collection::vec(step(), 0..20)) {
                let at = OffsetDateTime::UNIX_EPOCH;
                let mut payment = payment();
                let mut settled = 0;
                for step in steps {
                    let before = payment.clone();
                    let result = match step {
                        Step::Succeed => payment.clone().succeed(Some("pi".into()), at),
                        Step::Fail => payment.clone().fail(at),
                        Step::Expire => payment.clone().expire(at),
                        Step::Cancel => payment.clone().cancel(at),
                        Step::FlagLateSuccess => Ok(payment.clone().flag_late_success(None, at)),
                    };
                    match result {
                        Ok(next) if next.status != before.status => {
                            prop_assert!(before.status.successors().contains(&next.status));
                            settled += 1;
                            payment = next;
                        }
                        // Flagging a late success changes the flag, never the status or the amount.
                        Ok(next) => {
                            prop_assert_eq!(next.amount, before.amount);
                            payment = next;
                        }
                        Err(_) => prop_assert_eq!(&payment, &before),
                    }
                }
                prop_assert!(settled <= 1);
            }

            #[test]
            fn a_refund_settles_once(first_succeeds: bool, second_succeeds: bool) {
                let at = OffsetDateTime::UNIX_EPOCH;
                let refund = Refund {
                    id: RefundId::from_uuid(Uuid::from_u128(9)),
                    order_id: OrderId::from_uuid(Uuid::from_u128(2)),
                    payment_id: None,
                    merchant_id: UserId::from_uuid(Uuid::from_u128(4)),
                    amount: Money::from_minor(100, Currency::Usd),
                    status: RefundStatus::Pending,
                    provider_refund_id: None,
                    reason: "r".into(),
                    requested_by: Some(UserId::from_uuid(Uuid::from_u128(4))),
                    created_at: at,
                    updated_at: at,
                };
                let settle = |refund: Refund, succeed: bool| if succeed { refund.succeed(at) } else { refund.fail(at) };
                let settled = settle(refund, first_succeeds);
                prop_assert!(settled.is_ok());
                let settled = settled.unwrap_or_else(|e| panic!("{e}"));
                prop_assert!(settle(settled, second_succeeds).is_err());
                prop_assert!(RefundStatus::parse(RefundStatus::Pending.as_str()).is_some());
            }
        }
    }
}
