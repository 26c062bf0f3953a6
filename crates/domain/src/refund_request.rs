//! Refund requests: a buyer asks for all or part of one merchant's share of a paid order back.
//!
//! ```text
//! open ──approve──▶ approved ──its refund fails──▶ refund_failed
//!   ├───decline──▶ declined   (with the decider's note)
//!   └──withdraw──▶ withdrawn  (by the buyer)
//! ```
//!
//! Only the merchant whose share it concerns, or an admin, decides; approving it refunds, in the
//! same transaction, so an approved request always names its refund. A card refund the provider
//! refuses later leaves the request `refund_failed` (its money back with the merchant): the buyer
//! may ask again. A buyer has at most one
//! open request per order and merchant. The transitions consume the request and refuse any other
//! move.

use std::fmt;

use time::OffsetDateTime;

use crate::ids::{OrderId, RefundId, RefundRequestId, UserId};
use crate::money::Money;

/// The longest reason a buyer gives, and the longest note of a decision.
pub const TEXT_CHARS_MAX: usize = 500;

/// Where a refund request is; see the module's diagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefundRequestStatus {
    /// Waiting for the merchant (or an admin) to decide; the buyer may still withdraw it.
    Open,
    /// Approved and refunded: the request names its refund.
    Approved,
    /// Final: the decider refused, with a note for the buyer.
    Declined,
    /// Final: the buyer took it back.
    Withdrawn,
    /// Approved, but the provider refused its refund.
    RefundFailed,
}

impl RefundRequestStatus {
    /// Every status, for parsing and for tests.
    pub const ALL: [RefundRequestStatus; 5] = [
        RefundRequestStatus::Open,
        RefundRequestStatus::Approved,
        RefundRequestStatus::Declined,
        RefundRequestStatus::Withdrawn,
        RefundRequestStatus::RefundFailed,
    ];

    /// The stable snake_case code stored in the database and used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            RefundRequestStatus::Open => "open",
            RefundRequestStatus::Approved => "approved",
            RefundRequestStatus::Declined => "declined",
            RefundRequestStatus::Withdrawn => "withdrawn",
            RefundRequestStatus::RefundFailed => "refund_failed",
        }
    }

    /// The status whose [`as_str`](RefundRequestStatus::as_str) code is `text`, if any.
    pub fn parse(text: &str) -> Option<RefundRequestStatus> {
        RefundRequestStatus::ALL.into_iter().find(|status| status.as_str() == text)
    }
}

impl fmt::Display for RefundRequestStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a refund request cannot be opened or moved as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefundRequestError {
    /// The buyer's reason is empty or longer than [`TEXT_CHARS_MAX`].
    #[error("the reason must not be empty and must have at most {TEXT_CHARS_MAX} characters")]
    Reason,
    /// The decider's note is empty or longer than [`TEXT_CHARS_MAX`].
    #[error("the note must not be empty and must have at most {TEXT_CHARS_MAX} characters")]
    Note,
    /// An amount of zero or less.
    #[error("the amount must be positive")]
    Amount,
    /// A move the state machine does not allow, such as approving a withdrawn request.
    #[error("a refund request that is {from} cannot become {to}")]
    Transition {
        /// The request's status.
        from: RefundRequestStatus,
        /// The status asked for.
        to: RefundRequestStatus,
    },
}

/// A buyer's request for money back. Its fields are private: it changes only through its
/// transitions.
///
/// ```
/// use domain::ids::{OrderId, RefundId, RefundRequestId, UserId};
/// use domain::money::{Currency, Money};
/// use domain::refund_request::{RefundAsk, RefundRequest, RefundRequestError, RefundRequestStatus};
/// use domain::OffsetDateTime;
/// use uuid::Uuid;
///
/// let now = OffsetDateTime::UNIX_EPOCH;
/// let id = Uuid::from_u128;
/// let (buyer, merchant) = (UserId::from_uuid(id(1)), UserId::from_uuid(id(2)));
/// let ask = RefundAsk {
///     order_id: OrderId::from_uuid(id(3)),
///     buyer_id: buyer,
///     merchant_id: merchant,
///     amount: Some(Money::from_minor(500, Currency::Eur)),
///     reason: "  arrived broken ".into(),
/// };
/// let request = RefundRequest::open(RefundRequestId::from_uuid(id(4)), ask, now).unwrap();
/// assert_eq!(request.reason(), "arrived broken");
///
/// let declined = request.clone().decline(merchant, "the photo shows no damage", now).unwrap();
/// assert_eq!(declined.status(), RefundRequestStatus::Declined);
/// // Decided once: a declined request cannot be approved.
/// assert_eq!(
///     declined.approve(merchant, RefundId::from_uuid(id(5)), now),
///     Err(RefundRequestError::Transition { from: RefundRequestStatus::Declined, to: RefundRequestStatus::Approved })
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    record: RefundRequestRecord,
}

