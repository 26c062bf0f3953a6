-- One wallet purchase of one unit by a random buyer: of a random product, or with `-D hot=1` the
-- flash sale, where every client buys the same product (product 0) of the same merchant.
-- Run with `-M prepared`, as the service's statements are prepared: the casts give the parameters
-- the types the simple protocol's literals got from their context.
\if :hot
\set product 0
\else
\set product random(1, :products)
\endif
\set buyer 1000000 + random(1, :buyers)
BEGIN;
UPDATE bench_stock SET available = available - 1 WHERE product_id = :product AND available >= 1;
SELECT merchant_id AS merchant, price FROM bench_products WHERE id = :product \gset
-- Both wallets in one statement, locked in id order as the service locks them: the subquery's
-- `ORDER BY id FOR UPDATE` decides the order. Updated by `id IN (...)` alone, the rows were
-- locked in the order of the plan (a sequential scan of a table this small: the rows' places on
-- disk), two purchases could deadlock, and each deadlock stalled its clients for a second.
UPDATE bench_wallets AS w SET balance = w.balance + CASE WHEN w.id = :buyer THEN -:price::bigint ELSE :price::bigint END
    FROM (SELECT id FROM bench_wallets WHERE id IN (:buyer, :merchant) ORDER BY id FOR UPDATE) AS locked
    WHERE w.id = locked.id;
WITH t AS (SELECT gen_random_uuid() AS tx)
INSERT INTO bench_postings (transaction_id, wallet_id, amount, balance_after)
    SELECT t.tx, w.id, CASE WHEN w.id = :buyer THEN -:price::bigint ELSE :price::bigint END, w.balance FROM bench_wallets w, t WHERE w.id IN (:buyer, :merchant);
WITH o AS (INSERT INTO bench_orders (id, buyer_id, total, status) VALUES (gen_random_uuid(), :buyer, :price, 'paid') RETURNING id)
INSERT INTO bench_order_items (order_id, product_id, merchant_id, quantity, unit_price) SELECT id, :product::bigint, :merchant::bigint, 1, :price::bigint FROM o;
COMMIT;
