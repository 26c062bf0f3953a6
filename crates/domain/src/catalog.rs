//! Products and their stock.
//!
//! Stock has two counters: `available` (may be sold) and `reserved` (set aside for a card checkout
//! that has not been paid yet). A checkout reserves, a payment commits the reservation, and a
//! cancellation or expiry releases it. Neither counter can go below zero.

use time::OffsetDateTime;

use crate::ids::{ProductId, UserId};
use crate::money::Money;

/// Why a product cannot be created or changed as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProductError {
    /// The name is empty, too long or has control characters.
    #[error("the name must have 1 to {max} characters")]
    Name {
        /// The limit, [`Product::NAME_LEN_MAX`].
        max: usize,
    },
    /// The description is too long.
    #[error("the description must have at most {max} characters")]
    Description {
        /// The limit, [`Product::DESCRIPTION_LEN_MAX`].
        max: usize,
    },
    /// The price is zero, negative or above [`Money::AMOUNT_MINOR_MAX`].
    #[error("the price must be greater than zero")]
    Price,
    /// A new price in another currency: existing orders and carts assume the product's currency.
    #[error("the price currency cannot change once the product exists")]
    CurrencyChange,
}

/// A quantity of units: at least one, at most `Quantity::MAX`.
///
/// ```
/// use domain::catalog::Quantity;
///
/// assert_eq!(Quantity::new(3).map(|q| q.get()), Ok(3));
/// assert!(Quantity::new(0).is_err());
/// assert!(Quantity::new(10_001).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Quantity(u32);

/// A quantity of zero, negative or above [`Quantity::MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a quantity must be between 1 and {max}", max = Quantity::MAX)]
pub struct QuantityError;

impl Quantity {
    /// The most units one order line may ask for.
    pub const MAX: u32 = 10_000;

    /// Checks a number of units from a request.
    ///
    /// # Errors
    ///
    /// [`QuantityError`] if it is below 1 or above [`Quantity::MAX`].
    pub fn new(units: i64) -> Result<Quantity, QuantityError> {
        match u32::try_from(units) {
            Ok(units) if (1..=Quantity::MAX).contains(&units) => Ok(Quantity(units)),
            _ => Err(QuantityError),
        }
    }

    /// The number of units.
    pub fn get(self) -> u32 {
        self.0
    }
}

/// Something a merchant sells, at one price in one currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    /// The product's id.
    pub id: ProductId,
    /// The merchant who sells it and is paid for it.
    pub merchant_id: UserId,
    /// Its name, trimmed, 1 to [`Product::NAME_LEN_MAX`] characters.
    pub name: String,
    /// Its description, at most [`Product::DESCRIPTION_LEN_MAX`] characters.
    pub description: String,
    /// The unit price; its currency never changes.
    pub price: Money,
    /// Whether it is on sale; the merchant may pause and resume it.
    pub active: bool,
    /// When the product was deleted: off sale and out of the API for good, while past orders keep
    /// their own copy of its name and price.
    pub archived_at: Option<OffsetDateTime>,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// When it last changed.
    pub updated_at: OffsetDateTime,
}

/// What a buyer searches the catalog for: found, whatever its case, anywhere in a product's name
/// or description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductSearch(String);

/// A search text that is empty, too long or has control characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a search has 1 to {max} characters, none of them control characters", max = ProductSearch::CHARS_MAX)]
pub struct ProductSearchError;

impl ProductSearch {
    /// The longest search text, in characters.
    pub const CHARS_MAX: usize = 100;

    /// The text, trimmed; refused when empty, too long or holding control characters.
    pub fn parse(text: &str) -> Result<ProductSearch, ProductSearchError> {
        let text = text.trim();
        let valid = !text.is_empty() && text.chars().count() <= Self::CHARS_MAX && !text.chars().any(char::is_control);
        if valid {
            Ok(ProductSearch(text.to_owned()))
        } else {
            Err(ProductSearchError)
        }
    }

    /// The search text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the product's name or description contains the text, ignoring case.
    pub fn matches(&self, product: &Product) -> bool {
        let wanted = self.0.to_lowercase();
        product.name.to_lowercase().contains(&wanted) || product.description.to_lowercase().contains(&wanted)
    }
}

/// The changes a merchant may make to a product; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductChanges {
    /// A new name.
    pub name: Option<String>,
    /// A new description.
    pub description: Option<String>,
    /// A new price, in the product's currency.
    pub price: Option<Money>,
    /// Put on sale (`true`) or paused (`false`).
    pub active: Option<bool>,
}

