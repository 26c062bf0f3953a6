//! How each use case's errors become problem responses: status codes and stable codes.

use actix_web::http::StatusCode;
use application::adjustments::AdjustmentError;
use application::admin_reads::AdminReadError;
use application::administration::AdminActionError;
use application::auth::{LoginError, LogoutError, ProfileError, RefreshError, RegisterError};
use application::calls::CallUseError;
use application::captures::CaptureError;
use application::catalog::CatalogError;
use application::checkout::CheckoutError;
use application::follow_ups::FollowUpError;
use application::holds::HoldUseError;
use application::idempotency::IdempotencyError;
use application::ledger::VerifyLedgerError;
use application::orders::OrderCommandError;
use application::pagination::PageError;
use application::payments::PaymentQueryError;
use application::ports::gateway::{GatewayError, RouteError, WebhookError};
use application::ports::store::StoreError;
use application::refund_requests::RefundRequestUseError;
use application::refunds::RefundError;
use application::settlement::GatewayEventError;
use application::statements::{PeriodError, StatementError};
use application::top_ups::TopUpError;
use application::transfers::TransferError;
use application::wallets::WalletQueryError;
use application::webhooks::WebhookUseError;
use application::withdrawals::WithdrawalError;
use domain::call::CallError;
use domain::catalog::{ProductError, StockError};
use domain::order::OrderError;
use domain::refund_request::RefundRequestError;
use domain::wallet::{HoldError, WalletError};
use domain::webhook::WebhookError as EndpointError;

use crate::problem::ApiError;

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict | StoreError::Timeout | StoreError::Unavailable(_) => ApiError::unavailable(error),
            StoreError::Duplicate(_) => ApiError::conflict("duplicate", "Already exists", "a resource with these values exists already"),
            StoreError::OutcomeUnknown(_) => ApiError::outcome_unknown(error),
            StoreError::Corrupt(_) | StoreError::Unexpected(_) => ApiError::internal(error),
        }
    }
}

fn insufficient_funds(detail: String) -> ApiError {
    ApiError::unprocessable("insufficient_funds", "Insufficient funds", detail)
}

impl From<GatewayError> for ApiError {
    fn from(error: GatewayError) -> Self {
        let gateway_error = |code, title, detail: &str| ApiError::new(StatusCode::BAD_GATEWAY, code, title, detail);
        let problem = match &error {
            GatewayError::Declined(reason) => {
                return ApiError::new(StatusCode::PAYMENT_REQUIRED, "card_declined", "Card declined", reason.clone());
            }
            GatewayError::RateLimited | GatewayError::Unavailable(_) => return ApiError::unavailable(error),
            GatewayError::InvalidRequest(_) => gateway_error(
                "gateway_refused",
                "Payment gateway refused the request",
                "the payment gateway refused the request",
            ),
            GatewayError::Authentication => gateway_error(
                "gateway_misconfigured",
                "Payment gateway misconfigured",
                "the payment gateway did not accept this server's credentials",
            ),
            GatewayError::Unexpected(_) => gateway_error(
                "gateway_bad_response",
                "Unreadable payment gateway answer",
                "the payment gateway's answer could not be read, so the request may or may not have taken effect; \
                 retry with the same Idempotency-Key, or look the resource up",
            )
            .with_retry_after(5),
        };
        tracing::error!(%error, "payment gateway error");
        problem
    }
}

impl From<PageError> for ApiError {
    fn from(error: PageError) -> Self {
        let field = match error {
            PageError::Limit { .. } => "limit",
            PageError::Cursor => "cursor",
        };
        ApiError::bad_request("invalid_query", format!("{field}: {error}")).with_field(field, error.to_string())
    }
}

impl From<IdempotencyError> for ApiError {
    fn from(error: IdempotencyError) -> Self {
        match error {
            IdempotencyError::InProgress => {
                ApiError::conflict("idempotency_key_in_use", "Request in progress", error.to_string()).with_retry_after(1)
            }
            IdempotencyError::Mismatch => ApiError::unprocessable("idempotency_key_reused", "Idempotency key reused", error.to_string()),
            IdempotencyError::Completed => ApiError::conflict(
                crate::respond::IDEMPOTENCY_COMPLETED,
                "Request completed meanwhile",
                error.to_string(),
            ),
            IdempotencyError::Store(error) => error.into(),
        }
    }
}

