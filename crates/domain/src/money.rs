//! Money as integer minor units of an ISO 4217 currency.
//!
//! An amount never passes through floating point. On the wire it is a decimal string in major
//! units ("12.50"); inside it is an `i64` count of minor units (1250 cents). Parsing goes through
//! `bigdecimal` so that every accepted string maps to exactly one integer, and formatting maps it
//! back to the same string.

use std::fmt;
use std::str::FromStr;

use bigdecimal::num_bigint::BigInt;
use bigdecimal::{BigDecimal, ToPrimitive};

/// The currencies this service accepts, each with its ISO 4217 minor-unit exponent.
///
/// ```
/// use domain::money::Currency;
///
/// assert_eq!(Currency::parse("usd"), Ok(Currency::Usd));
/// assert_eq!(Currency::Jpy.exponent(), 0);
/// assert_eq!(Currency::Kwd.to_string(), "KWD");
/// assert!(Currency::parse("XYZ").is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Currency {
    /// Australian dollar, 2 decimals.
    Aud,
    /// Bahraini dinar, 3 decimals.
    Bhd,
    /// Canadian dollar, 2 decimals.
    Cad,
    /// Swiss franc, 2 decimals.
    Chf,
    /// Euro, 2 decimals.
    Eur,
    /// Pound sterling, 2 decimals.
    Gbp,
    /// Ghanaian cedi, 2 decimals (Paystack's market).
    Ghs,
    /// Japanese yen, no minor unit.
    Jpy,
    /// Kenyan shilling, 2 decimals.
    Kes,
    /// South Korean won, no minor unit.
    Krw,
    /// Kuwaiti dinar, 3 decimals.
    Kwd,
    /// Nigerian naira, 2 decimals (Paystack's and Monnify's market).
    Ngn,
    /// US dollar, 2 decimals.
    Usd,
    /// South African rand, 2 decimals.
    Zar,
}

impl Currency {
    /// Every supported currency, in code order: what parsing searches and what tests sample from.
    pub const ALL: [Currency; 14] = [
        Currency::Aud,
        Currency::Bhd,
        Currency::Cad,
        Currency::Chf,
        Currency::Eur,
        Currency::Gbp,
        Currency::Ghs,
        Currency::Jpy,
        Currency::Kes,
        Currency::Krw,
        Currency::Kwd,
        Currency::Ngn,
        Currency::Usd,
        Currency::Zar,
    ];

    /// The upper-case ISO 4217 alphabetic code.
    pub fn code(self) -> &'static str {
        match self {
            Currency::Aud => "AUD",
            Currency::Bhd => "BHD",
            Currency::Cad => "CAD",
            Currency::Chf => "CHF",
            Currency::Eur => "EUR",
            Currency::Gbp => "GBP",
            Currency::Ghs => "GHS",
            Currency::Jpy => "JPY",
            Currency::Kes => "KES",
            Currency::Krw => "KRW",
            Currency::Kwd => "KWD",
            Currency::Ngn => "NGN",
            Currency::Usd => "USD",
            Currency::Zar => "ZAR",
        }
    }

    /// Number of decimal places of the minor unit (USD 2, JPY 0, KWD 3).
    pub fn exponent(self) -> u32 {
        match self {
            Currency::Jpy | Currency::Krw => 0,
            Currency::Bhd | Currency::Kwd => 3,
            Currency::Aud
            | Currency::Cad
            | Currency::Chf
            | Currency::Eur
            | Currency::Gbp
            | Currency::Ghs
            | Currency::Kes
            | Currency::Ngn
            | Currency::Usd
            | Currency::Zar => 2,
        }
    }

    /// Parses an ISO code; lower case is accepted because Stripe and URL paths use it.
    pub fn parse(code: &str) -> Result<Currency, CurrencyError> {
        let upper = code.to_ascii_uppercase();
        Currency::ALL
            .into_iter()
            .find(|currency| currency.code() == upper)
            .ok_or_else(|| CurrencyError::Unsupported(code.chars().take(16).collect()))
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = CurrencyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::parse(s)
    }
}

/// Why a currency code is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CurrencyError {
    /// The code is not one of [`Currency::ALL`]; holds at most the first 16 characters of the input,
    /// so an error message never echoes a long string back.
    #[error("unsupported currency `{0}`")]
    Unsupported(String),
}

