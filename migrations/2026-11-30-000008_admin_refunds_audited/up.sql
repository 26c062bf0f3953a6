-- An admin's refund of an order is recorded in the admins' audit trail too.
ALTER TABLE admin_actions DROP CONSTRAINT admin_actions_kind_check;
ALTER TABLE admin_actions ADD CONSTRAINT admin_actions_kind_check CHECK (kind IN ('user.suspended', 'user.reactivated',
    'wallet.adjusted', 'order.cancelled', 'order.refunded', 'withdrawal.approved', 'withdrawal.rejected',
    'withdrawal.marked_paid', 'withdrawal.marked_failed'));
