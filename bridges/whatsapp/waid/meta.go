package waid

// UserLoginMetadata is stored in the user_login table. The device keys live
// in the whatsapp_device table (package wastore), never in metadata.
type UserLoginMetadata struct {
	// DeviceJID is the linked device's AD JID (phone:device@s.whatsapp.net),
	// the key of its row in the device store.
	DeviceJID string `json:"device_jid,omitempty"`
	// LID is the account's LID, when known.
	LID string `json:"lid,omitempty"`
	// PushName is the account's own WhatsApp name.
	PushName string `json:"push_name,omitempty"`
}

// GhostMetadata is stored in the ghost table.
type GhostMetadata struct {
	// LastSync is when the ghost's info was last fetched (unix seconds).
	LastSync int64 `json:"last_sync,omitempty"`
}

// PortalMetadata is stored in the portal table.
type PortalMetadata struct {
	// LastSync is when the group info was last fetched (unix seconds).
	LastSync int64 `json:"last_sync,omitempty"`
}

// MessageMetadata is stored in the message table.
type MessageMetadata struct {
	// SenderJID is the sender as WhatsApp addressed it (LID or phone).
	SenderJID string `json:"sender_jid,omitempty"`
	// Placeholder is set while the message is the "waiting for this
	// message" notice of a message that could not be decrypted yet.
	Placeholder bool `json:"placeholder,omitempty"`
	// FollowUpID is the WhatsApp message that carried the caption of an
	// audio sent from Matrix (audio has no caption on WhatsApp): it is
	// revoked with the audio.
	FollowUpID string `json:"follow_up_id,omitempty"`
}
