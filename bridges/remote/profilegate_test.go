package remote

import (
	"runtime"
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
