-- The double-entry ledger: wallets (accounts), journal transactions, postings and holds, plus the
-- transfers and withdrawals that explain some of the journal transactions.
--
-- Money is a bigint count of minor units next to an ISO 4217 code. The database enforces the
-- ledger's rules itself, as a second line behind the domain code:
--   * a customer's or merchant's wallet is never overdrawn (CHECK);
--   * postings are never updated, deleted or truncated (triggers): a correction is a new,
--     reversing transaction;
--   * the postings of every journal transaction sum to zero per currency, checked at commit
--     (a deferred constraint trigger, because the postings of one transaction arrive together).

CREATE DOMAIN currency_code AS char(3) CHECK (VALUE ~ '^[A-Z]{3}$');

-- A wallet is a user's account in one currency, or a system account (gateway clearing, payouts,
-- adjustments) in one currency. `balance` and `held` cache what the postings and pending holds
-- sum to. The rows are updated on every movement, so leave room on each page for HOT updates.
CREATE TABLE wallets (
    id            uuid PRIMARY KEY,
    owner_user_id uuid REFERENCES users (id),
    system_code   text,
    currency      currency_code NOT NULL,
    balance       bigint NOT NULL DEFAULT 0,
    held          bigint NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL,
    CONSTRAINT wallets_one_owner CHECK ((owner_user_id IS NULL) <> (system_code IS NULL)),
    CONSTRAINT wallets_held_not_negative CHECK (held >= 0),
    -- System accounts are the other side of money entering and leaving, so they go negative;
    -- user wallets never do, and never hold more than they have.
    CONSTRAINT wallets_user_funds CHECK (owner_user_id IS NULL OR (balance >= 0 AND held >= 0 AND held <= balance)),
    CONSTRAINT wallets_user_currency UNIQUE (owner_user_id, currency),
    CONSTRAINT wallets_system_currency UNIQUE (system_code, currency),
    -- The target of the (wallet, currency) foreign keys below: a posting or hold is always in
    -- the currency of its wallet.
    CONSTRAINT wallets_id_currency UNIQUE (id, currency)
) WITH (fillfactor = 80);

CREATE TABLE ledger_transactions (
    id         uuid PRIMARY KEY,
    kind       text NOT NULL CHECK (kind IN ('top_up', 'withdrawal', 'transfer', 'purchase', 'refund',
                                             'call_charge', 'adjustment', 'reversal')),
    reference  text NOT NULL,
    created_at timestamptz NOT NULL
);

-- `id` orders history: a wallet's postings are written while its row is locked, so within one
-- wallet the ids follow the order in which the balance changed, and `balance_after` chains.
CREATE TABLE postings (
    id             bigserial PRIMARY KEY,
    transaction_id uuid NOT NULL REFERENCES ledger_transactions (id),
    wallet_id      uuid NOT NULL,
    currency       currency_code NOT NULL,
    amount         bigint NOT NULL CHECK (amount <> 0),
    balance_after  bigint NOT NULL,
    CONSTRAINT postings_wallet FOREIGN KEY (wallet_id, currency) REFERENCES wallets (id, currency),
    -- One entry per wallet and transaction (the domain refuses duplicates); also the index the
    -- balance check reads.
    CONSTRAINT postings_one_per_wallet UNIQUE (transaction_id, wallet_id)
);

CREATE INDEX postings_wallet_history ON postings (wallet_id, id DESC);

CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only: % on % is refused; post a reversing transaction instead',
        TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END
$$;

CREATE TRIGGER postings_append_only BEFORE UPDATE OR DELETE ON postings
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER postings_no_truncate BEFORE TRUNCATE ON postings
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_transactions_append_only BEFORE UPDATE OR DELETE ON ledger_transactions
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_transactions_no_truncate BEFORE TRUNCATE ON ledger_transactions
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

CREATE FUNCTION ledger_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    unbalanced record;
BEGIN
    SELECT currency, sum(amount) AS total INTO unbalanced
    FROM postings
    WHERE transaction_id = NEW.transaction_id
    GROUP BY currency
    HAVING sum(amount) <> 0
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ledger transaction % does not balance: its % postings sum to %',
            NEW.transaction_id, unbalanced.currency, unbalanced.total
            USING ERRCODE = 'check_violation', CONSTRAINT = 'postings_balanced';
    END IF;
    RETURN NULL;
END
$$;

-- Deferred to commit: the postings of a transaction are inserted together, and only the complete
-- set has to balance.
CREATE CONSTRAINT TRIGGER postings_balanced AFTER INSERT ON postings
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_check_balanced();

-- Funds reserved on a user wallet (pending), then captured, released or expired. The wallet's
-- `held` caches the sum of its pending holds.
CREATE TABLE holds (
    id         uuid PRIMARY KEY,
    wallet_id  uuid NOT NULL,
    currency   currency_code NOT NULL,
    amount     bigint NOT NULL CHECK (amount > 0),
    captured   bigint NOT NULL DEFAULT 0,
    status     text NOT NULL CHECK (status IN ('pending', 'captured', 'released', 'expired')),
    reference  text NOT NULL,
    created_at timestamptz NOT NULL,
    settled_at timestamptz,
    CONSTRAINT holds_wallet FOREIGN KEY (wallet_id, currency) REFERENCES wallets (id, currency),
    CONSTRAINT holds_captured_within_amount CHECK (captured >= 0 AND captured <= amount)
);

CREATE INDEX holds_pending_by_wallet ON holds (wallet_id) WHERE status = 'pending';

-- `transaction_id` names the journal transaction that moved the money. It is not a foreign key:
-- the storage port records a transfer or withdrawal on its own, and the use cases write both in
-- one database transaction.
CREATE TABLE transfers (
    id             uuid PRIMARY KEY,
    from_user_id   uuid NOT NULL REFERENCES users (id),
    to_user_id     uuid NOT NULL REFERENCES users (id),
    currency       currency_code NOT NULL,
    amount         bigint NOT NULL CHECK (amount > 0),
    transaction_id uuid NOT NULL,
    note           text NOT NULL,
    created_at     timestamptz NOT NULL
);

CREATE TABLE withdrawals (
    id             uuid PRIMARY KEY,
    user_id        uuid NOT NULL REFERENCES users (id),
    currency       currency_code NOT NULL,
    amount         bigint NOT NULL CHECK (amount > 0),
    destination    text NOT NULL,
    transaction_id uuid NOT NULL,
    created_at     timestamptz NOT NULL
);
