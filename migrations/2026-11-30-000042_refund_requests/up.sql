-- A buyer's request for (part of) a merchant's share of a paid order back, decided by that
-- merchant or an admin. An approved request names the refund its approval made.
CREATE TABLE refund_requests (
    id          uuid PRIMARY KEY,
    order_id    uuid NOT NULL REFERENCES orders (id),
    buyer_id    uuid NOT NULL REFERENCES users (id),
    merchant_id uuid NOT NULL REFERENCES users (id),
    -- Both empty: everything left of the merchant's share when it is approved.
    currency    currency_code,
    amount      bigint CHECK (amount > 0),
    reason      text NOT NULL CHECK (char_length(reason) BETWEEN 1 AND 500),
    status      text NOT NULL CHECK (status IN ('open', 'approved', 'declined', 'withdrawn')),
    decided_by  uuid REFERENCES users (id),
    note        text CHECK (char_length(note) BETWEEN 1 AND 500),
    refund_id   uuid REFERENCES refunds (id),
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    CHECK ((currency IS NULL) = (amount IS NULL)),
    CHECK ((status = 'approved') = (refund_id IS NOT NULL)),
    CHECK ((status = 'declined') = (note IS NOT NULL))
);

-- At most one open request per order and merchant; the name is the one `StoreError::Duplicate`
-- reports.
CREATE UNIQUE INDEX refund_requests_open ON refund_requests (order_id, merchant_id) WHERE status = 'open';
CREATE INDEX refund_requests_by_merchant ON refund_requests (merchant_id, created_at DESC, id DESC);
CREATE INDEX refund_requests_by_buyer ON refund_requests (buyer_id, created_at DESC, id DESC);
CREATE INDEX refund_requests_by_order ON refund_requests (order_id, created_at DESC, id DESC);
