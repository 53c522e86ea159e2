-- v0 -> v3: Latest revision
CREATE TABLE telegram_session (
	user_id BIGINT PRIMARY KEY,
	data    TEXT   NOT NULL
);

CREATE TABLE telegram_update_state (
	user_id    BIGINT  PRIMARY KEY,
	pts        INTEGER NOT NULL,
	qts        INTEGER NOT NULL,
	state_date INTEGER NOT NULL,
	seq        INTEGER NOT NULL
);

CREATE TABLE telegram_channel_state (
	user_id    BIGINT  NOT NULL,
	channel_id BIGINT  NOT NULL,
	pts        INTEGER NOT NULL,
	PRIMARY KEY (user_id, channel_id)
);

CREATE TABLE telegram_access_hash (
	user_id     BIGINT NOT NULL,
	peer_type   TEXT   NOT NULL,
	peer_id     BIGINT NOT NULL,
	access_hash BIGINT NOT NULL,
	username    TEXT,
	PRIMARY KEY (user_id, peer_type, peer_id)
);
-- Start-chat and mention lookups find a peer by username, case-insensitively.
CREATE INDEX telegram_access_hash_username_idx ON telegram_access_hash (user_id, LOWER(username));

CREATE TABLE telegram_basic_message (
	chat_id     BIGINT  NOT NULL,
	fingerprint TEXT    NOT NULL,
	message_id  TEXT    NOT NULL,
	from_matrix BOOLEAN NOT NULL,
	created_at  BIGINT  NOT NULL,
	PRIMARY KEY (chat_id, fingerprint)
);
CREATE INDEX telegram_basic_message_id_idx ON telegram_basic_message (message_id);
CREATE INDEX telegram_basic_message_created_idx ON telegram_basic_message (created_at);

CREATE TABLE telegram_basic_copy (
	user_id     BIGINT  NOT NULL,
	box_id      INTEGER NOT NULL,
	chat_id     BIGINT  NOT NULL,
	fingerprint TEXT    NOT NULL,
	created_at  BIGINT  NOT NULL,
	PRIMARY KEY (user_id, box_id)
);
CREATE INDEX telegram_basic_copy_fp_idx ON telegram_basic_copy (chat_id, fingerprint, user_id);
CREATE INDEX telegram_basic_copy_created_idx ON telegram_basic_copy (created_at);
