-- v3 -> v4: Count edits, reactions and deletions as activity
-- An edit, a reaction or a deletion is a sign of life in a conversation but
-- not a message: it is counted apart from messages and media.
ALTER TABLE governance_contact ADD COLUMN activity_in BIGINT NOT NULL DEFAULT 0;
ALTER TABLE governance_contact ADD COLUMN activity_out BIGINT NOT NULL DEFAULT 0;
