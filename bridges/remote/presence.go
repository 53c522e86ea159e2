package remote

import (
	"context"
	"time"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
)

// Presence is what a network shares of a remote user's presence.
type Presence struct {
	// User is the remote user (the ghost's ID).
	User networkid.UserID
	// Online: the user is online now.
	Online bool
	// LastSeen is when the user was last online, when the network tells
	// (zero when hidden).
	LastSeen time.Time
}

// PresenceSink takes a remote user's presence to their ghost, through
// whatever the homeserver supports. It must not block for long and never
// creates a ghost or a portal.
type PresenceSink func(ctx context.Context, login *bridgev2.UserLogin, p Presence)

// PresenceSinkSetter is implemented by connectors that report presence.
type PresenceSinkSetter interface {
	SetPresenceSink(sink PresenceSink)
}

var _ PresenceSinkSetter = (*Hooks)(nil)

// SetPresenceSink implements PresenceSinkSetter.
func (h *Hooks) SetPresenceSink(sink PresenceSink) {
	h.mu.Lock()
	h.presence = sink
	h.mu.Unlock()
}

// Presence hands p to the presence sink, if there is one.
func (h *Hooks) Presence(ctx context.Context, login *bridgev2.UserLogin, p Presence) {
	h.mu.RLock()
	sink := h.presence
	h.mu.RUnlock()
	if sink != nil {
		sink(ctx, login, p)
	}
}
