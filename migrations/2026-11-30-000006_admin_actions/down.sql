DROP INDEX refresh_tokens_live_by_user;
DROP TABLE admin_actions;
ALTER TABLE users DROP COLUMN suspended_at;
