-- v0 -> v1: Latest revision

-- Portals under the organisation's control: whether the admins were given
-- their power level (and portal_created logged), and whether an admin revoked it.
CREATE TABLE governance_gate_portal (
	portal_id     TEXT    NOT NULL,
	receiver      TEXT    NOT NULL,
	network       TEXT    NOT NULL,
	staff         TEXT    NOT NULL,
	room_id       TEXT    NOT NULL,
	controlled_at BIGINT  NOT NULL,
	revoked       BOOLEAN NOT NULL DEFAULT false,
	revoked_at    BIGINT  NOT NULL DEFAULT 0,
	revoked_by    TEXT    NOT NULL DEFAULT '',
	PRIMARY KEY (portal_id, receiver)
);
CREATE INDEX governance_gate_portal_room_idx ON governance_gate_portal (room_id);

-- Small values of the gate: the admin room it created.
CREATE TABLE governance_gate_kv (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
);

-- The notice of each approval request in the admin room, so that a reaction
-- on it decides the request.
CREATE TABLE governance_gate_notice (
	event_id   TEXT   PRIMARY KEY,
	request_id BIGINT NOT NULL
);

-- Logins the gate has seen, so that a login and a logout are each logged once.
CREATE TABLE governance_gate_login (
	login_id TEXT   PRIMARY KEY,
	staff    TEXT   NOT NULL,
	network  TEXT   NOT NULL,
	since    BIGINT NOT NULL
);
