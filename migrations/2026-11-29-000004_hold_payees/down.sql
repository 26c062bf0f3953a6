DROP INDEX holds_by_payee;
ALTER TABLE holds DROP COLUMN payee_id;