/// Why a decimal string is not an acceptable amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// The text has no digits at all.
    #[error("the amount is empty")]
    Empty,
    /// Not `-?digits(.digits)?`: a sign other than a leading `-`, an exponent, spaces, separators or
    /// non-ASCII digits.
    #[error("the amount must be a plain decimal string such as \"12.50\"")]
    Malformed,
    /// More decimal places than the currency's exponent allows; `"1.005"` USD would be a fraction of a
    /// cent, and trailing zeros count too, so the text maps to exactly one amount.
    #[error("{currency} amounts have at most {max} decimal places")]
    TooManyDecimals {
        /// The currency of the amount.
        currency: Currency,
        /// Its exponent: the most decimal places it allows.
        max: u32,
    },
    /// Zero or negative where a payment amount must be strictly positive.
    #[error("the amount must be greater than zero")]
    NotPositive,
    /// Beyond [`Money::AMOUNT_MINOR_MAX`] minor units, or longer than the parser will read.
    #[error("the amount exceeds the largest accepted amount")]
    TooLarge,
}

/// Arithmetic failures. Overflow is an error here, never a wrap or a panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// The two operands are in different currencies; `left` is the receiver's, `right` the argument's.
    #[error("currency mismatch: {left} and {right}")]
    CurrencyMismatch {
        /// The receiver's currency.
        left: Currency,
        /// The argument's currency.
        right: Currency,
    },
    /// The result does not fit in an `i64` of minor units.
    #[error("arithmetic overflow")]
    Overflow,
}

/// An amount of one currency in minor units. No `Default`: a zero must name its currency.
///
/// Amounts are checked, never wrapped, and never mix currencies:
///
/// ```
/// use domain::money::{Currency, Money, MoneyError};
///
/// let price = Money::parse_positive("12.50", Currency::Usd).unwrap();
/// assert_eq!(price.amount_minor(), 1250);
/// assert_eq!(price.to_major_string(), "12.50");
///
/// let total = price.checked_mul(3).unwrap().checked_add(Money::from_minor(5, Currency::Usd)).unwrap();
/// assert_eq!(total.to_string(), "37.55 USD");
///
/// let euros = Money::from_minor(100, Currency::Eur);
/// assert_eq!(
///     price.checked_add(euros),
///     Err(MoneyError::CurrencyMismatch { left: Currency::Usd, right: Currency::Eur })
/// );
/// assert_eq!(Money::from_minor(i64::MAX, Currency::Usd).checked_add(price), Err(MoneyError::Overflow));
///
/// // Yen have no minor unit, so "500" is 500 minor units and "5.5" is refused.
/// assert_eq!(Money::parse("500", Currency::Jpy).map(|m| m.amount_minor()), Ok(500));
/// assert!(Money::parse("5.5", Currency::Jpy).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    amount_minor: i64,
    currency: Currency,
}

/// The longest decimal string parsing will look at; longer input is rejected before any work.
const AMOUNT_TEXT_LEN_MAX: usize = 32;

impl Money {
    /// The largest absolute amount accepted from outside (10^15 minor units). Keeping single amounts
    /// this far below `i64::MAX` means sums of millions of them cannot overflow.
    pub const AMOUNT_MINOR_MAX: i64 = 1_000_000_000_000_000;

    /// An amount already in minor units, of any sign and size. No bound is checked: this is for values
    /// the service computed or stored itself; text from outside goes through [`Money::parse`].
    pub fn from_minor(amount_minor: i64, currency: Currency) -> Money {
        Money { amount_minor, currency }
    }

    /// Zero of `currency`, the starting point of a sum.
    pub fn zero(currency: Currency) -> Money {
        Money::from_minor(0, currency)
    }

    /// The signed amount in minor units (cents for USD, yen for JPY).
    pub fn amount_minor(&self) -> i64 {
        self.amount_minor
    }

    /// The currency the amount is counted in.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// Whether the amount is above zero.
    pub fn is_positive(&self) -> bool {
        self.amount_minor > 0
    }

    /// Whether the amount is exactly zero.
    pub fn is_zero(&self) -> bool {
        self.amount_minor == 0
    }

    /// Whether the amount is below zero, as a system account's balance may be.
    pub fn is_negative(&self) -> bool {
        self.amount_minor < 0
    }

    /// Parses a strictly positive amount such as `"12.50"`, the form every payment request uses.
    pub fn parse_positive(text: &str, currency: Currency) -> Result<Money, AmountError> {
        let money = Money::parse(text, currency)?;
        if money.amount_minor <= 0 {
            return Err(AmountError::NotPositive);
        }
        Ok(money)
    }

