package audit_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"

	"github.com/passerelle/passerelle/governance/store"
	"github.com/passerelle/passerelle/internal/dbtest"
)

// clock is a deterministic clock that moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func openDB(t *testing.T, b dbtest.Backend) *dbutil.Database {
	t.Helper()
	db, err := store.Open(context.Background(), b.Open(t))
	if err != nil {
		t.Fatal(err)
	}
	return db
}
