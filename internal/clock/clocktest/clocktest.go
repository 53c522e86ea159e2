// Package clocktest is the clock of tests: it moves only when told.
package clocktest

import (
	"sync"
	"time"
)

// Manual is a clock that shows the time it was set to until Advance moves
// it. It is safe for concurrent use.
type Manual struct {
	mu sync.Mutex
	t  time.Time
}

// New returns a manual clock showing t.
func New(t time.Time) *Manual { return &Manual{t: t} }

// Now returns the clock's time.
func (c *Manual) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock d ahead.
func (c *Manual) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
