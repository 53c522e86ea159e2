// Package wafmt converts message text between WhatsApp (plain text with
// *bold*, _italic_, ~strike~, ```mono``` and `code` markers, "> " quote
// lines, and @<number> mentions listed in ContextInfo.MentionedJID) and
// Matrix (HTML formatted_body with user pills). It is pure: everything it
// needs from the bridge comes in through Deps.
package wafmt

import (
	"context"

	"go.mau.fi/whatsmeow/types"
	"maunium.net/go/mautrix/id"
)

// Deps holds the lookups the converters need from the bridge. Every field is
// optional; a nil function means "unknown".
type Deps struct {
	// UserMXID returns the Matrix user (a ghost, or the Matrix user of a
	// login) and display name for a WhatsApp user.
	UserMXID func(ctx context.Context, jid types.JID) (mxid id.UserID, name string, ok bool)
	// WhatsAppJID returns the WhatsApp user behind a Matrix user (a ghost, or
	// a Matrix user logged in to WhatsApp).
	WhatsAppJID func(ctx context.Context, mxid id.UserID) (jid types.JID, ok bool)
}

// MaxDepth is how deep inline formatting nests before inner markers are
// kept as plain text.
const MaxDepth = 16

// MaxLength is the longest text (either direction) that is parsed for
// formatting; longer text is passed on plain.
const MaxLength = 64 * 1024
