DELETE FROM follow_ups WHERE kind = 'unpaid_order';
ALTER TABLE follow_ups DROP CONSTRAINT follow_ups_kind_check;
ALTER TABLE follow_ups ADD CONSTRAINT follow_ups_kind_check
    CHECK (kind IN ('refund', 'late_success_refund', 'recover_shortfall', 'outside_top_up_refund', 'payout'));