/// A refund request as storage keeps it: what `RefundRequest::restore` rebuilds one from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequestRecord {
    /// The request's id.
    pub id: RefundRequestId,
    /// The order it is about.
    pub order_id: OrderId,
    /// The buyer who asked.
    pub buyer_id: UserId,
    /// Whose share of the order it asks back.
    pub merchant_id: UserId,
    /// `None` asks for everything left of the merchant's share when it is approved.
    pub amount: Option<Money>,
    /// The buyer's reason, trimmed.
    pub reason: String,
    /// Where the request is.
    pub status: RefundRequestStatus,
    /// The merchant or admin who approved or declined it.
    pub decided_by: Option<UserId>,
    /// Why it was declined.
    pub note: Option<String>,
    /// The refund its approval made.
    pub refund_id: Option<RefundId>,
    /// When it was opened.
    pub created_at: OffsetDateTime,
    /// When it last changed.
    pub updated_at: OffsetDateTime,
}

/// What a buyer asks: whose share, how much of it, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundAsk {
    /// The paid order.
    pub order_id: OrderId,
    /// The buyer asking.
    pub buyer_id: UserId,
    /// The merchant whose share is asked back.
    pub merchant_id: UserId,
    /// How much; `None` for everything left of the merchant's share when it is approved.
    pub amount: Option<Money>,
    /// Why, in the buyer's words: 1 to [`TEXT_CHARS_MAX`] characters once trimmed.
    pub reason: String,
}

/// `text` trimmed, if it is not empty and not too long.
fn bounded(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty() && text.chars().count() <= TEXT_CHARS_MAX).then(|| text.to_owned())
}

impl RefundRequest {
    /// A new, open request.
    ///
    /// # Errors
    /// An empty or too long reason, or an amount of zero or less.
    pub fn open(id: RefundRequestId, ask: RefundAsk, at: OffsetDateTime) -> Result<RefundRequest, RefundRequestError> {
        let reason = bounded(&ask.reason).ok_or(RefundRequestError::Reason)?;
        if ask.amount.is_some_and(|amount| !amount.is_positive()) {
            return Err(RefundRequestError::Amount);
        }
        Ok(RefundRequest {
            record: RefundRequestRecord {
                id,
                order_id: ask.order_id,
                buyer_id: ask.buyer_id,
                merchant_id: ask.merchant_id,
                amount: ask.amount,
                reason,
                status: RefundRequestStatus::Open,
                decided_by: None,
                note: None,
                refund_id: None,
                created_at: at,
                updated_at: at,
            },
        })
    }

    /// Rebuilds a request from storage, which enforces the same invariants as `RefundRequest` does.
    pub fn restore(record: RefundRequestRecord) -> RefundRequest {
        RefundRequest { record }
    }

    /// Everything stored about the request, for the adapters that write it.
    pub fn record(&self) -> &RefundRequestRecord {
        &self.record
    }

    /// The request's id.
    pub fn id(&self) -> RefundRequestId {
        self.record.id
    }

    /// The order it is about.
    pub fn order_id(&self) -> OrderId {
        self.record.order_id
    }

    /// The buyer who asked.
    pub fn buyer_id(&self) -> UserId {
        self.record.buyer_id
    }

    /// The merchant whose share it asks back.
    pub fn merchant_id(&self) -> UserId {
        self.record.merchant_id
    }

    /// How much; `None` asks for everything left of the merchant's share when it is approved.
    pub fn amount(&self) -> Option<Money> {
        self.record.amount
    }

    /// The buyer's reason.
    pub fn reason(&self) -> &str {
        &self.record.reason
    }

    /// Where the request is.
    pub fn status(&self) -> RefundRequestStatus {
        self.record.status
    }

    /// Whether it still waits for a decision.
    pub fn is_open(&self) -> bool {
        self.record.status == RefundRequestStatus::Open
    }

    /// When it was opened.
    pub fn created_at(&self) -> OffsetDateTime {
        self.record.created_at
    }

    /// Approved by `by`, who refunded it with `refund_id`.
    ///
    /// # Errors
    /// The request is no longer open.
    pub fn approve(self, by: UserId, refund_id: RefundId, at: OffsetDateTime) -> Result<RefundRequest, RefundRequestError> {
        let mut request = self.leave_open(RefundRequestStatus::Approved, at)?;
        request.record.decided_by = Some(by);
        request.record.refund_id = Some(refund_id);
        Ok(request)
    }

