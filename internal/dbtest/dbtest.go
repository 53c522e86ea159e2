// Package dbtest runs a test against every database backend the gateway
// supports: a fresh SQLite file always, and a fresh PostgreSQL schema when
// PASSERELLE_TEST_POSTGRES holds a lib/pq connection string (scripts/test sets
// it; under CI a missing PostgreSQL is a failure, not a skip).
package dbtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	_ "github.com/lib/pq" // PostgreSQL driver
	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	_ "go.mau.fi/util/dbutil/litestream" // the sqlite3-fk-wal driver that bridgev2 uses
)

// PostgresEnv names the variable holding the PostgreSQL test database URI.
const PostgresEnv = "PASSERELLE_TEST_POSTGRES"

// Backend is one database a test runs on.
type Backend struct {
	Name string // "sqlite" or "postgres"
	// Open returns a new connection pool on the same database (to simulate a
	// restart); the caller closes it.
	Open func(t testing.TB) *dbutil.Database
	// URI and Dialect are what a gateway config would name.
	URI, Dialect string
}

// Each runs fn once per backend, as a subtest named after it.
func Each(t *testing.T, fn func(t *testing.T, b Backend)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLite(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, Postgres(t)) })
}

// SQLite returns a backend on a new file in the test's temp dir.
func SQLite(t testing.TB) Backend {
	// Not t.TempDir(): a subtest's name can hold '#', which ends the path
	// part of a file: URI.
	dir, err := os.MkdirTemp("", "passerelle-db-")
	if err != nil {
		t.Fatalf("failed to make a database directory: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	path := filepath.Join(dir, "test.db")
	uri := "file:" + path + "?_txlock=immediate"
	return Backend{Name: "sqlite", URI: uri, Dialect: "sqlite3-fk-wal", Open: func(t testing.TB) *dbutil.Database {
		return open(t, "sqlite3-fk-wal", uri)
	}}
}

// Postgres returns a backend on a new database, dropped when the test ends.
// (A schema per test is not enough: dbutil looks for its version tables in
// every schema.) The role in PASSERELLE_TEST_POSTGRES needs CREATEDB. Without
// the variable the test is skipped, except under CI, where it fails.
func Postgres(t testing.TB) Backend {
	base := os.Getenv(PostgresEnv)
	if base == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set: CI must run the database tests on PostgreSQL (scripts/test starts it)", PostgresEnv)
		}
		t.Skipf("%s is not set; run scripts/test to include PostgreSQL", PostgresEnv)
	}
	name := "passerelle_t_" + randomHex(8)
	admin, err := sql.Open("postgres", base)
	if err != nil {
		t.Fatalf("failed to open PostgreSQL: %v", err)
	}
	if _, err = admin.Exec("CREATE DATABASE " + name); err != nil {
		_ = admin.Close()
		t.Fatalf("failed to create a test database (does the role have CREATEDB?): %v", err)
	}
	t.Cleanup(func() {
		_, _ = admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
		_ = admin.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("failed to parse %s: %v", PostgresEnv, err)
	}
	u.Path = "/" + name
	uri := u.String()
	return Backend{Name: "postgres", URI: uri, Dialect: "postgres", Open: func(t testing.TB) *dbutil.Database {
		return open(t, "postgres", uri)
	}}
}

func open(t testing.TB, dialect, uri string) *dbutil.Database {
	t.Helper()
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	cfg := dbutil.Config{PoolConfig: dbutil.PoolConfig{Type: dialect, URI: uri, MaxOpenConns: 5, MaxIdleConns: 1}}
	db, err := dbutil.NewFromConfig("passerelle-test", cfg, dbutil.ZeroLogger(log))
	if err != nil {
		t.Fatalf("failed to open %s: %v", dialect, err)
	}
	if err = db.RawDB.PingContext(context.Background()); err != nil {
		t.Fatalf("failed to reach %s: %v", dialect, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
