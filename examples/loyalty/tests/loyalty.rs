//! The loyalty service's tests embed the real payment core over the in-memory store: no database,
//! no server, the same use cases as production. Only the clock-free doubles of password hashing
//! and tokens come from `application::testing`.

use std::sync::Arc;

use adapter_memory::{MemoryCache, MemoryStore};
use application::adjustments::AdjustmentRequest;
use application::auth::{Caller, Registration};
use application::catalog::NewProduct;
use application::checkout::{CheckoutCommand, CheckoutError};
use application::context::{App, Settings};
use application::ports::gateway::Gateways;
use application::ports::system::{SystemClock, UuidV7Generator};
use application::testing::{PlainHasher, RecordingWebhooks, SpelledTokens};
use domain::catalog::Quantity;
use domain::ids::ProductId;
use domain::money::{Currency, Money};
use domain::order::{CaptureMethod, PaymentMethod};
use domain::user::Role;
use example_loyalty::{Loyalty, LoyaltyError};

fn usd(minor: i64) -> Money {
    Money::from_minor(minor, Currency::Usd)
}

/// The payment core over memory, wallets only (no card provider is configured).
fn payments() -> Arc<App<MemoryStore>> {
    Arc::new(App {
        store: MemoryStore::new(),
        clock: Arc::new(SystemClock),
        ids: Arc::new(UuidV7Generator),
        hasher: Arc::new(PlainHasher),
        tokens: Arc::new(SpelledTokens::default()),
        gateways: Gateways::new(),
        cache: Arc::new(MemoryCache::new()),
        webhooks: Arc::new(RecordingWebhooks::default()),
        settings: Settings::default(),
    })
}

struct Shop {
    payments: Arc<App<MemoryStore>>,
    admin: Caller,
    merchant: Caller,
    lamp: ProductId,
}

async fn user(payments: &App<MemoryStore>, email: &str, role: Role) -> Caller {
    let registration = Registration {
        email: email.into(),
        password: "correct horse 9".into(),
        role,
    };
    let user = payments.register(registration, None).await.expect("register");
    Caller {
        user_id: user.id,
        role: user.role,
    }
}

async fn shop() -> Shop {
    let payments = payments();
    let admin = payments.create_admin("admin@example.com", "correct horse 9").await.expect("admin");
    let admin = Caller {
        user_id: admin.id,
        role: Role::Admin,
    };
    let merchant = user(&payments, "lamps@example.com", Role::Merchant).await;
    let lamp = NewProduct {
        name: "Lamp".into(),
        description: "Brass".into(),
        price: usd(2_550),
        stock: 3,
    };
    let lamp = payments.create_product(&merchant, lamp, None).await.expect("product");
    Shop {
        payments,
        admin,
        merchant,
        lamp: lamp.product.id,
    }
}

impl Shop {
    async fn member_with(&self, email: &str, minor: i64) -> Caller {
        let member = user(&self.payments, email, Role::Customer).await;
        let funds = AdjustmentRequest {
            user_id: member.user_id,
            amount: usd(minor),
            reason: "opening balance".into(),
        };
        self.payments.adjust_wallet(&self.admin, funds, None).await.expect("funds");
        member
    }

    fn lamps(&self, count: i64) -> CheckoutCommand {
        CheckoutCommand {
            items: vec![(self.lamp, Quantity::new(count).expect("quantity"))],
            payment_method: PaymentMethod::Wallet,
            provider: None,
            capture: CaptureMethod::Automatic,
        }
    }

    async fn balance(&self, member: &Caller) -> i64 {
        let wallet = self.payments.wallet(member, Currency::Usd).await.expect("wallet");
        wallet.balance().amount_minor()
    }
}

#[tokio::test]
async fn a_paid_order_earns_points_and_a_refund_takes_back_the_points_of_what_came_back() {
    let shop = shop().await;
    let loyalty = Loyalty::new(Arc::clone(&shop.payments));
    let ann = shop.member_with("ann@example.com", 10_000).await;

    let order = loyalty.buy(&ann, shop.lamps(2)).await.expect("buy");
    assert_eq!(order.total(), usd(5_100));
    assert_eq!(loyalty.points(ann.user_id), 51);
    assert_eq!(shop.balance(&ann).await, 4_900);

    let taken = loyalty.refund(&shop.merchant, order.id(), Some(usd(2_550))).await.expect("refund");
    assert_eq!(taken, 26, "half the money back: half the points, rounded against the member");
    assert_eq!(loyalty.points(ann.user_id), 25);
    assert_eq!(shop.balance(&ann).await, 7_450);

    let admin = shop.admin;
    let report = shop.payments.verify_ledger(&admin).await.expect("verify");
    assert!(report.is_ok(), "{report:?}");
}

#[tokio::test]
async fn no_money_no_points() {
    let shop = shop().await;
    let loyalty = Loyalty::new(Arc::clone(&shop.payments));
    let bob = shop.member_with("bob@example.com", 1_000).await;

    let refused = loyalty.buy(&bob, shop.lamps(1)).await;
    assert!(
        matches!(refused, Err(LoyaltyError::Checkout(CheckoutError::InsufficientFunds { .. }))),
        "{refused:?}"
    );
    assert_eq!(loyalty.points(bob.user_id), 0);
    assert_eq!(shop.balance(&bob).await, 1_000, "nothing was taken");

    let stranger = shop.member_with("carol@example.com", 10_000).await;
    let order = loyalty.buy(&stranger, shop.lamps(1)).await.expect("buy");
    let not_theirs = loyalty.refund(&bob, order.id(), None).await;
    assert!(matches!(not_theirs, Err(LoyaltyError::Refund(_))), "{not_theirs:?}");
    assert_eq!(loyalty.points(stranger.user_id), 25);
}
