package remote

import (
	"context"
	"sync"
	"time"

	"github.com/passerelle/passerelle/internal/clock"
)

// DefaultLaneSpan is how far the tasks handed to a login's lanes may run
// ahead of the oldest one not ended: a chat that takes long (a portal being
// created, a flood) lets this many later events of other chats pass it
// before the network's receive loop waits. A flood of 10,000 messages in
// one chat fits: the others' messages pass it (issue #13's burst), at a
// few MiB for the queued events while it lasts.
const DefaultLaneSpan = 16384

// Lanes runs a connection's remote events one chat after the other in
// each chat and the chats side by side: a flood in one chat, or a chat
// whose portal is being created, does not hold back the login's other
// chats. A lane exists while it has work (its goroutine ends when it is
// empty): an idle login keeps no goroutine.
//
// Each task is numbered in the order it was handed over, and Lanes knows
// the lowest number not ended yet (Low): a network's stored position (the
// point its server sends events again from after a restart) must not pass
// a task that has not ended, whatever later tasks of other chats have
// ended. A task that reports it was not done (the connection ended before
// it was bridged) stops Low for good: the next connection gets that event
// again.
//
// Bounded by construction: Go waits while Span tasks are between Low and
// the next number.
type Lanes struct {
	span    uint64
	advance func(low uint64)

	mu        sync.Mutex
	lanes     map[string]*lane
	next      uint64        // number of the next task
	low       uint64        // every task numbered below low has ended, done
	ended     []uint64      // ring of bits, number % span: ended, at or above low
	stopped   bool          // a task was not done: low stays where it is
	running   int           // tasks handed over and not ended
	advancing int           // advance calls in progress
	changed   chan struct{} // closed (and replaced) when a task ends
}

type lane struct {
	tasks []laneTask
}

type laneTask struct {
	n   uint64
	run func() bool
}

// NewLanes makes lanes letting span tasks run ahead of the oldest one
// (span < 1: DefaultLaneSpan; rounded up to a multiple of 64). advance, if not nil, is called with the new
// Low after a task ended and moved it, outside any lock; calls may come
// from several goroutines, and a lower value may arrive after a higher one.
func NewLanes(span int, advance func(low uint64)) *Lanes {
	if span < 1 {
		span = DefaultLaneSpan
	}
	span = (span + 63) / 64 * 64
	return &Lanes{
		span:    uint64(span),
		advance: advance,
		lanes:   map[string]*lane{},
		ended:   make([]uint64, span/64),
		changed: make(chan struct{}),
	}
}

// Go hands run to the lane of key: it runs after the tasks handed to that
// lane before it, in a goroutine of the lane. run reports whether the
// event was done (bridged, or decided for good); false stops Low. Go waits
// while Span tasks are ahead of the oldest one not ended, and returns
// ctx's error if ctx ends first (run is then not handed over).
func (l *Lanes) Go(ctx context.Context, key string, run func() bool) error {
	l.mu.Lock()
	if err := l.awaitLocked(ctx, func() bool { return l.next-l.low < l.span }); err != nil {
		l.mu.Unlock()
		return err
	}
	t := laneTask{n: l.next, run: run}
	l.next++
	l.running++
	ln, busy := l.lanes[key]
	if !busy {
		ln = &lane{}
		l.lanes[key] = ln
	}
	ln.tasks = append(ln.tasks, t)
	l.mu.Unlock()
	if !busy {
		go l.drain(key, ln)
	}
	return nil
}

// drain runs a lane's tasks until it is empty, then forgets the lane.
func (l *Lanes) drain(key string, ln *lane) {
	for {
		l.mu.Lock()
		if len(ln.tasks) == 0 {
			delete(l.lanes, key)
			l.mu.Unlock()
			return
		}
		t := ln.tasks[0]
		ln.tasks[0] = laneTask{}
		ln.tasks = ln.tasks[1:]
		l.mu.Unlock()
		l.end(t.n, t.run())
	}
}

// end records that task n ended, and moves Low over the ended tasks.
func (l *Lanes) end(n uint64, done bool) {
	l.mu.Lock()
	l.running--
	moved := false
	switch {
	case !done:
		l.stopped = true
	case !l.stopped:
		l.setEnded(n, true)
		for l.low < l.next && l.isEnded(l.low) {
			l.setEnded(l.low, false)
			l.low++
			moved = true
		}
	}
	low := l.low
	call := moved && l.advance != nil
	if call {
		l.advancing++
	}
	l.signal()
	l.mu.Unlock()
	if call {
		l.advance(low)
		l.mu.Lock()
		l.advancing--
		l.signal()
		l.mu.Unlock()
	}
}

// signal wakes the waiters; under mu.
func (l *Lanes) signal() {
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *Lanes) isEnded(n uint64) bool {
	i := n % l.span
	return l.ended[i/64]&(1<<(i%64)) != 0
}

func (l *Lanes) setEnded(n uint64, ended bool) {
	i := n % l.span
	if ended {
		l.ended[i/64] |= 1 << (i % 64)
	} else {
		l.ended[i/64] &^= 1 << (i % 64)
	}
}

// Next is the number the next task will get: a stored position taken now
// is safe to write once Low reaches it.
func (l *Lanes) Next() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.next
}

// Busy reports whether a task handed over has not ended yet.
func (l *Lanes) Busy() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.running > 0 || l.advancing > 0
}

// Settle waits until every task handed over has ended, for at most
// within on clk (nil: the system clock); false when the bound passed
// first. A connection's end settles its lanes: what they are bridging
// finishes before the connection (and the database) close.
func (l *Lanes) Settle(clk clock.Clock, within time.Duration) bool {
	if !l.Busy() {
		return true
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-clock.Or(clk).After(within):
			cancel()
		case <-ctx.Done():
		}
	}()
	return l.Wait(ctx) == nil
}

// Low is the lowest task number not ended (done); every task below it
// ended done.
func (l *Lanes) Low() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.low
}

// Wait returns once every task handed over before it has ended (done or
// not) and the advance calls of their ends have returned, or with ctx's
// error.
func (l *Lanes) Wait(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	target := l.next
	// Below low every task ended; once a task was not done low stays, and
	// only an idle Lanes has ended them all.
	return l.awaitLocked(ctx, func() bool {
		return (l.running == 0 || (!l.stopped && l.low >= target)) && l.advancing == 0
	})
}

// awaitLocked waits, under mu (released while waiting), until cond holds
// or ctx ends.
func (l *Lanes) awaitLocked(ctx context.Context, cond func() bool) error {
	for !cond() {
		changed := l.changed
		l.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			l.mu.Lock()
			return ctx.Err()
		}
		l.mu.Lock()
	}
	return nil
}
