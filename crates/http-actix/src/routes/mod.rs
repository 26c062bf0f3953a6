//! The API's routes, one module per area. `ROUTES` (generated with the registration) lists every
//! method and path the server answers, so a test can hold the OpenAPI document to it.

pub mod admin;
pub mod admin_reads;
pub mod admin_withdrawals;
pub mod auth;
pub mod calls;
pub mod catalog;
pub mod checkout_return;
pub mod holds;
pub mod ops;
pub mod orders;
pub mod providers;
pub mod refund_requests;
pub mod simulator;
pub mod statements;
pub mod wallets;
pub mod webhook_endpoints;
pub mod webhooks;

use actix_web::web;
use application::ports::store::UnitOfWork;

use crate::state::ApiState;

pub type State<U> = web::Data<ApiState<U>>;

macro_rules! api_routes {
    ($($method:ident $path:literal => $($handler:ident)::+;)*) => {
        /// Every documented route: (method, path).
        pub const ROUTES: &[(&str, &str)] = &[$((stringify!($method), $path)),*];

        /// Registers every documented route.
        pub fn register<U: UnitOfWork>(cfg: &mut web::ServiceConfig) {
            $(cfg.route($path, web::$method().to($($handler)::+::<U>));)*
        }
    };
}

api_routes! {
    post "/api/v1/auth/register" => auth::register;
    post "/api/v1/auth/login" => auth::login;
    post "/api/v1/auth/refresh" => auth::refresh;
    post "/api/v1/auth/logout" => auth::logout;
    get "/api/v1/auth/me" => auth::me;

    get "/api/v1/wallets" => wallets::list;
    get "/api/v1/wallets/{currency}" => wallets::show;
    get "/api/v1/wallets/{currency}/transactions" => wallets::history;
    post "/api/v1/wallets/{currency}/top-ups" => wallets::top_up;
    post "/api/v1/wallets/{currency}/withdrawals" => wallets::withdraw;
    get "/api/v1/withdrawals" => wallets::withdrawals;
    get "/api/v1/withdrawals/{id}" => wallets::withdrawal;
    get "/api/v1/payments" => wallets::payments;
    get "/api/v1/payments/{id}" => wallets::payment;
    post "/api/v1/transfers" => wallets::transfer;
    get "/api/v1/transfers/{id}" => wallets::transfer_details;

    get "/api/v1/products" => catalog::list;
    post "/api/v1/products" => catalog::create;
    get "/api/v1/products/{id}" => catalog::show;
    patch "/api/v1/products/{id}" => catalog::update;
    delete "/api/v1/products/{id}" => catalog::delete;
    patch "/api/v1/products/{id}/stock" => catalog::set_stock;
    get "/api/v1/merchant/products" => catalog::merchant_products;

    post "/api/v1/orders" => orders::create;
    get "/api/v1/orders" => orders::list_mine;
    get "/api/v1/orders/{id}" => orders::show;
    post "/api/v1/orders/{id}/cancel" => orders::cancel;
    post "/api/v1/orders/{id}/pay" => orders::pay_again;
    post "/api/v1/orders/{id}/capture" => orders::capture;
    post "/api/v1/orders/{id}/void" => orders::void;
    post "/api/v1/orders/{id}/fulfill" => orders::fulfil;
    post "/api/v1/orders/{id}/refunds" => orders::refund;
    post "/api/v1/orders/{id}/refund-requests" => refund_requests::ask;
    get "/api/v1/refund-requests" => refund_requests::list;
    get "/api/v1/refund-requests/{id}" => refund_requests::show;
    post "/api/v1/refund-requests/{id}/approve" => refund_requests::approve;
    post "/api/v1/refund-requests/{id}/decline" => refund_requests::decline;
    post "/api/v1/refund-requests/{id}/withdraw" => refund_requests::withdraw;
    get "/api/v1/merchant/sales" => orders::merchant_sales;
    get "/api/v1/admin/orders" => orders::admin_list;
    post "/api/v1/admin/orders/{id}/cancel" => admin::cancel_order;

    post "/api/v1/calls" => calls::start;
    post "/api/v1/calls/{id}/end" => calls::end;
    get "/api/v1/calls" => calls::list;

    post "/api/v1/holds" => holds::authorise;
    get "/api/v1/holds/{id}" => holds::show;
    post "/api/v1/holds/{id}/capture" => holds::capture;
    post "/api/v1/holds/{id}/void" => holds::void;

    post "/api/v1/admin/wallets/{user_id}/adjustments" => admin::adjust;
    get "/api/v1/admin/ledger/verify" => admin::verify_ledger;
    get "/api/v1/admin/audit" => admin::audit;
    get "/api/v1/admin/users" => admin::users;
    get "/api/v1/admin/users/{id}" => admin::user;
    post "/api/v1/admin/users/{id}/suspend" => admin::suspend;
    post "/api/v1/admin/users/{id}/reactivate" => admin::reactivate;
    get "/api/v1/admin/actions" => admin::actions;
    get "/api/v1/admin/follow-ups" => admin::follow_ups;
    get "/api/v1/admin/withdrawals" => admin_withdrawals::list;
    get "/api/v1/admin/payments" => admin_reads::payments;
    get "/api/v1/admin/payments/{id}" => admin_reads::payment;
    get "/api/v1/admin/refunds" => admin_reads::refunds;
    get "/api/v1/admin/refunds/{id}" => admin_reads::refund;
    get "/api/v1/admin/inventory" => admin_reads::inventory;
    get "/api/v1/admin/wallets" => admin_reads::wallets;
    get "/api/v1/admin/wallets/{id}" => admin_reads::wallet;
    get "/api/v1/admin/journal" => admin_reads::journal;
    get "/api/v1/admin/journal/{id}" => admin_reads::journal_transaction;
    get "/api/v1/admin/transfers" => admin_reads::transfers;
    get "/api/v1/admin/transfers/{id}" => admin_reads::transfer;
    get "/api/v1/admin/calls" => admin_reads::calls;
    get "/api/v1/admin/calls/{id}" => admin_reads::call;
    get "/api/v1/admin/webhook-events" => admin_reads::webhook_events;
    get "/api/v1/admin/webhook-events/{id}" => admin_reads::webhook_event;
    post "/api/v1/admin/withdrawals/{id}/approve" => admin_withdrawals::approve;
    post "/api/v1/admin/withdrawals/{id}/reject" => admin_withdrawals::reject;
    post "/api/v1/admin/withdrawals/{id}/mark-paid" => admin_withdrawals::mark_paid;
    post "/api/v1/admin/withdrawals/{id}/mark-failed" => admin_withdrawals::mark_failed;

    get "/api/v1/statements" => statements::show;

    post "/api/v1/webhooks/{provider}" => webhooks::receive;
    get "/api/v1/providers" => providers::list;

    post "/api/v1/webhook-endpoints" => webhook_endpoints::create;
    get "/api/v1/webhook-endpoints" => webhook_endpoints::list;
    get "/api/v1/webhook-endpoints/{id}" => webhook_endpoints::show;
    patch "/api/v1/webhook-endpoints/{id}" => webhook_endpoints::update;
    delete "/api/v1/webhook-endpoints/{id}" => webhook_endpoints::delete;
    post "/api/v1/webhook-endpoints/{id}/roll-secret" => webhook_endpoints::roll_secret;
    post "/api/v1/webhook-endpoints/{id}/test" => webhook_endpoints::test;
    get "/api/v1/webhook-endpoints/{id}/deliveries" => webhook_endpoints::deliveries;
    post "/api/v1/webhook-endpoints/{id}/redeliver" => webhook_endpoints::redeliver_range;
    post "/api/v1/webhook-deliveries/{id}/redeliver" => webhook_endpoints::redeliver;
    get "/api/v1/webhook-event-types" => webhook_endpoints::event_types;

    get "/simulator/checkout/{session_id}" => simulator::show;
    post "/simulator/checkout/{session_id}/pay" => simulator::pay;
    post "/simulator/checkout/{session_id}/decline" => simulator::decline;

    get "/checkout/complete" => checkout_return::complete;
    get "/checkout/cancelled" => checkout_return::cancelled;

    get "/health/live" => ops::live;
    get "/health/ready" => ops::ready;
    get "/metrics" => ops::metrics;
}
