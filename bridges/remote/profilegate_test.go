package remote

import (
	"testing"
	"time"
)

// TestProfileGate: readers run together, and a writer waiting for them does
// not hold a new reader back; the writer runs once the last reader left,
// alone; a reader that comes meanwhile waits for the writer's end.
func TestProfileGate(t *testing.T) {
	var g ProfileGate
	g.RLock()
	wrote := make(chan struct{})
	release := make(chan struct{})
	go func() {
		g.Lock()
		close(wrote)
		<-release
		g.Unlock()
	}()
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
