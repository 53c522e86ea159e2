-- v1 -> v2: History sync storage
-- What WhatsApp's history sync gave a login, until the chat's portal is
-- backfilled from it: per chat at most the configured number of latest
-- messages (the WebMessageInfo protobuf, base64), and the chats' last
-- activity (which chats get a portal at login).
CREATE TABLE whatsapp_history_message (
	bridge_id  TEXT   NOT NULL,
	login_id   TEXT   NOT NULL,
	chat_jid   TEXT   NOT NULL,
	message_id TEXT   NOT NULL,
	timestamp  BIGINT NOT NULL,
	data       TEXT   NOT NULL,
	PRIMARY KEY (bridge_id, login_id, chat_jid, message_id)
);
CREATE INDEX whatsapp_history_message_chat_idx ON whatsapp_history_message (bridge_id, login_id, chat_jid, timestamp);

CREATE TABLE whatsapp_history_chat (
	bridge_id     TEXT   NOT NULL,
	login_id      TEXT   NOT NULL,
	chat_jid      TEXT   NOT NULL,
	last_activity BIGINT NOT NULL,
	PRIMARY KEY (bridge_id, login_id, chat_jid)
);
