//! The tables of the in-memory store.

use application::auth::RefreshToken;
use application::idempotency::{IdempotencyKey, IdempotencyRecord};
use application::ports::store::ReceivedWebhook;
use domain::call::CallSession;
use domain::catalog::{Product, Stock};
use domain::events::OutboxEvent;
use domain::follow_up::{FollowUp, FollowUpTask};
use domain::ids::{
    CallId, EventId, HoldId, OrderId, PaymentId, ProductId, ReceivedWebhookId, RefreshTokenId, RefundId, RefundRequestId, TransferId,
    UserId, WalletId, WebhookDeliveryId, WebhookEndpointId, WithdrawalId,
};
use domain::ledger::{JournalTransaction, Posting};
use domain::money::Currency;
use domain::order::{Order, StatusChange};
use domain::payment::{Payment, Refund};
use domain::refund_request::RefundRequest;
use domain::user::{AdminAction, Email, User};
use domain::wallet::{Hold, Transfer, Wallet};
use domain::webhook::{WebhookDelivery, WebhookEndpoint};
use domain::withdrawal::Withdrawal;
use imbl::{HashMap, OrdMap, Vector};
use time::OffsetDateTime;

#[derive(Debug, Clone, Default)]
pub(crate) struct State {
    pub users: HashMap<UserId, User>,
    pub users_by_email: HashMap<Email, UserId>,
    /// The admins' audit trail, in the order recorded.
    pub admin_actions: Vector<AdminAction>,
    pub refresh_tokens: HashMap<RefreshTokenId, RefreshToken>,
    pub refresh_tokens_by_hash: HashMap<String, RefreshTokenId>,
    pub wallets: OrdMap<WalletId, Wallet>,
    pub user_wallets: HashMap<(UserId, Currency), WalletId>,
    pub system_wallets: HashMap<(String, Currency), WalletId>,
    pub journal: Vector<JournalTransaction>,
    /// Postings in the order they were made; a posting's sequence is its index plus one.
    pub postings: Vector<Posting>,
    pub holds: HashMap<HoldId, Hold>,
    pub products: HashMap<ProductId, Product>,
    pub stock: HashMap<ProductId, Stock>,
    pub orders: HashMap<OrderId, Order>,
    /// The audit trail; an entry's sequence is its index plus one.
    pub status_changes: Vector<StatusChange>,
    pub payments: HashMap<PaymentId, Payment>,
    pub refunds: HashMap<RefundId, Refund>,
    pub refund_requests: HashMap<RefundRequestId, RefundRequest>,
    pub transfers: HashMap<TransferId, Transfer>,
    pub withdrawals: HashMap<WithdrawalId, Withdrawal>,
    pub calls: HashMap<CallId, CallSession>,
    pub idempotency: HashMap<(Option<UserId>, IdempotencyKey), IdempotencyRecord>,
    /// The webhook inbox, by (provider, the provider's event id).
    pub webhook_events: HashMap<(String, String), ReceivedWebhook>,
    pub webhook_event_keys: HashMap<ReceivedWebhookId, (String, String)>,
    pub outbox: Vector<(OutboxEvent, Option<OffsetDateTime>)>,
    /// Each event's position in `outbox`.
    pub outbox_index: HashMap<EventId, usize>,
    pub follow_ups: OrdMap<FollowUpTask, FollowUp>,
    pub webhook_endpoints: OrdMap<WebhookEndpointId, WebhookEndpoint>,
    pub webhook_deliveries: OrdMap<WebhookDeliveryId, WebhookDelivery>,
    /// Until when a deliverer holds an endpoint.
    pub webhook_holds: HashMap<WebhookEndpointId, OffsetDateTime>,
}
