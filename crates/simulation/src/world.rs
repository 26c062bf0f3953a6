//! The simulated world: the application over the in-memory store, the simulated provider, the
//! actors, and the model of what the actors did that the invariants are checked against.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use adapter_memory::{MemoryCache, MemoryStore};
use application::adjustments::AdjustmentRequest;
use application::auth::Caller;
use application::catalog::NewProduct;
use application::ports::gateway::{GatewayEvent, Gateways};
use application::ports::system::{Clock, IdGenerator, ManualClock};
use application::testing::{PlainHasher, SpelledTokens};
use application::{App, Settings};
use domain::ids::{CallId, HoldId, OrderId, ProductId, RefundRequestId, WebhookDeliveryId, WebhookEndpointId};

use crate::receiver::SimReceiver;
use domain::money::{Currency, Money};
use domain::user::Role;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::executor::Scheduler;
use crate::gateway::{PROVIDER, SimGateway, provider_acts};
use crate::requests::{Decision, EndpointAction, Keyed, Outcome, Pay, Request, start};
use crate::rng::Rng;
use crate::store::{InMemory, SimStore};

/// Identifiers from a counter: the same on every run of a seed, and increasing like UUIDv7.
#[derive(Debug, Default)]
pub struct CountingIds(AtomicU64);

impl IdGenerator for CountingIds {
    fn uuid(&self) -> Uuid {
        let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        Uuid::from_u64_pair(0x0190_0000_0000_7000, 0x8000_0000_0000_0000 | n)
    }
}

/// A deliberate bug to switch on, to show that the simulation finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bug {
    /// The store lets a key be claimed again (needs the `mutations` feature).
    ForgetIdempotencyClaims,
}

/// What a task in flight will report when it finishes.
#[derive(Debug)]
pub enum Finished {
    Request(Keyed, Outcome),
    /// A job, its outcome, and what it owes if it did not fill its batch (`limbo`).
    Job(&'static str, Result<usize, String>, Vec<crate::limbo::Owed>),
    Webhook(Box<GatewayEvent>, Result<String, String>),
}

/// Polls a check may take before it is called stuck: far more than any check needs.
pub const CHECK_POLLS_MAX: u32 = 10_000;

/// Rounds of webhooks and jobs at the end of a run: the follow-ups' retries span about a day
/// (20 attempts, at most two hours apart), and each round moves the clock two hours.
const QUIESCE_ROUNDS: u32 = 30;

/// Rounds of the calls' job at the end of a run to catch calls up with the clock: each extends
/// a call by up to two hours (`call_minutes_max`), and a call the clock left days behind (it
/// jumps by days, and the job runs now and then) takes a round per two hours.
const CALL_CATCH_UP_ROUNDS_MAX: u32 = 2_000;

/// The batch the jobs take in a round during the run.
const JOB_BATCH: usize = 10;

pub struct World<S: SimStore> {
    pub rng: Rng,
    pub app: Arc<App<S::Store>>,
    pub clock: Arc<ManualClock>,
    pub gateway: SimGateway,
    pub tasks: Scheduler<Finished>,
    pub admin: Caller,
    pub merchants: Vec<Caller>,
    pub buyers: Vec<Caller>,
    /// Each product, the stock it was created with, and its merchant.
    pub products: Vec<(ProductId, i64, Caller)>,
    /// Every order made, with how it is paid, its buyer and the merchant of its first item.
    pub orders: Vec<(OrderId, Pay, Caller, Caller)>,
    /// Every call started, with its caller and receiver.
    pub calls: Vec<(CallId, Caller, Caller)>,
    /// Every refund request opened, with its order's buyer and (first) merchant.
    pub refund_requests: Vec<(RefundRequestId, Caller, Caller)>,
    /// Every hold authorised through the holds API, with its customer and merchant.
    pub holds: Vec<(HoldId, Caller, Caller)>,
    /// The webhook receivers of every endpoint (the relay's sender).
    pub receiver: Arc<SimReceiver>,
    /// Every webhook endpoint registered, with its owner.
    pub endpoints: Vec<(WebhookEndpointId, Caller)>,
    /// Deliveries the store recorded as succeeded, with how many attempts the receivers had seen
    /// of each then: the relay must not send them again unless asked to (`invariants`).
    pub delivered: BTreeMap<WebhookDeliveryId, usize>,
    /// Redeliveries asked for and not answered yet, by delivery.
    pub redelivering: BTreeMap<WebhookDeliveryId, u32>,
    /// Keyed requests that failed in a way a retry may pass, or were dropped by a restart.
    pub retries: Vec<Keyed>,
    /// What is in flight and must be sent again if a restart drops it, by task label: a keyed
    /// request (its client retries) or a webhook (unacknowledged, so the provider delivers it
    /// again).
    in_flight: Vec<(String, Redo)>,
    /// The effect each key's successful requests named: a key has at most one.
    pub effects: BTreeMap<String, String>,
    /// Invariants broken by what a request answered, found when it finished.
    pub violations: Vec<String>,
    /// What the last check saw pending (`limbo`).
    pub pending: crate::limbo::Pending,
    /// What job rounds that did not fill their batch must have moved on (`limbo`).
    pub owed: Vec<crate::limbo::Owed>,
    /// When the jobs last ran at the end of the run (`quiesce`).
    pub last_round: Option<OffsetDateTime>,
    pub trace: Vec<String>,
    keys_made: u64,
    emails_made: u64,
    /// The store and what drives it; last, so that it outlives the tasks and the application
    /// that use it.
    pub backend: S,
}

/// What a dropped task's sender does again.
enum Redo {
    Request(Keyed),
    Webhook(GatewayEvent),
}

impl<S: SimStore> Drop for World<S> {
    /// Tasks still in flight are dropped inside the store's runtime, if it has one.
    fn drop(&mut self) {
        let handle = self.backend.driver().handle();
        let _entered = handle.as_ref().map(tokio::runtime::Handle::enter);
        self.tasks.drop_all();
    }
}

impl<S: SimStore> std::fmt::Debug for World<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World").field("tasks", &self.tasks).finish_non_exhaustive()
    }
}

