DROP INDEX payments_by_payer;
