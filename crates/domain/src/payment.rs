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
///
/// ```
/// use domain::payment::ProviderName;
///
/// assert_eq!(ProviderName::parse("stripe").map(|p| p.to_string()), Ok("stripe".to_owned()));
/// assert!(ProviderName::parse("Stripe").is_err());
/// assert!(ProviderName::parse("").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProviderName(String);

/// A provider name that is empty, longer than 32 characters, or has characters other than `a-z`,
/// `0-9`, `_` and `-`: such a name could not be a path segment or a system account's code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a provider name has 1 to 32 characters among a-z, 0-9, `_` and `-`")]
pub struct ProviderNameError;

impl ProviderName {
    /// Validates a provider name, as read from configuration, a webhook path or storage.
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

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProviderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a card payment is: pending, then settled exactly once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentStatus {
    /// A checkout was opened (or is being opened) and the provider has not answered yet.
    Pending,
    /// The provider took the money; the order is paid or the wallet topped up.
    Succeeded,
    /// The provider reported that the payment failed.
    Failed,
    /// The expiry job gave up on it at `expires_at`.
    Expired,
    /// The buyer gave up on it, a new checkout replaced it (paying again), or the provider refused
    /// to open the checkout.
    Cancelled,
}

impl PaymentStatus {
    /// Every status, for parsing and for tests.
    pub const ALL: [PaymentStatus; 5] = [
        PaymentStatus::Pending,
        PaymentStatus::Succeeded,
        PaymentStatus::Failed,
        PaymentStatus::Expired,
        PaymentStatus::Cancelled,
    ];

    /// The statuses this one may move to: any final one from `pending`, nothing after. A success after
    /// that is a late success ([`Payment::flag_late_success`]), not a transition.
    pub fn successors(self) -> &'static [PaymentStatus] {
        use PaymentStatus::*;
        match self {
            Pending => &[Succeeded, Failed, Expired, Cancelled],
            Succeeded | Failed | Expired | Cancelled => &[],
        }
    }

    /// The stable snake_case code stored in the database and used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Pending => "pending",
            PaymentStatus::Succeeded => "succeeded",
            PaymentStatus::Failed => "failed",
            PaymentStatus::Expired => "expired",
            PaymentStatus::Cancelled => "cancelled",
        }
    }

    /// The status whose [`as_str`](PaymentStatus::as_str) code is `text`, if any.
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

/// A settlement of a payment that was already settled: the caller lost a race or replayed an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a payment cannot go from {from:?} to {to:?}")]
pub struct PaymentTransitionError {
    /// The payment's status.
    pub from: PaymentStatus,
    /// The status asked for.
    pub to: PaymentStatus,
}

/// A card payment. Its fields are private: it is settled only through its transitions.
///
/// ```
/// use domain::ids::{OrderId, PaymentId, UserId};
/// use domain::money::{Currency, Money};
/// use domain::payment::{Payment, PaymentPurpose, PaymentStatus, ProviderName};
/// use domain::OffsetDateTime;
/// use uuid::Uuid;
///
/// let now = OffsetDateTime::UNIX_EPOCH;
/// let payment = Payment::open(
///     PaymentId::from_uuid(Uuid::from_u128(1)),
///     PaymentPurpose::Order(OrderId::from_uuid(Uuid::from_u128(2))),
///     UserId::from_uuid(Uuid::from_u128(3)),
///     ProviderName::parse("stripe").unwrap(),
///     Money::from_minor(2_500, Currency::Usd),
///     now,
///     now + time::Duration::minutes(30),
/// );
/// assert!(payment.awaits_checkout());
/// let payment = payment.attach_session("cs_1".into(), "https://checkout.example/cs_1".into(), now);
/// assert!(payment.is_expired_at(now + time::Duration::minutes(30)));
///
/// let expired = payment.expire(now + time::Duration::minutes(30)).unwrap();
/// // The provider's success arrives too late: no transition, a flag for the refund job instead.
/// assert!(expired.clone().succeed(Some("pi_1".into()), now).is_err());
/// let flagged = expired.flag_late_success(Some("pi_1".into()), now);
/// assert_eq!((flagged.status(), flagged.late_success()), (PaymentStatus::Expired, true));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    id: PaymentId,
    purpose: PaymentPurpose,
    payer_id: UserId,
    provider: ProviderName,
    amount: Money,
    status: PaymentStatus,
    /// The provider's checkout session (Stripe `cs_...`, Monnify transaction reference).
    provider_session_id: Option<String>,
    /// The provider's payment object, once known (Stripe `pi_...`), needed for refunds.
    provider_payment_id: Option<String>,
    checkout_url: Option<String>,
    disputed: bool,
    /// Set when a success arrived after the payment had been settled otherwise.
    late_success: bool,
    created_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

