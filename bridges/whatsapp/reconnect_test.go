package whatsapp

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"maunium.net/go/mautrix/bridgev2/status"

	"github.com/passerelle/passerelle/internal/dbtest"
	"github.com/passerelle/passerelle/internal/fakematrix"
)

// manualClock passes time through until armed; then every After is
// recorded and fires only when the test says so.
type manualClock struct {
	armed  atomic.Bool
	offset atomic.Int64 // Now runs this far ahead of the system clock
	mu     sync.Mutex
	waits  []time.Duration
	timers []chan time.Time
}

func (c *manualClock) Now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// advance moves Now forward.
func (c *manualClock) advance(d time.Duration) { c.offset.Add(int64(d)) }

func (c *manualClock) After(d time.Duration) <-chan time.Time {
	if !c.armed.Load() {
		return time.After(d)
	}
	ch := make(chan time.Time, 1)
	c.mu.Lock()
	c.waits = append(c.waits, d)
	c.timers = append(c.timers, ch)
	c.mu.Unlock()
	return ch
}

func (c *manualClock) recorded() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.waits...)
}

// fire lets the oldest pending wait end.
func (c *manualClock) fire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.timers) > 0 {
		c.timers[0] <- time.Now()
		c.timers = c.timers[1:]
	}
}

// TestReconnectBackoff drops the WhatsApp server under a connected login:
// the user is told, the bridge state goes to TRANSIENT_DISCONNECT, and
// reconnection attempts wait 2 s, then 4 s, … on the connector's clock.
func TestReconnectBackoff(t *testing.T) {
	srv := startSim(t)
	tb := startBridge(t, srv, dbtest.SQLite(t).Open(t))
	clock := tb.clock
	loginQR(t, tb, srv)
	time.Sleep(200 * time.Millisecond)
	clock.armed.Store(true)

	_ = srv.Close()
	if !tb.mx.Eventually(waitLong, func() bool { return tb.mx.HasBridgeState(status.StateTransientDisconnect, StateErrDisconnected) }) {
		t.Fatal("no TRANSIENT_DISCONNECT after the server went away")
	}
	tb.waitMsg(t, "disconnect notice", func(m fakematrix.Message) bool { return strings.Contains(m.Content.Body, "connection of") })
	if !tb.mx.Eventually(waitLong, func() bool { return len(clock.recorded()) == 1 }) {
		t.Fatalf("waits %v, want one", clock.recorded())
	}
	connecting := tb.mx.CountBridgeStates(status.StateConnecting, "")
	time.Sleep(100 * time.Millisecond)
	if tb.mx.CountBridgeStates(status.StateConnecting, "") != connecting {
		t.Fatal("reconnected before the backoff elapsed")
	}

	clock.fire()
	if !tb.mx.Eventually(waitLong, func() bool { return tb.mx.HasBridgeState(status.StateTransientDisconnect, StateErrConnectFailed) }) {
		t.Fatal("the failed reconnection attempt was not reported")
	}
	if !tb.mx.Eventually(waitLong, func() bool { return len(clock.recorded()) == 2 }) {
		t.Fatalf("waits %v, want two", clock.recorded())
	}
	if got := clock.recorded(); got[0] != 2*time.Second || got[1] != 4*time.Second {
		t.Fatalf("backoff waits %v, want [2s 4s]", got)
	}
}
