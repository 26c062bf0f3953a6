DROP FUNCTION expect_changed(bigint, bigint, text);
