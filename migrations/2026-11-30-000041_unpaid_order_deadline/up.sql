-- A card order whose payment was declined keeps its stock until the payment's deadline, for the
-- buyer to pay again; a follow-up cancels it then if it is still unpaid.
ALTER TABLE follow_ups DROP CONSTRAINT follow_ups_kind_check;
ALTER TABLE follow_ups ADD CONSTRAINT follow_ups_kind_check
    CHECK (kind IN ('refund', 'late_success_refund', 'recover_shortfall', 'outside_top_up_refund', 'payout', 'unpaid_order'));
