package appservice

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/internal/lru"
)

// A staff member's encrypted message can reach the gateway before the room
// key that decrypts it: the key comes to the bot's device through its /sync
// loop, the message through an appservice transaction, and the two race
// (the first message of each new megolm session, every 100 messages or
// when a device joins; longer when the homeserver or the gateway just
// restarted). bridgev2 waits 3 s for the key while handling the event and
// then goes on waiting in the background: the event counts as handled, and
// a gateway stopped or killed before the key came loses the message for
// good (seen in the crash loop: one Matrix→remote message lost at a kill,
// the first of a new session, its key arriving 4 s late after a Dendrite
// restart).
//
// The Matrix inbox marks each encrypted event it hands to the bridge
// (withSessionHold); the first wait for that event's session is stretched
// up to sessionHoldMax, with a key request to the sender's devices after
// the usual 3 s. The event stays in the inbox until the key came (the
// message is then bridged) or the hold ran out, so a crash in between
// handles it again at the next start. Only the event's room waits: the
// inbox handles the other rooms side by side. A session whose key did not
// come within the hold is remembered (missed): a client that never shares
// its keys with the bot costs its room that wait once per session, not
// once per message.
const sessionHoldMax = 20 * time.Second

// heldMissedCap bounds the memory of sessions whose keys did not come.
const heldMissedCap = 1024

type sessionHoldKey struct{}

// sessionHold is the mark of one encrypted event dispatched by the
// transaction handler.
type sessionHold struct {
	sender id.UserID
	used   atomic.Bool
}

// withSessionHold marks ctx for evt when it is an encrypted event: its
// first wait for a missing key may last sessionHoldMax.
func withSessionHold(ctx context.Context, evt *event.Event) context.Context {
	if evt.Type != event.EventEncrypted {
		return ctx
	}
	if _, ok := evt.Content.Parsed.(*event.EncryptedEventContent); !ok {
		return ctx
	}
	return context.WithValue(ctx, sessionHoldKey{}, &sessionHold{sender: evt.Sender})
}

// WaitForSession waits for a megolm session as the helper does; the first
// wait of an event marked by withSessionHold lasts until the key comes or
// the hold runs out (see sessionHoldMax), asking the sender's devices for the
// key once the usual wait (timeout) has passed.
func (p *pacedCrypto) WaitForSession(ctx context.Context, roomID id.RoomID, senderKey id.SenderKey, sessionID id.SessionID, timeout time.Duration) bool {
	hold, _ := ctx.Value(sessionHoldKey{}).(*sessionHold)
	if hold == nil || !hold.used.CompareAndSwap(false, true) || p.missedSession(sessionID) {
		return p.Crypto.WaitForSession(ctx, roomID, senderKey, sessionID, timeout)
	}
	until := p.clock.Now().Add(sessionHoldMax)
	if p.Crypto.WaitForSession(ctx, roomID, senderKey, sessionID, timeout) {
		return true
	}
	rest := until.Sub(p.clock.Now())
	if rest <= 0 {
		return false
	}
	zerolog.Ctx(ctx).Debug().Stringer("session_id", sessionID).Dur("wait", rest).
		Msg("Room key still missing; asking the sender's devices and holding the room's events")
	// Every device of the sender: the one that sent it is named only in a
	// field Matrix v1.3 deprecated.
	p.Crypto.RequestSession(ctx, roomID, senderKey, sessionID, hold.sender, "")
	if p.Crypto.WaitForSession(ctx, roomID, senderKey, sessionID, rest) {
		return true
	}
	if p.missed != nil {
		p.missed.Put(sessionID, struct{}{})
	}
	return false
}

func (p *pacedCrypto) missedSession(sessionID id.SessionID) bool {
	if p.missed == nil {
		return false
	}
	_, ok := p.missed.Get(sessionID)
	return ok
}

func newMissedSessions() *lru.Cache[id.SessionID, struct{}] {
	return lru.New[id.SessionID, struct{}](heldMissedCap)
}
