-- v0 -> v1: Latest revision

-- The gateway's own Matrix users (its bot and the ghosts) whose push rules
-- it switched off (the master rule enabled): the homeserver then keeps no
-- notification for them. A registered user with no row here was made
-- before the gateway did this, or the switch failed; it is done again in
-- the background at start.
CREATE TABLE passerelle_quiet_user (
	user_id TEXT PRIMARY KEY
);
