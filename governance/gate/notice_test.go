package gate

import (
	"context"
	"testing"
	"time"

	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/internal/dbtest"
)

// TestReactionOnANoticeBeingPosted: a reaction may come for a request
// notice the instant the homeserver has it, before the gate remembered the
// notice's event (CI saw an approval ignored that way). The lookup of an
// unknown notice waits for the notices being posted, then finds it; an
// event that is no notice is still not found, and does not wait when none
// is being posted.
func TestReactionOnANoticeBeingPosted(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		st, err := openStore(ctx, b.Open(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		g := &Gate{state: st}

		const notice = id.EventID("$notice")
		g.notices.RLock() // a notice's send: posted, not yet remembered
		type answer struct {
			req   int64
			found bool
			err   error
		}
		got := make(chan answer, 1)
		go func() {
			req, found, err := g.RequestForNotice(ctx, notice)
			got <- answer{req, found, err}
		}()
		select {
		case a := <-got:
			t.Fatalf("looked up while the notice was being posted: %+v, want it to wait", a)
		case <-time.After(100 * time.Millisecond):
		}
		if err = st.putNotice(ctx, notice, 7); err != nil {
			t.Fatal(err)
		}
		g.notices.RUnlock()
		if a := <-got; a.err != nil || !a.found || a.req != 7 {
			t.Fatalf("a reaction on the notice being posted: %+v, want request 7", a)
		}

		// No notice in flight: an unknown event is answered at once.
		if _, found, err := g.RequestForNotice(ctx, "$other"); err != nil || found {
			t.Fatalf("an event that is no notice: found %v, %v", found, err)
		}
		// One in flight that never ends: the caller's context bounds the wait.
		g.notices.RLock()
		defer g.notices.RUnlock()
		short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		if _, found, err := g.RequestForNotice(short, "$other"); found || err == nil {
			t.Fatalf("an unknown event while a notice hangs: found %v, %v; want the context's error", found, err)
		}
	})
}
