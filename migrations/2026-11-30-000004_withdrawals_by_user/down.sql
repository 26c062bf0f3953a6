DROP INDEX withdrawals_by_user;
