DELETE FROM admin_actions WHERE kind = 'order.refunded';
ALTER TABLE admin_actions DROP CONSTRAINT admin_actions_kind_check;
ALTER TABLE admin_actions ADD CONSTRAINT admin_actions_kind_check CHECK (kind IN ('user.suspended', 'user.reactivated',
    'wallet.adjusted', 'order.cancelled', 'withdrawal.approved', 'withdrawal.rejected', 'withdrawal.marked_paid',
    'withdrawal.marked_failed'));
