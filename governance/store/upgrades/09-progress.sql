-- v8 -> v9: Migration progress: border messages per week, the progress page's login links and sessions
-- Messages that crossed the border (network <-> Matrix) per ISO week, per
-- outside contact (Registry.Key) and direction; weeks older than the
-- configured retention are deleted.
CREATE TABLE governance_border_count (
	week         TEXT   NOT NULL, -- Monday of the ISO week (UTC), 2006-01-02
	network      TEXT   NOT NULL,
	contact      TEXT   NOT NULL,
	messages_in  BIGINT NOT NULL DEFAULT 0,
	messages_out BIGINT NOT NULL DEFAULT 0,
	PRIMARY KEY (week, network, contact)
);

-- Single-use login links of the progress page: only the token's hash is kept.
CREATE TABLE governance_progress_link (
	token_hash TEXT   PRIMARY KEY,
	admin      TEXT   NOT NULL,
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL,
	used       BOOLEAN NOT NULL DEFAULT false
);

-- Sessions of the progress page: only the session ID's hash is kept.
CREATE TABLE governance_progress_session (
	session_hash TEXT   PRIMARY KEY,
	admin        TEXT   NOT NULL,
	csrf_token   TEXT   NOT NULL,
	created_at   BIGINT NOT NULL,
	expires_at   BIGINT NOT NULL
);

-- Small state of the progress part (the week of the last weekly summary).
CREATE TABLE governance_progress_state (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
);
