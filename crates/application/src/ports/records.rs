//! The records the store port keeps for the use cases that are not domain entities: refresh
//! tokens, idempotency keys with their outcomes, and the ledger's audit facts.

use domain::ids::{PaymentId, RefreshTokenId, RefundId, TokenFamilyId, TransactionId, UserId, WalletId, WithdrawalId};
use domain::ledger::TransactionKind;
use domain::money::Currency;
use time::OffsetDateTime;

/// A stored refresh token (only the hash of its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    /// The token's id.
    pub id: RefreshTokenId,
    /// The user it signs in.
    pub user_id: UserId,
    /// The chain of tokens descending from one sign-in; a reused token revokes the whole family.
    pub family_id: TokenFamilyId,
    /// The hash of the secret the client holds; the secret itself is never stored.
    pub token_hash: String,
    /// When it was issued.
    pub created_at: OffsetDateTime,
    /// When it stops being accepted.
    pub expires_at: OffsetDateTime,
    /// When it was exchanged for a new pair; a second use is theft, and revokes the family.
    pub used_at: Option<OffsetDateTime>,
    /// When it was revoked (sign-out, reuse, suspension).
    pub revoked_at: Option<OffsetDateTime>,
}

/// A client's `Idempotency-Key`: 1 to 255 visible ASCII characters, as Stripe accepts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdempotencyKey(String);

/// A key that is empty, too long, or has spaces or non-ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an idempotency key has 1 to 255 visible ASCII characters")]
pub struct IdempotencyKeyError;

impl IdempotencyKey {
    /// Checks a key from a request header (or a form's hidden field).
    ///
    /// # Errors
    ///
    /// [`IdempotencyKeyError`] if it is not 1 to 255 visible ASCII characters.
    pub fn parse(text: &str) -> Result<IdempotencyKey, IdempotencyKeyError> {
        let valid = !text.is_empty() && text.len() <= 255 && text.bytes().all(|b| b.is_ascii_graphic());
        if valid {
            Ok(IdempotencyKey(text.to_owned()))
        } else {
            Err(IdempotencyKeyError)
        }
    }

    /// The key as the client sent it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whose key it is. Anonymous requests (registration) share one scope; their replay still needs
/// the identical request, password included.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdempotencyScope {
    /// The user the key belongs to; `None` for anonymous requests.
    pub principal: Option<UserId>,
    /// The key.
    pub key: IdempotencyKey,
}

impl IdempotencyScope {
    /// The principal as stored: a user id, or `anonymous`.
    pub fn principal_text(&self) -> String {
        self.principal.map_or_else(|| "anonymous".to_owned(), |id| id.to_string())
    }
}

/// A response as the client first received it, replayed byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// The HTTP status.
    pub status: u16,
    /// The body, exactly as sent.
    pub body: Vec<u8>,
    /// The `Location` header of a creation, if any.
    pub location: Option<String>,
}

/// What a multi-step request has committed so far under its key: where a retry resumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecoveryPoint {
    /// A card checkout or top-up whose pending payment is committed; the provider's checkout may
    /// not be open yet.
    Payment(PaymentId),
    /// Card refunds whose money has moved to the gateway's clearing account; the provider may
    /// not have been asked yet.
    Refunds(Vec<RefundId>),
    /// An approved withdrawal whose payout the provider may not have been asked for yet.
    Withdrawal(WithdrawalId),
}

/// Text that is not a recovery point's [`code`](RecoveryPoint::code).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a recovery point: {0}")]
pub struct RecoveryPointError(String);

impl RecoveryPoint {
    /// A stable text form, for storage: `payment:<id>`, `withdrawal:<id>` or `refunds:<id>,<id>`.
    pub fn code(&self) -> String {
        match self {
            RecoveryPoint::Payment(id) => format!("payment:{id}"),
            RecoveryPoint::Withdrawal(id) => format!("withdrawal:{id}"),
            RecoveryPoint::Refunds(ids) => {
                let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
                format!("refunds:{}", ids.join(","))
            }
        }
    }

    /// The recovery point whose [`code`](RecoveryPoint::code) is `code`.
    ///
    /// # Errors
    ///
    /// [`RecoveryPointError`] if it is not one.
    pub fn parse(code: &str) -> Result<RecoveryPoint, RecoveryPointError> {
        let invalid = || RecoveryPointError(code.chars().take(80).collect());
        if let Some(id) = code.strip_prefix("payment:") {
            return PaymentId::parse(id).map(RecoveryPoint::Payment).map_err(|_| invalid());
        }
        if let Some(id) = code.strip_prefix("withdrawal:") {
            return WithdrawalId::parse(id).map(RecoveryPoint::Withdrawal).map_err(|_| invalid());
        }
        let ids = code.strip_prefix("refunds:").ok_or_else(invalid)?;
        let ids: Result<Vec<RefundId>, _> = ids.split(',').map(RefundId::parse).collect();
        match ids {
            Ok(ids) if !ids.is_empty() => Ok(RecoveryPoint::Refunds(ids)),
            _ => Err(invalid()),
        }
    }
}

