-- v5 -> v6: Migration directory, claim codes and statuses
-- The directory links an outside identity (network and Registry.Key of its
-- remote ID: a keyed hash in hashed mode) to a Matrix account.
CREATE TABLE governance_directory (
	network    TEXT   NOT NULL,
	contact    TEXT   NOT NULL, -- Registry.Key of the remote ID
	matrix_id  TEXT   NOT NULL,
	department TEXT   NOT NULL DEFAULT '',
	label      TEXT   NOT NULL DEFAULT '',
	source     TEXT   NOT NULL, -- import, admin, staff, claim
	state      TEXT   NOT NULL, -- pending, confirmed
	linked_by  TEXT   NOT NULL,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	PRIMARY KEY (network, contact)
);
CREATE INDEX governance_directory_matrix_idx ON governance_directory (matrix_id);

-- Claim codes a Matrix user asked the bot for: only their hash is kept.
CREATE TABLE governance_claim_code (
	code_hash  TEXT   PRIMARY KEY,
	matrix_id  TEXT   NOT NULL,
	room_id    TEXT   NOT NULL, -- the claimant's bot DM, for the confirmation
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL
);

-- The migration status of each outside contact; a contact without a row is
-- still "bridged".
CREATE TABLE governance_migration_status (
	network    TEXT   NOT NULL,
	contact    TEXT   NOT NULL,
	status     TEXT   NOT NULL, -- bridged, invited, linked, cut_over, retired
	changed_at BIGINT NOT NULL,
	PRIMARY KEY (network, contact)
);