fn start_time() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_750_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn usd(minor: i64) -> Money {
    Money::from_minor(minor, Currency::Usd)
}

impl World<InMemory> {
    /// The application over the in-memory store, with its users, products and funds, all chosen
    /// by `seed`.
    pub fn new(seed: u64, bug: Option<Bug>) -> World<InMemory> {
        let store = MemoryStore::new();
        match bug {
            #[cfg(feature = "mutations")]
            Some(Bug::ForgetIdempotencyClaims) => store.forget_idempotency_claims(true),
            #[cfg(not(feature = "mutations"))]
            Some(Bug::ForgetIdempotencyClaims) => panic!("the deliberate bug needs the `mutations` feature"),
            None => {}
        }
        World::with_store(seed, InMemory::new(store))
    }
}

impl<S: SimStore> World<S> {
    /// The application over `backend`, with its users, products and funds, all chosen by `seed`.
    pub fn with_store(seed: u64, backend: S) -> World<S> {
        let clock = Arc::new(ManualClock::new(start_time()));
        let receiver = Arc::new(SimReceiver::default());
        let gateway = SimGateway::new(seed);
        let app = App {
            store: backend.store(),
            clock: clock.clone(),
            ids: Arc::new(CountingIds::default()),
            hasher: Arc::new(PlainHasher),
            tokens: Arc::new(SpelledTokens::default()),
            gateways: Gateways::new().with(Arc::new(gateway.clone())),
            cache: Arc::new(MemoryCache::new()),
            webhooks: receiver.clone(),
            settings: Settings::default(),
        };
        let mut world = World {
            rng: Rng::new(seed),
            app: Arc::new(app),
            clock,
            gateway,
            tasks: Scheduler::default(),
            admin: Caller {
                user_id: domain::ids::Id::from_uuid(Uuid::nil()),
                role: Role::Admin,
            },
            merchants: Vec::new(),
            buyers: Vec::new(),
            products: Vec::new(),
            orders: Vec::new(),
            retries: Vec::new(),
            in_flight: Vec::new(),
            refund_requests: Vec::new(),
            holds: Vec::new(),
            receiver,
            endpoints: Vec::new(),
            delivered: BTreeMap::new(),
            redelivering: BTreeMap::new(),
            calls: Vec::new(),
            effects: BTreeMap::new(),
            violations: Vec::new(),
            pending: crate::limbo::Pending::default(),
            owed: Vec::new(),
            last_round: None,
            trace: Vec::new(),
            keys_made: 0,
            emails_made: 0,
            backend,
        };
        world.populate();
        world
    }

