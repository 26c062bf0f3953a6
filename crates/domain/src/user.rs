//! Users, roles, e-mail addresses and the password policy.

use std::fmt;

use time::OffsetDateTime;

use crate::ids::UserId;

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Buys, tops up, transfers, withdraws, calls and asks for refunds.
    Customer,
    /// Everything a customer does, and sells: products, refunds, captures.
    Merchant,
    /// Runs the platform: suspensions, adjustments, withdrawals, refunds, the ledger's verification.
    Admin,
}

impl Role {
    /// The stable code stored in the database, put in access tokens and used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Merchant => "merchant",
            Role::Admin => "admin",
        }
    }

    /// The role whose [`as_str`](Role::as_str) code is `text`, if any.
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "customer" => Some(Role::Customer),
            "merchant" => Some(Role::Merchant),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    /// Whether someone may pick this role when registering. Admins are created by an operator.
    pub fn is_self_registrable(self) -> bool {
        match self {
            Role::Customer | Role::Merchant => true,
            Role::Admin => false,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a text is not an acceptable e-mail address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    /// Nothing but spaces.
    #[error("the e-mail address is empty")]
    Empty,
    /// Longer than [`Email::LEN_MAX`].
    #[error("the e-mail address is longer than {max} characters")]
    TooLong {
        /// The limit, [`Email::LEN_MAX`].
        max: usize,
    },
    /// Not `local@domain.tld`: no `@`, a domain without a dot, spaces, or characters out of place.
    #[error("the e-mail address is not of the form name@example.com")]
    Malformed,
}

/// A normalised e-mail address: trimmed and lower-cased, so that `Ann@Example.com` and
/// `ann@example.com` are one account.
///
/// ```
/// use domain::user::Email;
///
/// let email = Email::parse("  Ann@Example.com ").unwrap();
/// assert_eq!(email.as_str(), "ann@example.com");
/// assert!(Email::parse("ann@localhost").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Email(String);

impl Email {
    /// The longest address accepted, in characters (RFC 5321's limit on a path).
    pub const LEN_MAX: usize = 254;

    /// Normalises and checks an address. The check is deliberately loose (a confirmation mail is the
    /// only real test); it refuses what cannot be an address.
    ///
    /// # Errors
    ///
    /// [`EmailError`] saying what is wrong.
    pub fn parse(text: &str) -> Result<Email, EmailError> {
        let normalised = text.trim().to_lowercase();
        if normalised.is_empty() {
            return Err(EmailError::Empty);
        }
        if normalised.chars().count() > Email::LEN_MAX {
            return Err(EmailError::TooLong { max: Email::LEN_MAX });
        }
        let (local, domain) = normalised.split_once('@').ok_or(EmailError::Malformed)?;
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain.chars().all(|c| c.is_alphanumeric() || c == '.' || c == '-');
        let local_ok =
            !local.is_empty() && local.chars().count() <= 64 && !local.chars().any(|c| c.is_whitespace() || c.is_control() || c == '@');
        if !(domain_ok && local_ok) {
            return Err(EmailError::Malformed);
        }
        Ok(Email(normalised))
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn local_part(&self) -> &str {
        self.0.split('@').next().unwrap_or_default()
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a new password breaks the policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// Shorter than [`Password::LEN_MIN`] characters.
    #[error("the password must have at least {min} characters")]
    TooShort {
        /// The limit, [`Password::LEN_MIN`].
        min: usize,
    },
    /// Longer than [`Password::BYTES_MAX`] bytes.
    #[error("the password must have at most {max} bytes")]
    TooLong {
        /// The limit, [`Password::BYTES_MAX`].
        max: usize,
    },
    /// Without at least one letter and one digit.
    #[error("the password must contain at least one letter and one digit")]
    TooSimple,
    /// It contains the local part of the user's e-mail address.
    #[error("the password must not contain `{name}`, the name of the e-mail address")]
    ContainsEmail {
        /// The local part found in the password.
        name: String,
    },
}

/// A plaintext password that satisfies the policy. `Debug` never shows it.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// The fewest characters a new password may have.
    pub const LEN_MIN: usize = 10;
    /// bcrypt ignores everything after 72 bytes, so longer passwords would give false security.
    pub const BYTES_MAX: usize = 72;

    /// Checks a new password against the policy.
    pub fn new(text: &str, email: &Email) -> Result<Password, PasswordError> {
        if text.chars().count() < Password::LEN_MIN {
            return Err(PasswordError::TooShort { min: Password::LEN_MIN });
        }
        if text.len() > Password::BYTES_MAX {
            return Err(PasswordError::TooLong { max: Password::BYTES_MAX });
        }
        let has_letter = text.chars().any(char::is_alphabetic);
        let has_digit = text.chars().any(|c| c.is_ascii_digit());
        if !(has_letter && has_digit) {
            return Err(PasswordError::TooSimple);
        }
        let local = email.local_part();
        if local.len() >= 3 && text.to_lowercase().contains(local) {
            return Err(PasswordError::ContainsEmail { name: local.to_owned() });
        }
        Ok(Password(text.to_owned()))
    }

    /// A password presented at login: no policy check (the policy may have changed since).
    pub fn presented(text: &str) -> Password {
        Password(text.to_owned())
    }

    /// The plaintext, for the hasher only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// A password hash in the hasher's own encoding (bcrypt's `$2b$...`).
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// Wraps a hash as the hasher encoded it.
    pub fn new(encoded: String) -> PasswordHash {
        PasswordHash(encoded)
    }

    /// The encoded hash, for storage and for verification.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(***)")
    }
}

/// A registered account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The user's id.
    pub id: UserId,
    /// The address they sign in with, unique among users.
    pub email: Email,
    /// Their password's hash; the password itself is never stored.
    pub password_hash: PasswordHash,
    /// What they may do.
    pub role: Role,
    /// When they registered.
    pub created_at: OffsetDateTime,
    /// When an admin suspended the account; `None` while it is active. A suspended user cannot
    /// sign in or act on the API.
    pub suspended_at: Option<OffsetDateTime>,
}

