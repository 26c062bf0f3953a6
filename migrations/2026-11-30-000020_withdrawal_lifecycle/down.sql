DELETE FROM follow_ups WHERE kind = 'payout';
ALTER TABLE follow_ups DROP CONSTRAINT follow_ups_kind_check;
ALTER TABLE follow_ups ADD CONSTRAINT follow_ups_kind_check
    CHECK (kind IN ('refund', 'late_success_refund', 'recover_shortfall', 'outside_top_up_refund'));
DROP INDEX withdrawals_by_status;
DROP INDEX withdrawals_newest;
DROP INDEX withdrawals_hold;
-- Withdrawals that never left the books cannot be represented without a lifecycle.
DELETE FROM withdrawals WHERE status <> 'paid';
ALTER TABLE withdrawals
    DROP CONSTRAINT withdrawals_paid_posted,
    DROP CONSTRAINT withdrawals_unpaid_unposted,
    DROP CONSTRAINT withdrawals_in_flight_held,
    DROP CONSTRAINT withdrawals_approved_settled,
    DROP CONSTRAINT withdrawals_payout_provider,
    DROP CONSTRAINT withdrawals_rejected_decided,
    DROP CONSTRAINT withdrawals_failed_reason,
    ALTER COLUMN transaction_id SET NOT NULL,
    DROP COLUMN status,
    DROP COLUMN hold_id,
    DROP COLUMN decided_by,
    DROP COLUMN decided_at,
    DROP COLUMN reason,
    DROP COLUMN settlement,
    DROP COLUMN provider,
    DROP COLUMN provider_reference,
    DROP COLUMN failure_reason,
    DROP COLUMN settled_by,
    DROP COLUMN updated_at;