impl From<RegisterError> for ApiError {
    fn from(error: RegisterError) -> Self {
        match error {
            RegisterError::Email(e) => ApiError::invalid_field("email", e.to_string()),
            RegisterError::Password(e) => ApiError::invalid_field("password", e.to_string()),
            RegisterError::RoleNotAllowed(_) => ApiError::invalid_field("role", "must be customer or merchant"),
            RegisterError::EmailTaken => ApiError::conflict("email_taken", "E-mail address taken", error.to_string()),
            RegisterError::Security(e) => ApiError::internal(e),
            RegisterError::Idempotency(e) => e.into(),
            RegisterError::Store(e) => e.into(),
        }
    }
}

impl From<LoginError> for ApiError {
    fn from(error: LoginError) -> Self {
        match error {
            LoginError::InvalidCredentials => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "Invalid credentials",
                error.to_string(),
            ),
            LoginError::Suspended => account_suspended(),
            LoginError::Security(e) => ApiError::internal(e),
            LoginError::Store(e) => e.into(),
        }
    }
}

impl From<RefreshError> for ApiError {
    fn from(error: RefreshError) -> Self {
        match error {
            RefreshError::Invalid => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_refresh_token",
                "Invalid refresh token",
                error.to_string(),
            ),
            RefreshError::Reused => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "refresh_token_reused",
                "Refresh token reused",
                error.to_string(),
            ),
            RefreshError::Security(e) => ApiError::internal(e),
            RefreshError::Store(e) => e.into(),
        }
    }
}

impl From<LogoutError> for ApiError {
    fn from(error: LogoutError) -> Self {
        match error {
            LogoutError::Store(e) => e.into(),
        }
    }
}

impl From<ProfileError> for ApiError {
    fn from(error: ProfileError) -> Self {
        match error {
            ProfileError::NotFound => ApiError::unauthorized("the token's user no longer exists"),
            ProfileError::Store(e) => e.into(),
        }
    }
}

impl From<WalletQueryError> for ApiError {
    fn from(error: WalletQueryError) -> Self {
        match error {
            WalletQueryError::NotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "wallet_not_found", "Wallet not found", error.to_string())
            }
            WalletQueryError::Store(e) => e.into(),
        }
    }
}

/// Why no card provider takes a payment: none for its currency, or the one the client named is
/// not configured here or does not take the currency (`GET /api/v1/providers` lists them).
fn route_error(error: RouteError) -> ApiError {
    let detail = error.to_string();
    match error {
        RouteError::NoGateway(_) => ApiError::unprocessable("no_gateway", "No gateway", detail),
        RouteError::NotConfigured { .. } => ApiError::unprocessable("provider_not_configured", "Provider not configured", detail),
        RouteError::CurrencyNotTaken { .. } => {
            ApiError::unprocessable("provider_currency_not_supported", "Currency not supported by provider", detail)
        }
    }
}

impl From<TopUpError> for ApiError {
    fn from(error: TopUpError) -> Self {
        match error {
            TopUpError::Amount => ApiError::invalid_field("amount", error.to_string()),
            TopUpError::Route(e) => route_error(e),
            TopUpError::PlatformLimit(_) => ApiError::unprocessable("platform_limit", "Platform limit reached", error.to_string()),
            TopUpError::CheckoutClosed(_) => ApiError::conflict("checkout_closed", "Checkout closed", error.to_string()),
            TopUpError::Idempotency(e) => e.into(),
            TopUpError::Gateway(e) => e.into(),
            TopUpError::Store(e) => e.into(),
        }
    }
}

impl From<PaymentQueryError> for ApiError {
    fn from(error: PaymentQueryError) -> Self {
        match error {
            PaymentQueryError::NotFound => ApiError::not_found("the payment does not exist"),
            PaymentQueryError::Store(e) => e.into(),
        }
    }
}