impl Product {
    /// The longest name, in characters.
    pub const NAME_LEN_MAX: usize = 200;
    /// The longest description, in characters.
    pub const DESCRIPTION_LEN_MAX: usize = 2000;

    /// A new product, on sale.
    ///
    /// # Errors
    ///
    /// [`ProductError`] if the name, description or price is not acceptable.
    pub fn new(
        id: ProductId,
        merchant_id: UserId,
        name: &str,
        description: &str,
        price: Money,
        at: OffsetDateTime,
    ) -> Result<Product, ProductError> {
        Ok(Product {
            id,
            merchant_id,
            name: valid_name(name)?,
            description: valid_description(description)?,
            price: valid_price(price)?,
            active: true,
            archived_at: None,
            created_at: at,
            updated_at: at,
        })
    }

    /// Applies a merchant's changes; all are validated before any is applied.
    pub fn update(mut self, changes: ProductChanges, at: OffsetDateTime) -> Result<Product, ProductError> {
        let name = changes.name.as_deref().map(valid_name).transpose()?;
        let description = changes.description.as_deref().map(valid_description).transpose()?;
        let price = changes.price.map(valid_price).transpose()?;
        if price.is_some_and(|price| price.currency() != self.price.currency()) {
            return Err(ProductError::CurrencyChange);
        }
        if let Some(name) = name {
            self.name = name;
        }
        if let Some(description) = description {
            self.description = description;
        }
        if let Some(price) = price {
            self.price = price;
        }
        if let Some(active) = changes.active {
            self.active = active;
        }
        self.updated_at = at;
        Ok(self)
    }

    /// Deletes the product: it is archived, never on sale again. (`active: false` is the pause
    /// that can be undone.)
    pub fn archive(mut self, at: OffsetDateTime) -> Product {
        self.active = false;
        self.archived_at = Some(at);
        self.updated_at = at;
        self
    }

    /// Whether the product was deleted.
    pub fn is_archived(&self) -> bool {
        self.archived_at.is_some()
    }
}

fn valid_name(name: &str) -> Result<String, ProductError> {
    let name = name.trim();
    let length = name.chars().count();
    if length == 0 || length > Product::NAME_LEN_MAX || name.chars().any(char::is_control) {
        return Err(ProductError::Name {
            max: Product::NAME_LEN_MAX,
        });
    }
    Ok(name.to_owned())
}

fn valid_description(description: &str) -> Result<String, ProductError> {
    if description.chars().count() > Product::DESCRIPTION_LEN_MAX {
        return Err(ProductError::Description {
            max: Product::DESCRIPTION_LEN_MAX,
        });
    }
    Ok(description.trim().to_owned())
}

fn valid_price(price: Money) -> Result<Money, ProductError> {
    if price.is_positive() && price.amount_minor() <= Money::AMOUNT_MINOR_MAX {
        Ok(price)
    } else {
        Err(ProductError::Price)
    }
}

/// Why stock cannot move as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StockError {
    /// Fewer units on sale than requested: the buyer cannot have them.
    #[error("only {available} units are available, {requested} requested")]
    Insufficient {
        /// The units on sale.
        available: i64,
        /// The units asked for.
        requested: u32,
    },
    /// Fewer units reserved than a commit or release names: a bug, or a settlement applied twice.
    #[error("only {reserved} units are reserved, cannot settle {requested}")]
    NotReserved {
        /// The units reserved.
        reserved: i64,
        /// The units named.
        requested: u32,
    },
    /// A count below zero or above [`Stock::UNITS_MAX`].
    #[error("stock cannot be negative or above {max}")]
    OutOfRange {
        /// The limit, [`Stock::UNITS_MAX`].
        max: i64,
    },
}

/// A product's units: `available` may be sold, `reserved` are set aside for unpaid card checkouts.
///
/// ```
/// use domain::catalog::{Quantity, Stock, StockError};
/// use domain::ids::ProductId;
/// use uuid::Uuid;
///
/// let mut stock = Stock::new(ProductId::from_uuid(Uuid::from_u128(1)), 5).unwrap();
/// let two = Quantity::new(2).unwrap();
/// stock.reserve(two).unwrap();   // card checkout
/// assert_eq!((stock.available(), stock.reserved()), (3, 2));
/// stock.commit(two).unwrap();    // its payment succeeded
/// stock.sell(Quantity::new(3).unwrap()).unwrap(); // a wallet purchase
/// assert_eq!((stock.available(), stock.reserved()), (0, 0));
/// assert_eq!(stock.reserve(two), Err(StockError::Insufficient { available: 0, requested: 2 }));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stock {
    /// The product counted.
    pub product_id: ProductId,
    available: i64,
    reserved: i64,
}

