-- The least schema a correct wallet purchase needs, shaped like the service's own tables:
-- stock with a non-negative check, wallets with a no-overdraft check, append-only postings
-- with the balance after, orders and their items.
DROP TABLE IF EXISTS bench_order_items, bench_orders, bench_postings, bench_wallets, bench_stock, bench_products CASCADE;

CREATE TABLE bench_products (
    id          bigint PRIMARY KEY,
    merchant_id bigint NOT NULL,
    price       bigint NOT NULL CHECK (price > 0)
);

CREATE TABLE bench_stock (
    product_id bigint PRIMARY KEY REFERENCES bench_products (id),
    available  bigint NOT NULL CHECK (available >= 0)
);

CREATE TABLE bench_wallets (
    id      bigint PRIMARY KEY,
    balance bigint NOT NULL CHECK (balance >= 0)
);

CREATE TABLE bench_postings (
    id            bigserial PRIMARY KEY,
    transaction_id uuid NOT NULL,
    wallet_id     bigint NOT NULL REFERENCES bench_wallets (id),
    amount        bigint NOT NULL,
    balance_after bigint NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX bench_postings_wallet ON bench_postings (wallet_id, id DESC);

CREATE TABLE bench_orders (
    id         uuid PRIMARY KEY,
    buyer_id   bigint NOT NULL,
    total      bigint NOT NULL,
    status     text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX bench_orders_buyer ON bench_orders (buyer_id, created_at DESC);

CREATE TABLE bench_order_items (
    order_id   uuid NOT NULL REFERENCES bench_orders (id),
    product_id bigint NOT NULL,
    merchant_id bigint NOT NULL,
    quantity   int NOT NULL,
    unit_price bigint NOT NULL
);
CREATE INDEX bench_order_items_merchant ON bench_order_items (merchant_id, order_id);

-- :merchants merchants (wallet ids 1..M), :buyers buyers (wallet ids 1000001..), :products
-- products spread over the merchants; product 0 is the flash-sale item of merchant 1.
INSERT INTO bench_wallets (id, balance) SELECT m, 0 FROM generate_series(1, :merchants) AS m;
INSERT INTO bench_wallets (id, balance) SELECT 1000000 + b, 1000000000 FROM generate_series(1, :buyers) AS b;
INSERT INTO bench_products (id, merchant_id, price) SELECT p, 1 + (p % :merchants), 100 FROM generate_series(0, :products) AS p;
INSERT INTO bench_stock (product_id, available) SELECT p, 1000000000 FROM generate_series(0, :products) AS p;
VACUUM ANALYZE;