impl User {
    /// Whether an admin suspended the account.
    pub fn is_suspended(&self) -> bool {
        self.suspended_at.is_some()
    }
}

/// What an admin did, as the audit trail records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AdminActionKind {
    /// An account was suspended.
    UserSuspended,
    /// A suspended account was reactivated.
    UserReactivated,
    /// A wallet was credited or debited against the adjustments account.
    WalletAdjusted,
    /// An order was cancelled by an admin.
    OrderCancelled,
    /// An order was refunded by an admin.
    OrderRefunded,
    /// A withdrawal above the threshold was approved.
    WithdrawalApproved,
    /// A withdrawal was rejected; its hold was released.
    WithdrawalRejected,
    /// A manual withdrawal was marked paid after the money was sent outside the platform.
    WithdrawalMarkedPaid,
    /// A manual withdrawal was marked failed; its hold was released.
    WithdrawalMarkedFailed,
}

impl AdminActionKind {
    /// Every kind, for parsing and for tests.
    pub const ALL: [AdminActionKind; 9] = [
        AdminActionKind::UserSuspended,
        AdminActionKind::UserReactivated,
        AdminActionKind::WalletAdjusted,
        AdminActionKind::OrderCancelled,
        AdminActionKind::OrderRefunded,
        AdminActionKind::WithdrawalApproved,
        AdminActionKind::WithdrawalRejected,
        AdminActionKind::WithdrawalMarkedPaid,
        AdminActionKind::WithdrawalMarkedFailed,
    ];

