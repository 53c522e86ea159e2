-- v4 -> v5: Name the group and its members in approval requests
-- A request for a group shows admins the group's name and the outside
-- members the connector knew (names and numbers, scrubbed in hashed mode).
ALTER TABLE governance_approval_request ADD COLUMN chat_name TEXT NOT NULL DEFAULT '';
ALTER TABLE governance_approval_request ADD COLUMN members TEXT NOT NULL DEFAULT '';
