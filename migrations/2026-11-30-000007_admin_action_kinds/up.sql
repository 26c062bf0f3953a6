-- More admin actions in the audit trail: cancelling an unpaid order, and deciding or settling a
-- withdrawal by hand. An approval may come without a reason: its reason is then recorded as such.
ALTER TABLE admin_actions DROP CONSTRAINT admin_actions_kind_check;
ALTER TABLE admin_actions ADD CONSTRAINT admin_actions_kind_check CHECK (kind IN ('user.suspended', 'user.reactivated',
    'wallet.adjusted', 'order.cancelled', 'withdrawal.approved', 'withdrawal.rejected', 'withdrawal.marked_paid',
    'withdrawal.marked_failed'));
