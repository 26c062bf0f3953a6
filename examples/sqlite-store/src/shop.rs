//! A purchase and a refund, driven through `application::App` the way an embedding service
//! would: an admin, a merchant with a product, a customer whose wallet an admin funds, a wallet
//! checkout, its idempotent replay, a partial refund, and the ledger verified at the end.
//!
//! Nothing here knows the store: it runs over any `UnitOfWork`, and `main.rs` gives it SQLite.

use application::adjustments::{AdjustmentError, AdjustmentRequest};
use application::auth::{Caller, RegisterError, Registration};
use application::catalog::{CatalogError, NewProduct};
use application::checkout::{Checkout, CheckoutCommand, CheckoutError};
use application::context::App;
use application::idempotency::{IdempotencyError, IdempotencyKey, IdempotencyScope, Idempotent, KeyStatus, StoredResponse};
use application::ledger::VerifyLedgerError;
use application::orders::OrderCommandError;
use application::ports::store::UnitOfWork;
use application::refunds::{RefundCommand, RefundError};
use application::wallets::WalletQueryError;
use domain::catalog::Quantity;
use domain::ids::OrderId;
use domain::money::{Currency, Money};
use domain::order::{CaptureMethod, OrderStatus, PaymentMethod};
use domain::user::Role;

/// What the run did, in minor units of US dollars.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub order: OrderId,
    /// The order's status once the refund went through.
    pub order_status: OrderStatus,
    pub order_total: i64,
    pub refunded: i64,
    /// Whether a retry of the checkout under its idempotency key was answered with this order.
    pub retry_answered_with_the_same_order: bool,
    pub customer_balance: i64,
    pub merchant_balance: i64,
    /// Units of the product left on sale.
    pub stock_left: i64,
    /// What the ledger's verification found wrong; empty when the books are exact.
    pub ledger_problems: Vec<String>,
}

/// Which step failed, with the use case's own error.
#[derive(Debug, thiserror::Error)]
pub enum ShopError {
    #[error("registering a user: {0}")]
    Register(#[from] RegisterError),
    #[error("creating the product: {0}")]
    Catalog(#[from] CatalogError),
    #[error("funding the wallet: {0}")]
    Adjustment(#[from] AdjustmentError),
    #[error("checking out: {0}")]
    Checkout(#[from] CheckoutError),
    #[error("retrying the checkout: {0}")]
    Idempotency(#[from] IdempotencyError),
    #[error("reading the order: {0}")]
    Order(#[from] OrderCommandError),
    #[error("refunding: {0}")]
    Refund(#[from] RefundError),
    #[error("reading a wallet: {0}")]
    Wallet(#[from] WalletQueryError),
    #[error("verifying the ledger: {0}")]
    Ledger(#[from] VerifyLedgerError),
    #[error("a quantity of two lamps was refused")]
    Quantity,
    #[error("the idempotency key was refused")]
    Key,
    #[error("the checkout was not paid at once: {0:?}")]
    NotPaid(OrderStatus),
}

const OPENING_BALANCE: i64 = 10_000;
const LAMP_PRICE: i64 = 2_550;

fn usd(minor: i64) -> Money {
    Money::from_minor(minor, Currency::Usd)
}

/// Runs the purchase and the refund. `run` makes the e-mail addresses of this run's users unique,
/// so that the same database can hold many runs.
///
/// # Errors
/// The first use case that refuses, as it refused.
pub async fn purchase_and_refund<U: UnitOfWork>(app: &App<U>, run: &str) -> Result<Receipt, ShopError> {
    let password = "correct horse battery 9";
    let admin = app.create_admin(&format!("admin+{run}@example.com"), password).await?;
    let admin = Caller {
        user_id: admin.id,
        role: Role::Admin,
    };
    let merchant = register(app, &format!("lamps+{run}@example.com"), Role::Merchant).await?;
    let customer = register(app, &format!("ann+{run}@example.com"), Role::Customer).await?;

    let lamp = NewProduct {
        name: "Brass lamp".into(),
        description: "A reading lamp".into(),
        price: usd(LAMP_PRICE),
        stock: 3,
    };
    let lamp = app.create_product(&merchant, lamp, None).await?.product;

    let funds = AdjustmentRequest {
        user_id: customer.user_id,
        amount: usd(OPENING_BALANCE),
        reason: "opening balance".into(),
    };
    app.adjust_wallet(&admin, funds, None).await?;

    // Two lamps, paid from the wallet, under an idempotency key: a client that lost the answer
    // sends the same request again and must get the same order, not a second one.
    let cart = CheckoutCommand {
        items: vec![(lamp.id, Quantity::new(2).map_err(|_| ShopError::Quantity)?)],
        payment_method: PaymentMethod::Wallet,
        provider: None,
        capture: CaptureMethod::Automatic,
    };
    let scope = IdempotencyScope {
        principal: Some(customer.user_id),
        key: IdempotencyKey::parse(&format!("checkout-{run}")).map_err(|_| ShopError::Key)?,
    };
    // What a retry must match: an HTTP service would digest the method, path and body.
    let fingerprint = format!("checkout two lamps {}", lamp.id);
    let keyed = Idempotent {
        scope: scope.clone(),
        fingerprint: fingerprint.clone(),
        render: render_checkout,
    };
    let order = app.checkout(&customer, cart, Some(keyed)).await?.order;
    if order.status() != OrderStatus::Paid {
        return Err(ShopError::NotPaid(order.status()));
    }
    // The retry: the key says the request was answered, and with what.
    let retry = app.idempotency_status(&scope, &fingerprint).await?;
    let retry_answered_with_the_same_order =
        matches!(&retry, KeyStatus::Replay(response) if response.body == order.id().to_string().into_bytes());

    let refund = RefundCommand {
        amount: Some(usd(LAMP_PRICE)),
        merchant_id: Some(merchant.user_id),
        reason: "one lamp came back".into(),
    };
    let refunds = app.refund_order(&merchant, order.id(), refund, None).await?;
    let refunded = refunds.iter().map(|refund| refund.amount().amount_minor()).sum();

    let order_status = app.order_details(&customer, order.id()).await?.order.status();
    let stock_left = app.product(Some(&merchant), lamp.id).await?.stock.available();
    let report = app.verify_ledger(&admin).await?;
    Ok(Receipt {
        order: order.id(),
        order_status,
        order_total: order.total().amount_minor(),
        refunded,
        retry_answered_with_the_same_order,
        customer_balance: app.wallet(&customer, Currency::Usd).await?.balance().amount_minor(),
        merchant_balance: app.wallet(&merchant, Currency::Usd).await?.balance().amount_minor(),
        stock_left,
        ledger_problems: report.problems,
    })
}

/// The response a retry of the checkout is answered with: here, the order's id.
fn render_checkout(checkout: &Checkout) -> StoredResponse {
    StoredResponse {
        status: 201,
        body: checkout.order.id().to_string().into_bytes(),
        location: None,
    }
}

async fn register<U: UnitOfWork>(app: &App<U>, email: &str, role: Role) -> Result<Caller, RegisterError> {
    let registration = Registration {
        email: email.into(),
        password: "correct horse battery 9".into(),
        role,
    };
    let user = app.register(registration, None).await?;
    Ok(Caller {
        user_id: user.id,
        role: user.role,
    })
}
