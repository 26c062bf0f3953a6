//! The real application on PostgreSQL: `App<PgStore>` with the system clock and UUIDv7 ids, the
//! in-memory cache, the security doubles of `application::testing`, and a card gateway double.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use adapter_memory::MemoryCache;
use adapter_postgres::PgStore;
use adapter_postgres::testing::TestDatabase;
use application::adjustments::AdjustmentRequest;
use application::auth::{Caller, Registration};
use application::catalog::{CatalogEntry, NewProduct};
use application::checkout::CheckoutCommand;
use application::ports::gateway::{
    CheckoutRequest, CheckoutSession, GatewayError, GatewayEvent, GatewayRefund, GatewayRefundStatus, Gateways, PaymentGateway, Payout,
    PayoutGateway, PayoutRequest, PayoutStatus, RefundRequest, WebhookError, WebhookHeaders,
};
use application::ports::store::{ProductRepository, Transaction, UnitOfWork};
use application::ports::system::{SystemClock, UuidV7Generator};
use application::testing::{PlainHasher, SpelledTokens};
use application::{App, Settings};
use async_trait::async_trait;
use domain::catalog::Quantity;
use domain::ids::ProductId;
use domain::money::{Currency, Money};
use domain::order::PaymentMethod;
use domain::payment::ProviderName;
use domain::user::{Email, PasswordHash, Role, User};
use time::OffsetDateTime;

/// A card gateway that opens a session named after the payment and refunds at once. Webhooks are
/// fed to `App::apply_gateway_event` directly, so it never verifies one. It pays out withdrawals
/// at once, except to a destination containing `fail` (refused).
#[derive(Debug)]
pub struct FakeGateway {
    provider: ProviderName,
}

impl FakeGateway {
    pub fn session_of(payment_id: domain::ids::PaymentId) -> String {
        format!("cs_{}", payment_id.as_uuid().simple())
    }
}

#[async_trait]
impl PaymentGateway for FakeGateway {
    fn provider(&self) -> &ProviderName {
        &self.provider
    }

    fn supports_currency(&self, _currency: Currency) -> bool {
        true
    }

    async fn create_checkout(&self, request: CheckoutRequest) -> Result<CheckoutSession, GatewayError> {
        Ok(CheckoutSession {
            session_id: FakeGateway::session_of(request.payment_id),
            checkout_url: format!("https://pay.example/{}", request.payment_id),
        })
    }

    async fn refund(&self, request: RefundRequest) -> Result<GatewayRefund, GatewayError> {
        Ok(GatewayRefund {
            provider_refund_id: format!("re_{}", request.refund_id.as_uuid().simple()),
            status: GatewayRefundStatus::Succeeded,
        })
    }

    fn verify_webhook(&self, _headers: &WebhookHeaders, _body: &[u8], _now: OffsetDateTime) -> Result<GatewayEvent, WebhookError> {
        Err(WebhookError::BadSignature)
    }

    fn payouts(&self) -> Option<&dyn PayoutGateway> {
        Some(self)
    }
}

#[async_trait]
impl PayoutGateway for FakeGateway {
    fn supports_payout_currency(&self, _currency: Currency) -> bool {
        true
    }

    async fn create_payout(&self, request: PayoutRequest) -> Result<Payout, GatewayError> {
        let status = if request.destination.contains("fail") {
            PayoutStatus::Failed("refused by the test bank".into())
        } else {
            PayoutStatus::Paid
        };
        Ok(Payout {
            provider_reference: format!("po_{}", request.withdrawal_id.as_uuid().simple()),
            status,
        })
    }
}

/// A user with a fresh id and an e-mail address made from it, for inserting straight into the
/// store.
pub fn stored_user(role: Role) -> User {
    let id = domain::ids::UserId::from_uuid(uuid::Uuid::now_v7());
    User {
        id,
        email: Email::parse(&format!("{}@example.com", id.as_uuid().simple())).expect("email"),
        password_hash: PasswordHash::new("plain:x".into()),
        role,
        created_at: OffsetDateTime::from_unix_timestamp(1_750_000_000).expect("time"),
        suspended_at: None,
    }
}

pub fn provider() -> ProviderName {
    ProviderName::parse("testpay").expect("provider name")
}

pub fn usd(minor: i64) -> Money {
    Money::from_minor(minor, Currency::Usd)
}

pub fn cart(items: &[(ProductId, i64)], payment_method: PaymentMethod) -> CheckoutCommand {
    CheckoutCommand {
        items: items
            .iter()
            .map(|(id, units)| (*id, Quantity::new(*units).expect("quantity")))
            .collect(),
        payment_method,
        provider: None,
        capture: Default::default(),
    }
}