/// A payment as storage keeps it: what `Payment::restore` rebuilds one from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRecord {
    /// The payment's id; the provider's idempotency key is `checkout-<id>`.
    pub id: PaymentId,
    /// The order or top-up it pays for.
    pub purpose: PaymentPurpose,
    /// The user whose card pays.
    pub payer_id: UserId,
    /// The provider that takes the money.
    pub provider: ProviderName,
    /// What the provider is asked to take.
    pub amount: Money,
    /// Where the payment is.
    pub status: PaymentStatus,
    /// The provider's checkout session (Stripe `cs_...`, Monnify transaction reference).
    pub provider_session_id: Option<String>,
    /// The provider's payment object, once known (Stripe `pi_...`), needed for refunds.
    pub provider_payment_id: Option<String>,
    /// The provider's hosted page the buyer is sent to, once the checkout is opened.
    pub checkout_url: Option<String>,
    /// Whether the buyer disputed the charge with their bank (a chargeback was opened).
    pub disputed: bool,
    /// Set when a success arrived after the payment had been settled otherwise.
    pub late_success: bool,
    /// When the payment was opened.
    pub created_at: OffsetDateTime,
    /// When the expiry job gives up on it if it is still pending.
    pub expires_at: OffsetDateTime,
    /// When it last changed.
    pub updated_at: OffsetDateTime,
}

impl Payment {
    /// A new `pending` payment, before the provider has been asked for a checkout (that happens after
    /// the opening transaction commits, never inside it).
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

    /// The currency of the amount.
    pub fn currency(&self) -> Currency {
        self.amount.currency()
    }

    /// Rebuilds a payment from storage, which enforces the same invariants as `Payment` does.
    pub fn restore(record: PaymentRecord) -> Payment {
        let PaymentRecord {
            id,
            purpose,
            payer_id,
            provider,
            amount,
            status,
            provider_session_id,
            provider_payment_id,
            checkout_url,
            disputed,
            late_success,
            created_at,
            expires_at,
            updated_at,
        } = record;
        Payment {
            id,
            purpose,
            payer_id,
            provider,
            amount,
            status,
            provider_session_id,
            provider_payment_id,
            checkout_url,
            disputed,
            late_success,
            created_at,
            expires_at,
            updated_at,
        }
    }

    /// The payment's id.
    pub fn id(&self) -> PaymentId {
        self.id
    }

    /// The order or top-up it pays for.
    pub fn purpose(&self) -> PaymentPurpose {
        self.purpose
    }

    /// The user whose card pays.
    pub fn payer_id(&self) -> UserId {
        self.payer_id
    }

    /// The provider that takes the money.
    pub fn provider(&self) -> &ProviderName {
        &self.provider
    }

    /// What the provider is asked to take.
    pub fn amount(&self) -> Money {
        self.amount
    }

    /// Where the payment is.
    pub fn status(&self) -> PaymentStatus {
        self.status
    }

    /// The provider's checkout session (Stripe `cs_...`, Monnify transaction reference).
    pub fn provider_session_id(&self) -> Option<&str> {
        self.provider_session_id.as_deref()
    }

    /// The provider's payment object, once known (Stripe `pi_...`), needed for refunds.
    pub fn provider_payment_id(&self) -> Option<&str> {
        self.provider_payment_id.as_deref()
    }

    /// The provider's hosted page the buyer is sent to, once the checkout is opened.
    pub fn checkout_url(&self) -> Option<&str> {
        self.checkout_url.as_deref()
    }

    /// Whether the buyer disputed the charge with their bank.
    pub fn disputed(&self) -> bool {
        self.disputed
    }

    /// Whether a success arrived after the payment had been settled otherwise.
    pub fn late_success(&self) -> bool {
        self.late_success
    }

    /// When the payment was opened.
    pub fn created_at(&self) -> OffsetDateTime {
        self.created_at
    }

    /// When the expiry job gives up on it if it is still pending.
    pub fn expires_at(&self) -> OffsetDateTime {
        self.expires_at
    }

    /// When it last changed.
    pub fn updated_at(&self) -> OffsetDateTime {
        self.updated_at
    }

    /// Whether the payment is still waiting for its outcome.
    pub fn is_pending(&self) -> bool {
        self.status == PaymentStatus::Pending
    }

