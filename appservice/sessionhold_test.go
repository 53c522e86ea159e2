package appservice

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix/bridgev2/matrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/internal/dbtest"
)

// keyWaitCrypto is the helper's side of a session wait: each wait is
// recorded, and answered by arrive (nil: the key does not come; the wait
// then takes its whole timeout on clk).
type keyWaitCrypto struct {
	matrix.Crypto
	clk    *stepClock
	arrive func(call int, timeout time.Duration) bool

	mu       sync.Mutex
	waits    []time.Duration
	requests []string
}

func (c *keyWaitCrypto) WaitForSession(_ context.Context, _ id.RoomID, _ id.SenderKey, _ id.SessionID, timeout time.Duration) bool {
	c.mu.Lock()
	c.waits = append(c.waits, timeout)
	call := len(c.waits)
	c.mu.Unlock()
	if c.arrive != nil && c.arrive(call, timeout) {
		return true
	}
	c.clk.advance(timeout)
	return false
}

func (c *keyWaitCrypto) RequestSession(_ context.Context, _ id.RoomID, _ id.SenderKey, _ id.SessionID, user id.UserID, device id.DeviceID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requests = append(c.requests, user.String()+"/"+device.String())
}

func (c *keyWaitCrypto) calls() ([]time.Duration, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.waits...), append([]string(nil), c.requests...)
}

func encryptedEvent(evtID id.EventID, session id.SessionID) *event.Event {
	return &event.Event{Type: event.EventEncrypted, ID: evtID, RoomID: "!portal:x", Sender: "@sam:x",
		Content: event.Content{Parsed: &event.EncryptedEventContent{Algorithm: id.AlgorithmMegolmV1, SessionID: session}}}
}

// The first wait for a missing room key of an event the transaction
// handler dispatched lasts until the key comes, within the transaction's
// budget, asking the sender's device after the usual wait; bridgev2's later
// waits for the same event, and events not from a transaction, wait as
// asked; a session whose key never came is not waited for twice.
func TestHeldSessionWait(t *testing.T) {
	const usual, longer = 3 * time.Second, 22 * time.Second
	newCrypto := func(arrive func(int, time.Duration) bool) (*pacedCrypto, *keyWaitCrypto) {
		clk := &stepClock{now: time.Unix(1800000000, 0)}
		inner := &keyWaitCrypto{clk: clk, arrive: arrive}
		return &pacedCrypto{Crypto: inner, clock: clk, missed: newMissedSessions()}, inner
	}

	t.Run("the key comes during the hold", func(t *testing.T) {
		p, inner := newCrypto(func(call int, _ time.Duration) bool { return call == 2 })
		ctx := withSessionHold(context.Background(), encryptedEvent("$1", "s1"))
		if !p.WaitForSession(ctx, "!portal:x", "", "s1", usual) {
			t.Fatal("the key came during the hold, but the wait said it did not")
		}
		waits, requests := inner.calls()
		if len(waits) != 2 || waits[0] != usual || waits[1] != sessionHoldMax-usual {
			t.Fatalf("waits %v, want %v then the rest of the hold %v", waits, usual, sessionHoldMax-usual)
		}
		if len(requests) != 1 || requests[0] != "@sam:x/" {
			t.Fatalf("key requests %v, want one to the sender's devices", requests)
		}
	})

	t.Run("not held outside a transaction, nor twice", func(t *testing.T) {
		p, inner := newCrypto(nil)
		if p.WaitForSession(context.Background(), "!portal:x", "", "s1", usual) {
			t.Fatal("no key, but the wait said there was")
		}
		ctx := withSessionHold(context.Background(), encryptedEvent("$1", "s2"))
		p.WaitForSession(ctx, "!portal:x", "", "s2", usual)
		p.WaitForSession(ctx, "!portal:x", "", "s2", longer) // bridgev2's background wait
		waits, requests := inner.calls()
		want := []time.Duration{usual, usual, sessionHoldMax - usual, longer}
		if len(waits) != len(want) || waits[0] != want[0] || waits[1] != want[1] || waits[2] != want[2] || waits[3] != want[3] {
			t.Fatalf("waits %v, want %v", waits, want)
		}
		if len(requests) != 1 {
			t.Fatalf("%d key requests, want 1", len(requests))
		}
		// The session's key did not come in the hold: its next message
		// waits as usual, and other rooms are not held again for it.
		next := withSessionHold(context.Background(), encryptedEvent("$2", "s2"))
		p.WaitForSession(next, "!portal:x", "", "s2", usual)
		if waits, _ = inner.calls(); len(waits) != 5 || waits[4] != usual {
			t.Fatalf("waits %v: a session that missed its hold was held again", waits)
		}
	})

	t.Run("not an encrypted event", func(t *testing.T) {
		evt := &event.Event{Type: event.EventMessage, Content: event.Content{Parsed: &event.MessageEventContent{Body: "hi"}}}
		ctx := withSessionHold(context.Background(), evt)
		if ctx.Value(sessionHoldKey{}) != nil {
			t.Fatal("a clear event was marked for a session hold")
		}
	})
}

