-- v2 -> v3: Pseudonyms written with letters only
-- The keyed hashes that a registry with contact_hash_key stored were hex;
-- hex can hold runs of decimal digits that look like a phone number. The
-- same HMAC is now written with the letters g-p for the digits 0-9 (and
-- a-f as they were): replacing the digits converts a stored hash. Audit
-- log entries are hash-chained and keep the hex form they were written in.
UPDATE governance_contact SET remote_id = 'hmac-sha256:' || REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(SUBSTR(remote_id, 13), '0', 'g'), '1', 'h'), '2', 'i'), '3', 'j'), '4', 'k'), '5', 'l'), '6', 'm'), '7', 'n'), '8', 'o'), '9', 'p')
WHERE remote_id LIKE 'hmac-sha256:%';
UPDATE governance_contact SET phone = 'hmac-sha256:' || REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(SUBSTR(phone, 13), '0', 'g'), '1', 'h'), '2', 'i'), '3', 'j'), '4', 'k'), '5', 'l'), '6', 'm'), '7', 'n'), '8', 'o'), '9', 'p')
WHERE phone LIKE 'hmac-sha256:%';
UPDATE governance_contact SET username = 'hmac-sha256:' || REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(SUBSTR(username, 13), '0', 'g'), '1', 'h'), '2', 'i'), '3', 'j'), '4', 'k'), '5', 'l'), '6', 'm'), '7', 'n'), '8', 'o'), '9', 'p')
WHERE username LIKE 'hmac-sha256:%';
UPDATE governance_contact_link SET remote_id = 'hmac-sha256:' || REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(SUBSTR(remote_id, 13), '0', 'g'), '1', 'h'), '2', 'i'), '3', 'j'), '4', 'k'), '5', 'l'), '6', 'm'), '7', 'n'), '8', 'o'), '9', 'p')
WHERE remote_id LIKE 'hmac-sha256:%';
UPDATE governance_approval_request SET contact = 'hmac-sha256:' || REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(SUBSTR(contact, 13), '0', 'g'), '1', 'h'), '2', 'i'), '3', 'j'), '4', 'k'), '5', 'l'), '6', 'm'), '7', 'n'), '8', 'o'), '9', 'p')
WHERE contact LIKE 'hmac-sha256:%';