impl From<WithdrawalError> for ApiError {
    fn from(error: WithdrawalError) -> Self {
        match error {
            WithdrawalError::Destination => ApiError::invalid_field("destination", error.to_string()),
            WithdrawalError::InsufficientFunds { .. } => insufficient_funds(error.to_string()),
            WithdrawalError::NotFound => ApiError::not_found(error.to_string()),
            WithdrawalError::Forbidden => ApiError::forbidden(error.to_string()),
            WithdrawalError::ReasonRequired | WithdrawalError::Reason => ApiError::invalid_field("reason", error.to_string()),
            WithdrawalError::Transition(_) => ApiError::conflict("invalid_transition", "Invalid state transition", error.to_string()),
            WithdrawalError::NotManual { .. } => ApiError::conflict("not_manual_settlement", "Settled by its provider", error.to_string()),
            WithdrawalError::Hold(e) => ApiError::internal(e),
            WithdrawalError::Ledger(e) => ApiError::internal(e),
            WithdrawalError::Idempotency(e) => e.into(),
            WithdrawalError::Store(e) => e.into(),
        }
    }
}

impl From<TransferError> for ApiError {
    fn from(error: TransferError) -> Self {
        match error {
            TransferError::RecipientNotFound => ApiError::unprocessable("recipient_not_found", "Recipient not found", error.to_string()),
            TransferError::SelfTransfer => ApiError::unprocessable("self_transfer", "Transfer to yourself", error.to_string()),
            TransferError::Note => ApiError::invalid_field("note", error.to_string()),
            TransferError::NonPositiveAmount => ApiError::invalid_field("amount", error.to_string()),
            TransferError::InsufficientFunds { .. } => insufficient_funds(error.to_string()),
            TransferError::NotFound => ApiError::not_found(error.to_string()),
            TransferError::Ledger(e) => ApiError::internal(e),
            TransferError::Idempotency(e) => e.into(),
            TransferError::Store(e) => e.into(),
        }
    }
}

impl From<AdjustmentError> for ApiError {
    fn from(error: AdjustmentError) -> Self {
        match error {
            AdjustmentError::Forbidden => ApiError::forbidden(error.to_string()),
            AdjustmentError::UserNotFound => ApiError::not_found(error.to_string()),
            AdjustmentError::Reason => ApiError::invalid_field("reason", error.to_string()),
            AdjustmentError::Zero => ApiError::invalid_field("amount", error.to_string()),
            AdjustmentError::PlatformLimit(_) => ApiError::unprocessable("platform_limit", "Platform limit reached", error.to_string()),
            AdjustmentError::InsufficientFunds { .. } => insufficient_funds(error.to_string()),
            AdjustmentError::Ledger(e) => ApiError::internal(e),
            AdjustmentError::Idempotency(e) => e.into(),
            AdjustmentError::Store(e) => e.into(),
        }
    }
}

impl From<CatalogError> for ApiError {
    fn from(error: CatalogError) -> Self {
        match error {
            CatalogError::NotAMerchant => ApiError::forbidden(error.to_string()),
            CatalogError::NotFound => ApiError::not_found(error.to_string()),
            CatalogError::Product(e) => {
                let field = match e {
                    ProductError::Name { .. } => "name",
                    ProductError::Description { .. } => "description",
                    ProductError::Price => "price",
                    ProductError::CurrencyChange => "currency",
                };
                ApiError::invalid_field(field, e.to_string())
            }
            CatalogError::Stock(e @ StockError::OutOfRange { .. }) => ApiError::invalid_field("stock", e.to_string()),
            CatalogError::Stock(e) => ApiError::conflict("stock_conflict", "Stock conflict", e.to_string()),
            CatalogError::Idempotency(e) => e.into(),
            CatalogError::Store(e) => e.into(),
        }
    }
}

