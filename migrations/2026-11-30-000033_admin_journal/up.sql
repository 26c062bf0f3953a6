-- The admins' journal (GET /api/v1/admin/journal), newest first: all of it, or one kind; a
-- wallet's transactions are found through postings_wallet_history.
CREATE INDEX ledger_transactions_newest ON ledger_transactions (created_at DESC, id DESC);
CREATE INDEX ledger_transactions_by_kind ON ledger_transactions (kind, created_at DESC, id DESC);
