package remote

import (
	"context"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
)

// Identity is what a connector knows of a remote user, for the policy and
// for the registry of outside contacts. Unknown fields stay empty.
type Identity struct {
	// ID is the user's network-prefixed ID (the ghost ID).
	ID networkid.UserID
	// Phone is the user's number in E.164 ("+33612345678"), if known.
	Phone string
	// Username is the user's public handle without "@", if the network has
	// them (Telegram).
	Username string
	// DisplayName is the name the network shows.
	DisplayName string
	// Number is the network's numeric user ID where it has one (Telegram).
	Number int64
}

// Chat is what a connector knows of a chat.
type Chat struct {
	// IsGroup tells a group from a direct chat.
	IsGroup bool
	// OtherUser is the outside person of a direct chat.
	OtherUser networkid.UserID
	// Name is a group's name, if the connector knows it.
	Name string
	// Members are the outside members of a group that the connector knows
	// from its caches (at most MaxChatMembers; the staff member's own
	// account left out): the gate refuses a group in which a deny rule
	// names one of them.
	Members []Identity
}

// MaxChatMembers bounds Chat.Members: a connector passes at most this many
// members of a group (the gate checks no more).
const MaxChatMembers = 1024

// Describer is implemented by a NetworkAPI (a login's client) that can tell
// the gateway who a remote user is and what a chat is. Both calls should
// answer from what the connector has cached; they may do I/O when they must.
type Describer interface {
	DescribeRemoteUser(ctx context.Context, userID networkid.UserID) (Identity, error)
	DescribeChat(ctx context.Context, key networkid.PortalKey) (Chat, error)
}

// Holdable is implemented by a remote event that can be stored while its
// chat waits for an admin's approval, and rebuilt later by the connector's
// HeldEventDecoder. The payload must hold everything needed to bridge the
// event later, with its original timestamp; it is stored in the database and
// never logged.
type Holdable interface {
	bridgev2.RemoteEvent
	HoldPayload() ([]byte, error)
}

// HeldEventDecoder is implemented by a NetworkAPI whose events are Holdable:
// it rebuilds an event of login from its HoldPayload.
type HeldEventDecoder interface {
	DecodeHeldEvent(ctx context.Context, login *bridgev2.UserLogin, payload []byte) (bridgev2.RemoteEvent, error)
}

// Described is implemented by a remote event that carries what its connector
// knew of the chat and of the sender when it built the event, from its own
// caches. The gate decides from it without calling back into the connector
// (Describer stays a fallback, asked outside any lock).
type Described interface {
	// RemoteChat is the chat of the event.
	RemoteChat() Chat
	// RemoteSender is the outside person who sent the event; the zero
	// Identity for the staff member's own messages.
	RemoteSender() Identity
}

// PortalMove is implemented by a remote event that moves a chat's portal to
// a new key (a Telegram basic group that became a supergroup keeps its room
// under the supergroup's key). Before it decides on the event, the gate
// carries the chat's governance state to the new key: a revoked chat stays
// revoked and its requests and decisions follow, so the new key is never a
// way around them.
type PortalMove interface {
	MovesPortal() (from, to networkid.PortalKey)
}

// TextCarrier is implemented by a remote message event that carries its
// plain text as its connector received it (empty for media, edits and
// anything that is not a plain text message). The gate reads it only to
// recognise a contact's claim code (governance/migration); nothing logs it.
type TextCarrier interface {
	PlainText() string
}
