CREATE OR REPLACE FUNCTION expect_changed(changed bigint, expected bigint, what text) RETURNS bigint
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
