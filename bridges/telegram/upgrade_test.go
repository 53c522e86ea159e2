package telegram

import (
	"context"
	_ "embed"
	"strings"
	"testing"

	"go.mau.fi/util/dbutil"

	"github.com/passerelle/passerelle/bridges/telegram/upgrades"
	"github.com/passerelle/passerelle/internal/dbtest"
)

//go:embed testdata/schema-v1.sql
var schemaV1 string

// TestUpgradeInPlaceFromFirstRelease makes the Telegram tables the way the
// first release did (schema version 1, with a logged-in account's session,
// update state and a known contact in them), then lets the current build open
// that database: it upgrades to the latest version without losing a row.
func TestUpgradeInPlaceFromFirstRelease(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		db := b.Open(t)
		for _, stmt := range strings.Split(schemaV1, ";") {
			if strings.TrimSpace(stripComments(stmt)) == "" {
				continue
			}
			if _, err := db.Exec(ctx, stmt); err != nil {
				t.Fatalf("v1 schema: %v", err)
			}
		}
		for _, q := range []string{
			`CREATE TABLE telegram_version (version INTEGER, compat INTEGER)`,
			`INSERT INTO telegram_version (version, compat) VALUES (1, 1)`,
			`INSERT INTO telegram_session (user_id, data) VALUES (42, '{"Version":1,"Data":"session of the first release"}')`,
			`INSERT INTO telegram_update_state (user_id, pts, qts, state_date, seq) VALUES (42, 17, 0, 1700000000, 3)`,
			`INSERT INTO telegram_access_hash (user_id, peer_type, peer_id, access_hash, username) VALUES (42, 'user', 7, 99, 'Alice_Outside')`,
		} {
			if _, err := db.Exec(ctx, q); err != nil {
				t.Fatalf("first release data: %v", err)
			}
		}

		st := NewChildStore(db, dbutil.NoopLogger)
		if err := st.Upgrade(ctx); err != nil {
			t.Fatalf("upgrade from v1: %v", err)
		}
		var version int
		if err := db.QueryRow(ctx, `SELECT version FROM telegram_version`).Scan(&version); err != nil {
			t.Fatal(err)
		}
		if latest := len(upgrades.Table); version != latest || latest < 2 {
			t.Errorf("version after upgrade = %d, latest = %d", version, latest)
		}
		data, err := st.Session(42).LoadSession(ctx)
		if err != nil || !strings.Contains(string(data), "session of the first release") {
			t.Errorf("session after upgrade = %q, %v", data, err)
		}
		state, found, err := st.UpdateState().GetState(ctx, 42)
		if err != nil || !found || state.Pts != 17 || state.Seq != 3 {
			t.Errorf("update state after upgrade = %+v, %v, %v", state, found, err)
		}
		peerType, peerID, hash, found, err := st.PeerByUsername(ctx, 42, "alice_outside")
		if err != nil || !found || peerType != "user" || peerID != 7 || hash != 99 {
			t.Errorf("peer by username after upgrade = %s %d %d %v %v", peerType, peerID, hash, found, err)
		}
		if !indexExists(ctx, t, db, b.Name, "telegram_access_hash_username_idx") {
			t.Error("the v2 username index was not created")
		}
	})
}

// TestFreshSchemaMatchesUpgradedOne: a new database made from 00-latest has
// what the numbered upgrades add to an old one.
func TestFreshSchemaMatchesUpgradedOne(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		st := openStore(t, b)
		if !indexExists(context.Background(), t, st.db, b.Name, "telegram_access_hash_username_idx") {
			t.Error("a fresh database lacks the username index")
		}
	})
}

func indexExists(ctx context.Context, t *testing.T, db *dbutil.Database, backend, name string) bool {
	t.Helper()
	q := `SELECT COUNT(*) FROM sqlite_master WHERE type='index' AND name=$1`
	if backend == "postgres" {
		q = `SELECT COUNT(*) FROM pg_indexes WHERE indexname=$1`
	}
	var n int
	if err := db.QueryRow(ctx, q, name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

func stripComments(sql string) string {
	var out []string
	for _, line := range strings.Split(sql, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "--") {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
