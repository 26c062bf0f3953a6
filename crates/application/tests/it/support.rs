//! The application wired to the in-memory store and test doubles.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use adapter_memory::{MemoryCache, MemoryStore};
use application::adjustments::AdjustmentRequest;
use application::auth::{Caller, Registration};
use application::catalog::{CatalogEntry, NewProduct};
use application::ports::gateway::{
    CheckoutRequest, CheckoutSession, GatewayError, GatewayEvent, GatewayRefund, GatewayRefundStatus, Gateways, PaymentGateway, Payout,
    PayoutGateway, PayoutRequest, PayoutStatus, RefundRequest, WebhookError, WebhookHeaders,
};
use application::ports::system::{ManualClock, UuidV7Generator};
use application::testing::{PlainHasher, RecordingWebhooks, SpelledTokens};
use application::{App, Settings};
use async_trait::async_trait;
use domain::money::{Currency, Money};
use domain::payment::ProviderName;
use domain::user::Role;
use time::OffsetDateTime;

mockall::mock! {
    #[derive(Debug)]
    pub Gateway {}

    #[async_trait]
    impl PaymentGateway for Gateway {
        fn provider(&self) -> &ProviderName;
        fn supports_currency(&self, currency: Currency) -> bool;
        async fn create_checkout(&self, request: CheckoutRequest) -> Result<CheckoutSession, GatewayError>;
        async fn refund(&self, request: RefundRequest) -> Result<GatewayRefund, GatewayError>;
        fn verify_webhook(&self, headers: &WebhookHeaders, body: &[u8], now: OffsetDateTime) -> Result<GatewayEvent, WebhookError>;
    }
}

pub fn provider() -> ProviderName {
    ProviderName::parse("testpay").unwrap_or_else(|e| panic!("{e}"))
}

/// A gateway that opens a session named after the payment and refunds at once.
pub fn working_gateway() -> MockGateway {
    let mut gateway = MockGateway::new();
    gateway.expect_provider().return_const(provider());
    gateway.expect_supports_currency().return_const(true);
    gateway.expect_create_checkout().returning(|request| {
        Ok(CheckoutSession {
            session_id: format!("cs_{}", request.payment_id.as_uuid().simple()),
            checkout_url: format!("https://pay.example/{}", request.payment_id),
        })
    });
    gateway.expect_refund().returning(|request| {
        Ok(GatewayRefund {
            provider_refund_id: format!("re_{}", request.refund_id.as_uuid().simple()),
            status: GatewayRefundStatus::Succeeded,
        })
    });
    gateway
}

/// A gateway that also pays out: each payout answers with the next scripted outcome (paid once
/// the script is used up), and every request is kept.
#[derive(Debug)]
pub struct PayoutDesk {
    inner: MockGateway,
    script: Mutex<VecDeque<Result<PayoutStatus, GatewayError>>>,
    pub asked: Mutex<Vec<PayoutRequest>>,
}

impl PayoutDesk {
    pub fn new(script: Vec<Result<PayoutStatus, GatewayError>>) -> PayoutDesk {
        PayoutDesk {
            inner: working_gateway(),
            script: Mutex::new(script.into()),
            asked: Mutex::new(Vec::new()),
        }
    }

