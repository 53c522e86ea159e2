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
// Unlike sync.RWMutex, a waiting writer does not hold back new readers at
// once (that would hold every chat behind the slowest message being
// handled, a room being created): it waits for a moment with none. Only
// once WriterPatience readers have gone past it (chats whose messages keep
// overlapping, a flood across chats) do new readers wait for it, so that a
// writer is never starved.
//
// The zero value is ready. A goroutine must not take the gate again while
// it holds it.
type ProfileGate struct {
	mu      sync.Mutex
	cond    *sync.Cond
	readers int
	writing bool
	// waiting counts the writers waiting; passed the readers that went
	// in while one waited (since the last writer ran).
	waiting, passed int
	held            int // readers waiting
}

// WriterPatience is how many readers may go past a waiting writer.
const WriterPatience = 64

func (g *ProfileGate) init() {
	if g.cond == nil {
		g.cond = sync.NewCond(&g.mu)
	}
}

// RLock waits while a writer runs, or while one has waited past
// WriterPatience readers.
func (g *ProfileGate) RLock() {
	g.mu.Lock()
	g.init()
	for g.writing || g.waiting > 0 && g.passed >= WriterPatience {
		g.held++
		g.cond.Wait()
		g.held--
	}
	g.readers++
	if g.waiting > 0 {
		g.passed++
	}
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
	g.waiting++
	for g.writing || g.readers > 0 {
		g.cond.Wait()
	}
	g.waiting--
	g.writing, g.passed = true, 0
	g.mu.Unlock()
}

// Unlock ends a writer.
func (g *ProfileGate) Unlock() {
	g.mu.Lock()
	g.writing = false
	g.cond.Broadcast()
	g.mu.Unlock()
}
