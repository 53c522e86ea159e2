-- v1 -> v2: Index usernames for start-chat and mention lookups
CREATE INDEX telegram_access_hash_username_idx ON telegram_access_hash (user_id, LOWER(username));
