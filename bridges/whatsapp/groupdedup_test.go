package whatsapp

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"maunium.net/go/mautrix/bridgev2/networkid"
)

// Two logins in one group receive each of its messages at the same moment,
// each in its own goroutine: exactly one of them bridges each message.
func TestGroupSeenOneClaimUnderConcurrentCopies(t *testing.T) {
	g := newGroupSeen(RealClock{})
	const messages = 2000
	logins := []networkid.UserLoginID{"whatsapp.15550001111", "whatsapp.15550002222", "whatsapp.15550003333"}
	var won [messages]atomic.Int32
	var start, wg sync.WaitGroup
	start.Add(1)
	for _, login := range logins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start.Wait()
			for i := range messages {
				if g.claim(fmt.Sprintf("m|group|sender|%d", i), login, 0) {
					won[i].Add(1)
				}
			}
		}()
	}
	start.Done()
	wg.Wait()
	for i := range messages {
		if n := won[i].Load(); n != 1 {
			t.Fatalf("message %d bridged by %d logins, want 1", i, n)
		}
	}
	if d := g.dropped.Load(); d != messages*int64(len(logins)-1) {
		t.Fatalf("%d copies recognised, want %d", d, messages*(len(logins)-1))
	}
}
