DROP INDEX refunds_by_merchant;
DROP INDEX refunds_newest;
