-- The catalog (products and their stock) and orders with their items and audit trail.

CREATE TABLE products (
    id          uuid PRIMARY KEY,
    merchant_id uuid NOT NULL REFERENCES users (id),
    name        text NOT NULL,
    description text NOT NULL,
    currency    currency_code NOT NULL,
    price       bigint NOT NULL CHECK (price > 0),
    active      boolean NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);

-- Listings are newest first by (created_at, id), resumed after a cursor.
CREATE INDEX products_newest ON products (created_at DESC, id DESC);
CREATE INDEX products_active_newest ON products (created_at DESC, id DESC) WHERE active;
CREATE INDEX products_by_merchant ON products (merchant_id, created_at DESC, id DESC);

-- Stock lives apart from the product: it is the hot row every sale locks and updates, so it stays
-- narrow (cheap HOT updates) and catalog edits never wait for checkouts, nor checkouts for edits.
CREATE TABLE stock (
    product_id uuid PRIMARY KEY REFERENCES products (id),
    available  bigint NOT NULL,
    reserved   bigint NOT NULL,
    CONSTRAINT stock_available_not_negative CHECK (available >= 0),
    CONSTRAINT stock_reserved_not_negative CHECK (reserved >= 0)
) WITH (fillfactor = 70);

CREATE TABLE orders (
    id             uuid PRIMARY KEY,
    buyer_id       uuid NOT NULL REFERENCES users (id),
    currency       currency_code NOT NULL,
    total          bigint NOT NULL CHECK (total > 0),
    refunded       bigint NOT NULL,
    payment_method text NOT NULL CHECK (payment_method IN ('wallet', 'card')),
    status         text NOT NULL CHECK (status IN ('created', 'payment_pending', 'paid', 'fulfilled', 'cancelled',
                                                   'partially_refunded', 'refunded')),
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    CONSTRAINT orders_refunded_within_total CHECK (refunded >= 0 AND refunded <= total)
);

CREATE INDEX orders_by_buyer ON orders (buyer_id, created_at DESC, id DESC);
CREATE INDEX orders_newest ON orders (created_at DESC, id DESC);
CREATE INDEX orders_by_status ON orders (status, created_at DESC, id DESC);

-- Items keep the name and price the buyer saw. All items share the order's currency.
CREATE TABLE order_items (
    order_id     uuid NOT NULL REFERENCES orders (id),
    position     integer NOT NULL,
    product_id   uuid NOT NULL REFERENCES products (id),
    merchant_id  uuid NOT NULL REFERENCES users (id),
    product_name text NOT NULL,
    quantity     integer NOT NULL CHECK (quantity > 0),
    unit_price   bigint NOT NULL CHECK (unit_price > 0),
    PRIMARY KEY (order_id, position)
);

-- A merchant's sales: the orders with at least one of their items.
CREATE INDEX order_items_by_merchant ON order_items (merchant_id, order_id);

-- The audit trail. `id` is the sequence the trail is listed and paginated by; `from_status` is
-- NULL for the change that created the order.
CREATE TABLE order_status_history (
    id          bigserial PRIMARY KEY,
    order_id    uuid NOT NULL REFERENCES orders (id),
    from_status text,
    to_status   text NOT NULL,
    actor       text NOT NULL,
    reason      text NOT NULL,
    at          timestamptz NOT NULL
);

CREATE INDEX order_status_history_by_order ON order_status_history (order_id, id DESC);
