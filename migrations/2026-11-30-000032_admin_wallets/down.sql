DROP INDEX wallets_newest;
