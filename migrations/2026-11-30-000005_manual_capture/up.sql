-- Wallet orders with manual capture: the order is `authorised` while one hold per merchant keeps
-- its part of the buyer's money; each merchant captures some or all of its items, and
-- `captured_quantity` records how many (NULL while the part is pending, and for automatic
-- capture). Once every part is settled `total` is what was captured.
ALTER TABLE orders ADD COLUMN capture_method text NOT NULL DEFAULT 'automatic'
    CHECK (capture_method IN ('automatic', 'manual'));
ALTER TABLE orders DROP CONSTRAINT orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check CHECK (status IN ('created', 'payment_pending', 'authorised', 'paid',
    'fulfilled', 'cancelled', 'partially_refunded', 'refunded'));

ALTER TABLE order_items ADD COLUMN captured_quantity integer
    CHECK (captured_quantity >= 0 AND captured_quantity <= quantity);

-- The holds of an order's parts, found by the order.
ALTER TABLE holds ADD COLUMN order_id uuid REFERENCES orders (id);
CREATE INDEX holds_by_order ON holds (order_id) WHERE order_id IS NOT NULL;
