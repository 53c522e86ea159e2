-- v2 -> v3: Basic-group messages across the members' message boxes
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