    /// Declined by `by`, with a note that tells the buyer why.
    ///
    /// # Errors
    /// An empty or too long note, or the request is no longer open.
    pub fn decline(self, by: UserId, note: &str, at: OffsetDateTime) -> Result<RefundRequest, RefundRequestError> {
        let note = bounded(note).ok_or(RefundRequestError::Note)?;
        let mut request = self.leave_open(RefundRequestStatus::Declined, at)?;
        request.record.decided_by = Some(by);
        request.record.note = Some(note);
        Ok(request)
    }

    /// Withdrawn by its buyer.
    ///
    /// # Errors
    /// The request is no longer open.
    pub fn withdraw(self, at: OffsetDateTime) -> Result<RefundRequest, RefundRequestError> {
        self.leave_open(RefundRequestStatus::Withdrawn, at)
    }

    /// The provider refused the refund its approval made.
    ///
    /// # Errors
    /// The request is not approved.
    pub fn refund_failed(mut self, at: OffsetDateTime) -> Result<RefundRequest, RefundRequestError> {
        if self.record.status != RefundRequestStatus::Approved {
            return Err(RefundRequestError::Transition {
                from: self.record.status,
                to: RefundRequestStatus::RefundFailed,
            });
        }
        self.record.status = RefundRequestStatus::RefundFailed;
        self.record.updated_at = at;
        Ok(self)
    }

    fn leave_open(mut self, to: RefundRequestStatus, at: OffsetDateTime) -> Result<RefundRequest, RefundRequestError> {
        if !self.is_open() {
            return Err(RefundRequestError::Transition {
                from: self.record.status,
                to,
            });
        }
        self.record.status = to;
        self.record.updated_at = at;
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;

    fn at() -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH
    }

    fn id<T>(from_uuid: fn(uuid::Uuid) -> T, n: u128) -> T {
        from_uuid(uuid::Uuid::from_u128(n))
    }

    fn ask(amount: Option<i64>, reason: &str) -> RefundAsk {
        RefundAsk {
            order_id: id(OrderId::from_uuid, 1),
            buyer_id: id(UserId::from_uuid, 2),
            merchant_id: id(UserId::from_uuid, 3),
            amount: amount.map(|minor| Money::from_minor(minor, Currency::Usd)),
            reason: reason.to_owned(),
        }
    }

    fn open(amount: Option<i64>) -> RefundRequest {
        RefundRequest::open(id(RefundRequestId::from_uuid, 9), ask(amount, " arrived broken "), at()).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_request_needs_a_reason_and_a_positive_amount() {
        let request = open(Some(500));
        assert_eq!((request.status(), request.reason()), (RefundRequestStatus::Open, "arrived broken"));
        let refused = |amount, reason: &str| RefundRequest::open(id(RefundRequestId::from_uuid, 9), ask(amount, reason), at());
        assert_eq!(refused(None, "  "), Err(RefundRequestError::Reason));
        assert_eq!(refused(None, &"x".repeat(TEXT_CHARS_MAX + 1)), Err(RefundRequestError::Reason));
        assert_eq!(refused(Some(0), "why"), Err(RefundRequestError::Amount));
        assert_eq!(refused(Some(-1), "why"), Err(RefundRequestError::Amount));
    }

    #[test]
    fn only_an_open_request_is_approved_declined_or_withdrawn() {
        let merchant = id(UserId::from_uuid, 3);
        let refund = id(RefundId::from_uuid, 4);
        let approved = open(None).approve(merchant, refund, at()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (approved.status(), approved.record().refund_id, approved.record().decided_by),
            (RefundRequestStatus::Approved, Some(refund), Some(merchant))
        );
        assert_eq!(
            approved.clone().withdraw(at()),
            Err(RefundRequestError::Transition {
                from: RefundRequestStatus::Approved,
                to: RefundRequestStatus::Withdrawn
            })
        );
        assert_eq!(open(None).decline(merchant, " ", at()), Err(RefundRequestError::Note));
        let declined = open(None).decline(merchant, "used", at()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(declined.record().note.as_deref(), Some("used"));
        assert!(declined.approve(merchant, refund, at()).is_err());
        let withdrawn = open(None).withdraw(at()).unwrap_or_else(|e| panic!("{e}"));
        assert!(withdrawn.clone().decline(merchant, "late", at()).is_err());
        assert!(withdrawn.refund_failed(at()).is_err(), "only an approved request's refund fails");
        let failed = approved.refund_failed(at()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (failed.status(), failed.record().refund_id),
            (RefundRequestStatus::RefundFailed, Some(refund))
        );
    }

    #[test]
    fn statuses_parse_what_they_print() {
        for status in RefundRequestStatus::ALL {
            assert_eq!(RefundRequestStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(RefundRequestStatus::parse("pending"), None);
    }
}
