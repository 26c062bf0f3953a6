//! The records the store port keeps for the use cases that are not domain entities: refresh
//! tokens, idempotency keys with their outcomes, and the ledger's audit facts.

use domain::ids::{PaymentId, RefreshTokenId, RefundId, TokenFamilyId, TransactionId, UserId, WalletId, WithdrawalId};
use domain::ledger::TransactionKind;
use domain::money::Currency;
use time::OffsetDateTime;

/// A stored refresh token (only the hash of its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    pub id: RefreshTokenId,
    pub user_id: UserId,
    pub family_id: TokenFamilyId,
    pub token_hash: String,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub used_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdempotencyKey(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an idempotency key has 1 to 255 visible ASCII characters")]
pub struct IdempotencyKeyError;

impl IdempotencyKey {
    pub fn parse(text: &str) -> Result<IdempotencyKey, IdempotencyKeyError> {
        let valid = !text.is_empty() && text.len() <= 255 && text.bytes().all(|b| b.is_ascii_graphic());
        if valid {
            Ok(IdempotencyKey(text.to_owned()))
        } else {
            Err(IdempotencyKeyError)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whose key it is. Anonymous requests (registration) share one scope; their replay still needs
/// the identical request, password included.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdempotencyScope {
    pub principal: Option<UserId>,
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
    pub status: u16,
    pub body: Vec<u8>,
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

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a recovery point: {0}")]
pub struct RecoveryPointError(String);

impl RecoveryPoint {
    /// A stable text form, for storage: `payment:<id>` or `refunds:<id>,<id>`.
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyState {
    /// Claimed by a request; `recovery` says what it has committed, if anything.
    InProgress {
        locked_until: OffsetDateTime,
        recovery: Option<RecoveryPoint>,
    },
    Completed(StoredResponse),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub scope: IdempotencyScope,
    /// A digest of method, path and body: the same key must come with the same request.
    pub fingerprint: String,
    pub state: IdempotencyState,
    pub created_at: OffsetDateTime,
}

/// A cached balance that differs from the sum of the wallet's postings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceMismatch {
    pub wallet_id: WalletId,
    pub cached_minor: i64,
    pub posted_minor: i128,
}

/// A cached `held` that differs from the sum of the wallet's pending holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldMismatch {
    pub wallet_id: WalletId,
    pub cached_minor: i64,
    pub pending_holds_minor: i128,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnbalancedTransaction {
    pub transaction_id: TransactionId,
    pub currency: Currency,
    pub sum_minor: i128,
}

/// Raw facts about the ledger, gathered by storage in one consistent snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerAudit {
    pub transaction_count: u64,
    pub posting_count: u64,
    pub wallet_count: u64,
    pub unbalanced_transactions: Vec<UnbalancedTransaction>,
    pub balance_mismatches: Vec<BalanceMismatch>,
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
    pub kind: TransactionKind,
    /// The sum of the positive postings (zero or more).
    pub credits_minor: i128,
    /// The sum of the negative postings (zero or less).
    pub debits_minor: i128,
    pub credit_count: u64,
    pub debit_count: u64,
}

/// A wallet's postings summed for a statement, gathered by storage in one consistent snapshot.
///
/// A posting is dated by its journal transaction. `closing_minor` is summed apart from the
/// others, so that `opening_minor` plus the kinds' totals equalling it is a check, not a
/// definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementTotals {
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