    pub fn asked(&self) -> Vec<PayoutRequest> {
        self.asked.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

#[async_trait]
impl PaymentGateway for PayoutDesk {
    fn provider(&self) -> &ProviderName {
        self.inner.provider()
    }

    fn supports_currency(&self, currency: Currency) -> bool {
        self.inner.supports_currency(currency)
    }

    async fn create_checkout(&self, request: CheckoutRequest) -> Result<CheckoutSession, GatewayError> {
        self.inner.create_checkout(request).await
    }

    async fn refund(&self, request: RefundRequest) -> Result<GatewayRefund, GatewayError> {
        self.inner.refund(request).await
    }

    fn verify_webhook(&self, headers: &WebhookHeaders, body: &[u8], now: OffsetDateTime) -> Result<GatewayEvent, WebhookError> {
        self.inner.verify_webhook(headers, body, now)
    }

    fn payouts(&self) -> Option<&dyn PayoutGateway> {
        Some(self)
    }
}

#[async_trait]
impl PayoutGateway for PayoutDesk {
    fn supports_payout_currency(&self, _currency: Currency) -> bool {
        true
    }

    async fn create_payout(&self, request: PayoutRequest) -> Result<Payout, GatewayError> {
        let reference = format!("po_{}", request.withdrawal_id.as_uuid().simple());
        self.asked.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(request);
        let next = self.script.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop_front();
        let status = next.unwrap_or(Ok(PayoutStatus::Paid))?;
        Ok(Payout {
            provider_reference: reference,
            status,
        })
    }
}

pub struct Harness {
    pub app: Arc<App<MemoryStore>>,
    pub store: MemoryStore,
    pub clock: Arc<ManualClock>,
    /// What the app's webhooks sent, and how they are answered.
    pub webhooks: Arc<RecordingWebhooks>,
}

pub fn start() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_750_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

impl Harness {
    pub fn new() -> Harness {
        Harness::with_gateway(working_gateway())
    }

    pub fn with_gateway(gateway: MockGateway) -> Harness {
        Harness::with(gateway, Settings::default())
    }

    pub fn with_settings(settings: Settings) -> Harness {
        Harness::with(working_gateway(), settings)
    }

    pub fn with(gateway: MockGateway, settings: Settings) -> Harness {
        Harness::with_any(Arc::new(gateway), settings)
    }

    /// A harness whose gateway pays out withdrawals as `desk` scripts.
    pub fn with_payouts(desk: Arc<PayoutDesk>) -> Harness {
        Harness::with_any(desk, Settings::default())
    }

    pub fn with_any(gateway: Arc<dyn PaymentGateway>, settings: Settings) -> Harness {
        let store = MemoryStore::new();
        let clock = Arc::new(ManualClock::new(start()));
        let webhooks = Arc::new(RecordingWebhooks::default());
        let app = App {
            store: store.clone(),
            clock: clock.clone(),
            ids: Arc::new(UuidV7Generator),
            hasher: Arc::new(PlainHasher),
            tokens: Arc::new(SpelledTokens::default()),
            gateways: Gateways::new().with(gateway),
            cache: Arc::new(MemoryCache::new()),
            webhooks: webhooks.clone(),
            settings,
        };
        Harness {
            app: Arc::new(app),
            store,
            clock,
            webhooks,
        }
    }

    pub fn clock_now(&self) -> OffsetDateTime {
        use application::ports::system::Clock;
        self.clock.now()
    }

    pub async fn user(&self, role: Role) -> Caller {
        let email = format!("{}@example.com", uuid::Uuid::now_v7().simple());
        let registration = Registration {
            email: email.clone(),
            password: "correct horse 9".into(),
            role,
        };
        let user = self
            .app
            .register(registration, None)
            .await
            .unwrap_or_else(|e| panic!("register: {e}"));
        Caller {
            user_id: user.id,
            role: user.role,
        }
    }

    pub async fn admin(&self) -> Caller {
        let email = format!("admin-{}@example.com", uuid::Uuid::now_v7().simple());
        let user = self
            .app
            .create_admin(&email, "correct horse 9")
            .await
            .unwrap_or_else(|e| panic!("admin: {e}"));
        Caller {
            user_id: user.id,
            role: Role::Admin,
        }
    }

    /// A customer with `minor` cents in their USD wallet.
    pub async fn funded_customer(&self, minor: i64) -> Caller {
        let customer = self.user(Role::Customer).await;
        self.fund(&customer, minor).await;
        customer
    }

    pub async fn fund(&self, caller: &Caller, minor: i64) {
        let admin = self.admin().await;
        let request = AdjustmentRequest {
            user_id: caller.user_id,
            amount: usd(minor),
            reason: "test funds".into(),
        };
        self.app
            .adjust_wallet(&admin, request, None)
            .await
            .unwrap_or_else(|e| panic!("fund: {e}"));
    }

    pub async fn product(&self, merchant: &Caller, price_minor: i64, stock: i64) -> CatalogEntry {
        let new = NewProduct {
            name: "Blue mug".into(),
            description: String::new(),
            price: usd(price_minor),
            stock,
        };
        self.app
            .create_product(merchant, new, None)
            .await
            .unwrap_or_else(|e| panic!("product: {e}"))
    }

    pub async fn balance(&self, caller: &Caller) -> i64 {
        match self.app.wallet(caller, Currency::Usd).await {
            Ok(wallet) => wallet.balance().amount_minor(),
            Err(error) => panic!("balance: {error}"),
        }
    }

    pub async fn stock(&self, entry: &CatalogEntry) -> (i64, i64) {
        let now = self.app.product(None, entry.product.id).await.map(|e| e.stock);
        let stock = now.unwrap_or_else(|e| panic!("stock: {e}"));
        (stock.available(), stock.reserved())
    }

    /// The caller's USD wallet: (balance, held).
    pub async fn wallet(&self, caller: &Caller) -> (i64, i64) {
        match self.app.wallet(caller, Currency::Usd).await {
            Ok(wallet) => (wallet.balance().amount_minor(), wallet.held().amount_minor()),
            Err(error) => panic!("wallet: {error}"),
        }
    }

    /// The public types of the events in the outbox, oldest first.
    pub async fn event_types(&self) -> Vec<&'static str> {
        use application::ports::store::{EventOutbox, Transaction, UnitOfWork};
        let mut tx = self.store.begin().await.unwrap_or_else(|e| panic!("begin: {e}"));
        let events = tx.lock_unpublished_events(10_000).await.unwrap_or_else(|e| panic!("outbox: {e}"));
        tx.rollback().await.unwrap_or_else(|e| panic!("rollback: {e}"));
        events.iter().map(|e| e.event.public_type()).collect()
    }

    pub async fn assert_ledger_ok(&self) {
        let report = self.app.verify_ledger_unchecked().await.unwrap_or_else(|e| panic!("verify: {e}"));
        assert!(report.is_ok(), "ledger problems: {:?}", report.problems);
    }
}

pub fn usd(minor: i64) -> Money {
    Money::from_minor(minor, Currency::Usd)
}