fn order_error(error: OrderError) -> ApiError {
    let detail = error.to_string();
    match error {
        OrderError::Empty | OrderError::TooManyItems { .. } => ApiError::invalid_field("items", detail),
        OrderError::DuplicateProduct(_) => ApiError::unprocessable("duplicate_product", "Duplicate product", detail),
        OrderError::ProductInactive(_) => ApiError::unprocessable("product_unavailable", "Product unavailable", detail),
        OrderError::MixedCurrencies => ApiError::unprocessable("mixed_currencies", "Mixed currencies", detail),
        OrderError::OwnProduct(_) => ApiError::unprocessable("own_product", "Own product", detail),
        OrderError::RefundExceedsPaid { .. } => ApiError::unprocessable("exceeds_refundable", "Exceeds refundable amount", detail),
        OrderError::InvalidAmount => ApiError::invalid_field("amount", detail),
        OrderError::TotalTooLarge { .. } => ApiError::unprocessable("amount_too_large", "Amount too large", detail),
        OrderError::Transition(_) => ApiError::conflict("invalid_state", "Invalid state", detail),
        OrderError::NoPendingPart(_) => ApiError::conflict("part_settled", "Nothing of yours awaits capture", detail),
        OrderError::NotInPart(_) => ApiError::unprocessable("not_your_item", "Not one of your items", detail),
        OrderError::CaptureExceedsOrdered { .. } => {
            ApiError::unprocessable("exceeds_authorised", "More units than were authorised", detail)
        }
        OrderError::Money(e) => ApiError::internal(e),
    }
}

impl From<CaptureError> for ApiError {
    fn from(error: CaptureError) -> Self {
        let detail = error.to_string();
        match error {
            CaptureError::NotFound => ApiError::not_found(detail),
            CaptureError::Forbidden(_) => ApiError::forbidden(detail),
            CaptureError::NotManual | CaptureError::NotAuthorised(_) => ApiError::conflict("invalid_state", "Invalid state", detail),
            CaptureError::Order(e) => order_error(e),
            CaptureError::Hold(e) => ApiError::conflict("invalid_state", "Invalid state", e.to_string()),
            CaptureError::Stock(e) => ApiError::internal(e),
            CaptureError::Ledger(e) => ApiError::internal(e),
            CaptureError::Idempotency(e) => e.into(),
            CaptureError::Store(e) => e.into(),
        }
    }
}

impl From<CheckoutError> for ApiError {
    fn from(error: CheckoutError) -> Self {
        match error {
            CheckoutError::Order(e) => order_error(e),
            CheckoutError::ProductNotFound(_) => ApiError::unprocessable("product_not_found", "Product not found", error.to_string()),
            CheckoutError::OutOfStock { .. } => ApiError::conflict("out_of_stock", "Out of stock", error.to_string()),
            CheckoutError::InsufficientFunds { .. } => insufficient_funds(error.to_string()),
            CheckoutError::NoGateway(_) => ApiError::unprocessable("no_gateway", "No gateway", error.to_string()),
            CheckoutError::ManualCaptureByCard => ApiError::invalid_field("capture", error.to_string()),
            CheckoutError::Route(e) => route_error(e),
            CheckoutError::PlatformLimit(_) => ApiError::unprocessable("platform_limit", "Platform limit reached", error.to_string()),
            CheckoutError::CheckoutClosed(_) => ApiError::conflict("checkout_closed", "Checkout closed", error.to_string()),
            CheckoutError::OrderNotFound => ApiError::not_found(error.to_string()),
            CheckoutError::NotAwaitingPayment(_) => ApiError::conflict("invalid_state", "Invalid state", error.to_string()),
            CheckoutError::BeingPaid => ApiError::conflict("checkout_completed", "Checkout completed", error.to_string()),
            CheckoutError::Gateway(e) => e.into(),
            CheckoutError::Idempotency(e) => e.into(),
            CheckoutError::Ledger(e) => ApiError::internal(e),
            CheckoutError::Store(e) => e.into(),
        }
    }
}

