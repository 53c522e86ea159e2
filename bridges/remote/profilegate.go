package remote

import "sync"

// ProfileGate lets any number of events that only read ghosts be handled at
// once (readers: messages), and one that writes ghosts (a writer: a chat
// resync or info change carrying its members' profiles, a ghost's refresh)
// run while none is. bridgev2 reads an event sender's ghost without the
// ghost's lock, and writes a chat's members' ghosts while it handles the
// chat's resync: the two must not overlap. A connector keeps one gate for
// every login, since the logins share the ghosts.
//
// Unlike sync.RWMutex, a waiting writer does not hold back new readers
// (that would hold every chat behind the slowest message being handled, a
// room being created): it waits for a moment with none.
//
// The zero value is ready. A goroutine must not take the gate again while
// it holds it.
type ProfileGate struct {
	mu      sync.Mutex
	cond    *sync.Cond
	readers int
	writing bool
}

func (g *ProfileGate) init() {
	if g.cond == nil {
		g.cond = sync.NewCond(&g.mu)
	}
}

// RLock waits only while a writer runs.
func (g *ProfileGate) RLock() {
	g.mu.Lock()
	g.init()
	for g.writing {
		g.cond.Wait()
	}
	g.readers++
	g.mu.Unlock()
}

// RUnlock ends a reader.
func (g *ProfileGate) RUnlock() {
	g.mu.Lock()
	g.readers--
	if g.readers == 0 {
		g.cond.Broadcast()
	}
	g.mu.Unlock()
}

// Lock waits until no reader and no other writer runs.
func (g *ProfileGate) Lock() {
	g.mu.Lock()
	g.init()
	for g.writing || g.readers > 0 {
		g.cond.Wait()
	}
	g.writing = true
	g.mu.Unlock()
}

// Unlock ends a writer.
func (g *ProfileGate) Unlock() {
	g.mu.Lock()
	g.writing = false
	g.cond.Broadcast()
	g.mu.Unlock()
}