// Through the Matrix inbox: an encrypted event whose room key is late
// holds its room's events until the key came (and stays in the inbox
// meanwhile, so that a gateway stopped in between handles it again), while
// the other rooms' events, and the transactions behind it, pass.
func TestLateRoomKeyHoldsOnlyItsRoom(t *testing.T) {
	as, ep := newTransactionTestAS()
	key := make(chan struct{})
	clk := &stepClock{now: time.Unix(1800000000, 0)}
	inner := &keyWaitCrypto{clk: clk, arrive: func(call int, _ time.Duration) bool {
		if call == 1 {
			return false // the usual wait: not yet
		}
		<-key
		return true
	}}
	p := &pacedCrypto{Crypto: inner, clock: clk, missed: newMissedSessions()}
	var rec recorder
	ep.On(event.EventEncrypted, func(ctx context.Context, evt *event.Event) {
		// What bridgev2's handler does with an event it cannot decrypt yet.
		content := evt.Content.AsEncrypted()
		if p.WaitForSession(ctx, evt.RoomID, content.SenderKey, content.SessionID, 3*time.Second) {
			rec.add(evt.ID.String())
		}
	})
	otherRoom := make(chan struct{})
	ep.On(event.EventMessage, func(_ context.Context, evt *event.Event) {
		rec.add(evt.Content.AsMessage().Body)
		if evt.RoomID == "!other:x" {
			close(otherRoom)
		}
	})
	ready := make(chan struct{})
	close(ready)
	db := dbtest.SQLite(t).Open(t)
	in, h := newTestInbox(t, db, as, ep, ready, http.NotFoundHandler())
	body := `{"events":[{"type":"m.room.encrypted","event_id":"$new-session","room_id":"!portal:x","sender":"@sam:x",
		"content":{"algorithm":"m.megolm.v1.aes-sha2","ciphertext":"AwgA","session_id":"fresh","sender_key":"k"}},` +
		textEvents("!portal:x", "after it") + `]}`
	if r := putTransactionID(h, "hs-token", "1", body); r.Code != http.StatusOK {
		t.Fatalf("status %d", r.Code)
	}
	if r := putTransactionID(h, "hs-token", "2", `{"events":[`+textEvents("!other:x", "elsewhere")+`]}`); r.Code != http.StatusOK {
		t.Fatalf("status %d", r.Code)
	}
	select {
	case <-otherRoom:
	case <-time.After(10 * time.Second):
		t.Fatal("another portal's event waited for the late room key")
	}
	if got := rec.get(); got != "elsewhere" {
		t.Fatalf("handled %q while the key was late, want only the other room's event", got)
	}
	// The other room's event leaves the inbox once its handler returned.
	eventually(t, "the other room's event to leave the inbox", func() bool { return in.pending() == 2 })
	if n := inboxRows(t, db); n != 2 {
		t.Fatalf("%d events in the inbox while the key was late, want the held event and the one after it", n)
	}
	// The held event asks its sender's devices for the key after the
	// usual wait, in its room's lane.
	eventually(t, "the key request", func() bool { _, requests := inner.calls(); return len(requests) > 0 })
	if _, requests := inner.calls(); len(requests) != 1 || requests[0] != "@sam:x/" {
		t.Fatalf("key requests %v, want one to the sender's devices", requests)
	}
	close(key)
	// The held event once its key came, then the one after it.
	wantHandled(t, in, db, &rec, "elsewhere,$new-session,after it")
}
