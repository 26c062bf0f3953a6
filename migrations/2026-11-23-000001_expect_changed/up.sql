-- Writes whose row count is known in advance (an update of a row the transaction has locked) are
-- sent in one pipeline with COMMIT, so the check that they changed the rows they should cannot wait
-- for their results in the application: it runs here, and a mismatch aborts the transaction, which
-- turns the COMMIT that follows into a rollback. The adapter wraps such a write as
--   WITH changed AS (<write> RETURNING 1) SELECT expect_changed(count(*), <expected>, <what>) FROM changed
-- and recognises the message's prefix.
CREATE FUNCTION expect_changed(changed bigint, expected bigint, what text) RETURNS bigint
LANGUAGE plpgsql
AS $$
BEGIN
    IF changed IS DISTINCT FROM expected THEN
        RAISE EXCEPTION 'unexpected row count: % does not exist (% of % rows changed)', what, changed, expected
            USING ERRCODE = 'no_data_found';
    END IF;
    RETURN changed;
END
$$;
