package appservice

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestLockSQLiteRefusesSecondInstance: a second lock on the same SQLite
// database fails with a message that says what to do; a lock on another
// database, or on PostgreSQL, is not affected.
func TestLockSQLiteRefusesSecondInstance(t *testing.T) {
	dir := t.TempDir()
	cfg := dbConfig("sqlite3-fk-wal", "file:"+filepath.Join(dir, "passerelle.db")+"?_txlock=immediate", 1)
	first, err := lockSQLite(cfg)
	if err != nil || first == nil {
		t.Fatalf("first lock: %v, %v", first, err)
	}
	defer first.Close()
	_, err = lockSQLite(cfg)
	if err == nil || !strings.Contains(err.Error(), "another Passerelle instance is running on the SQLite database") ||
		!strings.Contains(err.Error(), "use PostgreSQL") {
		t.Fatalf("second lock: %v; want the refusal", err)
	}
	other, err := lockSQLite(dbConfig("sqlite3-fk-wal", "file:"+filepath.Join(dir, "other.db"), 1))
	if err != nil {
		t.Fatalf("lock on another database: %v", err)
	}
	_ = other.Close()
	if pg, err := lockSQLite(dbConfig("postgres", "postgres://localhost/passerelle", 1)); pg != nil || err != nil {
		t.Fatalf("PostgreSQL: %v, %v; want no lock file", pg, err)
	}
	if err = first.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := lockSQLite(cfg)
	if err != nil {
		t.Fatalf("lock after the first instance stopped: %v", err)
	}
	_ = again.Close()
}