    /// Parses a signed decimal string in major units. Accepts `-?digits(.digits)?` only: no `+`,
    /// no exponent, no spaces, and no more decimal places than the currency has.
    pub fn parse(text: &str, currency: Currency) -> Result<Money, AmountError> {
        if text.is_empty() {
            return Err(AmountError::Empty);
        }
        if text.len() > AMOUNT_TEXT_LEN_MAX {
            return Err(AmountError::TooLarge);
        }
        let unsigned = text.strip_prefix('-').unwrap_or(text);
        let (whole, fraction) = match unsigned.split_once('.') {
            Some((whole, fraction)) => (whole, Some(fraction)),
            None => (unsigned, None),
        };
        let all_digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(whole) || fraction.is_some_and(|f| !all_digits(f)) {
            return Err(AmountError::Malformed);
        }
        let decimals = fraction.map_or(0, str::len);
        if decimals > currency.exponent() as usize {
            return Err(AmountError::TooManyDecimals {
                currency,
                max: currency.exponent(),
            });
        }
        let decimal = BigDecimal::from_str(text).map_err(|_| AmountError::Malformed)?;
        let minor = decimal.with_scale(i64::from(currency.exponent())).into_bigint_and_exponent().0;
        let amount_minor = minor.to_i64().ok_or(AmountError::TooLarge)?;
        if amount_minor.unsigned_abs() > Money::AMOUNT_MINOR_MAX.unsigned_abs() {
            return Err(AmountError::TooLarge);
        }
        Ok(Money::from_minor(amount_minor, currency))
    }

    /// Formats in major units with exactly the currency's number of decimals: `"12.50"`, `"-0.05"`,
    /// `"500"` for JPY.
    pub fn to_major_string(&self) -> String {
        let exponent = i64::from(self.currency.exponent());
        BigDecimal::new(BigInt::from(self.amount_minor), exponent).to_plain_string()
    }

