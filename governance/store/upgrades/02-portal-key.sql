-- v1 -> v2: Key approval requests and held events by the full portal key
-- A direct chat's portal ID is the same for every staff member who talks to
-- one contact; only the receiver (the staff member's login) tells their
-- portals apart. Requests made before this upgrade were all made for
-- portals whose receiver is the request's login.
ALTER TABLE governance_approval_request ADD COLUMN receiver TEXT NOT NULL DEFAULT '';
UPDATE governance_approval_request SET receiver = login;
DROP INDEX governance_approval_request_pending_idx;
DROP INDEX governance_approval_request_portal_idx;
-- At most one pending request per chat.
CREATE UNIQUE INDEX governance_approval_request_pending_idx
	ON governance_approval_request (portal, receiver) WHERE state = 'pending';
CREATE INDEX governance_approval_request_portal_idx ON governance_approval_request (portal, receiver, id);

-- Each held event names the login it was received by; delivery refuses an
-- event of another login.
ALTER TABLE governance_approval_held ADD COLUMN login TEXT NOT NULL DEFAULT '';
UPDATE governance_approval_held SET login = (
	SELECT r.login FROM governance_approval_request r WHERE r.id = governance_approval_held.request_id
);