    fn populate(&mut self) {
        let admin = self
            .backend
            .driver()
            .block_on(self.app.create_admin("admin@sim.example", "correct horse 9"), CHECK_POLLS_MAX);
        let admin = admin.and_then(Result::ok).unwrap_or_else(|| panic!("setup: admin"));
        self.admin = Caller {
            user_id: admin.id,
            role: Role::Admin,
        };
        for _ in 0..2 {
            let merchant = self.user(Role::Merchant);
            self.merchants.push(merchant);
            for _ in 0..2 {
                let stock = self.rng.range(10, 40);
                let new = NewProduct {
                    name: "Mug".into(),
                    description: String::new(),
                    price: usd(self.rng.range(100, 3_000)),
                    stock,
                };
                let entry = self
                    .backend
                    .driver()
                    .block_on(self.app.create_product(&merchant, new, None), CHECK_POLLS_MAX);
                let entry = entry.and_then(Result::ok).unwrap_or_else(|| panic!("setup: product"));
                self.products.push((entry.product.id, stock, merchant));
            }
        }
        for _ in 0..3 {
            let buyer = self.user(Role::Customer);
            let funds = AdjustmentRequest {
                user_id: buyer.user_id,
                amount: usd(self.rng.range(0, 20_000)),
                reason: "simulated funds".into(),
            };
            if funds.amount.amount_minor() > 0 {
                let adjusted = self
                    .backend
                    .driver()
                    .block_on(self.app.adjust_wallet(&self.admin, funds, None), CHECK_POLLS_MAX);
                adjusted.and_then(Result::ok).unwrap_or_else(|| panic!("setup: funds"));
            }
            self.buyers.push(buyer);
        }
    }

    fn email(&mut self) -> String {
        self.emails_made += 1;
        format!("user{}@sim.example", self.emails_made)
    }

    fn user(&mut self, role: Role) -> Caller {
        let registration = application::auth::Registration {
            email: self.email(),
            password: "correct horse 9".into(),
            role,
        };
        let user = self
            .backend
            .driver()
            .block_on(self.app.register(registration, None), CHECK_POLLS_MAX);
        let user = user.and_then(Result::ok).unwrap_or_else(|| panic!("setup: user"));
        Caller {
            user_id: user.id,
            role: user.role,
        }
    }

    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    fn new_key(&mut self) -> Option<String> {
        if self.rng.chance(40) {
            return None;
        }
        self.keys_made += 1;
        Some(format!("sim-key-{}", self.keys_made))
    }

    /// The caller of a user the world made (a buyer, a merchant or the admin).
    fn someone(&self, user: domain::ids::UserId) -> Caller {
        self.buyers
            .iter()
            .chain(self.merchants.iter())
            .find(|known| known.user_id == user)
            .copied()
            .unwrap_or(self.admin)
    }

    fn some_buyer(&mut self) -> Caller {
        let index = self.rng.index(self.buyers.len());
        self.buyers[index]
    }

    /// An order and, mostly, its buyer; sometimes another buyer, who must be refused.
    fn some_order_and_buyer(&mut self) -> Option<(OrderId, Caller)> {
        let &(order, _, buyer, _) = self.rng.pick(&self.orders)?;
        let buyer = if self.rng.chance(10) { self.some_buyer() } else { buyer };
        Some((order, buyer))
    }

    fn amount(&mut self) -> i64 {
        match self.rng.below(10) {
            0 => 0,
            1 => -self.rng.range(1, 500),
            2 => self.rng.range(50_000, 1_000_000),
            _ => self.rng.range(1, 5_000),
        }
    }

