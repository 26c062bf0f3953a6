//! Black-box tests: each test starts the real server (on every storage backend) and drives it
//! over HTTP only.

mod helpers;

mod admin_reads;
mod administration;
mod authorization;
mod bad_input;
mod captures;
mod catalog_search;
mod flows;
mod gateways;
mod holds;
mod idempotency;
mod journeys;
mod openapi;
mod ops;
mod pay_again;
mod paystack;
mod properties;
mod readiness;
mod redis;
mod refund_requests;
mod self_service;
mod sessions;
mod statements;
mod typed_client;
mod web_back_office;
mod web_browser;
mod web_client;
mod web_forms;
mod web_pages;
mod web_refund_requests;
mod webhook_endpoints;
mod webhooks;
mod withdrawals;
