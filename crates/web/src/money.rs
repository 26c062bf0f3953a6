//! Money as people read it: the currency's symbol, its number of decimals (from the domain's
//! exponent), and thousands separated.

use domain::money::{Currency, Money};

pub fn symbol(currency: Currency) -> &'static str {
    match currency {
        Currency::Aud => "A$",
        Currency::Bhd => "BD\u{a0}",
        Currency::Cad => "CA$",
        Currency::Chf => "CHF\u{a0}",
        Currency::Eur => "€",
        Currency::Gbp => "£",
        Currency::Ghs => "GH₵",
        Currency::Jpy => "¥",
        Currency::Kes => "KSh\u{a0}",
        Currency::Krw => "₩",
        Currency::Kwd => "KD\u{a0}",
        Currency::Ngn => "₦",
        Currency::Usd => "$",
        Currency::Zar => "R\u{a0}",
    }
}

/// `$1,234.50`, `−$0.05`, `¥500`, `KD 1.250`.
pub fn format(money: Money) -> String {
    let text = money.to_major_string();
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.as_str()),
    };
    let (whole, fraction) = match digits.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (digits, None),
    };
    let mut grouped = String::new();
    for (index, digit) in whole.chars().enumerate() {
        if index > 0 && (whole.len() - index) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    let sign = if negative { "−" } else { "" };
    match fraction {
        Some(fraction) => format!("{sign}{}{grouped}.{fraction}", symbol(money.currency())),
        None => format!("{sign}{}{grouped}", symbol(money.currency())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_show_the_symbol_the_decimals_and_separators() {
        assert_eq!(format(Money::from_minor(123_450, Currency::Usd)), "$1,234.50");
        assert_eq!(format(Money::from_minor(-5, Currency::Usd)), "−$0.05");
        assert_eq!(format(Money::from_minor(500, Currency::Jpy)), "¥500");
        assert_eq!(format(Money::from_minor(1250, Currency::Kwd)), "KD\u{a0}1.250");
        assert_eq!(format(Money::from_minor(100_000_000, Currency::Ngn)), "₦1,000,000.00");
    }
}