impl From<OrderCommandError> for ApiError {
    fn from(error: OrderCommandError) -> Self {
        match error {
            OrderCommandError::NotFound => ApiError::not_found(error.to_string()),
            OrderCommandError::Forbidden => ApiError::forbidden(error.to_string()),
            OrderCommandError::Reason => ApiError::invalid_field("reason", error.to_string()),
            OrderCommandError::Transition(_) => ApiError::conflict("invalid_state", "Invalid state", error.to_string()),
            OrderCommandError::CheckoutNotClosed(ref gateway) if gateway.may_pass() => {
                let mut problem = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "checkout_not_closed",
                    "Checkout not closed",
                    format!("{error}; the order stays pending: retry shortly"),
                );
                problem = problem.with_retry_after(5);
                problem
            }
            OrderCommandError::CheckoutNotClosed(_) => ApiError::conflict(
                "checkout_not_closed",
                "Checkout not closed",
                format!("{error}; the order stays pending (it may be being paid)"),
            ),
            OrderCommandError::CheckoutCompleted => ApiError::conflict("checkout_completed", "Checkout completed", error.to_string()),
            OrderCommandError::Stock(e) => ApiError::internal(e),
            OrderCommandError::Store(e) => e.into(),
        }
    }
}

impl From<RefundError> for ApiError {
    fn from(error: RefundError) -> Self {
        let detail = error.to_string();
        match error {
            RefundError::NotFound => ApiError::not_found(detail),
            RefundError::Forbidden => ApiError::forbidden(detail),
            RefundError::NotRefundable(_) => ApiError::conflict("not_refundable", "Not refundable", detail),
            RefundError::MerchantRequired => ApiError::invalid_field("merchant_id", detail),
            RefundError::NothingToRefund => ApiError::conflict("nothing_to_refund", "Nothing to refund", detail),
            RefundError::ExceedsRefundable { .. } => ApiError::unprocessable("exceeds_refundable", "Exceeds refundable amount", detail),
            RefundError::InvalidAmount => ApiError::invalid_field("amount", detail),
            RefundError::Reason => ApiError::invalid_field("reason", detail),
            RefundError::MerchantInsufficientFunds { .. } => {
                ApiError::conflict("merchant_insufficient_funds", "Merchant cannot cover the refund", detail)
            }
            RefundError::PaymentNotRefundable => ApiError::conflict("payment_not_refundable", "Payment not refundable", detail),
            RefundError::RequestNotFound => ApiError::not_found(detail),
            RefundError::Request(e) => refund_request_error(e),
            RefundError::Gateway(e) => e.into(),
            RefundError::Order(e) => order_error(e),
            RefundError::Ledger(e) => ApiError::internal(e),
            RefundError::Money(e) => ApiError::internal(e),
            RefundError::Idempotency(e) => e.into(),
            RefundError::Store(e) => e.into(),
        }
    }
}

impl From<CallUseError> for ApiError {
    fn from(error: CallUseError) -> Self {
        let detail = error.to_string();
        match error {
            CallUseError::ReceiverNotFound => ApiError::unprocessable("receiver_not_found", "Receiver not found", detail),
            CallUseError::NotFound => ApiError::not_found(detail),
            CallUseError::Forbidden => ApiError::forbidden(detail),
            CallUseError::Call(CallError::SelfCall) => ApiError::unprocessable("self_call", "Call to yourself", detail),
            CallUseError::Call(CallError::Rate) => ApiError::invalid_field("rate_per_minute", detail),
            CallUseError::Call(CallError::CannotAffordFirstMinute { .. }) => insufficient_funds(detail),
            CallUseError::Call(CallError::AlreadyEnded) => ApiError::conflict("call_already_ended", "Call already ended", detail),
            CallUseError::Call(CallError::Money(e)) | CallUseError::Money(e) => ApiError::internal(e),
            CallUseError::Hold(e) => ApiError::internal(e),
            CallUseError::Ledger(e) => ApiError::internal(e),
            CallUseError::Idempotency(e) => e.into(),
            CallUseError::Store(e) => e.into(),
        }
    }
}

impl From<VerifyLedgerError> for ApiError {
    fn from(error: VerifyLedgerError) -> Self {
        match error {
            VerifyLedgerError::Forbidden => ApiError::forbidden(error.to_string()),
            VerifyLedgerError::Store(e) => e.into(),
        }
    }
}

