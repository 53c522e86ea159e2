-- v0 -> v1: Latest revision

-- Staff members who switched double puppeting off with the bot's
-- `double-puppet off` command. Double puppeting is on for everyone else on
-- the gateway's homeserver.
CREATE TABLE passerelle_double_puppet_off (
	mxid  TEXT   NOT NULL PRIMARY KEY,
	since BIGINT NOT NULL
);

-- Where each staff member's receipt-and-typing /sync left off, so that a
-- restart does not hand old read receipts to the networks again.
CREATE TABLE passerelle_ephemeral_sync (
	mxid       TEXT NOT NULL PRIMARY KEY,
	next_batch TEXT NOT NULL
);
