// Package lease makes one gateway instance active per registration.
//
// On PostgreSQL the active instance holds a session-level advisory lock,
// taken on a connection of its own and kept for its whole life. A second
// instance started with the same config waits as a standby, trying the lock
// again every 1–2 s; when the active one dies, its connection drops,
// PostgreSQL frees the lock and the standby takes it. The holder checks its
// connection every second and reports the lease lost when it is gone, so
// that it stops before the standby starts (Grace).
//
// On SQLite two processes cannot share the database safely: Exclusive takes
// a lock file beside it, and a second instance refuses to start.
package lease

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/passerelle/passerelle/internal/clock"
)

// Defaults of Options.
const (
	DefaultRetry        = time.Second
	DefaultCheck        = time.Second
	DefaultCheckTimeout = 3 * time.Second
	// Grace is how long a new holder waits after taking the lock before it
	// serves: longer than a holder whose connection was closed needs to see
	// it (one check, DefaultCheck, and a round trip) and stop.
	Grace = 2 * time.Second
)

// ErrLost is the error of a lease whose connection, and so whose lock, is gone.
var ErrLost = errors.New("lost the connection that holds the lease")

// Key is the advisory lock key of an appservice: the same ID on the same
// database gives the same key.
func Key(appserviceID string) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte("passerelle-lease/" + appserviceID))
	return int64(h.Sum64())
}

// Options tune Acquire. Zero values take the defaults.
type Options struct {
	// Clock paces the standby's retries and the holder's checks.
	Clock clock.Clock
	// Retry is the standby's pause between two tries: Retry to 2×Retry.
	Retry time.Duration
	// Check is the holder's pause between two checks of its connection;
	// CheckTimeout bounds one check.
	Check, CheckTimeout time.Duration
	// Log receives the standby's and the holder's messages.
	Log *zerolog.Logger
	// Waiting, if set, is called once when the lock is found held by
	// another instance.
	Waiting func()
}

func (o *Options) fill() {
	o.Clock = clock.Or(o.Clock)
	if o.Retry <= 0 {
		o.Retry = DefaultRetry
	}
	if o.Check <= 0 {
		o.Check = DefaultCheck
	}
	if o.CheckTimeout <= 0 {
		o.CheckTimeout = DefaultCheckTimeout
	}
	if o.Log == nil {
		nop := zerolog.Nop()
		o.Log = &nop
	}
}

// Lease is a held advisory lock.
type Lease struct {
	key  int64
	conn *sql.Conn
	opts Options

	stop     context.CancelFunc
	done     chan struct{}
	lost     chan struct{}
	lostOnce sync.Once
	err      error
}

// Acquire takes the advisory lock key on a connection of db that it keeps,
// waiting as a standby while another session holds it. It returns when the
// lock is held, or with ctx's error. Database errors while waiting are
// logged and retried.
func Acquire(ctx context.Context, db *sql.DB, key int64, opts Options) (*Lease, error) {
	opts.fill()
	log := opts.Log
	var conn *sql.Conn
	waiting := false
	for {
		var ok bool
		var err error
		if conn == nil {
			conn, err = db.Conn(ctx)
		}
		if err == nil {
			err = conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&ok)
		}
		switch {
		case ctx.Err() != nil:
			if conn != nil {
				_ = conn.Close()
			}
			return nil, ctx.Err()
		case err != nil:
			log.Warn().Err(err).Msg("Standby: failed to try the lease, trying again")
			if conn != nil {
				_ = conn.Close()
				conn = nil
			}
		case ok:
			if waiting {
				log.Info().Msg("Standby: the active instance is gone, taking over")
			}
			return hold(conn, key, opts), nil
		case !waiting:
			waiting = true
			log.Info().Int64("lease_key", key).Msg("Standby: another instance is active, waiting for its lease")
			if opts.Waiting != nil {
				opts.Waiting()
			}
		}
		pause := opts.Retry + rand.N(opts.Retry)
		select {
		case <-ctx.Done():
			if conn != nil {
				_ = conn.Close()
			}
			return nil, ctx.Err()
		case <-opts.Clock.After(pause):
		}
	}
}

func hold(conn *sql.Conn, key int64, opts Options) *Lease {
	ctx, cancel := context.WithCancel(context.Background())
	l := &Lease{key: key, conn: conn, opts: opts, stop: cancel, done: make(chan struct{}), lost: make(chan struct{})}
	go l.watch(ctx)
	return l
}

// watch checks every Check that the connection still holds the lock.
func (l *Lease) watch(ctx context.Context) {
	defer close(l.done)
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.opts.Clock.After(l.opts.Check):
		}
		err := l.check(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			l.opts.Log.Error().Err(err).Msg("Lost the lease: another instance may take over")
			l.markLost(fmt.Errorf("%w: %w", ErrLost, err))
			_ = l.conn.Close()
			return
		}
	}
}

// check asks the holding session whether it still has the lock.
func (l *Lease) check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, l.opts.CheckTimeout)
	defer cancel()
	var held bool
	// pg_locks shows a bigint advisory key as classid (high half) and objid
	// (low half), objsubid 1.
	err := l.conn.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks
		WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted
		AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 1)`,
		int64(uint32(uint64(l.key)>>32)), int64(uint32(uint64(l.key)))).Scan(&held)
	if err != nil {
		return fmt.Errorf("failed to check the lease: %w", err)
	}
	if !held {
		return errors.New("the session no longer holds the advisory lock")
	}
	return nil
}

func (l *Lease) markLost(err error) {
	l.lostOnce.Do(func() {
		l.err = err
		close(l.lost)
	})
}

// Lost is closed when the holder finds its lock gone; the instance must then
// stop serving at once, since a standby may already be taking over.
func (l *Lease) Lost() <-chan struct{} { return l.lost }

// Err is ErrLost (wrapped) once Lost is closed, nil before.
func (l *Lease) Err() error {
	select {
	case <-l.lost:
		return l.err
	default:
		return nil
	}
}

// Release gives the lock back, so that a standby takes over at its next
// try, and closes the connection.
func (l *Lease) Release() error {
	l.stop()
	<-l.done
	select {
	case <-l.lost:
		return nil
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.opts.CheckTimeout)
	defer cancel()
	_, err := l.conn.ExecContext(ctx, "SELECT pg_advisory_unlock($1)", l.key)
	if cerr := l.conn.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("failed to release the lease: %w", err)
	}
	return nil
}
