//! Demo data: an admin, merchants with products, and funded customers. Safe to run twice: what
//! exists is left alone and wallets are only topped up to their target balance.

use application::App;
use application::adjustments::AdjustmentRequest;
use application::auth::{Caller, RegisterError, Registration};
use application::catalog::NewProduct;
use application::pagination::PageRequest;
use application::ports::store::UnitOfWork;
use domain::money::Money;
use domain::user::{Role, User};

/// The password of every seeded account; change it before exposing a seeded server.
pub const SEED_PASSWORD: &str = "demo password 1";

/// A product to seed: name, price in minor units, units in stock.
type SeedProduct = (&'static str, i64, i64);

const MERCHANTS: [(&str, &[SeedProduct]); 2] = [
    (
        "merchant1@example.com",
        &[
            ("Espresso beans 1kg", 2_450, 100),
            ("Pour-over kettle", 5_900, 25),
            ("Ceramic mug", 1_200, 200),
        ],
    ),
    (
        "merchant2@example.com",
        &[("Notebook A5", 850, 500), ("Fountain pen", 4_500, 40), ("Ink bottle", 1_100, 150)],
    ),
];

const CUSTOMERS: [&str; 3] = ["customer1@example.com", "customer2@example.com", "customer3@example.com"];

/// What each customer's wallet is topped up to, in minor units of the default currency.
const CUSTOMER_BALANCE_MINOR: i64 = 100_000;

#[derive(Debug, Default)]
pub struct SeedReport {
    pub users_created: usize,
    pub products_created: usize,
    pub wallets_funded: usize,
}

/// The user with this e-mail address and password, registering it if it does not exist.
async fn ensure_user<U: UnitOfWork>(app: &App<U>, email: &str, password: &str, role: Role) -> anyhow::Result<(User, bool)> {
    let registration = Registration {
        email: email.to_owned(),
        password: password.to_owned(),
        role,
    };
    let created = match role {
        Role::Admin => app.create_admin(email, password).await,
        Role::Customer | Role::Merchant => app.register(registration, None).await,
    };
    match created {
        Ok(user) => Ok((user, true)),
        // An account that exists is used as it is, whatever its password (an operator may have
        // changed it), but never in another role than the one asked for.
        Err(RegisterError::EmailTaken) => {
            let user = app
                .user_by_email_unchecked(email)
                .await?
                .ok_or_else(|| anyhow::anyhow!("{email} is registered but cannot be found"))?;
            if user.role != role {
                anyhow::bail!(
                    "{email} is already registered as a {} and is left as it is: use another address for the {}",
                    user.role.as_str(),
                    role.as_str()
                );
            }
            Ok((user, false))
        }
        Err(error) => Err(error.into()),
    }
}

/// Creates the operator's admin unless it exists; says whether it did. An address registered in
/// another role is refused, not promoted.
pub async fn ensure_admin<U: UnitOfWork>(app: &App<U>, email: &str, password: &str) -> anyhow::Result<(User, bool)> {
    ensure_user(app, email, password, Role::Admin).await
}

pub async fn run<U: UnitOfWork>(app: &App<U>) -> anyhow::Result<SeedReport> {
    let mut report = SeedReport::default();
    let (admin, created) = ensure_user(app, "admin@example.com", SEED_PASSWORD, Role::Admin).await?;
    report.users_created += usize::from(created);
    let admin = Caller {
        user_id: admin.id,
        role: admin.role,
    };
    let currency = app.settings.default_currency;
    for (email, products) in MERCHANTS {
        let (merchant, created) = ensure_user(app, email, SEED_PASSWORD, Role::Merchant).await?;
        report.users_created += usize::from(created);
        let merchant = Caller {
            user_id: merchant.id,
            role: merchant.role,
        };
        let existing = app.merchant_products(&merchant, &PageRequest::first(100)).await?;
        for (name, price_minor, stock) in products {
            if existing.items.iter().any(|entry| entry.product.name == *name) {
                continue;
            }
            let new = NewProduct {
                name: (*name).to_owned(),
                description: String::new(),
                price: Money::from_minor(*price_minor, currency),
                stock: *stock,
            };
            app.create_product(&merchant, new, None).await?;
            report.products_created += 1;
        }
    }
    for email in CUSTOMERS {
        let (customer, created) = ensure_user(app, email, SEED_PASSWORD, Role::Customer).await?;
        report.users_created += usize::from(created);
        let caller = Caller {
            user_id: customer.id,
            role: customer.role,
        };
        let balance = app.wallet(&caller, currency).await.map(|w| w.balance().amount_minor()).unwrap_or(0);
        if balance < CUSTOMER_BALANCE_MINOR {
            let request = AdjustmentRequest {
                user_id: customer.id,
                amount: Money::from_minor(CUSTOMER_BALANCE_MINOR - balance, currency),
                reason: "demo funds".to_owned(),
            };
            app.adjust_wallet(&admin, request, None).await?;
            report.wallets_funded += 1;
        }
    }
    Ok(report)
}
