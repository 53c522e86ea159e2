package gate

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix/bridgev2/networkid"
)

var (
	chatA = networkid.PortalKey{ID: "telegram.u1", Receiver: "telegram.10"}
	chatB = networkid.PortalKey{ID: "telegram.u1", Receiver: "telegram.20"}
)

// Turns run in the order they were taken, whatever order their owners reach
// wait in; the decision lock is free while a turn runs.
func TestTurnsKeepOrderAndLockStaysFree(t *testing.T) {
	g := &Gate{}
	var turns []*turn
	for range 5 {
		l := g.lockChat(chatA)
		turns = append(turns, l.takeTurn())
		l.unlock()
	}
	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	for i := len(turns) - 1; i >= 0; i-- { // start the last first
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if err := turns[i].wait(context.Background()); err != nil {
				t.Error(err)
			}
			// While a turn runs, the chat can still be decided on.
			l := g.lockChat(chatA)
			l.unlock()
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			turns[i].done()
		}(i)
	}
	wg.Wait()
	for i, got := range order {
		if got != i {
			t.Fatalf("turns ran in order %v", order)
		}
	}
	if n := g.chats.size(); n != 0 {
		t.Fatalf("%d chats still in the table after every turn ended", n)
	}
}

// A burst of chats decided at once (a thousand contacts typing after a
// restart) leaves no table behind once they are done: the memory of an
// idle gateway does not keep the peak's.
func TestChatTableGoesAfterABurst(t *testing.T) {
	g := &Gate{}
	var locks []*chatLock
	for i := range 1000 {
		locks = append(locks, g.lockChat(networkid.PortalKey{ID: networkid.PortalID(fmt.Sprintf("telegram.u%d", i)), Receiver: "telegram.10"}))
	}
	for _, l := range locks {
		l.unlock()
	}
	g.chats.mu.Lock()
	defer g.chats.mu.Unlock()
	if g.chats.m != nil {
		t.Fatalf("the table of an idle gate still holds a map (%d entries) sized for the burst", len(g.chats.m))
	}
}

// Two staff members' chats with one contact are two chats: one's turn does
// not wait for the other's.
func TestChatsAreKeyedByPortalKey(t *testing.T) {
	g := &Gate{}
	la := g.lockChat(chatA)
	ta := la.takeTurn()
	la.unlock()
	lb := g.lockChat(chatB) // not blocked by A's lock or turn
	tb := lb.takeTurn()
	lb.unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tb.wait(ctx); err != nil {
		t.Fatalf("B's turn waited for A's: %v", err)
	}
	tb.done()
	ta.done()
}

// A turn that stopped waiting still ends after the turns before it.
func TestAbandonedTurnKeepsOrder(t *testing.T) {
	g := &Gate{}
	take := func() *turn {
		l := g.lockChat(chatA)
		defer l.unlock()
		return l.takeTurn()
	}
	first, second, third := take(), take(), take()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := second.wait(ctx); err == nil {
		t.Fatal("second turn did not wait for the first")
	}
	second.done() // gives up before the first ended
	waited := make(chan struct{})
	go func() {
		_ = third.wait(context.Background())
		close(waited)
	}()
	select {
	case <-waited:
		t.Fatal("third turn ran while the first was still running")
	case <-time.After(50 * time.Millisecond):
	}
	first.done()
	<-waited
	third.done()
	if !waitFor(func() bool { return g.chats.size() == 0 }) {
		t.Fatalf("%d chats left in the table", g.chats.size())
	}
}

func waitFor(cond func() bool) bool {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); <-tick.C {
		if cond() {
			return true
		}
	}
	return cond()
}