pub struct Harness {
    pub app: Arc<App<PgStore>>,
    pub database: TestDatabase,
    admin: Caller,
}

impl Harness {
    /// Another instance of the application on the same database, with its own clock: what a
    /// second server process would be.
    pub fn instance_at(&self, clock: Arc<dyn application::ports::system::Clock>) -> App<PgStore> {
        App {
            store: self.database.store(),
            clock,
            ids: Arc::new(UuidV7Generator),
            hasher: Arc::new(PlainHasher),
            tokens: Arc::new(SpelledTokens::default()),
            gateways: Gateways::new().with(Arc::new(FakeGateway { provider: provider() })),
            cache: Arc::new(MemoryCache::new()),
            webhooks: Arc::new(application::testing::RecordingWebhooks::default()),
            settings: Settings::default(),
        }
    }

    /// The application on a fresh database, with an admin to fund wallets.
    pub async fn new() -> Harness {
        Harness::with_settings(|_| {}).await
    }

    /// The same, with the store's settings changed by `change`.
    pub async fn with_settings(change: impl FnOnce(&mut adapter_postgres::PgSettings)) -> Harness {
        let database = TestDatabase::create_with(|settings| {
            settings.pool_max_size = 10;
            change(settings);
        })
        .await;
        let gateway = FakeGateway { provider: provider() };
        let app = App {
            store: database.store(),
            clock: Arc::new(SystemClock),
            ids: Arc::new(UuidV7Generator),
            hasher: Arc::new(PlainHasher),
            tokens: Arc::new(SpelledTokens::default()),
            gateways: Gateways::new().with(Arc::new(gateway)),
            cache: Arc::new(MemoryCache::new()),
            webhooks: Arc::new(application::testing::RecordingWebhooks::default()),
            settings: Settings::default(),
        };
        let email = format!("admin-{}@example.com", uuid::Uuid::now_v7().simple());
        let admin = app.create_admin(&email, "correct horse 9").await.expect("admin");
        Harness {
            app: Arc::new(app),
            database,
            admin: Caller {
                user_id: admin.id,
                role: Role::Admin,
            },
        }
    }

    pub async fn user(&self, role: Role) -> Caller {
        let registration = Registration {
            email: format!("{}@example.com", uuid::Uuid::now_v7().simple()),
            password: "correct horse 9".into(),
            role,
        };
        let user = self.app.register(registration, None).await.expect("register");
        Caller {
            user_id: user.id,
            role: user.role,
        }
    }

    pub fn admin_caller(&self) -> Caller {
        self.admin
    }

    pub async fn funded_customer(&self, minor: i64) -> Caller {
        let customer = self.user(Role::Customer).await;
        self.fund(&customer, minor).await;
        customer
    }

    pub async fn fund(&self, caller: &Caller, minor: i64) {
        let request = AdjustmentRequest {
            user_id: caller.user_id,
            amount: usd(minor),
            reason: "test funds".into(),
        };
        self.app.adjust_wallet(&self.admin, request, None).await.expect("fund");
    }

    pub async fn product(&self, merchant: &Caller, price_minor: i64, stock: i64) -> CatalogEntry {
        let new = NewProduct {
            name: "Blue mug".into(),
            description: String::new(),
            price: usd(price_minor),
            stock,
        };
        self.app.create_product(merchant, new, None).await.expect("product")
    }

    pub async fn balance(&self, caller: &Caller) -> i64 {
        self.app
            .wallet(caller, Currency::Usd)
            .await
            .expect("wallet")
            .balance()
            .amount_minor()
    }

    /// Read from the database itself, not through the catalog cache.
    pub async fn stock(&self, product: ProductId) -> (i64, i64) {
        let mut tx = self.database.store().begin().await.expect("begin");
        let (_, stock) = tx.find_product(product).await.expect("find").expect("product");
        tx.rollback().await.expect("rollback");
        (stock.available(), stock.reserved())
    }

    pub async fn assert_ledger_ok(&self) {
        let report = self.app.verify_ledger_unchecked().await.expect("verify");
        assert!(report.is_ok(), "ledger problems: {:?}", report.problems);
    }
}

/// How long a test waits for something that other tasks or the database bring about.
const DEADLINE: Duration = Duration::from_secs(10);

/// Waits until `check` holds, checking again each time other tasks have had a turn; fails the
/// test, naming `what`, if it does not within ten seconds. Tests wait with this, never by sleeping.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let waited = tokio::time::timeout(DEADLINE, async {
        while !check().await {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(waited.is_ok(), "still waiting after {DEADLINE:?} for {what}");
}
