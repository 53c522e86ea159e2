package lease

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/dbtest"
)

// stepClock fires a waiter when Advance passes its deadline.
type stepClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

func newStepClock() *stepClock { return &stepClock{now: time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)} }

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stepClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	c.waiters = append(c.waiters, waiter{at: c.now.Add(d), ch: ch})
	return ch
}

func (c *stepClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.at.After(c.now) {
			kept = append(kept, w)
		} else {
			w.ch <- c.now
		}
	}
	c.waiters = kept
}

// pending is the number of waits not fired yet.
func (c *stepClock) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiters)
}

// hangGuard bounds a wait for something the test has made happen; reaching
// it is a failure, not a timing assertion.
const hangGuard = 20 * time.Second

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never happened: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func openPostgres(t *testing.T) *sql.DB {
	t.Helper()
	b := dbtest.Postgres(t)
	db, err := sql.Open("postgres", b.URI)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// holderPID is the backend that holds key according to pg_locks, or 0.
func holderPID(t *testing.T, db *sql.DB, key int64) int {
	t.Helper()
	var pid int
	err := db.QueryRow(`SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 1`,
		int64(uint32(uint64(key)>>32)), int64(uint32(uint64(key)))).Scan(&pid)
	if errors.Is(err, sql.ErrNoRows) {
		return 0
	} else if err != nil {
		t.Fatal(err)
	}
	return pid
}

type acquired struct {
	l   *Lease
	err error
}

// standby starts Acquire in the background; waiting is closed once it has
// found the lock taken.
func standby(ctx context.Context, db *sql.DB, key int64, opts Options) (result chan acquired, waiting chan struct{}) {
	result, waiting = make(chan acquired, 1), make(chan struct{})
	opts.Waiting = func() { close(waiting) }
	go func() {
		l, err := Acquire(ctx, db, key, opts)
		result <- acquired{l, err}
	}()
	return result, waiting
}

func waitFor[T any](t *testing.T, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(hangGuard):
		t.Fatalf("never happened: %s", what)
		panic("unreachable")
	}
}

