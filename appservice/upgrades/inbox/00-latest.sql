-- v0 -> v1: Latest revision

-- The homeserver's room events the gateway has answered for and not yet
-- handled (sent to the remote network, refused, or failed). A transaction
-- is answered once its events are here; each row is deleted once its event
-- is handled. Rows left at start (a crash, a stop) are handled first, in
-- seq order, each room's events in the order they came.
CREATE TABLE passerelle_matrix_inbox (
	event_id TEXT   PRIMARY KEY,
	seq      BIGINT NOT NULL,
	room_id  TEXT   NOT NULL,
	event    TEXT   NOT NULL,
	received BIGINT NOT NULL
);
CREATE INDEX passerelle_matrix_inbox_seq_idx ON passerelle_matrix_inbox (seq);