    /// A request from a buyer, a merchant or the admin, valid or not.
    fn choose_request(&mut self) -> Option<Request> {
        let buyer = self.some_buyer();
        let request = match self.rng.below(100) {
            0..4 => {
                let email = if self.rng.chance(20) { "not an email".into() } else { self.email() };
                Request::Register {
                    email,
                    role: Role::Customer,
                }
            }
            4..14 => Request::TopUp {
                buyer,
                amount_minor: self.amount(),
            },
            14..44 => {
                let lines = self.rng.range(1, 2);
                let mut items = Vec::new();
                for _ in 0..lines {
                    let product = self.rng.pick(&self.products).map(|&(id, _, _)| id)?;
                    let product = if self.rng.chance(3) {
                        domain::ids::Id::from_uuid(Uuid::max())
                    } else {
                        product
                    };
                    let quantity = if self.rng.chance(3) { 0 } else { self.rng.range(1, 3) };
                    items.push((product, quantity));
                }
                let pay = match self.rng.below(3) {
                    0 => Pay::Wallet,
                    1 => Pay::WalletHold,
                    _ => Pay::Card,
                };
                Request::Checkout { buyer, items, pay }
            }
            44..50 => {
                let (order, buyer) = self.some_order_and_buyer()?;
                Request::PayAgain { buyer, order }
            }
            50..56 => {
                let (order, buyer) = self.some_order_and_buyer()?;
                let caller = if self.rng.chance(30) { self.admin } else { buyer };
                Request::Cancel { caller, order }
            }
            56..62 => {
                // Mostly an order placed with manual capture (the only kind that is captured), by
                // its merchant.
                let held: Vec<(OrderId, Caller)> = self.orders.iter().filter(|o| o.1 == Pay::WalletHold).map(|o| (o.0, o.3)).collect();
                let (order, merchant) = match self.rng.pick(&held) {
                    Some(&held) if self.rng.chance(60) => held,
                    _ => self.rng.pick(&self.orders).map(|o| (o.0, o.3))?,
                };
                let merchant = if self.rng.chance(10) {
                    *self.rng.pick(&self.merchants)?
                } else {
                    merchant
                };
                if self.rng.chance(50) {
                    Request::Capture { caller: merchant, order }
                } else if self.rng.chance(50) {
                    Request::Void { caller: merchant, order }
                } else {
                    Request::Fulfil { caller: merchant, order }
                }
            }
            62..66 => {
                let (order, buyer) = self.some_order_and_buyer()?;
                let amount_minor = if self.rng.chance(50) { None } else { Some(self.amount()) };
                Request::AskRefund {
                    buyer,
                    order,
                    amount_minor,
                }
            }
            66..70 => {
                let &(request, buyer, merchant) = self.rng.pick(&self.refund_requests)?;
                let (caller, decision) = match self.rng.below(10) {
                    0..5 => (merchant, Decision::Approve),
                    5 => (self.admin, Decision::Approve),
                    6 => (buyer, Decision::Approve),
                    7 => (merchant, Decision::Decline),
                    _ => (buyer, Decision::Withdraw),
                };
                Request::DecideRefund { caller, request, decision }
            }
            70..74 => {
                let &(order, _, _, merchant) = self.rng.pick(&self.orders)?;
                let caller = if self.rng.chance(30) { self.admin } else { merchant };
                let amount_minor = if self.rng.chance(50) { None } else { Some(self.amount()) };
                Request::Refund {
                    caller,
                    order,
                    amount_minor,
                }
            }
            74..78 => {
                let receiver = if self.rng.chance(70) {
                    *self.rng.pick(&self.merchants)?
                } else {
                    self.some_buyer()
                };
                let rate_minor = if self.rng.chance(10) {
                    self.amount()
                } else {
                    self.rng.range(1, 300)
                };
                Request::StartCall {
                    caller: buyer,
                    receiver: receiver.user_id,
                    rate_minor,
                }
            }
            78..82 => {
                let &(call, caller, receiver) = self.rng.pick(&self.calls)?;
                let by = match self.rng.below(10) {
                    0..6 => caller,
                    6..9 => receiver,
                    _ => self.some_buyer(),
                };
                Request::EndCall { caller: by, call }
            }
            82..90 => {
                let to = self.some_buyer().user_id;
                Request::Transfer {
                    from: buyer,
                    to,
                    amount_minor: self.amount(),
                }
            }
            90..93 => Request::Withdraw {
                caller: buyer,
                amount_minor: self.amount(),
            },
            93..95 => {
                let merchant = self.rng.pick(&self.merchants)?.user_id;
                Request::AuthoriseHold {
                    customer: buyer,
                    merchant,
                    amount_minor: self.amount(),
                }
            }
            95..97 => {
                let &(hold, customer, merchant) = self.rng.pick(&self.holds)?;
                // Mostly its merchant; sometimes another merchant or its customer, who may not
                // capture; voided by the customer, the merchant or the admin.
                let caller = match self.rng.below(10) {
                    0..7 => merchant,
                    7 => *self.rng.pick(&self.merchants)?,
                    8 => customer,
                    _ => self.admin,
                };
                if self.rng.chance(70) {
                    let amount_minor = if self.rng.chance(30) { None } else { Some(self.amount()) };
                    Request::CaptureHold {
                        caller,
                        hold,
                        amount_minor,
                        final_capture: self.rng.chance(30),
                    }
                } else {
                    Request::VoidHold { caller, hold }
                }
            }
            _ if self.rng.chance(70) => self.choose_webhook_request()?,
            _ => {
                // An admin's correction, now and then by someone who is not an admin.
                let caller = if self.rng.chance(90) { self.admin } else { buyer };
                let user = self.some_buyer().user_id;
                let amount_minor = if self.rng.chance(70) {
                    self.amount()
                } else {
                    -self.rng.range(1, 3_000)
                };
                Request::Adjust {
                    caller,
                    user,
                    amount_minor,
                }
            }
        };
        Some(request)
    }

