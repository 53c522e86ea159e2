package appservice

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/bridgev2/matrix/mxmain"

	"github.com/passerelle/passerelle/internal/clock"
	"github.com/passerelle/passerelle/internal/lease"
)

// Exit codes of the single-active-instance guard (bridgev2 uses 1–32).
const (
	// exitSQLiteInUse: another instance runs on the same SQLite database.
	exitSQLiteInUse = 40
	// exitLeaseLost: the active instance lost its PostgreSQL lease and
	// stopped so that the standby can take over.
	exitLeaseLost = 41
)

// lockSQLite takes the lock file beside a SQLite database (<db>.lock) for
// the life of the process: two gateways on one SQLite file would both
// answer the homeserver and both connect to the networks. It returns nil
// for PostgreSQL and in-memory databases.
func lockSQLite(cfg dbutil.Config) (*lease.File, error) {
	path := sqliteFiles(cfg)
	if path == "" {
		return nil, nil
	}
	lock, err := lease.Exclusive(path + ".lock")
	if errors.Is(err, lease.ErrLocked) {
		return nil, fmt.Errorf("another Passerelle instance is running on the SQLite database %s (it holds %s.lock). "+
			"SQLite cannot be shared by two instances: stop the other one, or use PostgreSQL (database.type: postgres) to run a standby", path, path)
	}
	return lock, err
}

// awaitLease makes this instance the only active one of its appservice on a
// PostgreSQL database: it takes the lease, waiting as a standby while
// another instance holds it, and returns once this instance may start.
// Until then nothing is started: no database upgrade, no appservice
// listener (the homeserver's transactions keep going to the active
// instance, or are retried until the standby binds the port), no network
// connection. On SQLite it returns a no-op at once (lockSQLite guards it).
//
// The lease has a connection pool of its own (one connection), so that it
// takes none from database.max_open_conns.
//
// A SIGINT or SIGTERM while waiting ends the process with exit code 0.
// When the lease is lost later, the process exits with exitLeaseLost at
// once: a standby may already be taking over. The returned function gives
// the lease back at shutdown.
func awaitLease(m *mxmain.BridgeMain) (release func()) {
	if m.DB.Dialect != dbutil.Postgres {
		return func() {}
	}
	log := m.Log.With().Str("component", "lease").Logger()
	db, err := sql.Open(m.Config.Database.Type, m.Config.Database.URI)
	if err != nil {
		log.WithLevel(zerolog.FatalLevel).Err(err).Msg("Failed to open the database for the lease")
		os.Exit(14)
	}
	db.SetMaxOpenConns(1)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	l, err := lease.Acquire(ctx, db, lease.Key(m.Config.AppService.ID), lease.Options{Log: &log})
	if ctx.Err() != nil {
		log.Info().Msg("Interrupted while waiting as a standby")
		os.Exit(0)
	} else if err != nil {
		log.WithLevel(zerolog.FatalLevel).Err(err).Msg("Failed to take the lease")
		os.Exit(14)
	}
	// A holder whose session ended checks it within lease.DefaultCheck and
	// stops: let it, before serving.
	select {
	case <-ctx.Done():
		_ = l.Release()
		os.Exit(0)
	case <-clock.Real{}.After(lease.Grace):
	}
	log.Info().Msg("Holding the lease: this instance is active")
	go func() {
		<-l.Lost()
		log.WithLevel(zerolog.FatalLevel).Err(l.Err()).Msg("Lost the lease, stopping at once so that the standby takes over")
		os.Exit(exitLeaseLost)
	}()
	return func() {
		if err := l.Release(); err != nil {
			log.Warn().Err(err).Msg("Failed to release the lease; the standby takes over when the connection closes")
		}
		_ = db.Close()
	}
}