    /// Whether the provider's checkout still has to be opened.
    pub fn awaits_checkout(&self) -> bool {
        self.status == PaymentStatus::Pending && self.checkout_url.is_none()
    }

    /// Records the provider's payment id of a settled payment that did not have it yet.
    pub fn record_provider_payment_id(mut self, provider_payment_id: String, at: OffsetDateTime) -> Payment {
        if self.provider_payment_id.is_none() {
            self.provider_payment_id = Some(provider_payment_id);
            self.updated_at = at;
        }
        self
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

    /// `pending -> succeeded`, keeping the provider's payment id if the event carried one.
    pub fn succeed(mut self, provider_payment_id: Option<String>, at: OffsetDateTime) -> Result<Payment, PaymentTransitionError> {
        if provider_payment_id.is_some() {
            self.provider_payment_id = provider_payment_id;
        }
        self.settle(PaymentStatus::Succeeded, at)
    }

    /// `pending -> failed`.
    pub fn fail(self, at: OffsetDateTime) -> Result<Payment, PaymentTransitionError> {
        self.settle(PaymentStatus::Failed, at)
    }

    /// `pending -> expired`, by the expiry job.
    pub fn expire(self, at: OffsetDateTime) -> Result<Payment, PaymentTransitionError> {
        self.settle(PaymentStatus::Expired, at)
    }

    /// `pending -> cancelled`, by the buyer or because the provider refused the checkout.
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

    /// Records that the charge is disputed; the status does not change, the money has been taken.
    pub fn record_dispute(mut self, at: OffsetDateTime) -> Payment {
        self.disputed = true;
        self.updated_at = at;
        self
    }

    /// Whether the payment is pending and past its expiry, so the expiry job should end it.
    pub fn is_expired_at(&self, now: OffsetDateTime) -> bool {
        self.status == PaymentStatus::Pending && self.expires_at <= now
    }
}

/// Where a refund is: pending with the provider, then succeeded or failed once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefundStatus {
    /// The provider has been (or is to be) asked and has not answered yet.
    Pending,
    /// The money went back to the buyer.
    Succeeded,
    /// The provider refused or failed it; the merchant's share is restored.
    Failed,
}

impl RefundStatus {
    /// The stable snake_case code stored in the database and used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            RefundStatus::Pending => "pending",
            RefundStatus::Succeeded => "succeeded",
            RefundStatus::Failed => "failed",
        }
    }

    /// The status whose [`as_str`](RefundStatus::as_str) code is `text`, if any.
    pub fn parse(text: &str) -> Option<RefundStatus> {
        match text {
            "pending" => Some(RefundStatus::Pending),
            "succeeded" => Some(RefundStatus::Succeeded),
            "failed" => Some(RefundStatus::Failed),
            _ => None,
        }
    }
}

/// A settlement of a refund that is no longer pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a refund cannot go from {from:?} to {to:?}")]
pub struct RefundTransitionError {
    /// The refund's status.
    pub from: RefundStatus,
    /// The status asked for.
    pub to: RefundStatus,
}

/// Money given back to a buyer from one merchant's share of an order. Its fields are private: it
/// is settled only through its transitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    id: RefundId,
    order_id: OrderId,
    /// The card payment refunded through its gateway; `None` for a wallet payment.
    payment_id: Option<PaymentId>,
    merchant_id: UserId,
    amount: Money,
    status: RefundStatus,
    provider_refund_id: Option<String>,
    reason: String,
    /// Who asked for it; `None` for a refund made outside the API (the provider's dashboard).
    requested_by: Option<UserId>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

/// A refund as storage keeps it: what `Refund::restore` rebuilds one from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRecord {
    /// The refund's id; the provider's idempotency key is `refund-<id>`.
    pub id: RefundId,
    /// The order refunded.
    pub order_id: OrderId,
    /// The card payment refunded through its gateway; `None` for a wallet payment.
    pub payment_id: Option<PaymentId>,
    /// The merchant whose share of the order the money comes from.
    pub merchant_id: UserId,
    /// What is given back.
    pub amount: Money,
    /// Where the refund is.
    pub status: RefundStatus,
    /// The provider's id of the refund, once known.
    pub provider_refund_id: Option<String>,
    /// Why, as the person who asked for it put it.
    pub reason: String,
    /// Who asked for it; `None` for a refund made outside the API (the provider's dashboard).
    pub requested_by: Option<UserId>,
    /// When the refund was made.
    pub created_at: OffsetDateTime,
    /// When it last changed.
    pub updated_at: OffsetDateTime,
}