impl Stock {
    /// The most units one product may have on hand.
    pub const UNITS_MAX: i64 = 1_000_000_000;

    /// A product's first stock, nothing reserved.
    ///
    /// # Errors
    ///
    /// [`StockError::OutOfRange`] if `available` is negative or above [`Stock::UNITS_MAX`].
    pub fn new(product_id: ProductId, available: i64) -> Result<Stock, StockError> {
        Stock::restore(product_id, available, 0)
    }

    /// Rebuilds stock from storage.
    ///
    /// # Errors
    ///
    /// [`StockError::OutOfRange`] if either count is negative or above [`Stock::UNITS_MAX`].
    pub fn restore(product_id: ProductId, available: i64, reserved: i64) -> Result<Stock, StockError> {
        let in_range = |units: i64| (0..=Stock::UNITS_MAX).contains(&units);
        if !in_range(available) || !in_range(reserved) {
            return Err(StockError::OutOfRange { max: Stock::UNITS_MAX });
        }
        Ok(Stock {
            product_id,
            available,
            reserved,
        })
    }

    /// Units that may be sold now.
    pub fn available(&self) -> i64 {
        self.available
    }

    /// Units set aside for card checkouts awaiting payment.
    pub fn reserved(&self) -> i64 {
        self.reserved
    }

    /// Sets aside units for a checkout that is not paid yet.
    pub fn reserve(&mut self, quantity: Quantity) -> Result<(), StockError> {
        let units = i64::from(quantity.get());
        if self.available < units {
            return Err(StockError::Insufficient {
                available: self.available,
                requested: quantity.get(),
            });
        }
        self.available -= units;
        self.reserved += units;
        Ok(())
    }

    /// A paid checkout: the reserved units are sold.
    pub fn commit(&mut self, quantity: Quantity) -> Result<(), StockError> {
        let units = i64::from(quantity.get());
        if self.reserved < units {
            return Err(StockError::NotReserved {
                reserved: self.reserved,
                requested: quantity.get(),
            });
        }
        self.reserved -= units;
        Ok(())
    }

    /// A cancelled or expired checkout: the reserved units go back on sale.
    pub fn release(&mut self, quantity: Quantity) -> Result<(), StockError> {
        let units = i64::from(quantity.get());
        if self.reserved < units {
            return Err(StockError::NotReserved {
                reserved: self.reserved,
                requested: quantity.get(),
            });
        }
        self.reserved -= units;
        self.available += units;
        Ok(())
    }

    /// Reserve and commit at once, as a wallet purchase does.
    pub fn sell(&mut self, quantity: Quantity) -> Result<(), StockError> {
        self.reserve(quantity)?;
        self.commit(quantity)
    }

