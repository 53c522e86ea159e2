package remote

import (
	"context"
	"sync"
	"sync/atomic"
)

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

// GateHold is one handler's hold of a ProfileGate, carried in its context
// (HoldGate) so that WaitTurn can let the gate go while the handler waits
// for a turn. The context is the handler's: a goroutine it starts that may
// wait for a turn takes a hold of its own (a context whose hold has ended
// waits without one).
type GateHold struct {
	gate   *ProfileGate
	writer bool
	held   atomic.Bool // false once the hold ended, or while WaitTurn let it go
}

type gateHoldKey struct{}

// HoldGate takes gate, as a writer or a reader, and returns ctx carrying
// the hold, for the handler to run with, and the hold's end.
func HoldGate(ctx context.Context, gate *ProfileGate, writer bool) (context.Context, func()) {
	h := &GateHold{gate: gate, writer: writer}
	h.take()
	return context.WithValue(ctx, gateHoldKey{}, h), h.release
}

func (h *GateHold) take() {
	if h.writer {
		h.gate.Lock()
	} else {
		h.gate.RLock()
	}
	h.held.Store(true)
}

func (h *GateHold) release() {
	if !h.held.Swap(false) {
		return
	}
	if h.writer {
		h.gate.Unlock()
	} else {
		h.gate.RUnlock()
	}
}

// WaitTurn takes turn (a connector's one-room-at-a-time creation turn) and
// returns its release. A caller whose ctx carries a hold of a gate
// (HoldGate) and who must wait for the turn lets the gate go while it
// waits, and takes it again once the turn is its. Otherwise the turn's
// holder, creating a room as a reader, and a writer waiting for every
// reader to go would hold every chat of every login behind the whole line
// of rooms to be made: once WriterPatience readers went past the writer,
// new readers wait for it, and it for the readers waiting in the line. A
// handler holding the turn waits for the gate; none waits for the turn
// holding the gate, so neither waits for ever.
func WaitTurn(ctx context.Context, turn *sync.Mutex) func() {
	if turn.TryLock() {
		return turn.Unlock
	}
	h, _ := ctx.Value(gateHoldKey{}).(*GateHold)
	if h == nil || !h.held.Load() {
		turn.Lock()
		return turn.Unlock
	}
	h.release()
	turn.Lock()
	h.take()
	return turn.Unlock
}
