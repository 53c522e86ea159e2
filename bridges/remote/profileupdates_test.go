package remote

import (
	"context"
	"sync"
	"testing"
)

// TestProfileUpdates: a change queued while a message is handled (a
// reader of the gate: here the caller itself, which would deadlock if it
// waited) returns at once and is applied once no reader is left, as a
// writer; of two changes of a ghost that wait, only the later is applied;
// a change that panics does not stop the next.
func TestProfileUpdates(t *testing.T) {
	var gate ProfileGate
	u := &ProfileUpdates{Gate: &gate}
	ctx := context.Background()
	var mu sync.Mutex
	var applied []string
	note := func(s string) func(context.Context) {
		return func(context.Context) {
			if gate.readers != 0 || !gate.writing {
				t.Errorf("%s applied with %d readers, writing %v: not as the gate's writer", s, gate.readers, gate.writing)
			}
			mu.Lock()
			applied = append(applied, s)
			mu.Unlock()
		}
	}
	got := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), applied...)
	}

	gate.RLock() // a message being handled
	u.Queue(ctx, "bob", note("bob: old name"))
	u.Queue(ctx, "carol", func(context.Context) { panic("bad photo") })
	u.Queue(ctx, "bob", note("bob: new name"))
	u.Queue(ctx, "dan", note("dan: photo"))
	waitFor(t, func() bool { gate.mu.Lock(); defer gate.mu.Unlock(); return gate.waiting == 1 })
	if a := got(); len(a) != 0 {
		t.Fatalf("changes applied while a message was handled: %v", a)
	}
	gate.RUnlock()
	waitFor(t, func() bool { return u.Waiting() == 0 && len(got()) == 2 })
	if a := got(); a[0] != "bob: new name" || a[1] != "dan: photo" {
		t.Errorf("applied %v, want bob's latest change, then dan's", a)
	}
	// The worker ended; a new change starts it again.
	u.Queue(ctx, "bob", note("bob: again"))
	waitFor(t, func() bool { return len(got()) == 3 })
}
