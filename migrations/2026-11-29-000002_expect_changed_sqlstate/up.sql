-- A write that missed the rows it had to change is told apart by its SQLSTATE and constraint
-- name, which the driver reports in any server language, rather than by its message, which
-- PostgreSQL translates.
CREATE OR REPLACE FUNCTION expect_changed(changed bigint, expected bigint, what text) RETURNS bigint
LANGUAGE plpgsql
AS $$
BEGIN
    IF changed IS DISTINCT FROM expected THEN
        RAISE EXCEPTION '% does not exist (% of % rows changed)', what, changed, expected
            USING ERRCODE = 'check_violation', CONSTRAINT = 'expect_changed';
    END IF;
    RETURN changed;
END
$$;
