DELETE FROM admin_actions WHERE kind NOT IN ('user.suspended', 'user.reactivated', 'wallet.adjusted');
ALTER TABLE admin_actions DROP CONSTRAINT admin_actions_kind_check;
ALTER TABLE admin_actions ADD CONSTRAINT admin_actions_kind_check CHECK (kind IN ('user.suspended', 'user.reactivated',
    'wallet.adjusted'));
