package appservice

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	_ "go.mau.fi/util/dbutil/litestream" // the SQLite drivers bridgev2 registers

	"github.com/passerelle/passerelle/config"
)

// permissiveUmask lets the process create world-readable files for the rest
// of the test, to show that the gateway does not rely on the umask.
func permissiveUmask(t *testing.T) {
	old := syscall.Umask(0)
	t.Cleanup(func() { syscall.Umask(old) })
}

// openLikeTheBinary opens the database the way Main does: storage section,
// prepareDatabase, then dbutil.NewFromConfig as mxmain's initDB.
func openLikeTheBinary(t *testing.T, cfg dbutil.Config, storage StorageConfig) *dbutil.Database {
	t.Helper()
	applyStorage(&cfg, storage)
	if _, err := prepareDatabase(cfg); err != nil {
		t.Fatal(err)
	}
	db, err := dbutil.NewFromConfig("passerelle-test", cfg, dbutil.ZeroLogger(zerolog.Nop()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func dbConfig(typ, uri string, maxOpen int) dbutil.Config {
	return dbutil.Config{PoolConfig: dbutil.PoolConfig{Type: typ, URI: uri, MaxOpenConns: maxOpen}}
}

func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Mode().Perm(); got != want {
		t.Errorf("%s has mode %04o, want %04o", filepath.Base(path), got, want)
	}
}

// On a fresh install the database, its WAL and shared-memory files are 0600
// and a directory the gateway had to create is 0700, even under umask 0.
func TestDatabaseFilesArePrivate(t *testing.T) {
	permissiveUmask(t)
	dir := filepath.Join(t.TempDir(), "state", "db")
	path := filepath.Join(dir, config.DatabaseFile)
	db := openLikeTheBinary(t, dbConfig(sqliteWAL, config.SQLiteURI(path), 0), StorageConfig{})
	ctx := context.Background()
	// A running gateway keeps a connection open; SQLite removes the -wal and
	// -shm files when the last one closes.
	conn, err := db.RawDB.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err = conn.ExecContext(ctx, "CREATE TABLE held (id INTEGER PRIMARY KEY, body TEXT)"); err != nil {
		t.Fatal(err)
	}
	if _, err = conn.ExecContext(ctx, "INSERT INTO held (body) VALUES ('a message waiting for approval')"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{path, path + "-wal", path + "-shm"} {
		assertMode(t, name, privateFile)
	}
	assertMode(t, dir, privateDir)
}

// An older install's files that others can read are narrowed at start-up;
// the directory, which may be shared, is only reported.
func TestExistingDatabaseFilesAreNarrowed(t *testing.T) {
	permissiveUmask(t)
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "old.db")
	for _, name := range []string{path, path + "-wal"} {
		if err := os.WriteFile(name, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	looseDir, err := prepareDatabase(dbConfig(sqliteWAL, "file:"+path+"?_txlock=immediate", 0))
	if err != nil {
		t.Fatal(err)
	}
	assertMode(t, path, privateFile)
	assertMode(t, path+"-wal", privateFile)
	assertMode(t, dir, 0o755)
	if looseDir != dir {
		t.Errorf("looseDir = %q, want %q", looseDir, dir)
	}
}

func TestSQLiteFiles(t *testing.T) {
	for _, tc := range []struct {
		cfg  dbutil.Config
		want string
	}{
		{dbConfig(sqliteWAL, "file:/var/lib/passerelle/passerelle.db?_txlock=immediate", 0), "/var/lib/passerelle/passerelle.db"},
		{dbConfig(sqliteWALFullSync, "file:rel.db", 0), "rel.db"},
		{dbConfig(sqliteWAL, "/plain/path.db", 0), "/plain/path.db"},
		{dbConfig(sqliteWAL, "file:/with%20space/x.db?_txlock=immediate", 0), "/with space/x.db"},
		{dbConfig(sqliteWAL, ":memory:", 0), ""},
		{dbConfig(sqliteWAL, "file:x?mode=memory&cache=shared", 0), ""},
		{dbConfig("postgres", "postgres://u@localhost/db", 0), ""},
	} {
		if got := sqliteFiles(tc.cfg); got != tc.want {
			t.Errorf("sqliteFiles(%s %s) = %q, want %q", tc.cfg.Type, tc.cfg.URI, got, tc.want)
		}
	}
}

func TestRestrictRegistration(t *testing.T) {
	permissiveUmask(t)
	path := filepath.Join(t.TempDir(), "reg.yaml")
	if err := os.WriteFile(path, []byte("id: old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := restrictRegistration([]string{"-c", "config.yaml", "-r", path}); err != nil {
		t.Fatal(err)
	}
	assertMode(t, path, 0o644) // not -g: untouched
	if err := restrictRegistration([]string{"-g", "-c", "config.yaml", "--registration=" + path}); err != nil {
		t.Fatal(err)
	}
	assertMode(t, path, privateFile)
}

// sqlite_synchronous: full gives every connection synchronous=FULL; the
// default stays NORMAL; the component's start-up check agrees.
func TestSQLiteSynchronous(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		setting string
		want    int
	}{
		{"", pragmaSyncNormal},
		{"normal", pragmaSyncNormal},
		{"full", pragmaSyncFull},
		{"FULL", pragmaSyncFull},
	} {
		t.Run("setting="+tc.setting, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), config.DatabaseFile)
			st := newStorage()
			st.cfg.SQLiteSynchronous = tc.setting
			if err := st.ValidateConfig(); err != nil {
				t.Fatal(err)
			}
			db := openLikeTheBinary(t, dbConfig(sqliteWAL, config.SQLiteURI(path), 3), st.cfg)
			// Hold connections open so that the pool has several, and ask each.
			conns := make([]interface{ Close() error }, 0, 3)
			for range 3 {
				conn, err := db.RawDB.Conn(ctx)
				if err != nil {
					t.Fatal(err)
				}
				conns = append(conns, conn)
				var mode int
				if err = conn.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&mode); err != nil {
					t.Fatal(err)
				}
				if mode != tc.want {
					t.Errorf("PRAGMA synchronous = %d, want %d", mode, tc.want)
				}
			}
			for _, c := range conns {
				_ = c.Close()
			}
			st.db = db
			if err := st.Start(ctx); err != nil {
				t.Errorf("start-up check: %v", err)
			}
		})
	}

	st := newStorage()
	st.cfg.SQLiteSynchronous = "extra"
	if err := st.ValidateConfig(); err == nil {
		t.Error("sqlite_synchronous: extra was accepted")
	}

	// Asked for full on a driver that does not give it: refuse to start.
	path := filepath.Join(t.TempDir(), config.DatabaseFile)
	db := openLikeTheBinary(t, dbConfig("litestream", config.SQLiteURI(path), 0), StorageConfig{})
	st = newStorage()
	st.cfg.SQLiteSynchronous = "full"
	st.db = db
	if err := st.Start(ctx); err == nil {
		t.Error("start-up check accepted synchronous=NORMAL when full was asked")
	}
}
