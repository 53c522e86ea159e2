package gate

import (
	"context"
	"sync"

	"maunium.net/go/mautrix/bridgev2/networkid"
)

// The gate keeps two things per chat (a full portal key: the direct chats of
// two staff members with one contact are two chats):
//
//   - a decision lock, held only while the gate reads and writes its own
//     state (portal state, approvals, policy); never across a bridgev2 call
//     or network I/O, so that an outbound check, which runs while bridgev2
//     holds the portal, never waits for an event that waits for the portal;
//   - an order of turns: every event the gate lets through, and every
//     delivery of held events, takes a turn under the decision lock and
//     reaches bridgev2 only when the turns taken before it are done. Held
//     messages of an approved chat thus reach the portal before the live
//     messages decided after the approval.
//
// An entry lives only while someone holds the lock or a turn: the map is
// bounded by the chats in flight, not by every chat ever seen. A Go map
// keeps the room of the most entries it ever held, so the map itself goes
// with its last entry: a burst of chats at once leaves nothing behind.

type chatEntry struct {
	mu   sync.Mutex
	tail chan struct{} // closed when the newest turn is done; guarded by mu
	refs int           // guarded by chatTable.mu
}

type chatTable struct {
	mu sync.Mutex
	m  map[networkid.PortalKey]*chatEntry
}

func (t *chatTable) acquire(key networkid.PortalKey) *chatEntry {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = make(map[networkid.PortalKey]*chatEntry)
	}
	e := t.m[key]
	if e == nil {
		e = &chatEntry{}
		t.m[key] = e
	}
	e.refs++
	return e
}

func (t *chatTable) release(key networkid.PortalKey, e *chatEntry) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e.refs--
	if e.refs == 0 && t.m[key] == e {
		delete(t.m, key)
		if len(t.m) == 0 {
			t.m = nil
		}
	}
}

// size is the number of chats in flight (for tests).
func (t *chatTable) size() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}

// chatLock is a held decision lock of one chat.
type chatLock struct {
	table *chatTable
	key   networkid.PortalKey
	entry *chatEntry
}

// lockChat takes the decision lock of a chat. Release it with unlock, and
// never call bridgev2 or the network while holding it.
func (g *Gate) lockChat(key networkid.PortalKey) *chatLock {
	e := g.chats.acquire(key)
	e.mu.Lock()
	return &chatLock{table: &g.chats, key: key, entry: e}
}

func (l *chatLock) unlock() {
	l.entry.mu.Unlock()
	l.table.release(l.key, l.entry)
}

// takeTurn takes the next turn of the chat. Call it under the lock.
func (l *chatLock) takeTurn() *turn {
	l.table.mu.Lock()
	l.entry.refs++
	l.table.mu.Unlock()
	t := &turn{prev: l.entry.tail, mine: make(chan struct{}), table: l.table, key: l.key, entry: l.entry}
	l.entry.tail = t.mine
	return t
}

// turn is a place in a chat's order.
type turn struct {
	prev, mine chan struct{}
	table      *chatTable
	key        networkid.PortalKey
	entry      *chatEntry
}

// wait blocks until every turn taken before this one is done, or ctx ends.
func (t *turn) wait(ctx context.Context) error {
	if t.prev == nil {
		return nil
	}
	select {
	case <-t.prev:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// done ends the turn. A turn that stopped waiting early still ends after
// the turns before it, so that the order holds for the turns after it.
func (t *turn) done() {
	finish := func() {
		close(t.mine)
		t.table.release(t.key, t.entry)
	}
	if t.prev == nil {
		finish()
		return
	}
	select {
	case <-t.prev:
		finish()
	default:
		go func() {
			<-t.prev
			finish()
		}()
	}
}
