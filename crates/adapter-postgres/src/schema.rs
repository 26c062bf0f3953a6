//! The tables of `migrations/`, as diesel sees them: the SQL type of every column, which the row
//! structs (`QueryableByName` with `table_name`) are checked against at compile time.
//!
//! `currency_code` is a domain over `char(3)` and reads as text.

diesel::table! {
    users (id) {
        id -> Uuid,
        email -> Text,
        password_hash -> Text,
        role -> Text,
        created_at -> Timestamptz,
        suspended_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    admin_actions (id) {
        id -> Uuid,
        admin_id -> Uuid,
        kind -> Text,
        subject -> Text,
        reason -> Text,
        details -> Text,
        at -> Timestamptz,
    }
}

diesel::table! {
    refresh_tokens (id) {
        id -> Uuid,
        user_id -> Uuid,
        family_id -> Uuid,
        token_hash -> Text,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    wallets (id) {
        id -> Uuid,
        owner_user_id -> Nullable<Uuid>,
        system_code -> Nullable<Text>,
        currency -> Text,
        balance -> BigInt,
        held -> BigInt,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    ledger_transactions (id) {
        id -> Uuid,
        kind -> Text,
        reference -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    postings (id) {
        id -> BigInt,
        transaction_id -> Uuid,
        wallet_id -> Uuid,
        currency -> Text,
        amount -> BigInt,
        balance_after -> BigInt,
    }
}

diesel::table! {
    holds (id) {
        id -> Uuid,
        wallet_id -> Uuid,
        currency -> Text,
        amount -> BigInt,
        captured -> BigInt,
        status -> Text,
        reference -> Text,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        settled_at -> Nullable<Timestamptz>,
        payee_id -> Nullable<Uuid>,
        order_id -> Nullable<Uuid>,
    }
}

diesel::table! {
    transfers (id) {
        id -> Uuid,
        from_user_id -> Uuid,
        to_user_id -> Uuid,
        currency -> Text,
        amount -> BigInt,
        transaction_id -> Uuid,
        note -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    withdrawals (id) {
        id -> Uuid,
        user_id -> Uuid,
        currency -> Text,
        amount -> BigInt,
        destination -> Text,
        transaction_id -> Nullable<Uuid>,
        created_at -> Timestamptz,
        status -> Text,
        hold_id -> Nullable<Uuid>,
        decided_by -> Nullable<Uuid>,
        decided_at -> Nullable<Timestamptz>,
        reason -> Nullable<Text>,
        settlement -> Nullable<Text>,
        provider -> Nullable<Text>,
        provider_reference -> Nullable<Text>,
        failure_reason -> Nullable<Text>,
        settled_by -> Nullable<Uuid>,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    products (id) {
        id -> Uuid,
        merchant_id -> Uuid,
        name -> Text,
        description -> Text,
        currency -> Text,
        price -> BigInt,
        active -> Bool,
        archived_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    stock (product_id) {
        product_id -> Uuid,
        available -> BigInt,
        reserved -> BigInt,
    }
}

diesel::table! {
    orders (id) {
        id -> Uuid,
        buyer_id -> Uuid,
        currency -> Text,
        total -> BigInt,
        refunded -> BigInt,
        payment_method -> Text,
        status -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        capture_method -> Text,
    }
}

diesel::table! {
    order_items (order_id, position) {
        order_id -> Uuid,
        position -> Integer,
        product_id -> Uuid,
        merchant_id -> Uuid,
        product_name -> Text,
        quantity -> Integer,
        unit_price -> BigInt,
        captured_quantity -> Nullable<Integer>,
    }
}

diesel::table! {
    order_status_history (id) {
        id -> BigInt,
        order_id -> Uuid,
        from_status -> Nullable<Text>,
        to_status -> Text,
        actor -> Text,
        reason -> Text,
        at -> Timestamptz,
    }
}

diesel::table! {
    payments (id) {
        id -> Uuid,
        purpose -> Text,
        order_id -> Nullable<Uuid>,
        top_up_user_id -> Nullable<Uuid>,
        payer_id -> Uuid,
        provider -> Text,
        currency -> Text,
        amount -> BigInt,
        status -> Text,
        provider_session_id -> Nullable<Text>,
        provider_payment_id -> Nullable<Text>,
        checkout_url -> Nullable<Text>,
        disputed -> Bool,
        late_success -> Bool,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    refunds (id) {
        id -> Uuid,
        order_id -> Uuid,
        payment_id -> Nullable<Uuid>,
        merchant_id -> Uuid,
        currency -> Text,
        amount -> BigInt,
        status -> Text,
        provider_refund_id -> Nullable<Text>,
        reason -> Text,
        requested_by -> Nullable<Uuid>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    refund_requests (id) {
        id -> Uuid,
        order_id -> Uuid,
        buyer_id -> Uuid,
        merchant_id -> Uuid,
        currency -> Nullable<Text>,
        amount -> Nullable<BigInt>,
        reason -> Text,
        status -> Text,
        decided_by -> Nullable<Uuid>,
        note -> Nullable<Text>,
        refund_id -> Nullable<Uuid>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    call_sessions (id) {
        id -> Uuid,
        caller_id -> Uuid,
        receiver_id -> Uuid,
        currency -> Text,
        rate_per_minute -> BigInt,
        hold_id -> Uuid,
        authorized_minutes -> Integer,
        status -> Text,
        started_at -> Timestamptz,
        ended_at -> Nullable<Timestamptz>,
        billed_minutes -> Integer,
        charged -> BigInt,
    }
}

diesel::table! {
    idempotency_keys (principal, key) {
        principal -> Text,
        key -> Text,
        fingerprint -> Text,
        state -> Text,
        locked_until -> Nullable<Timestamptz>,
        response_status -> Nullable<Integer>,
        response_body -> Nullable<Bytea>,
        response_location -> Nullable<Text>,
        recovery_point -> Nullable<Text>,
        created_at -> Timestamptz,
        completed_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    processed_webhook_events (provider, event_id) {
        provider -> Text,
        event_id -> Text,
        event_type -> Text,
        received_at -> Timestamptz,
        id -> Uuid,
        payment_id -> Nullable<Uuid>,
        provider_reference -> Nullable<Text>,
        outcome -> Nullable<Text>,
        outcome_detail -> Nullable<Text>,
    }
}

diesel::table! {
    outbox_events (id) {
        id -> Uuid,
        sequence -> BigInt,
        event_type -> Text,
        payload -> Jsonb,
        occurred_at -> Timestamptz,
        published_at -> Nullable<Timestamptz>,
    }
}
