-- The Telegram tables as the first release created them (telegram_version 1),
-- kept to test that such a database upgrades in place.
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
