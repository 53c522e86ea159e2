package fakematrix

import (
	"context"
	"time"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/id"
)

// Receipt is a read receipt (MarkRead) the bridge set for one of its users.
type Receipt struct {
	RoomID  id.RoomID
	User    id.UserID
	EventID id.EventID
	TS      time.Time
}

// Typing is a typing notification (MarkTyping) the bridge set.
type Typing struct {
	RoomID  id.RoomID
	User    id.UserID
	Type    bridgev2.TypingType
	Timeout time.Duration // 0 stops typing
}

// Presence is a presence the bridge set for one of its users (see
// SetPresence).
type Presence struct {
	User     id.UserID
	Online   bool
	LastSeen time.Time
}

// MarkRead records the receipt.
func (in *Intent) MarkRead(_ context.Context, roomID id.RoomID, eventID id.EventID, ts time.Time) error {
	if err := in.m.downErr(); err != nil {
		return err
	}
	in.m.mu.Lock()
	in.m.receipts = append(in.m.receipts, Receipt{RoomID: roomID, User: in.mxid, EventID: eventID, TS: ts})
	in.m.mu.Unlock()
	return nil
}

// MarkTyping records the typing notification.
func (in *Intent) MarkTyping(_ context.Context, roomID id.RoomID, typingType bridgev2.TypingType, timeout time.Duration) error {
	if err := in.m.downErr(); err != nil {
		return err
	}
	in.m.mu.Lock()
	in.m.typings = append(in.m.typings, Typing{RoomID: roomID, User: in.mxid, Type: typingType, Timeout: timeout})
	in.m.mu.Unlock()
	return nil
}

// SetPresence records a user's presence, as the gateway's presence sink
// would set it on a homeserver.
func (m *Matrix) SetPresence(p Presence) {
	m.mu.Lock()
	m.presences = append(m.presences, p)
	m.mu.Unlock()
}

// Receipts returns the read receipts the bridge set, in order.
func (m *Matrix) Receipts() []Receipt {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Receipt(nil), m.receipts...)
}

// Typings returns the typing notifications the bridge set, in order.
func (m *Matrix) Typings() []Typing {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Typing(nil), m.typings...)
}

// Presences returns the presences set with SetPresence, in order.
func (m *Matrix) Presences() []Presence {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Presence(nil), m.presences...)
}