    fn same_currency(&self, other: Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch {
                left: self.currency,
                right: other.currency,
            })
        }
    }

    /// The sum of two amounts of the same currency.
    ///
    /// # Errors
    ///
    /// [`MoneyError::CurrencyMismatch`] if the currencies differ, [`MoneyError::Overflow`] if the sum does
    /// not fit in an `i64`.
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let sum = self.amount_minor.checked_add(other.amount_minor).ok_or(MoneyError::Overflow)?;
        Ok(Money::from_minor(sum, self.currency))
    }

    /// `self - other`, of the same currency; the result may be negative.
    ///
    /// # Errors
    ///
    /// [`MoneyError::CurrencyMismatch`] if the currencies differ, [`MoneyError::Overflow`] if the
    /// difference does not fit in an `i64`.
    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let difference = self.amount_minor.checked_sub(other.amount_minor).ok_or(MoneyError::Overflow)?;
        Ok(Money::from_minor(difference, self.currency))
    }

    /// The amount times an integer factor, such as a unit price times a quantity.
    ///
    /// # Errors
    ///
    /// [`MoneyError::Overflow`] if the product does not fit in an `i64`.
    pub fn checked_mul(self, factor: i64) -> Result<Money, MoneyError> {
        let product = self.amount_minor.checked_mul(factor).ok_or(MoneyError::Overflow)?;
        Ok(Money::from_minor(product, self.currency))
    }

    /// The amount with its sign flipped, as a reversing posting needs.
    ///
    /// # Errors
    ///
    /// [`MoneyError::Overflow`] for `i64::MIN` minor units, which has no positive counterpart.
    pub fn checked_neg(self) -> Result<Money, MoneyError> {
        let negated = self.amount_minor.checked_neg().ok_or(MoneyError::Overflow)?;
        Ok(Money::from_minor(negated, self.currency))
    }

    /// The smaller of two amounts of the same currency.
    pub fn min(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        Ok(if self.amount_minor <= other.amount_minor { self } else { other })
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.to_major_string(), self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn usd(text: &str) -> Result<Money, AmountError> {
        Money::parse_positive(text, Currency::Usd)
    }

    #[test]
    fn a_two_decimal_amount_parses_to_minor_units() {
        assert_eq!(usd("12.50").map(|m| m.amount_minor()), Ok(1250));
        assert_eq!(usd("0.01").map(|m| m.amount_minor()), Ok(1));
        assert_eq!(usd("7").map(|m| m.amount_minor()), Ok(700));
    }

    #[test]
    fn the_exponent_follows_the_currency() {
        assert_eq!(Money::parse("500", Currency::Jpy).map(|m| m.amount_minor()), Ok(500));
        assert_eq!(Money::parse("1.234", Currency::Kwd).map(|m| m.amount_minor()), Ok(1234));
        assert_eq!(
            Money::parse("5.5", Currency::Jpy),
            Err(AmountError::TooManyDecimals {
                currency: Currency::Jpy,
                max: 0
            })
        );
    }

    #[test]
    fn more_decimals_than_the_currency_has_are_rejected() {
        assert_eq!(
            usd("1.005"),
            Err(AmountError::TooManyDecimals {
                currency: Currency::Usd,
                max: 2
            })
        );
        assert_eq!(
            usd("1.000"),
            Err(AmountError::TooManyDecimals {
                currency: Currency::Usd,
                max: 2
            })
        );
    }

    #[test]
    fn zero_and_negative_amounts_are_not_positive() {
        assert_eq!(usd("0"), Err(AmountError::NotPositive));
        assert_eq!(usd("0.00"), Err(AmountError::NotPositive));
        assert_eq!(usd("-1.00"), Err(AmountError::NotPositive));
    }

    #[test]
    fn anything_but_a_plain_decimal_is_malformed() {
        for text in ["+1", "1.", ".5", "1e3", " 1", "1 ", "1,00", "NaN", "--1", "1.2.3", "0x10", "١٢"] {
            assert_eq!(usd(text), Err(AmountError::Malformed), "{text:?}");
        }
        assert_eq!(usd(""), Err(AmountError::Empty));
    }

    #[test]
    fn huge_amounts_are_rejected_not_wrapped() {
        assert_eq!(usd("10000000000000.01"), Err(AmountError::TooLarge));
        assert_eq!(usd("99999999999999999999999"), Err(AmountError::TooLarge));
        assert_eq!(usd(&"9".repeat(200)), Err(AmountError::TooLarge));
        assert_eq!(usd("10000000000000.00").map(|m| m.amount_minor()), Ok(Money::AMOUNT_MINOR_MAX));
    }

    #[test]
    fn formatting_pads_to_the_currency_exponent() {
        assert_eq!(Money::from_minor(1250, Currency::Usd).to_major_string(), "12.50");
        assert_eq!(Money::from_minor(5, Currency::Usd).to_major_string(), "0.05");
        assert_eq!(Money::from_minor(-5, Currency::Usd).to_major_string(), "-0.05");
        assert_eq!(Money::from_minor(0, Currency::Usd).to_major_string(), "0.00");
        assert_eq!(Money::from_minor(500, Currency::Jpy).to_major_string(), "500");
        assert_eq!(Money::from_minor(1, Currency::Kwd).to_major_string(), "0.001");
    }

    #[test]
    fn arithmetic_refuses_mixed_currencies_and_overflow() {
        let dollars = Money::from_minor(100, Currency::Usd);
        let euros = Money::from_minor(100, Currency::Eur);
        assert_eq!(
            dollars.checked_add(euros),
            Err(MoneyError::CurrencyMismatch {
                left: Currency::Usd,
                right: Currency::Eur
            })
        );
        let max = Money::from_minor(i64::MAX, Currency::Usd);
        assert_eq!(max.checked_add(dollars), Err(MoneyError::Overflow));
        assert_eq!(Money::from_minor(i64::MIN, Currency::Usd).checked_neg(), Err(MoneyError::Overflow));
        assert_eq!(max.checked_mul(2), Err(MoneyError::Overflow));
    }

    #[test]
    fn currency_codes_parse_in_either_case() {
        assert_eq!(Currency::parse("usd"), Ok(Currency::Usd));
        assert_eq!(Currency::parse("NGN"), Ok(Currency::Ngn));
        assert!(Currency::parse("XYZ").is_err());
        assert!(Currency::parse("").is_err());
    }

    fn any_currency() -> impl Strategy<Value = Currency> {
        prop::sample::select(Currency::ALL.to_vec())
    }

    proptest! {
        #[test]
        fn formatting_then_parsing_gives_back_the_same_money(
            amount_minor in -Money::AMOUNT_MINOR_MAX..=Money::AMOUNT_MINOR_MAX,
            currency in any_currency(),
        ) {
            let money = Money::from_minor(amount_minor, currency);
            let text = money.to_major_string();
            prop_assert_eq!(Money::parse(&text, currency), Ok(money));
        }

        #[test]
        fn parsing_then_formatting_gives_back_the_same_text(
            whole in 0u64..1_000_000_000_000,
            fraction in 0u32..1000,
            currency in any_currency(),
        ) {
            let exponent = currency.exponent();
            let text = if exponent == 0 {
                whole.to_string()
            } else {
                let fraction = fraction % 10u32.pow(exponent);
                format!("{whole}.{fraction:0width$}", width = exponent as usize)
            };
            let money = Money::parse(&text, currency);
            prop_assert!(money.is_ok(), "{text} did not parse: {money:?}");
            prop_assert_eq!(money.map(|m| m.to_major_string()), Ok(text));
        }

        #[test]
        fn arbitrary_text_never_panics_the_parser(text in ".{0,40}", currency in any_currency()) {
            let _ = Money::parse(&text, currency);
        }
    }
}