/// What a new refund gives back, from whose share, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundTerms {
    /// The order to refund.
    pub order_id: OrderId,
    /// The card payment to refund through its gateway; `None` for a wallet payment.
    pub payment_id: Option<PaymentId>,
    /// The merchant whose share the money comes from.
    pub merchant_id: UserId,
    /// What to give back, in the order's currency.
    pub amount: Money,
    /// Why, as the person asking puts it.
    pub reason: String,
    /// Who asks for it; `None` for a refund made outside the API.
    pub requested_by: Option<UserId>,
}

impl Refund {
    /// A refund the provider must still be asked for: `pending` until it answers.
    pub fn open(id: RefundId, terms: RefundTerms, at: OffsetDateTime) -> Refund {
        Refund::new(id, terms, RefundStatus::Pending, at)
    }

    /// A refund that is final at once: from a wallet, or made in the provider's dashboard.
    pub fn completed(id: RefundId, terms: RefundTerms, at: OffsetDateTime) -> Refund {
        Refund::new(id, terms, RefundStatus::Succeeded, at)
    }

    fn new(id: RefundId, terms: RefundTerms, status: RefundStatus, at: OffsetDateTime) -> Refund {
        let RefundTerms {
            order_id,
            payment_id,
            merchant_id,
            amount,
            reason,
            requested_by,
        } = terms;
        Refund {
            id,
            order_id,
            payment_id,
            merchant_id,
            amount,
            status,
            provider_refund_id: None,
            reason,
            requested_by,
            created_at: at,
            updated_at: at,
        }
    }

    /// Rebuilds a refund from storage, which enforces the same invariants as `Refund` does.
    pub fn restore(record: RefundRecord) -> Refund {
        let RefundRecord {
            id,
            order_id,
            payment_id,
            merchant_id,
            amount,
            status,
            provider_refund_id,
            reason,
            requested_by,
            created_at,
            updated_at,
        } = record;
        Refund {
            id,
            order_id,
            payment_id,
            merchant_id,
            amount,
            status,
            provider_refund_id,
            reason,
            requested_by,
            created_at,
            updated_at,
        }
    }

    /// The refund's id.
    pub fn id(&self) -> RefundId {
        self.id
    }

    /// The order refunded.
    pub fn order_id(&self) -> OrderId {
        self.order_id
    }

    /// The card payment refunded through its gateway; `None` for a wallet payment.
    pub fn payment_id(&self) -> Option<PaymentId> {
        self.payment_id
    }

    /// The merchant whose share of the order the money comes from.
    pub fn merchant_id(&self) -> UserId {
        self.merchant_id
    }

    /// What is given back.
    pub fn amount(&self) -> Money {
        self.amount
    }

    /// Where the refund is.
    pub fn status(&self) -> RefundStatus {
        self.status
    }

    /// The provider's id of the refund, once known.
    pub fn provider_refund_id(&self) -> Option<&str> {
        self.provider_refund_id.as_deref()
    }

    /// Why, as the person who asked for it put it.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// Who asked for it; `None` for a refund made outside the API (the provider's dashboard).
    pub fn requested_by(&self) -> Option<UserId> {
        self.requested_by
    }

    /// When the refund was made.
    pub fn created_at(&self) -> OffsetDateTime {
        self.created_at
    }

    /// When it last changed.
    pub fn updated_at(&self) -> OffsetDateTime {
        self.updated_at
    }

    /// Whether the provider's answer is still awaited.
    pub fn is_pending(&self) -> bool {
        self.status == RefundStatus::Pending
    }

    /// Whether the refund takes from its merchant's share: pending or done, not failed.
    pub fn counts_against_share(&self) -> bool {
        self.status != RefundStatus::Failed
    }

    /// Records the provider's id of a refund that did not have it yet.
    pub fn record_provider_refund_id(mut self, provider_refund_id: &str, at: OffsetDateTime) -> Refund {
        if self.provider_refund_id.is_none() && !provider_refund_id.is_empty() {
            self.provider_refund_id = Some(provider_refund_id.to_owned());
            self.updated_at = at;
        }
        self
    }
    fn settle(mut self, to: RefundStatus, at: OffsetDateTime) -> Result<Refund, RefundTransitionError> {
        if self.status != RefundStatus::Pending {
            return Err(RefundTransitionError { from: self.status, to });
        }
        self.status = to;
        self.updated_at = at;
        Ok(self)
    }

    /// `pending -> succeeded`.
    pub fn succeed(self, at: OffsetDateTime) -> Result<Refund, RefundTransitionError> {
        self.settle(RefundStatus::Succeeded, at)
    }

    /// `pending -> failed`.
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
