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
}

// GhostMetadata is stored in the ghost table.
type GhostMetadata struct {
	Username string `json:"username,omitempty"`
	// Phone is only known for contacts; it is not shown in logs.
	Phone string `json:"phone,omitempty"`
}
