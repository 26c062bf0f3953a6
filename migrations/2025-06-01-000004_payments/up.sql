-- Card payments (for an order or a wallet top-up) and refunds.

CREATE TABLE payments (
    id                  uuid PRIMARY KEY,
    purpose             text NOT NULL CHECK (purpose IN ('order', 'top_up')),
    order_id            uuid REFERENCES orders (id),
    top_up_user_id      uuid REFERENCES users (id),
    payer_id            uuid NOT NULL REFERENCES users (id),
    provider            text NOT NULL,
    currency            currency_code NOT NULL,
    amount              bigint NOT NULL CHECK (amount > 0),
    status              text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed', 'expired', 'cancelled')),
    provider_session_id text,
    provider_payment_id text,
    checkout_url        text,
    disputed            boolean NOT NULL,
    late_success        boolean NOT NULL,
    created_at          timestamptz NOT NULL,
    expires_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    CONSTRAINT payments_purpose CHECK (
        (purpose = 'order' AND order_id IS NOT NULL AND top_up_user_id IS NULL)
        OR (purpose = 'top_up' AND top_up_user_id IS NOT NULL AND order_id IS NULL))
);

-- The latest payment of an order; a webhook's payment by session or by the provider's payment id;
-- the expiry job's pending payments, oldest deadline first.
CREATE INDEX payments_by_order ON payments (order_id, created_at DESC, id DESC) WHERE order_id IS NOT NULL;
CREATE INDEX payments_by_session ON payments (provider, provider_session_id) WHERE provider_session_id IS NOT NULL;
CREATE INDEX payments_by_provider_payment ON payments (provider, provider_payment_id) WHERE provider_payment_id IS NOT NULL;
CREATE INDEX payments_pending_by_expiry ON payments (expires_at, id) WHERE status = 'pending';

CREATE TABLE refunds (
    id                 uuid PRIMARY KEY,
    order_id           uuid NOT NULL REFERENCES orders (id),
    payment_id         uuid REFERENCES payments (id),
    merchant_id        uuid NOT NULL REFERENCES users (id),
    currency           currency_code NOT NULL,
    amount             bigint NOT NULL CHECK (amount > 0),
    status             text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    provider_refund_id text,
    reason             text NOT NULL,
    requested_by       uuid NOT NULL REFERENCES users (id),
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL
);

CREATE INDEX refunds_by_order ON refunds (order_id, created_at, id);
CREATE INDEX refunds_by_provider_id ON refunds (provider_refund_id) WHERE provider_refund_id IS NOT NULL;
