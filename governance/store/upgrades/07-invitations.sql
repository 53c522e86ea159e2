-- v6 -> v7: Staff departments and invitations to Matrix
-- The department of each staff member: set by an admin (source admin) or
-- by the config file's migration.departments (source config); an admin's
-- choice wins over the config file's.
CREATE TABLE governance_staff_department (
	staff      TEXT   PRIMARY KEY,
	department TEXT   NOT NULL,
	source     TEXT   NOT NULL, -- admin, config
	set_by     TEXT   NOT NULL,
	updated_at BIGINT NOT NULL
);
CREATE INDEX governance_staff_department_idx ON governance_staff_department (department);

-- The last invitation to Matrix sent to each outside contact (network and
-- Registry.Key of its remote ID), and how many were sent in all.
CREATE TABLE governance_invitation (
	network    TEXT   NOT NULL,
	contact    TEXT   NOT NULL,
	staff      TEXT   NOT NULL, -- whose chat it went through
	sent_by    TEXT   NOT NULL, -- who asked for it
	sent_at    BIGINT NOT NULL,
	sent_count BIGINT NOT NULL,
	PRIMARY KEY (network, contact)
);