impl From<StatementError> for ApiError {
    fn from(error: StatementError) -> Self {
        match error {
            StatementError::Forbidden => ApiError::forbidden(error.to_string()),
            StatementError::MerchantRequired => ApiError::invalid_field("merchant_id", "an admin must name the merchant"),
            StatementError::NotFound => ApiError::not_found(error.to_string()),
            StatementError::Period(PeriodError::Empty) => ApiError::invalid_field("to", "must be after from"),
            StatementError::Period(e @ PeriodError::TooLong) => ApiError::invalid_field("to", e.to_string()),
            StatementError::Mismatch(e) => ApiError::internal(e),
            StatementError::Store(e) => e.into(),
        }
    }
}

impl From<GatewayEventError> for ApiError {
    fn from(error: GatewayEventError) -> Self {
        let detail = error.to_string();
        match error {
            GatewayEventError::UnknownProvider(_) => ApiError::new(StatusCode::NOT_FOUND, "unknown_provider", "Unknown provider", detail),
            GatewayEventError::Verification(WebhookError::MalformedPayload(_)) => ApiError::bad_request("malformed_event", detail),
            GatewayEventError::Verification(_) => ApiError::bad_request("invalid_signature", detail),
            GatewayEventError::AmountMismatch { .. } => ApiError::unprocessable("amount_mismatch", "Amount mismatch", detail),
            GatewayEventError::NotConfirmed => ApiError::unprocessable("payment_not_confirmed", "Payment not confirmed", detail),
            GatewayEventError::Gateway(e) => e.into(),
            GatewayEventError::Order(OrderError::Transition(e)) => ApiError::conflict("invalid_state", "Invalid state", e.to_string()),
            GatewayEventError::Order(e) => ApiError::internal(e),
            GatewayEventError::Ledger(e) => ApiError::internal(e),
            GatewayEventError::Stock(e) => ApiError::internal(e),
            GatewayEventError::Refund(e) => ApiError::internal(e),
            GatewayEventError::Money(e) => ApiError::internal(e),
            GatewayEventError::Store(e) => e.into(),
        }
    }
}

impl From<FollowUpError> for ApiError {
    fn from(error: FollowUpError) -> Self {
        match error {
            FollowUpError::Forbidden => ApiError::forbidden(error.to_string()),
            FollowUpError::Store(e) => e.into(),
        }
    }
}

impl From<WebhookUseError> for ApiError {
    fn from(error: WebhookUseError) -> Self {
        let detail = error.to_string();
        match error {
            WebhookUseError::Forbidden => ApiError::forbidden(detail),
            WebhookUseError::NotFound | WebhookUseError::DeliveryNotFound => ApiError::not_found(detail),
            WebhookUseError::Invalid(EndpointError::Url(_)) => ApiError::invalid_field("url", detail),
            WebhookUseError::Invalid(EndpointError::EventTypes(_)) => ApiError::invalid_field("events", detail),
            WebhookUseError::Invalid(EndpointError::Description { .. }) => ApiError::invalid_field("description", detail),
            WebhookUseError::Overlap { .. } => ApiError::invalid_field("overlap_seconds", detail),
            WebhookUseError::Range { .. } => ApiError::invalid_field("to", detail),
            WebhookUseError::Store(e) => e.into(),
        }
    }
}