    /// The stable code stored in the database and shown in the audit trail.
    pub fn as_str(self) -> &'static str {
        match self {
            AdminActionKind::UserSuspended => "user.suspended",
            AdminActionKind::UserReactivated => "user.reactivated",
            AdminActionKind::WalletAdjusted => "wallet.adjusted",
            AdminActionKind::OrderCancelled => "order.cancelled",
            AdminActionKind::OrderRefunded => "order.refunded",
            AdminActionKind::WithdrawalApproved => "withdrawal.approved",
            AdminActionKind::WithdrawalRejected => "withdrawal.rejected",
            AdminActionKind::WithdrawalMarkedPaid => "withdrawal.marked_paid",
            AdminActionKind::WithdrawalMarkedFailed => "withdrawal.marked_failed",
        }
    }

    /// The kind whose [`as_str`](AdminActionKind::as_str) code is `text`, if any.
    pub fn parse(text: &str) -> Option<AdminActionKind> {
        AdminActionKind::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

/// One entry of the admins' audit trail: who did what to whom, why, and when. `subject` names
/// what was acted on (`user:<id>`), `details` what changed (an adjustment's amount and journal
/// transaction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminAction {
    /// The entry's id.
    pub id: crate::ids::AdminActionId,
    /// The admin who acted.
    pub admin_id: UserId,
    /// What they did.
    pub kind: AdminActionKind,
    /// What they acted on, as `<kind>:<id>` (`user:<id>`, `order:<id>`...).
    pub subject: String,
    /// Why, in the admin's words; required for every action.
    pub reason: String,
    /// What changed, such as an adjustment's amount and journal transaction.
    pub details: String,
    /// When.
    pub at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(text: &str) -> Email {
        Email::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn e_mail_addresses_are_trimmed_and_lower_cased() {
        assert_eq!(email("  Ann.Lee@Example.COM ").as_str(), "ann.lee@example.com");
    }

    #[test]
    fn malformed_e_mail_addresses_are_rejected() {
        for text in [
            "ann",
            "ann@",
            "@example.com",
            "ann@example",
            "a b@example.com",
            "ann@exa mple.com",
            "ann@@example.com",
            "ann@example..com",
            "ann@.example.com",
        ] {
            assert_eq!(Email::parse(text), Err(EmailError::Malformed), "{text}");
        }
        assert_eq!(Email::parse("   "), Err(EmailError::Empty));
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(Email::parse(&long), Err(EmailError::TooLong { max: 254 }));
    }

    #[test]
    fn the_password_policy_wants_length_letters_and_digits() {
        let owner = email("ann@example.com");
        assert!(Password::new("correct horse 9", &owner).is_ok());
        assert_eq!(Password::new("short1", &owner).err(), Some(PasswordError::TooShort { min: 10 }));
        assert_eq!(Password::new("onlyletters", &owner).err(), Some(PasswordError::TooSimple));
        assert_eq!(Password::new("1234567890", &owner).err(), Some(PasswordError::TooSimple));
        assert_eq!(
            Password::new(&"a1".repeat(40), &owner).err(),
            Some(PasswordError::TooLong { max: 72 })
        );
        let rich = email("annabelle@example.com");
        let refused = Password::new("Annabelle2024!", &rich).err();
        assert_eq!(refused, Some(PasswordError::ContainsEmail { name: "annabelle".into() }));
        assert!(
            refused.is_some_and(|e| e.to_string().contains("`annabelle`")),
            "the message says which name"
        );
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let owner = email("ann@example.com");
        let password = Password::new("correct horse 9", &owner).map(|p| format!("{p:?}"));
        assert_eq!(password.as_deref(), Ok("Password(***)"));
        assert_eq!(format!("{:?}", PasswordHash::new("$2b$12$abc".into())), "PasswordHash(***)");
    }

    #[test]
    fn nobody_registers_as_admin() {
        assert!(Role::Customer.is_self_registrable());
        assert!(Role::Merchant.is_self_registrable());
        assert!(!Role::Admin.is_self_registrable());
    }
}
