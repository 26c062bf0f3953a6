DROP INDEX holds_by_order;
ALTER TABLE holds DROP COLUMN order_id;
ALTER TABLE order_items DROP COLUMN captured_quantity;
ALTER TABLE orders DROP CONSTRAINT orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check CHECK (status IN ('created', 'payment_pending', 'paid', 'fulfilled',
    'cancelled', 'partially_refunded', 'refunded'));
ALTER TABLE orders DROP COLUMN capture_method;
