package remote

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"
)

// TestProfileGate: readers run together, and a writer waiting for them does
// not hold a new reader back; the writer runs once the last reader left,
// alone; a reader that comes meanwhile waits for the writer's end.
func TestProfileGate(t *testing.T) {
	var g ProfileGate
	g.RLock()
	wrote, release := startWriter(&g)
	// A second reader gets in whether or not the writer waits already.
	g.RLock()
	select {
	case <-wrote:
		t.Fatal("a writer ran while two readers held the gate")
	default:
	}
	g.RUnlock()
	select {
	case <-wrote:
		t.Fatal("a writer ran while a reader held the gate")
	default:
	}
	g.RUnlock()
	select {
	case <-wrote:
	case <-time.After(10 * time.Second):
		t.Fatal("the writer did not run once the readers left")
	}
	read := make(chan struct{})
	go func() {
		g.RLock()
		close(read)
		g.RUnlock()
	}()
	select {
	case <-read:
		t.Fatal("a reader ran while the writer held the gate")
	default:
	}
	close(release)
	select {
	case <-read:
	case <-time.After(10 * time.Second):
		t.Fatal("the reader did not run once the writer left")
	}
}

// TestProfileGateWriterNotStarved: readers that keep overlapping (each new
// one in before the last one leaves, as in a flood across chats) go past
// a waiting writer WriterPatience times at most; the next reader waits,
// the writer runs once the readers inside have left, and the held reader
// goes in after it.
func TestProfileGateWriterNotStarved(t *testing.T) {
	var g ProfileGate
	g.RLock() // the reader inside when the writer comes
	wrote, release := startWriter(&g)
	waitFor(t, func() bool { g.mu.Lock(); defer g.mu.Unlock(); return g.waiting == 1 })
	for i := range WriterPatience {
		g.RLock() // overlaps the one inside
		select {
		case <-wrote:
			t.Fatalf("the writer ran with a reader inside, after %d readers", i+1)
		default:
		}
		g.RUnlock()
	}
	held := make(chan struct{})
	go func() {
		g.RLock()
		close(held)
		g.RUnlock()
	}()
	waitFor(t, func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.passed > WriterPatience {
			t.Fatalf("reader %d went past a writer that waited for %d", g.passed, WriterPatience)
		}
		return g.held == 1
	})
	g.RUnlock()
	select {
	case <-wrote:
	case <-time.After(10 * time.Second):
		t.Fatal("the writer did not run once the reader inside left")
	}
	select {
	case <-held:
		t.Fatal("the held reader ran while the writer held the gate")
	default:
	}
	close(release)
	select {
	case <-held:
	case <-time.After(10 * time.Second):
		t.Fatal("the held reader did not run after the writer")
	}
}

// startWriter has a goroutine take g as a writer: wrote is closed once it
// holds it, and it lets go once release is closed.
func startWriter(g *ProfileGate) (wrote, release chan struct{}) {
	wrote, release = make(chan struct{}), make(chan struct{})
	go func() {
		g.Lock()
		close(wrote)
		<-release
		g.Unlock()
	}()
	return wrote, release
}

// waitFor polls cond until it holds (10 s at most), yielding to the
// goroutines that make it hold.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); runtime.Gosched() {
		if time.Now().After(deadline) {
			t.Fatal("condition never held")
		}
	}
}

// TestWaitTurnLetsTheGateGo is the shape of 100 new chats at once across
// logins: one reader makes its room holding the creation turn, the next
// waits for the turn, a writer (a profile refresh) waits for the readers,
// and a live chat's readers keep coming. The reader in line for the turn
// lets the gate go while it waits: the writer runs once the room being made
// is done, not once the whole line is, and after WriterPatience live
// readers the next one waits only for that. Then the reader in line gets
// the turn and the gate back. A waiter without a hold just waits.
func TestWaitTurnLetsTheGateGo(t *testing.T) {
	var g ProfileGate
	var turn sync.Mutex
	ctx := context.Background()

	// The room being made: the turn, then a reader.
	creating := WaitTurn(ctx, &turn)
	_, doneCreating := HoldGate(ctx, &g, false)

	// The next new chat: a reader that must wait for the turn.
	inLine := make(chan func())
	entered := make(chan struct{})
	go func() {
		hctx, done := HoldGate(ctx, &g, false)
		close(entered)
		endTurn := WaitTurn(hctx, &turn)
		inLine <- func() { endTurn(); done() }
	}()
	<-entered
	// Two readers in; the one in line lets go as it waits for the turn.
	waitFor(t, func() bool { g.mu.Lock(); defer g.mu.Unlock(); return g.readers == 1 })

	wrote, release := startWriter(&g)
	waitFor(t, func() bool { g.mu.Lock(); defer g.mu.Unlock(); return g.waiting == 1 })
	for range WriterPatience {
		g.RLock() // the live chat's messages go past the waiting writer
		g.mu.Lock()
		live := g.readers
		g.mu.Unlock()
		g.RUnlock()
		if live != 2 {
			t.Fatalf("%d readers in with a live message, want it and the room being made", live)
		}
	}
	// The room is made: the writer runs, though a chat still waits for the
	// turn.
	doneCreating()
	creating()
	select {
	case <-wrote:
	case <-time.After(10 * time.Second):
		t.Fatal("the writer still waits once the room being made is done: the chat in line for the turn holds the gate")
	}
	select {
	case <-inLine:
		t.Fatal("the chat in line went on while the writer held the gate")
	default:
	}
	close(release)
	var finish func()
	select {
	case finish = <-inLine:
	case <-time.After(10 * time.Second):
		t.Fatal("the chat in line never got the turn")
	}
	// It holds the gate again: a writer waits for it.
	wrote2, release2 := startWriter(&g)
	select {
	case <-wrote2:
		t.Fatal("a writer ran while the chat holding the turn held the gate")
	default:
	}
	finish()
	select {
	case <-wrote2:
	case <-time.After(10 * time.Second):
		t.Fatal("the writer did not run once the chat was done")
	}
	close(release2)

	// Without a hold in its context, a waiter takes the turn only.
	end := WaitTurn(ctx, &turn)
	got := make(chan func())
	go func() { got <- WaitTurn(ctx, &turn) }()
	end()
	select {
	case end2 := <-got:
		end2()
	case <-time.After(10 * time.Second):
		t.Fatal("a waiter without a hold never got the turn")
	}
}
