package appservice

import (
	"context"
	"sync"
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
// restarted). bridgev2 waits 3 s for the key inside the transaction's
// handling and then goes on waiting in the background: the transaction is
// answered, and a gateway stopped or killed before the key came loses the
// message for good, since the homeserver never sends it again (seen in the
// crash loop: one Matrix→remote message lost at a kill, the first of a new
// session, the key arriving 4 s late after a Dendrite restart).
//
// The transaction handler marks each encrypted event it dispatches
// (withSessionHold); the first wait for that event's session is stretched,
// with a key request to the sender's devices after the usual 3 s, until the
// transaction's hold budget runs out: sessionHoldMax from the first such
// wait of the transaction, whatever the number of its events. The transaction is answered once the
// key came (the message is then bridged) or the hold ran out; a crash in
// between leaves the transaction unanswered, and the homeserver sends it
// again. A session whose key did not come within the hold is remembered
// (heldMissed): a client that never shares its keys with the bot costs the
// gateway's other rooms that wait once per session, not once per message.
const sessionHoldMax = 20 * time.Second

// heldMissedCap bounds the memory of sessions whose keys did not come.
const heldMissedCap = 1024

type sessionHoldKey struct{}

// holdBudget is one transaction's time for held waits: it starts at the
// transaction's first held wait and ends sessionHoldMax later.
type holdBudget struct {
	mu    sync.Mutex
	until time.Time
}

func (b *holdBudget) deadline(now time.Time) time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.until.IsZero() {
		b.until = now.Add(sessionHoldMax)
	}
	return b.until
}

// sessionHold is the mark of one encrypted event dispatched by the
// transaction handler.
type sessionHold struct {
	budget *holdBudget
	sender id.UserID
	used   atomic.Bool
}

// withSessionHold marks ctx for evt when it is an encrypted event: its
// first wait for a missing key may last as long as the transaction's
// budget.
func withSessionHold(ctx context.Context, evt *event.Event, budget *holdBudget) context.Context {
	if evt.Type != event.EventEncrypted {
		return ctx
	}
	if _, ok := evt.Content.Parsed.(*event.EncryptedEventContent); !ok {
		return ctx
	}
	return context.WithValue(ctx, sessionHoldKey{}, &sessionHold{budget: budget, sender: evt.Sender})
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
	until := hold.budget.deadline(p.clock.Now())
	if p.Crypto.WaitForSession(ctx, roomID, senderKey, sessionID, timeout) {
		return true
	}
	rest := until.Sub(p.clock.Now())
	if rest <= 0 {
		return false
	}
	zerolog.Ctx(ctx).Debug().Stringer("session_id", sessionID).Dur("wait", rest).
		Msg("Room key still missing; asking the sender's devices and holding the transaction")
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
