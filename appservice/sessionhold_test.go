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
		ctx := withSessionHold(context.Background(), encryptedEvent("$1", "s1"), &holdBudget{})
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
		ctx := withSessionHold(context.Background(), encryptedEvent("$1", "s2"), &holdBudget{})
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
		next := withSessionHold(context.Background(), encryptedEvent("$2", "s2"), &holdBudget{})
		p.WaitForSession(next, "!portal:x", "", "s2", usual)
		if waits, _ = inner.calls(); len(waits) != 5 || waits[4] != usual {
			t.Fatalf("waits %v: a session that missed its hold was held again", waits)
		}
	})

	t.Run("one budget per transaction", func(t *testing.T) {
		p, inner := newCrypto(nil)
		budget := &holdBudget{}
		p.WaitForSession(withSessionHold(context.Background(), encryptedEvent("$1", "a"), budget), "!portal:x", "", "a", usual)
		p.WaitForSession(withSessionHold(context.Background(), encryptedEvent("$2", "b"), budget), "!portal:x", "", "b", usual)
		waits, requests := inner.calls()
		var total time.Duration
		for _, w := range waits {
			total += w
		}
		if total > sessionHoldMax+usual || len(requests) != 1 {
			t.Fatalf("two missing keys in one transaction waited %v (%v) with %d requests; the budget is %v",
				total, waits, len(requests), sessionHoldMax)
		}
	})

	t.Run("not an encrypted event", func(t *testing.T) {
		evt := &event.Event{Type: event.EventMessage, Content: event.Content{Parsed: &event.MessageEventContent{Body: "hi"}}}
		ctx := withSessionHold(context.Background(), evt, &holdBudget{})
		if ctx.Value(sessionHoldKey{}) != nil {
			t.Fatal("a clear event was marked for a session hold")
		}
	})
}

// Through the transaction handler: an encrypted event whose room key is
// late keeps its transaction unanswered until the key came and the event
// was handled, so that a gateway stopped in between gets it again.
func TestTransactionHeldUntilRoomKey(t *testing.T) {
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
	var mu sync.Mutex
	var bridged []id.EventID
	ep.On(event.EventEncrypted, func(ctx context.Context, evt *event.Event) {
		// What bridgev2's handler does with an event it cannot decrypt yet.
		content := evt.Content.AsEncrypted()
		if p.WaitForSession(ctx, evt.RoomID, content.SenderKey, content.SessionID, 3*time.Second) {
			mu.Lock()
			bridged = append(bridged, evt.ID)
			mu.Unlock()
		}
	})
	ready := make(chan struct{})
	close(ready)
	h := handledTransactions(as, ep, ready)(http.NotFoundHandler())
	body := `{"events":[{"type":"m.room.encrypted","event_id":"$new-session","room_id":"!portal:x","sender":"@sam:x",
		"content":{"algorithm":"m.megolm.v1.aes-sha2","ciphertext":"AwgA","session_id":"fresh","device_id":"SAMDEV","sender_key":"k"}}]}`
	done := make(chan int)
	go func() { done <- putTransaction(h, "hs-token", body).Code }()
	select {
	case code := <-done:
		t.Fatalf("transaction answered (%d) while its event waited for the room key", code)
	case <-time.After(200 * time.Millisecond):
	}
	if _, requests := inner.calls(); len(requests) != 1 || requests[0] != "@sam:x/" {
		t.Fatalf("key requests %v, want one to the sender's devices", requests)
	}
	close(key)
	if code := <-done; code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bridged) != 1 || bridged[0] != "$new-session" {
		t.Fatalf("bridged %v, want the event once its key came", bridged)
	}
}
