package store_test

import (
	"context"
	"testing"

	"go.mau.fi/util/dbutil"

	"github.com/passerelle/passerelle/governance/store"
	"github.com/passerelle/passerelle/internal/dbtest"
)

// TestOpenUpgradesAndReopens checks that the schema applies on each backend,
// that a second start (another pool) finds it current, and that governance
// keeps to its own version table.
func TestOpenUpgradesAndReopens(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		db, err := store.Open(ctx, b.Open(t))
		if err != nil {
			t.Fatal(err)
		}
		for _, table := range []string{"governance_policy_rule", "governance_audit_head", "governance_audit_log", "governance_contact", "governance_contact_link", "governance_approval_request", "governance_approval_held", store.VersionTable} {
			if !tableHere(t, db, table) {
				t.Errorf("table %s missing after upgrade", table)
			}
		}
		if tableHere(t, db, "version") {
			t.Error("governance created the default version table")
		}
		if _, err = store.Open(ctx, b.Open(t)); err != nil {
			t.Fatalf("second start: %v", err)
		}
		var version int
		if err = db.QueryRow(ctx, "SELECT version FROM "+store.VersionTable).Scan(&version); err != nil || version != len(store.Table) {
			t.Fatalf("version = %d, %v; want %d", version, err, len(store.Table))
		}
		var heads int
		if err = db.QueryRow(ctx, "SELECT COUNT(*) FROM governance_audit_head").Scan(&heads); err != nil || heads != 1 {
			t.Fatalf("audit head rows = %d, %v; want exactly 1", heads, err)
		}
	})
}

// tableHere reports whether table exists in the current schema (dbutil's
// TableExists looks in every schema on PostgreSQL).
func tableHere(t *testing.T, db *dbutil.Database, table string) bool {
	t.Helper()
	q := "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1"
	if db.Dialect == dbutil.Postgres {
		q = "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1"
	}
	var n int
	if err := db.QueryRow(context.Background(), q, table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}
