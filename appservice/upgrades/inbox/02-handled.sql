-- v1 -> v2: Keep a handled event's ID for a day
-- A handled event's row stays, its content emptied, so that an event the
-- homeserver sends again (its answer to a transaction lost) is recognised
-- and not handled twice; rows handled more than a day ago are deleted.
-- Rows waiting to be handled are found by the partial index.
ALTER TABLE passerelle_matrix_inbox ADD COLUMN handled BIGINT;
DROP INDEX passerelle_matrix_inbox_seq_idx;
CREATE INDEX passerelle_matrix_inbox_waiting_idx ON passerelle_matrix_inbox (seq) WHERE handled IS NULL;