impl From<HoldUseError> for ApiError {
    fn from(error: HoldUseError) -> Self {
        let detail = error.to_string();
        match error {
            HoldUseError::NotFound => ApiError::not_found(detail),
            HoldUseError::NoWallet(_) => ApiError::unprocessable("no_wallet", "No wallet in this currency", detail),
            HoldUseError::MerchantNotFound | HoldUseError::SelfHold => ApiError::invalid_field("merchant_id", detail),
            HoldUseError::ConsentRequired => ApiError::new(
                StatusCode::FORBIDDEN,
                "consent_required",
                "The customer's consent is required",
                detail,
            ),
            HoldUseError::Expiry => ApiError::invalid_field("expires_in_seconds", detail),
            HoldUseError::Description => ApiError::invalid_field("description", detail),
            HoldUseError::Forbidden(_) => ApiError::forbidden(detail),
            HoldUseError::InsufficientFunds { .. } => insufficient_funds(detail),
            HoldUseError::Hold(HoldError::NotPending(_)) => ApiError::conflict("hold_not_pending", "The hold is settled", detail),
            HoldUseError::Hold(HoldError::CaptureExceedsHold { .. }) => {
                ApiError::unprocessable("capture_exceeds_hold", "More than the hold has left", detail)
            }
            HoldUseError::Hold(HoldError::ExpiryInThePast) => ApiError::invalid_field("expires_in_seconds", detail),
            HoldUseError::Hold(HoldError::Wallet(WalletError::CurrencyMismatch { .. })) | HoldUseError::Money(_) => {
                ApiError::invalid_field("currency", detail)
            }
            HoldUseError::Hold(HoldError::Wallet(WalletError::NotPositive)) => ApiError::invalid_field("amount", detail),
            HoldUseError::Hold(error) => ApiError::internal(error),
            HoldUseError::Ledger(e) => ApiError::internal(e),
            HoldUseError::Idempotency(e) => e.into(),
            HoldUseError::Store(e) => e.into(),
        }
    }
}

impl From<AdminReadError> for ApiError {
    fn from(error: AdminReadError) -> Self {
        match error {
            AdminReadError::Forbidden => ApiError::forbidden(error.to_string()),
            AdminReadError::NotFound(_) => ApiError::not_found(error.to_string()),
            AdminReadError::Store(e) => e.into(),
        }
    }
}

/// A suspended account: the credentials or token are right, the account may not act.
pub(crate) fn account_suspended() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "account_suspended",
        "Account suspended",
        "the account is suspended: contact support",
    )
}

impl From<AdminActionError> for ApiError {
    fn from(error: AdminActionError) -> Self {
        let detail = error.to_string();
        match error {
            AdminActionError::Forbidden | AdminActionError::AdminTarget => ApiError::forbidden(detail),
            AdminActionError::UserNotFound => ApiError::not_found(detail),
            AdminActionError::Reason => ApiError::invalid_field("reason", detail),
            AdminActionError::Unchanged(_) => ApiError::conflict("invalid_state", "Invalid state", detail),
            AdminActionError::Store(e) => e.into(),
        }
    }
}

/// A refund request's own refusals: a bad reason, note or amount, or a decided request.
fn refund_request_error(error: RefundRequestError) -> ApiError {
    let detail = error.to_string();
    match error {
        RefundRequestError::Reason => ApiError::invalid_field("reason", detail),
        RefundRequestError::Note => ApiError::invalid_field("note", detail),
        RefundRequestError::Amount => ApiError::invalid_field("amount", detail),
        RefundRequestError::Transition { .. } => ApiError::conflict("refund_request_closed", "Refund request decided already", detail),
    }
}

impl From<RefundRequestUseError> for ApiError {
    fn from(error: RefundRequestUseError) -> Self {
        use RefundRequestUseError as E;
        let detail = error.to_string();
        match error {
            E::NotFound | E::OrderNotFound => ApiError::not_found(detail),
            E::NotDecider | E::NotBuyer => ApiError::forbidden(detail),
            E::NotRefundable(_) => ApiError::conflict("not_refundable", "Not refundable", detail),
            E::MerchantRequired | E::NotAMerchant => ApiError::invalid_field("merchant_id", detail),
            E::NothingToRefund => ApiError::conflict("nothing_to_refund", "Nothing to refund", detail),
            E::ExceedsRefundable { .. } => ApiError::unprocessable("exceeds_refundable", "Exceeds refundable amount", detail),
            E::Currency => ApiError::invalid_field("amount", detail),
            E::AlreadyOpen => ApiError::conflict("refund_request_open", "A refund request is open already", detail),
            E::Request(e) => refund_request_error(e),
            E::Money(e) => ApiError::internal(e),
            E::Idempotency(e) => e.into(),
            E::Store(e) => e.into(),
        }
    }
}
