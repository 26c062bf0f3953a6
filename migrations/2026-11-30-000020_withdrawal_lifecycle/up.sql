-- Withdrawals with a lifecycle: `requested` (the amount held on the wallet, waiting for an admin)
-- -> `approved` (by an admin, or at once at or below the approval threshold) -> `paid` (the hold
-- captured and the amount posted to the payouts account) or `failed` (the hold released);
-- `requested` -> `rejected` (the hold released). Withdrawals made before this migration were paid
-- at once, and become `paid`.
ALTER TABLE withdrawals
    ADD COLUMN status text NOT NULL DEFAULT 'paid'
        CHECK (status IN ('requested', 'approved', 'paid', 'failed', 'rejected')),
    -- The hold that keeps the amount while the withdrawal is in flight (none for the old ones).
    ADD COLUMN hold_id uuid REFERENCES holds (id),
    -- The admin who approved or rejected it, when, and why (none when approved at once).
    ADD COLUMN decided_by uuid REFERENCES users (id),
    ADD COLUMN decided_at timestamptz,
    ADD COLUMN reason text,
    -- How an approved withdrawal is paid out: by a provider's payout API, or by hand.
    ADD COLUMN settlement text CHECK (settlement IN ('payout', 'manual')),
    ADD COLUMN provider text,
    ADD COLUMN provider_reference text,
    ADD COLUMN failure_reason text,
    -- The admin who marked a manual withdrawal paid or failed.
    ADD COLUMN settled_by uuid REFERENCES users (id),
    ADD COLUMN updated_at timestamptz;

UPDATE withdrawals SET updated_at = created_at;

ALTER TABLE withdrawals
    ALTER COLUMN updated_at SET NOT NULL,
    ALTER COLUMN status DROP DEFAULT,
    -- The journal transaction exists only once the withdrawal is paid.
    ALTER COLUMN transaction_id DROP NOT NULL,
    ADD CONSTRAINT withdrawals_paid_posted CHECK (status <> 'paid' OR transaction_id IS NOT NULL),
    ADD CONSTRAINT withdrawals_unpaid_unposted CHECK (status = 'paid' OR transaction_id IS NULL),
    ADD CONSTRAINT withdrawals_in_flight_held CHECK (status NOT IN ('requested', 'approved') OR hold_id IS NOT NULL),
    ADD CONSTRAINT withdrawals_approved_settled CHECK (status <> 'approved' OR settlement IS NOT NULL),
    ADD CONSTRAINT withdrawals_payout_provider CHECK ((settlement = 'payout') = (provider IS NOT NULL)),
    ADD CONSTRAINT withdrawals_rejected_decided CHECK (status <> 'rejected' OR (decided_by IS NOT NULL AND reason IS NOT NULL)),
    ADD CONSTRAINT withdrawals_failed_reason CHECK (status <> 'failed' OR failure_reason IS NOT NULL);

-- One withdrawal per hold; also how the hold-expiry job skips the holds of withdrawals in flight.
CREATE UNIQUE INDEX withdrawals_hold ON withdrawals (hold_id) WHERE hold_id IS NOT NULL;
-- The admins' list: all, or one status, newest first.
CREATE INDEX withdrawals_newest ON withdrawals (created_at DESC, id DESC);
CREATE INDEX withdrawals_by_status ON withdrawals (status, created_at DESC, id DESC);

-- An approved withdrawal's payout is a follow-up, retried by the job until the provider answers.
ALTER TABLE follow_ups DROP CONSTRAINT follow_ups_kind_check;
ALTER TABLE follow_ups ADD CONSTRAINT follow_ups_kind_check
    CHECK (kind IN ('refund', 'late_success_refund', 'recover_shortfall', 'outside_top_up_refund', 'payout'));