    /// A merchant or the admin registers or manages a webhook endpoint, or asks for a delivery
    /// again; sometimes someone who may not.
    fn choose_webhook_request(&mut self) -> Option<Request> {
        let someone = |world: &mut World<S>| match world.rng.below(10) {
            0..6 => world.rng.pick(&world.merchants).copied(),
            6..9 => Some(world.admin),
            _ => Some(world.some_buyer()),
        };
        Some(match self.rng.below(10) {
            0..3 => Request::CreateEndpoint {
                caller: someone(self)?,
                every_event: self.rng.chance(50),
                bad_url: self.rng.chance(10),
            },
            3..8 => {
                let &(endpoint, owner) = self.rng.pick(&self.endpoints)?;
                let caller = if self.rng.chance(80) { owner } else { someone(self)? };
                let action = match self.rng.below(10) {
                    0..3 => EndpointAction::Disable,
                    3..6 => EndpointAction::Enable,
                    6 => EndpointAction::RollSecret,
                    7..9 => EndpointAction::Test,
                    _ => EndpointAction::Delete,
                };
                Request::ManageEndpoint { caller, endpoint, action }
            }
            _ => {
                let attempts = self.receiver.attempts();
                let delivery = self.rng.pick(&attempts)?.delivery;
                let &(_, owner) = self.rng.pick(&self.endpoints)?;
                let caller = if self.rng.chance(70) { self.admin } else { owner };
                Request::Redeliver { caller, delivery }
            }
        })
    }

    /// One step: an actor acts (a request, the provider, a webhook, a job, the clock, a fault,
    /// a restart), then the scheduler polls tasks in flight.
    pub fn step(&mut self) {
        let choice = self.rng.below(100);
        match choice {
            0..40 if self.tasks.len() < 6 => {
                if let Some(request) = self.choose_request() {
                    let key = if request.takes_key() { self.new_key() } else { None };
                    self.spawn(Keyed { request, key });
                }
            }
            40..46 => {
                if let Some(index) = (!self.retries.is_empty()).then(|| self.rng.index(self.retries.len())) {
                    let keyed = self.retries.swap_remove(index);
                    self.spawn(keyed);
                }
            }
            46..54 => provider_acts(&self.gateway),
            54..64 => self.deliver_webhook(),
            64..70 => self.run_job(),
            70..76 => self.advance_clock(),
            76..80 => self.inject_store_fault(),
            80 if self.rng.chance(30) => self.restart(),
            _ => {}
        }
        for _ in 0..self.rng.range(1, 4) {
            if let Some((label, finished)) = self.tasks.tick(&mut self.rng, self.backend.driver()) {
                self.finish(&label, finished);
            }
        }
    }

