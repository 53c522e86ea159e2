// Package clocktest is the clock of tests: it moves only when told.
package clocktest

import (
	"sync"
	"time"
)

// Manual is a clock that shows the time it was set to until Advance moves
// it; its timers (After) fire when Advance reaches them. It is safe for
// concurrent use.
type Manual struct {
	mu     sync.Mutex
	t      time.Time
	timers []timer
}

type timer struct {
	at time.Time
	ch chan time.Time
}

// New returns a manual clock showing t.
func New(t time.Time) *Manual { return &Manual{t: t} }

// Now returns the clock's time.
func (c *Manual) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// After returns a channel that receives the clock's time once Advance has
// moved it d ahead of now (at once for d ≤ 0).
func (c *Manual) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.t
		return ch
	}
	c.timers = append(c.timers, timer{at: c.t.Add(d), ch: ch})
	return ch
}

// Timers returns how many timers wait, so that a test can tell that code
// running in another goroutine has started waiting.
func (c *Manual) Timers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// Advance moves the clock d ahead and fires the timers it reaches.
func (c *Manual) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	kept := c.timers[:0]
	for _, tm := range c.timers {
		if tm.at.After(c.t) {
			kept = append(kept, tm)
			continue
		}
		tm.ch <- c.t
	}
	c.timers = kept
}
