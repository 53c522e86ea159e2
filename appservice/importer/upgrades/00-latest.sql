-- v0 -> v1: Latest revision

-- The old bridge's bot and the token it acted with: the gateway uses it at
-- start to invite its own bot into the imported rooms and give it power.
-- Deleted once every room of that bot is taken over.
CREATE TABLE passerelle_import_source (
	old_bot  TEXT PRIMARY KEY,
	as_token TEXT NOT NULL
);

-- One row per imported portal room that the gateway's bot has not taken
-- over yet (keyed by the portal key, like every per-chat record).
CREATE TABLE passerelle_import_room (
	portal_id       TEXT   NOT NULL,
	portal_receiver TEXT   NOT NULL,
	room_id         TEXT   NOT NULL,
	old_bot         TEXT   NOT NULL,
	imported_at     BIGINT NOT NULL,
	taken_over_at   BIGINT,
	last_error      TEXT,
	PRIMARY KEY (portal_id, portal_receiver)
);