    fn spawn(&mut self, keyed: Keyed) {
        // From now on the delivery may be sent again, legitimately.
        if let Request::Redeliver { delivery, .. } = keyed.request {
            self.delivered.remove(&delivery);
            *self.redelivering.entry(delivery).or_default() += 1;
        }
        let label = format!("{:?} key={:?}", keyed.request, keyed.key);
        let task = start(&self.app, keyed.clone());
        self.trace.push(format!("start {label}"));
        if keyed.key.is_some() {
            self.in_flight.push((label.clone(), Redo::Request(keyed.clone())));
        }
        self.tasks
            .spawn(label, Box::pin(async move { Finished::Request(keyed, task.await) }));
    }

    fn deliver_webhook(&mut self) {
        let event = {
            let mut provider = self.gateway.provider();
            if provider.outbox.is_empty() {
                return;
            }
            let index = self.rng.index(provider.outbox.len());
            // Some deliveries are repeated later: the event stays in the outbox.
            if self.rng.chance(25) {
                provider.outbox[index].clone()
            } else {
                provider.outbox.swap_remove(index)
            }
        };
        let app = Arc::clone(&self.app);
        let label = format!("webhook {} {:?}", event.event_id, event.kind);
        self.trace.push(format!("start {label}"));
        self.in_flight.push((label.clone(), Redo::Webhook(event.clone())));
        self.tasks.spawn(
            label,
            Box::pin(async move {
                let provider = domain::payment::ProviderName::parse(PROVIDER).unwrap_or_else(|e| panic!("{e}"));
                let result = app.apply_gateway_event(&provider, &event).await;
                let result = result.map(|o| format!("{o:?}")).map_err(|e| e.to_string());
                Finished::Webhook(Box::new(event), result)
            }),
        );
    }

    fn run_job(&mut self) {
        let app = Arc::clone(&self.app);
        let now = self.now();
        let (expiring, following_up) = (
            self.pending.due("expire_abandoned_checkouts", now),
            self.pending.due("run_follow_ups", now),
        );
        let (name, task): (&'static str, crate::executor::Task<Finished>) = match self.rng.below(5) {
            0 => (
                "expire_abandoned_checkouts",
                Box::pin(async move {
                    let result = app.expire_abandoned_checkouts(JOB_BATCH).await.map_err(|e| e.to_string());
                    Finished::Job("expire_abandoned_checkouts", result, expiring)
                }),
            ),
            1 => (
                "run_follow_ups",
                Box::pin(async move {
                    let result = app.run_follow_ups(JOB_BATCH).await.map_err(|e| e.to_string());
                    Finished::Job("run_follow_ups", result, following_up)
                }),
            ),
            2 => (
                "settle_due_calls",
                Box::pin(async move {
                    let result = app.settle_due_calls(JOB_BATCH).await.map_err(|e| e.to_string());
                    Finished::Job("settle_due_calls", result, Vec::new())
                }),
            ),
            3 => (
                "relay_webhooks",
                Box::pin(async move {
                    let result = app.relay_webhooks().await.map(|round| round.events).map_err(|e| e.to_string());
                    Finished::Job("relay_webhooks", result, Vec::new())
                }),
            ),
            _ => (
                "release_expired_holds",
                Box::pin(async move {
                    let result = app.release_expired_holds(JOB_BATCH).await.map_err(|e| e.to_string());
                    Finished::Job("release_expired_holds", result, Vec::new())
                }),
            ),
        };
        self.trace.push(format!("start job {name}"));
        self.tasks.spawn(format!("job {name}"), task);
    }

    fn advance_clock(&mut self) {
        let by = match self.rng.below(10) {
            0 => Duration::minutes(self.rng.range(31, 90)),
            1 if self.rng.chance(30) => Duration::days(self.rng.range(1, 8)),
            _ => Duration::seconds(self.rng.range(1, 120)),
        };
        self.trace.push(format!("clock +{by}"));
        self.clock.advance(by);
    }