// TestLeaseStandbyTakesOverOnRelease: a second instance waits while the
// first holds the lease and takes it at its next try (at most 2×Retry of
// clock time) once the first lets go.
func TestLeaseStandbyTakesOverOnRelease(t *testing.T) {
	db := openPostgres(t)
	ctx := context.Background()
	key := Key("passerelle")
	active, err := Acquire(ctx, db, key, Options{})
	if err != nil {
		t.Fatal(err)
	}
	activePID := holderPID(t, db, key)
	if activePID == 0 {
		t.Fatal("pg_locks shows no holder of the lease")
	}

	clk := newStepClock()
	result, waiting := standby(ctx, db, key, Options{Clock: clk})
	waitFor(t, "the second instance waits as a standby", waiting)
	// It keeps trying while the first holds the lease.
	for range 3 {
		eventually(t, "the standby waits for its next try", func() bool { return clk.pending() > 0 })
		clk.Advance(2 * DefaultRetry)
		select {
		case r := <-result:
			t.Fatalf("the standby took the lease while the active instance held it (err %v)", r.err)
		default:
		}
	}
	if pid := holderPID(t, db, key); pid != activePID {
		t.Fatalf("lease holder %d, want the active instance %d", pid, activePID)
	}

	if err = active.Release(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the standby waits for its next try", func() bool { return clk.pending() > 0 })
	clk.Advance(2 * DefaultRetry)
	r := waitFor(t, "the standby takes the lease after one retry", result)
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.l.Release()
	if pid := holderPID(t, db, key); pid == 0 || pid == activePID {
		t.Fatalf("lease holder %d after the takeover, want a new backend (was %d)", pid, activePID)
	}
}

// TestLeaseHolderNoticesKilledConnection: when the database ends the
// holder's session (pg_terminate_backend, as a dropped connection would),
// the holder reports the lease lost at its next check, and the standby
// takes over at its next try.
func TestLeaseHolderNoticesKilledConnection(t *testing.T) {
	db := openPostgres(t)
	ctx := context.Background()
	key := Key("passerelle")
	activeClk := newStepClock()
	active, err := Acquire(ctx, db, key, Options{Clock: activeClk})
	if err != nil {
		t.Fatal(err)
	}
	standbyClk := newStepClock()
	result, waiting := standby(ctx, db, key, Options{Clock: standbyClk})
	waitFor(t, "the second instance waits as a standby", waiting)

	// Checks pass while the session lives.
	for range 3 {
		eventually(t, "the holder waits for its next check", func() bool { return activeClk.pending() > 0 })
		activeClk.Advance(DefaultCheck)
	}
	eventually(t, "the holder waits for its next check", func() bool { return activeClk.pending() > 0 })
	if err = active.Err(); err != nil {
		t.Fatalf("lease lost while its session lives: %v", err)
	}

	pid := holderPID(t, db, key)
	var terminated bool
	if err = db.QueryRow("SELECT pg_terminate_backend($1)", pid).Scan(&terminated); err != nil || !terminated {
		t.Fatalf("pg_terminate_backend(%d) = %v, %v", pid, terminated, err)
	}
	activeClk.Advance(DefaultCheck)
	waitFor(t, "the holder notices its lease is lost", active.Lost())
	if !errors.Is(active.Err(), ErrLost) {
		t.Fatalf("Err() = %v, want ErrLost", active.Err())
	}

	eventually(t, "the standby waits for its next try", func() bool { return standbyClk.pending() > 0 })
	standbyClk.Advance(2 * DefaultRetry)
	r := waitFor(t, "the standby takes the lease", result)
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.l.Release()
	if got := holderPID(t, db, key); got == 0 || got == pid {
		t.Fatalf("lease holder %d after the takeover, want a new backend (the killed one was %d)", got, pid)
	}
}

// TestLeaseKeysOfTwoAppservices: two gateways with different appservice IDs
// on one database are both active.
func TestLeaseKeysOfTwoAppservices(t *testing.T) {
	db := openPostgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	a, err := Acquire(ctx, db, Key("passerelle"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Release()
	b, err := Acquire(ctx, db, Key("passerelle-staging"), Options{Waiting: func() { t.Error("waited for another appservice's lease") }})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Release()
}

// TestLeaseStandbyGivesUpWithItsContext: a standby stopped while it waits
// returns the context's error and holds nothing.
func TestLeaseStandbyGivesUpWithItsContext(t *testing.T) {
	db := openPostgres(t)
	key := Key("passerelle")
	active, err := Acquire(context.Background(), db, key, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer active.Release()
	ctx, cancel := context.WithCancel(context.Background())
	result, waiting := standby(ctx, db, key, Options{Clock: newStepClock()})
	waitFor(t, "the second instance waits as a standby", waiting)
	cancel()
	if r := waitFor(t, "the standby stops", result); !errors.Is(r.err, context.Canceled) || r.l != nil {
		t.Fatalf("Acquire = %v, %v; want context.Canceled", r.l, r.err)
	}
}

// TestExclusiveRefusesSecondHolder: the SQLite lock file admits one holder;
// a second gets ErrLocked until the first closes it.
func TestExclusiveRefusesSecondHolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "passerelle.db.lock")
	first, err := Exclusive(path)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("lock file: %v, %v; want mode 0600", info, err)
	}
	if _, err = Exclusive(path); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Exclusive = %v, want ErrLocked", err)
	}
	if err = first.Close(); err != nil {
		t.Fatal(err)
	}
	second, err := Exclusive(path)
	if err != nil {
		t.Fatalf("Exclusive after the first closed: %v", err)
	}
	_ = second.Close()
}

// TestKeyIsStablePerAppservice: the key is fixed for an appservice ID, so
// that two releases of the gateway (during an upgrade, one active and one
// standby) agree on it, and differs between appservices.
func TestKeyIsStablePerAppservice(t *testing.T) {
	if got, want := Key("passerelle"), int64(-4236691362168532129); got != want {
		t.Fatalf("Key(\"passerelle\") = %d, want %d: a changed key lets an old and a new release run at once", got, want)
	}
	if Key("passerelle") == Key("passerelle2") {
		t.Fatal("two appservice IDs share a key")
	}
}
