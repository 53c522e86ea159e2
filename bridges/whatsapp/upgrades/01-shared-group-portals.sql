-- v0 -> v1: One shared portal per WhatsApp group
-- Group portals were one per (group, login): the portal key carried the
-- login as receiver. A group is now one portal with no receiver, shared by
-- every login in it. Per group, the portal kept is the one with a room (the
-- first receiver in order); its rows move to the empty receiver. The other
-- portals' messages and reactions that the kept portal does not have move
-- into it (their mappings are kept), their logins are marked in it, and
-- their rooms are listed in whatsapp_merged_room: the connector tombstones
-- them to the shared room at start-up. Child rows are moved explicitly, so
-- that the upgrade does not depend on foreign keys being enforced.
CREATE TABLE whatsapp_merged_room (
	bridge_id TEXT NOT NULL,
	old_mxid  TEXT NOT NULL,
	portal_id TEXT NOT NULL,
	PRIMARY KEY (bridge_id, old_mxid)
);

CREATE TABLE whatsapp_group_keep AS
	SELECT bridge_id, id, COALESCE(MIN(CASE WHEN mxid IS NOT NULL THEN receiver END), MIN(receiver)) AS receiver
	FROM portal
	WHERE id LIKE 'whatsapp.g-%' AND receiver <> ''
	  AND NOT EXISTS (SELECT 1 FROM portal p2 WHERE p2.bridge_id = portal.bridge_id AND p2.id = portal.id AND p2.receiver = '')
	GROUP BY bridge_id, id;

-- The kept portal takes the empty receiver (with ON UPDATE CASCADE its
-- children follow; the updates below catch them when it is not enforced).
UPDATE portal SET receiver = ''
	WHERE EXISTS (SELECT 1 FROM whatsapp_group_keep k WHERE k.bridge_id = portal.bridge_id AND k.id = portal.id AND k.receiver = portal.receiver);
UPDATE portal SET parent_receiver = ''
	WHERE EXISTS (SELECT 1 FROM whatsapp_group_keep k WHERE k.bridge_id = portal.bridge_id AND k.id = portal.parent_id AND k.receiver = portal.parent_receiver);
UPDATE message SET room_receiver = ''
	WHERE EXISTS (SELECT 1 FROM whatsapp_group_keep k WHERE k.bridge_id = message.bridge_id AND k.id = message.room_id AND k.receiver = message.room_receiver);
UPDATE reaction SET room_receiver = ''
	WHERE EXISTS (SELECT 1 FROM whatsapp_group_keep k WHERE k.bridge_id = reaction.bridge_id AND k.id = reaction.room_id AND k.receiver = reaction.room_receiver);
UPDATE user_portal SET portal_receiver = ''
	WHERE EXISTS (SELECT 1 FROM whatsapp_group_keep k WHERE k.bridge_id = user_portal.bridge_id AND k.id = user_portal.portal_id AND k.receiver = user_portal.portal_receiver);
UPDATE backfill_task SET portal_receiver = ''
	WHERE EXISTS (SELECT 1 FROM whatsapp_group_keep k WHERE k.bridge_id = backfill_task.bridge_id AND k.id = backfill_task.portal_id AND k.receiver = backfill_task.portal_receiver);

-- The other portals of those groups: messages the shared portal lacks move
-- in, with their reactions; their logins are marked in the shared portal.
UPDATE message SET room_receiver = ''
	WHERE room_id LIKE 'whatsapp.g-%' AND room_receiver <> ''
	  AND EXISTS (SELECT 1 FROM whatsapp_group_keep k WHERE k.bridge_id = message.bridge_id AND k.id = message.room_id)
	  AND NOT EXISTS (SELECT 1 FROM message m2 WHERE m2.bridge_id = message.bridge_id AND m2.room_receiver = ''
	                  AND m2.id = message.id AND m2.part_id = message.part_id);
UPDATE reaction SET room_receiver = ''
	WHERE room_id LIKE 'whatsapp.g-%' AND room_receiver <> ''
	  AND EXISTS (SELECT 1 FROM whatsapp_group_keep k WHERE k.bridge_id = reaction.bridge_id AND k.id = reaction.room_id)
	  AND EXISTS (SELECT 1 FROM message m WHERE m.bridge_id = reaction.bridge_id AND m.room_receiver = ''
	              AND m.id = reaction.message_id AND m.part_id = reaction.message_part_id)
	  AND NOT EXISTS (SELECT 1 FROM reaction r2 WHERE r2.bridge_id = reaction.bridge_id AND r2.room_receiver = ''
	                  AND r2.message_id = reaction.message_id AND r2.message_part_id = reaction.message_part_id
	                  AND r2.sender_id = reaction.sender_id AND r2.emoji_id = reaction.emoji_id);
INSERT INTO user_portal (bridge_id, user_mxid, login_id, portal_id, portal_receiver, in_space, preferred, last_read)
	SELECT bridge_id, user_mxid, login_id, portal_id, '', in_space, false, last_read
	FROM user_portal
	WHERE portal_id LIKE 'whatsapp.g-%' AND portal_receiver <> ''
	  AND EXISTS (SELECT 1 FROM whatsapp_group_keep k WHERE k.bridge_id = user_portal.bridge_id AND k.id = user_portal.portal_id)
ON CONFLICT DO NOTHING;
INSERT INTO whatsapp_merged_room (bridge_id, old_mxid, portal_id)
	SELECT bridge_id, mxid, id FROM portal
	WHERE id LIKE 'whatsapp.g-%' AND receiver <> '' AND mxid IS NOT NULL
	  AND EXISTS (SELECT 1 FROM whatsapp_group_keep k WHERE k.bridge_id = portal.bridge_id AND k.id = portal.id)
ON CONFLICT DO NOTHING;

-- What is left of the other portals are copies of what the shared portal
-- has: removed, children first.
DELETE FROM reaction WHERE room_id LIKE 'whatsapp.g-%' AND room_receiver <> ''
	AND EXISTS (SELECT 1 FROM whatsapp_group_keep k WHERE k.bridge_id = reaction.bridge_id AND k.id = reaction.room_id);
DELETE FROM message WHERE room_id LIKE 'whatsapp.g-%' AND room_receiver <> ''
	AND EXISTS (SELECT 1 FROM whatsapp_group_keep k WHERE k.bridge_id = message.bridge_id AND k.id = message.room_id);
DELETE FROM user_portal WHERE portal_id LIKE 'whatsapp.g-%' AND portal_receiver <> ''
	AND EXISTS (SELECT 1 FROM whatsapp_group_keep k WHERE k.bridge_id = user_portal.bridge_id AND k.id = user_portal.portal_id);
DELETE FROM backfill_task WHERE portal_id LIKE 'whatsapp.g-%' AND portal_receiver <> ''
	AND EXISTS (SELECT 1 FROM whatsapp_group_keep k WHERE k.bridge_id = backfill_task.bridge_id AND k.id = backfill_task.portal_id);
DELETE FROM portal WHERE id LIKE 'whatsapp.g-%' AND receiver <> ''
	AND EXISTS (SELECT 1 FROM whatsapp_group_keep k WHERE k.bridge_id = portal.bridge_id AND k.id = portal.id);

DROP TABLE whatsapp_group_keep;
