package whatsapp

import (
	"testing"

	"go.mau.fi/whatsmeow/types/events"
)

// TestForwarderTakesAcksWhileHolding: a message that comes before the
// login's handler is set has its acknowledgement taken on whatsmeow's
// goroutine (whatsmeow then knows it is not done), and the handler gets it
// later through the held event; past the bound, a held-back message is
// refused (the server sends it again) rather than acknowledged unbridged.
func TestForwarderTakesAcksWhileHolding(t *testing.T) {
	var f forwarder
	taken := 0
	var results []bool
	msg := func() *events.Message {
		return &events.Message{DeferAck: func() func(ok bool) {
			taken++
			return func(ok bool) { results = append(results, ok) }
		}}
	}
	if !f.dispatch(msg()) {
		t.Fatal("a held event reported as failed")
	}
	if taken != 1 {
		t.Fatalf("the held message's acknowledgement taken %d times while whatsmeow's handler ran, want once", taken)
	}
	var handled []any
	f.setTarget(func(evt any) bool {
		handled = append(handled, evt)
		if m, ok := evt.(*events.Message); ok && m.DeferAck != nil {
			m.DeferAck()(true)
		}
		return true
	})
	if len(handled) != 1 || taken != 1 || len(results) != 1 || !results[0] {
		t.Fatalf("after the target was set: %d handled, acknowledgement taken %d times, results %v; want 1, 1, [true]", len(handled), taken, results)
	}

	// Past the bound.
	var g forwarder
	taken, results = 0, nil
	for range maxPending + 1 {
		g.dispatch(msg())
	}
	if taken != maxPending+1 || len(results) != 1 || results[0] {
		t.Fatalf("past %d held: acknowledgements taken %d, results %v; want the last refused", maxPending, taken, results)
	}
}
