// Package tgfmt converts message text between Telegram (plain text plus
// entities with UTF-16 offsets) and Matrix (HTML formatted_body). It is pure:
// everything it needs from the bridge comes in through Deps.
package tgfmt

import (
	"context"

	"maunium.net/go/mautrix/id"
)

// Deps holds the lookups the converters need from the bridge. Every field is
// optional; a nil function means "unknown".
type Deps struct {
	// UserMXID returns the Matrix user (ghost or logged-in user) and display
	// name for a Telegram user ID.
	UserMXID func(ctx context.Context, telegramUserID int64) (mxid id.UserID, name string, ok bool)
	// UsernameMXID returns the Matrix user for a Telegram @username (without @).
	UsernameMXID func(ctx context.Context, username string) (mxid id.UserID, ok bool)
	// TelegramUserID returns the Telegram user ID behind a Matrix user ID
	// (a ghost, or a Matrix user logged in to Telegram).
	TelegramUserID func(ctx context.Context, mxid id.UserID) (telegramUserID int64, ok bool)
}

// MaxDepth is how deep formatting nests before inner formatting is dropped
// (the text is always kept).
const MaxDepth = 32
