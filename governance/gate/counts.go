package gate

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/governance/migration"
)

// Counting every bridged message in the registry of outside contacts and
// in the border counts was one transaction per message, the gate's largest
// cost on the message path. A routine message (a contact already stored,
// in a chat whose link was written lately: audit.Registry.Routine) only
// adds to counts, so the gate gathers those for CountWindow and writes them
// in one transaction, one update per contact. Anything that can create a
// contact, a link or a first_contact entry is still written at once, and
// every read of the registry or of the migration figures writes what is
// gathered first (audit.Registry.Pending): a reader never sees a message
// missing. What a crash loses is the counts of the last CountWindow; a
// stop writes them.

// DefaultCountWindow is how long routine counts are gathered before they
// are written.
const DefaultCountWindow = 500 * time.Millisecond

// countQueue bounds the counts waiting for the writer (a sender waits when
// it is full); countBatch is the most one transaction writes.
const (
	countQueue = 4096
	countBatch = 512
)

// countItem is a routine message to count, or, with done set, a request to
// write everything before it.
type countItem struct {
	obs    audit.Observation
	border migration.BorderMessage
	done   chan error
}

// counter gathers routine counts for its writer (run).
type counter struct {
	in     chan countItem
	window time.Duration
	write  func(ctx context.Context, items []countItem) error

	// adding counts the senders between their check of stopping and their
	// send; the writer stops only once none is left and the queue is
	// empty, so nothing sent is left behind.
	adding   atomic.Int64
	stopping atomic.Bool
	stopped  chan struct{}
}

func newCounter(window time.Duration, write func(ctx context.Context, items []countItem) error) *counter {
	return &counter{in: make(chan countItem, countQueue), window: window, write: write, stopped: make(chan struct{})}
}

// send queues an item; false when the writer is stopping (the caller then
// writes itself).
func (c *counter) send(ctx context.Context, it countItem) bool {
	c.adding.Add(1)
	defer c.adding.Add(-1)
	if c.stopping.Load() {
		return false
	}
	select {
	case c.in <- it:
		return true
	case <-ctx.Done():
		return false
	}
}

// add queues a routine message's counts.
func (c *counter) add(ctx context.Context, obs audit.Observation, border migration.BorderMessage) bool {
	return c.send(ctx, countItem{obs: obs, border: border})
}

// flush returns once everything queued before it is written.
func (c *counter) flush(ctx context.Context) error {
	done := make(chan error, 1)
	if !c.send(ctx, countItem{done: done}) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		select { // stopping: the writer writes all before it ends
		case <-c.stopped:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run is the writer: it gathers items for the window (or until countBatch
// or a flush request) and writes them, until ctx ends; then it writes what
// is left with its own deadline.
func (c *counter) run(ctx context.Context) {
	defer close(c.stopped)
	var batch []countItem
	var waiting []chan error
	take := func(it countItem) (now bool) {
		if it.done != nil {
			waiting = append(waiting, it.done)
			return true
		}
		batch = append(batch, it)
		return len(batch) >= countBatch
	}
	writeBatch := func(ctx context.Context) {
		err := c.writeSafely(ctx, batch)
		if err != nil {
			zerolog.Ctx(ctx).Err(err).Int("messages", len(batch)).Msg("Failed to record outside contacts' counts")
		}
		for _, w := range waiting {
			w <- err
		}
		batch, waiting = batch[:0], nil
	}
	for ctx.Err() == nil {
		select {
		case it := <-c.in:
			if !take(it) {
				c.gather(ctx, take)
			}
			if ctx.Err() != nil {
				break // stopping: written below, with a deadline of its own
			}
			writeBatch(ctx)
		case <-ctx.Done():
		}
	}
	// Stopping: let no one queue more, take what was queued, write it.
	c.stopping.Store(true)
	for c.adding.Load() > 0 || len(c.in) > 0 {
		select {
		case it := <-c.in:
			take(it)
		default:
			runtime.Gosched()
		}
	}
	final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	writeBatch(final)
}

// gather takes items for the window, until take says to write now.
func (c *counter) gather(ctx context.Context, take func(countItem) bool) {
	timer := time.NewTimer(c.window)
	defer timer.Stop()
	for {
		select {
		case it := <-c.in:
			if take(it) {
				return
			}
		case <-timer.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// writeSafely writes a batch; a panic becomes its error (the writer must
// go on: senders wait for it).
func (c *counter) writeSafely(ctx context.Context, items []countItem) (err error) {
	if len(items) == 0 {
		return nil
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic while recording counts: %v", p)
		}
	}()
	return c.write(ctx, items)
}

// writeCounts writes gathered counts: the registry's and the border
// counts, in one transaction.
func (g *Gate) writeCounts(ctx context.Context, items []countItem) error {
	obs := make([]audit.Observation, len(items))
	borders := make([]migration.BorderMessage, len(items))
	for i, it := range items {
		obs[i], borders[i] = it.obs, it.border
	}
	return g.DB.DoTxn(ctx, nil, func(ctx context.Context) error {
		if err := g.Contacts.RecordAll(ctx, obs); err != nil {
			return err
		}
		g.Migration.CountBorders(ctx, borders)
		return nil
	})
}
