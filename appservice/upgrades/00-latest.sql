-- v0 -> v1: Latest revision

-- A digest of the body of every ghost send with a derived transaction ID, from before
-- it leaves until the homeserver has answered it. A row left behind is an
-- attempt whose outcome the gateway never learnt (a crash, a homeserver that
-- made the event and then failed): the next attempt with the same path
-- first looks in the room for an event whose content has one of these
-- digests. (Digests, not bodies: in an unencrypted room the body is the
-- message's text.)
CREATE TABLE passerelle_unanswered_send (
	path    TEXT   NOT NULL,
	digest  TEXT   NOT NULL,
	created BIGINT NOT NULL
);
CREATE INDEX passerelle_unanswered_send_path_idx ON passerelle_unanswered_send (path);
CREATE INDEX passerelle_unanswered_send_created_idx ON passerelle_unanswered_send (created);