    fn inject_store_fault(&mut self) {
        // Now and then the receivers fail instead: the relay retries later.
        if self.rng.chance(20) {
            let attempts = u32::try_from(self.rng.range(1, 6)).unwrap_or(1);
            self.receiver.fail_next(attempts);
            self.trace
                .push(format!("fault: webhook receivers refuse the next {attempts} attempts"));
            return;
        }
        let fault = self.backend.inject_fault(&mut self.rng);
        self.trace.push(format!("fault: {fault}"));
    }

    /// The process dies: every task in flight is dropped. Then, as after a real restart, time
    /// passes beyond the idempotency lease and the recovery jobs run; clients retry their keyed
    /// requests later.
    fn restart(&mut self) {
        let handle = self.backend.driver().handle();
        let _entered = handle.as_ref().map(tokio::runtime::Handle::enter);
        let dropped = self.tasks.drop_all();
        self.trace.push(format!("restart, dropping {} tasks", dropped.len()));
        for (_, redo) in self.in_flight.drain(..) {
            match redo {
                Redo::Request(keyed) => self.retries.push(keyed),
                Redo::Webhook(event) => self.gateway.provider().outbox.push(event),
            }
        }
        self.clock.advance(self.app.settings.idempotency_lease + Duration::seconds(1));
        self.run_job();
        self.run_job();
    }

    /// The end of the world: no new requests, no new faults; the provider settles its pending
    /// refunds and sends every event, and the jobs run while hours pass, until everything the
    /// application started has ended. Afterwards the application and the provider must agree.
    pub fn quiesce(&mut self) {
        self.receiver.fail_next(0);
        let provider_name = domain::payment::ProviderName::parse(PROVIDER).unwrap_or_else(|e| panic!("{e}"));
        for round in 0..=QUIESCE_ROUNDS {
            if round > 0 {
                self.clock.advance(Duration::hours(2));
            }
            crate::gateway::settle_pending_refunds(&self.gateway);
            let events = std::mem::take(&mut self.gateway.provider().outbox);
            for event in events {
                let applied = self
                    .backend
                    .driver()
                    .block_on(self.app.apply_gateway_event(&provider_name, &event), CHECK_POLLS_MAX);
                // A webhook that fails is delivered again, as providers do.
                if !matches!(applied, Some(Ok(_))) {
                    self.gateway.provider().outbox.push(event);
                }
            }
            let _ = self.backend.driver().block_on(self.app.run_follow_ups(1_000), CHECK_POLLS_MAX);
            let _ = self
                .backend
                .driver()
                .block_on(self.app.expire_abandoned_checkouts(1_000), CHECK_POLLS_MAX);
            let _ = self
                .backend
                .driver()
                .block_on(self.app.release_expired_holds(1_000), CHECK_POLLS_MAX);
            let _ = self.backend.driver().block_on(self.app.settle_due_calls(1_000), CHECK_POLLS_MAX);
            let _ = self.backend.driver().block_on(self.app.relay_webhooks(), CHECK_POLLS_MAX);
        }
        // Rounds hours apart let a call fall behind by more than one extension; the real job
        // runs every few seconds. Catch up, as it would have, before the limbo bounds are read.
        for _ in 0..CALL_CATCH_UP_ROUNDS_MAX {
            let settled = self.backend.driver().block_on(self.app.settle_due_calls(1_000), CHECK_POLLS_MAX);
            if matches!(settled, Some(Ok(0))) {
                break;
            }
        }
        // What the calls' job wrote to the outbox is fanned out too.
        for _ in 0..CALL_CATCH_UP_ROUNDS_MAX {
            let relayed = self.backend.driver().block_on(self.app.relay_webhooks(), CHECK_POLLS_MAX);
            if matches!(relayed, Some(Ok(round)) if round.events == 0) {
                break;
            }
        }
        self.last_round = Some(self.now());
        self.trace.push("quiesced".into());
    }

