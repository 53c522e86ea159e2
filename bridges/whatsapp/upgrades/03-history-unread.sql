-- v2 -> v3: Unread history
-- Whether a stored history message was unread on the phone (the history
-- sync's unread count): a chat's history marks the staff member's Matrix
-- read marker only when none of it was unread.
ALTER TABLE whatsapp_history_message ADD COLUMN unread BOOLEAN NOT NULL DEFAULT false;