/// Where a key stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyState {
    /// Claimed by a request; `recovery` says what it has committed, if anything.
    InProgress {
        /// Until when the request holds the key; after it (the request died), a retry takes it over.
        locked_until: OffsetDateTime,
        /// What the request had committed.
        recovery: Option<RecoveryPoint>,
    },
    /// Done: a retry replays this response.
    Completed(StoredResponse),
}

/// A key's claim and, once done, its response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// Whose key it is.
    pub scope: IdempotencyScope,
    /// A digest of method, path and body: the same key must come with the same request.
    pub fingerprint: String,
    /// Where it stands.
    pub state: IdempotencyState,
    /// When it was first claimed.
    pub created_at: OffsetDateTime,
}

/// A cached balance that differs from the sum of the wallet's postings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceMismatch {
    /// The wallet.
    pub wallet_id: WalletId,
    /// The cached balance.
    pub cached_minor: i64,
    /// The sum of its postings.
    pub posted_minor: i128,
}

/// A cached `held` that differs from the sum of the wallet's pending holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldMismatch {
    /// The wallet.
    pub wallet_id: WalletId,
    /// The cached `held`.
    pub cached_minor: i64,
    /// The sum of its pending holds' remaining amounts.
    pub pending_holds_minor: i128,
}

/// A journal transaction whose postings do not sum to zero in one currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnbalancedTransaction {
    /// The transaction.
    pub transaction_id: TransactionId,
    /// The currency that does not balance.
    pub currency: Currency,
    /// What its postings sum to.
    pub sum_minor: i128,
}

/// Raw facts about the ledger, gathered by storage in one consistent snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerAudit {
    /// How many journal transactions there are.
    pub transaction_count: u64,
    /// How many postings.
    pub posting_count: u64,
    /// How many wallets, system accounts included.
    pub wallet_count: u64,
    /// Transactions that do not sum to zero per currency.
    pub unbalanced_transactions: Vec<UnbalancedTransaction>,
    /// Wallets whose cached balance is not the sum of their postings.
    pub balance_mismatches: Vec<BalanceMismatch>,
    /// Wallets whose cached `held` is not the sum of their pending holds.
    pub held_mismatches: Vec<HeldMismatch>,
    /// User wallets whose balance is negative or below what they hold.
    pub overdrawn_wallets: Vec<WalletId>,
    /// Wallets whose postings' `balance_after` do not chain (each equal to the previous plus the
    /// amount).
    pub broken_chains: Vec<WalletId>,
    /// The sum of all postings, per currency. Every one must be zero.
    pub totals_by_currency: Vec<(Currency, i128)>,
}

/// The postings of one transaction kind on one wallet within a statement's period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindTotals {
    /// The kind.
    pub kind: TransactionKind,
    /// The sum of the positive postings (zero or more).
    pub credits_minor: i128,
    /// The sum of the negative postings (zero or less).
    pub debits_minor: i128,
    /// How many positive postings.
    pub credit_count: u64,
    /// How many negative postings.
    pub debit_count: u64,
}

/// A wallet's postings summed for a statement, gathered by storage in one consistent snapshot.
///
/// A posting is dated by its journal transaction. `closing_minor` is summed apart from the
/// others, so that `opening_minor` plus the kinds' totals equalling it is a check, not a
/// definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementTotals {
    /// The wallet.
    pub wallet_id: WalletId,
    /// The sum of the postings dated before the period (zero when the period has no start).
    pub opening_minor: i128,
    /// The postings dated within the period, per kind; kinds without postings are left out.
    pub kinds: Vec<KindTotals>,
    /// The sum of the postings dated before the period's end (all of them when it has none).
    pub closing_minor: i128,
    /// The wallet's cached balance, now.
    pub cached_balance_minor: i64,
    /// The `balance_after` of the wallet's latest posting (by sequence, whatever its date).
    pub latest_balance_after_minor: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn recovery_points_round_trip_through_their_code() {
        let payment = RecoveryPoint::Payment(PaymentId::from_uuid(Uuid::from_u128(7)));
        let refunds = RecoveryPoint::Refunds(vec![
            RefundId::from_uuid(Uuid::from_u128(1)),
            RefundId::from_uuid(Uuid::from_u128(2)),
        ]);
        for point in [payment, refunds] {
            assert_eq!(RecoveryPoint::parse(&point.code()), Ok(point));
        }
        for bad in ["", "payment:", "refunds:", "refunds:x", "other:1"] {
            assert!(RecoveryPoint::parse(bad).is_err(), "{bad}");
        }
    }
}
