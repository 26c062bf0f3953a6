-- Holds a customer authorises a merchant to capture (the holds API), captured in part and more
-- than once: `captured` grows while the hold is pending, and what remains (`amount - captured`) is
-- what the wallet holds. A call's hold has no payee: the call captures it.
ALTER TABLE holds ADD COLUMN payee_id uuid REFERENCES users (id);
CREATE INDEX holds_by_payee ON holds (payee_id) WHERE payee_id IS NOT NULL;
