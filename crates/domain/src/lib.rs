//! The payment domain: pure types and rules with no I/O, no async and no framework.
//!
//! Everything here is synchronous and deterministic: time and identifiers are passed in, never
//! read from the system. The `application` crate orchestrates these rules behind ports, and the
//! adapters persist them. This crate decides whether something may happen and what it changes;
//! it never decides when, and never stores anything.
//!
//! # The model
//!
//! - **Money** ([`money`]) is an `i64` count of minor units of one ISO 4217 [`Currency`]
//!   (cents for USD, yen for JPY, fils for KWD). There is no floating point anywhere and no
//!   `Default`. Arithmetic is checked and returns [`MoneyError`] on overflow or a currency
//!   mismatch. Text from outside is a decimal string in major units (`"12.50"`) that may not
//!   have more decimals than the currency.
//! - **The ledger** ([`ledger`]) is double-entry. Every movement of money is one
//!   [`JournalTransaction`] of two or more entries, one per [`Wallet`], that sum to zero in each
//!   currency; [`ledger::post`] applies it all or nothing and returns one immutable [`Posting`]
//!   per entry, with the wallet's balance after it, so each wallet's postings form a chain a
//!   verifier can walk. Nothing is ever edited: a correction is a reversing transaction.
//! - **Wallets** ([`wallet`]) are the ledger's accounts. A user's wallet never goes below what it
//!   holds. System accounts stand for the outside world (a gateway's clearing account, payouts,
//!   adjustments, receivables) and may go negative: money that came in by card shows as a
//!   negative clearing balance. A [`Hold`] reserves part of a user's balance (pending), and is
//!   then captured (all or part, posted as a debit), released or expired.
//! - **Orders** ([`order`]) are a state machine: `created -> payment_pending -> paid ->
//!   fulfilled`, `payment_pending -> cancelled`, `paid | fulfilled -> partially_refunded ->
//!   refunded`, and for manual capture `created -> authorised -> paid | cancelled`. Each
//!   transition consumes the [`Order`] and returns the new one with a [`StatusChange`] for the
//!   audit trail, or a [`TransitionError`]; no other code writes a status. Prices are copied
//!   into the order when it is placed. Stock ([`catalog`]) is reserved at a card checkout,
//!   committed when it is paid and released when it is not.
//! - **Payments and refunds** ([`payment`]): a card [`Payment`] is pending until it is settled
//!   once (succeeded, failed, expired, cancelled); a success after that is a *late success*,
//!   flagged to be refunded, not a transition. A [`Refund`] takes from one merchant's share of
//!   an order and is pending until its provider answers.
//! - **Refund requests** ([`refund_request`]) are a buyer's ask for money back, which the merchant
//!   or an admin approves (and so refunds), or declines; the buyer may withdraw it.
//! - **Calls** ([`call`]) are billed per started minute from a hold placed when they start, so
//!   the charge at the end cannot fail for lack of funds.
//! - **Withdrawals** ([`withdrawal`]), **follow-ups** ([`follow_up`]: the provider calls a flow
//!   still owes), **events** ([`events`]: what the outbox announces), **outbound webhooks**
//!   ([`webhook`]) and **users** ([`user`]) complete the set. Every id is its own type ([`ids`]).
//!
//! # A purchase, in the domain's terms
//!
//! The application does this in one database transaction (see `checkout` in `application`):
//!
//! ```
//! use domain::catalog::{Product, Quantity, Stock};
//! use domain::ids::{OrderId, ProductId, TransactionId, UserId, WalletId};
//! use domain::ledger::{post, Entry, JournalTransaction, TransactionKind};
//! use domain::money::{Currency, Money};
//! use domain::order::{Actor, Order, OrderStatus, PaymentMethod};
//! use domain::wallet::{Wallet, WalletOwner};
//! use domain::OffsetDateTime;
//! use uuid::Uuid;
//!
//! let now = OffsetDateTime::UNIX_EPOCH;
//! let id = Uuid::from_u128;
//! let (buyer, merchant) = (UserId::from_uuid(id(1)), UserId::from_uuid(id(2)));
//! let (buyer_wallet, merchant_wallet) = (WalletId::from_uuid(id(3)), WalletId::from_uuid(id(4)));
//! let mut wallets = vec![
//!     Wallet::restore(buyer_wallet, WalletOwner::User(buyer), Currency::Eur, 10_000, 0, now),
//!     Wallet::open(merchant_wallet, WalletOwner::User(merchant), Currency::Eur, now),
//! ];
//! let price = Money::parse_positive("19.99", Currency::Eur)?;
//! let book = Product::new(ProductId::from_uuid(id(5)), merchant, "A book", "", price, now)?;
//! let mut stock = Stock::new(book.id, 3)?;
//!
//! // Price the order, take the stock, move the money, mark the order paid.
//! let two = Quantity::new(2)?;
//! let (order, _) = Order::place(OrderId::from_uuid(id(6)), buyer, &[(&book, two)], PaymentMethod::Wallet, now)?;
//! stock.sell(two)?;
//! let entries = vec![Entry::debit(buyer_wallet, order.total())?, Entry::credit(merchant_wallet, order.total())];
//! let purchase = JournalTransaction::new(TransactionId::from_uuid(id(7)), TransactionKind::Purchase, "order", entries, now)?;
//! post(&purchase, &mut wallets)?;
//! let (order, _) = order.await_payment(Actor::User(buyer), now)?;
//! let (order, _) = order.mark_paid(Actor::User(buyer), now)?;
//!
//! assert_eq!(order.status(), OrderStatus::Paid);
//! assert_eq!(wallets[0].balance(), Money::parse("60.02", Currency::Eur)?);
//! assert_eq!(wallets[1].balance(), Money::parse("39.98", Currency::Eur)?);
//! assert_eq!(stock.available(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Types without public fields (`Order`, `Payment`, `Withdrawal`...) change only through their
//! transitions; their `*Record` twins and `restore` functions exist for storage adapters, which
//! are trusted to store only what the transitions produced.
//!
//! [`Currency`]: money::Currency
//! [`MoneyError`]: money::MoneyError
//! [`JournalTransaction`]: ledger::JournalTransaction
//! [`Posting`]: ledger::Posting
//! [`Wallet`]: wallet::Wallet
//! [`Hold`]: wallet::Hold
//! [`Order`]: order::Order
//! [`StatusChange`]: order::StatusChange
//! [`TransitionError`]: order::TransitionError
//! [`Payment`]: payment::Payment
//! [`Refund`]: payment::Refund

#![warn(missing_docs)]

pub mod call;
pub mod catalog;
pub mod events;
pub mod follow_up;
pub mod ids;
pub mod ledger;
pub mod money;
pub mod order;
pub mod payment;
pub mod refund_request;
pub mod user;
pub mod wallet;
pub mod webhook;
pub mod withdrawal;

/// The timestamp every type here uses, re-exported so that an embedding service names the same
/// `time` version as this crate without depending on it.
pub use time::OffsetDateTime;
