-- v7 -> v8: Cut-over of portals to native Matrix rooms
-- One row per portal that moved to a native Matrix room, keyed by the full
-- portal key (its ID and receiver, as the contact registry stores them:
-- pseudonyms in hashed mode).
CREATE TABLE governance_cutover (
	portal_id       TEXT   NOT NULL,
	portal_receiver TEXT   NOT NULL, -- '' for a group
	network         TEXT   NOT NULL,
	kind            TEXT   NOT NULL, -- dm, group
	old_room        TEXT   NOT NULL,
	new_room        TEXT   NOT NULL,
	staff           TEXT   NOT NULL, -- who ran it for (DM: the staff member of the portal)
	contact         TEXT   NOT NULL DEFAULT '', -- DM: Registry.Key of the contact
	actor           TEXT   NOT NULL, -- who ran it
	created_as      TEXT   NOT NULL, -- staff (double puppet) or bot
	cut_at          BIGINT NOT NULL,
	PRIMARY KEY (portal_id, portal_receiver)
);
CREATE INDEX governance_cutover_staff_idx ON governance_cutover (staff);
CREATE INDEX governance_cutover_contact_idx ON governance_cutover (network, contact);

-- When a contact was last reminded that the chat moved (rate limit).
CREATE TABLE governance_cutover_reminder (
	network TEXT   NOT NULL,
	contact TEXT   NOT NULL,
	last_at BIGINT NOT NULL,
	PRIMARY KEY (network, contact)
);

-- The pinned "still missing" notice of a group portal waiting for cut-over.
CREATE TABLE governance_cutover_pin (
	portal_id       TEXT NOT NULL,
	portal_receiver TEXT NOT NULL,
	room_id         TEXT NOT NULL,
	event_id        TEXT NOT NULL,
	PRIMARY KEY (portal_id, portal_receiver)
);
