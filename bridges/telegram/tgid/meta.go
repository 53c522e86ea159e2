package tgid

// UserLoginMetadata is stored in the user_login table. The MTProto session
// itself (auth key) is kept in the connector's own telegram_session table,
// never in metadata, so that it does not travel with login listings.
type UserLoginMetadata struct {
	// Phone is the account's phone number, when Telegram told us.
	Phone string `json:"phone,omitempty"`
	// Username is the account's @username, without the @.
	Username string `json:"username,omitempty"`
	// LoggedOut is set when Telegram revoked the session.
	LoggedOut bool `json:"logged_out,omitempty"`
	// CatchUp is a catch-up of the account's chats under way (nil: none):
	// Telegram said the gap was too long to list, the connector fetches
	// each chat's history. Kept so that a restart finishes it.
	CatchUp *CatchUpState `json:"catch_up,omitempty"`
	// ChatsAtLogin is set on a new login until its most recent chats got
	// their portals (network.telegram.backfill.chats_at_login).
	ChatsAtLogin bool `json:"chats_at_login,omitempty"`
}

// CatchUpState is a catch-up of an account's chats under way.
type CatchUpState struct {
	// Since is when the account last had its updates (Unix time): the
	// chats active after it are caught up. 0 with only Channels set.
	Since int `json:"since,omitempty"`
	// Total is the size of the gap in Telegram's events (an upper bound of
	// the messages to bridge).
	Total int `json:"total,omitempty"`
	// Channels are supergroups and channels whose own gap was too long.
	Channels []int64 `json:"channels,omitempty"`
}

// GhostMetadata is stored in the ghost table.
type GhostMetadata struct {
	Username string `json:"username,omitempty"`
	// Phone is only known for contacts; it is not shown in logs.
	Phone string `json:"phone,omitempty"`
}

// MessageMetadata is stored in the message table.
type MessageMetadata struct {
	// TTL is the self-destruct period of a Telegram message, in seconds
	// (0: none): Telegram's deletion of it once past is its expiry.
	TTL int `json:"ttl,omitempty"`
}