    /// Takes in what a task reports: the orders it made, the retries it calls for, and the
    /// effect it names under its key.
    pub fn finish(&mut self, label: &str, finished: Finished) {
        if let Some(index) = self.in_flight.iter().position(|(known, _)| known == label) {
            self.in_flight.swap_remove(index);
        }
        match finished {
            Finished::Request(keyed, outcome) => {
                match (&outcome.effect, &outcome.error) {
                    (Some(effect), _) => self.trace.push(format!("done {label} => ok {effect}")),
                    (None, error) => self.trace.push(format!("done {label} => err {}", error.as_deref().unwrap_or(""))),
                }
                if let (Some((order, pay)), Request::Checkout { buyer, items, .. }) = (outcome.order, &keyed.request)
                    && !self.orders.iter().any(|known| known.0 == order)
                {
                    let first = items.first().map(|item| item.0);
                    let merchant = self.products.iter().find(|p| Some(p.0) == first).map_or(self.admin, |p| p.2);
                    self.orders.push((order, pay, *buyer, merchant));
                }
                if let (Some(call), Request::StartCall { caller, receiver, .. }) = (outcome.call, &keyed.request)
                    && !self.calls.iter().any(|known| known.0 == call)
                {
                    let receiver = self.someone(*receiver);
                    self.calls.push((call, *caller, receiver));
                }
                if let (Some(endpoint), Request::CreateEndpoint { caller, .. }) = (outcome.endpoint, &keyed.request)
                    && !self.endpoints.iter().any(|known| known.0 == endpoint)
                {
                    self.endpoints.push((endpoint, *caller));
                }
                if let Request::ManageEndpoint { caller, endpoint, action } = &keyed.request
                    && outcome.effect.is_some()
                {
                    let owner = self.endpoints.iter().find(|known| known.0 == *endpoint).map(|known| known.1);
                    if !caller.is_admin() && owner != Some(*caller) {
                        let violation = format!("{} did {action:?} on endpoint {endpoint}, which is not theirs", caller.user_id);
                        self.violations.push(violation);
                    }
                }
                if let Request::Redeliver { delivery, .. } = &keyed.request
                    && let Some(count) = self.redelivering.get_mut(delivery)
                {
                    *count -= 1;
                    if *count == 0 {
                        self.redelivering.remove(delivery);
                    }
                }
                if let (Some(hold), Request::AuthoriseHold { customer, merchant, .. }) = (outcome.hold, &keyed.request)
                    && !self.holds.iter().any(|known| known.0 == hold)
                {
                    let merchant = self.someone(*merchant);
                    self.holds.push((hold, *customer, merchant));
                }
                if let (Some(asked), Request::AskRefund { buyer, order, .. }) = (outcome.asked, &keyed.request)
                    && !self.refund_requests.iter().any(|known| known.0 == asked)
                {
                    let merchant = self
                        .orders
                        .iter()
                        .find(|known| known.0 == *order)
                        .map_or(self.admin, |known| known.3);
                    self.refund_requests.push((asked, *buyer, merchant));
                }
                if let Some(session) = &outcome.session {
                    self.gateway.deliver(session);
                }
                // A client retries what may pass, and sometimes what worked: its answer was lost.
                if keyed.key.is_some() && (outcome.may_pass || self.rng.chance(20)) {
                    self.retries.push(keyed.clone());
                }
                if let (Some(key), Some(effect)) = (keyed.key, outcome.effect) {
                    self.record_effect(key, effect);
                }
            }
            Finished::Job(name, result, due) => {
                self.trace.push(format!("done job {name}: {result:?}"));
                // A round that did not fill its batch took everything due when it started.
                if matches!(result, Ok(n) if n < JOB_BATCH) {
                    self.owed.extend(due);
                }
            }
            Finished::Webhook(event, result) => {
                self.trace.push(format!("done webhook {}: {result:?}", event.event_id));
                // The provider delivers again what was not acknowledged.
                if result.is_err() {
                    self.gateway.provider().outbox.push(*event);
                }
            }
        }
    }

    /// Keys are never reused across requests here, so a key's successful answers must all name
    /// the same effect.
    fn record_effect(&mut self, key: String, effect: String) {
        let first = self.effects.entry(key.clone()).or_insert_with(|| effect.clone());
        if *first != effect {
            let violation = format!("idempotency key {key} has two effects: {first} and {effect}");
            self.violations.push(violation);
        }
    }
}