    /// A merchant sets the number of units on sale (reserved units are not affected).
    ///
    /// # Errors
    ///
    /// [`StockError::OutOfRange`] if `available` is negative, or above [`Stock::UNITS_MAX`] less
    /// the reserved units.
    pub fn set_available(&mut self, available: i64) -> Result<(), StockError> {
        // The reserved units come back to `available` when their checkouts end: together they
        // must stay within the limit, or a release would make stock that cannot be stored.
        let max = Stock::UNITS_MAX - self.reserved;
        if !(0..=max).contains(&available) {
            return Err(StockError::OutOfRange { max });
        }
        self.available = available;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;
    use proptest::prelude::*;
    use uuid::Uuid;

    #[test]
    fn available_and_reserved_together_stay_within_the_limit_so_a_release_can_be_stored() {
        let mut stock = Stock::new(ProductId::from_uuid(Uuid::from_u128(1)), 10).expect("stock");
        stock.reserve(Quantity::new(4).expect("quantity")).expect("reserve");
        let max = Stock::UNITS_MAX - 4;
        assert_eq!(stock.set_available(Stock::UNITS_MAX), Err(StockError::OutOfRange { max }));
        stock.set_available(max).expect("up to the limit less what is reserved");
        stock.release(Quantity::new(4).expect("quantity")).expect("release");
        assert_eq!(stock.available(), Stock::UNITS_MAX);
        assert!(Stock::restore(stock.product_id, stock.available(), stock.reserved()).is_ok());
    }

    fn product_id() -> ProductId {
        ProductId::from_uuid(Uuid::from_u128(1))
    }

    fn quantity(units: i64) -> Quantity {
        Quantity::new(units).unwrap_or_else(|_| panic!("bad quantity {units}"))
    }

    #[test]
    fn quantities_are_between_one_and_the_maximum() {
        assert!(Quantity::new(0).is_err());
        assert!(Quantity::new(-1).is_err());
        assert!(Quantity::new(10_001).is_err());
        assert_eq!(Quantity::new(3).map(Quantity::get), Ok(3));
    }

    #[test]
    fn reserving_more_than_is_available_is_refused() -> Result<(), StockError> {
        let mut stock = Stock::new(product_id(), 2)?;
        assert_eq!(
            stock.reserve(quantity(3)),
            Err(StockError::Insufficient {
                available: 2,
                requested: 3
            })
        );
        assert_eq!((stock.available(), stock.reserved()), (2, 0));
        Ok(())
    }

    #[test]
    fn reserve_then_release_restores_the_stock() -> Result<(), StockError> {
        let mut stock = Stock::new(product_id(), 5)?;
        stock.reserve(quantity(3))?;
        assert_eq!((stock.available(), stock.reserved()), (2, 3));
        stock.release(quantity(3))?;
        assert_eq!((stock.available(), stock.reserved()), (5, 0));
        Ok(())
    }

    #[test]
    fn a_product_rejects_bad_names_and_prices() {
        let at = OffsetDateTime::UNIX_EPOCH;
        let merchant = UserId::from_uuid(Uuid::from_u128(9));
        let price = Money::from_minor(100, Currency::Usd);
        assert!(Product::new(product_id(), merchant, "  ", "", price, at).is_err());
        assert!(Product::new(product_id(), merchant, &"x".repeat(201), "", price, at).is_err());
        assert!(Product::new(product_id(), merchant, "Mug", "", Money::zero(Currency::Usd), at).is_err());
        assert!(Product::new(product_id(), merchant, "Mug", "", Money::from_minor(-5, Currency::Usd), at).is_err());
    }

    #[test]
    fn a_price_cannot_change_currency() -> Result<(), ProductError> {
        let at = OffsetDateTime::UNIX_EPOCH;
        let merchant = UserId::from_uuid(Uuid::from_u128(9));
        let product = Product::new(product_id(), merchant, "Mug", "", Money::from_minor(100, Currency::Usd), at)?;
        let changes = ProductChanges {
            price: Some(Money::from_minor(100, Currency::Eur)),
            ..ProductChanges::default()
        };
        assert_eq!(product.update(changes, at), Err(ProductError::CurrencyChange));
        Ok(())
    }

    #[derive(Debug, Clone)]
    enum StockOp {
        Reserve(i64),
        Commit(i64),
        Release(i64),
        Sell(i64),
        SetAvailable(i64),
    }

    fn stock_op() -> impl Strategy<Value = StockOp> {
        prop_oneof![
            (-5i64..30).prop_map(StockOp::Reserve),
            (-5i64..30).prop_map(StockOp::Commit),
            (-5i64..30).prop_map(StockOp::Release),
            (-5i64..30).prop_map(StockOp::Sell),
            (-5i64..60).prop_map(StockOp::SetAvailable),
        ]
    }

    proptest! {
        /// Whatever sequence of operations is attempted, neither counter goes below zero, and a
        /// refused operation leaves the stock exactly as it was.
        #[test]
        fn stock_never_goes_negative(initial in 0i64..50, ops in prop::collection::vec(stock_op(), 0..60)) {
            let mut stock = Stock::new(product_id(), initial).map_err(|e| TestCaseError::fail(e.to_string()))?;
            for op in ops {
                let before = stock;
                let result = match op {
                    StockOp::Reserve(n) => Quantity::new(n).map_err(|_| ()).and_then(|q| stock.reserve(q).map_err(|_| ())),
                    StockOp::Commit(n) => Quantity::new(n).map_err(|_| ()).and_then(|q| stock.commit(q).map_err(|_| ())),
                    StockOp::Release(n) => Quantity::new(n).map_err(|_| ()).and_then(|q| stock.release(q).map_err(|_| ())),
                    StockOp::Sell(n) => Quantity::new(n).map_err(|_| ()).and_then(|q| stock.sell(q).map_err(|_| ())),
                    StockOp::SetAvailable(n) => stock.set_available(n).map_err(|_| ()),
                };
                prop_assert!(stock.available() >= 0);
                prop_assert!(stock.reserved() >= 0);
                if result.is_err() {
                    prop_assert_eq!(stock, before);
                }
            }
        }
    }
}
