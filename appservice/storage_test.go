package appservice

import (
	"context"
	"strconv"
	"testing"

	"github.com/rs/zerolog"
	up "go.mau.fi/util/configupgrade"
	"go.mau.fi/util/dbutil"
	"gopkg.in/yaml.v3"
)

// The storage section's example, struct and upgrader agree: an old config's
// value is kept, a missing one takes the example's default.
func TestStorageConfigUpgrade(t *testing.T) {
	for _, tc := range []struct{ old, want string }{
		{"sqlite_synchronous: full\nobsolete: 1\n", "full"},
		{"{}\n", "normal"},
	} {
		var base, old yaml.Node
		st := newStorage()
		example, data, upgrader := st.GetConfig()
		if err := yaml.Unmarshal([]byte(example), &base); err != nil {
			t.Fatalf("example does not parse: %v", err)
		}
		if err := yaml.Unmarshal([]byte(tc.old), &old); err != nil {
			t.Fatal(err)
		}
		upgrader.DoUpgrade(up.NewHelper(&base, &old))
		out, err := yaml.Marshal(&base)
		if err != nil {
			t.Fatal(err)
		}
		if err = yaml.Unmarshal(out, data); err != nil {
			t.Fatal(err)
		}
		if st.cfg.SQLiteSynchronous != tc.want {
			t.Errorf("upgraded %q: sqlite_synchronous = %q, want %q", tc.old, st.cfg.SQLiteSynchronous, tc.want)
		}
	}
}

// TestSQLiteStatementCache: the gateway's SQLite connections stay open and
// keep their prepared statements (go-sqlite3's _stmt_cache_size), unless the
// configured URI says otherwise; PostgreSQL is left alone.
func TestSQLiteStatementCache(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ typ, uri, want string }{
		{"sqlite3-fk-wal", "file:" + dir + "/a.db?_txlock=immediate", "file:" + dir + "/a.db?_txlock=immediate&_stmt_cache_size=128"},
		{"sqlite3-fk-wal", dir + "/b.db", dir + "/b.db?_stmt_cache_size=128"},
		{"sqlite3-fk-wal", "file:" + dir + "/c.db?_stmt_cache_size=0&_txlock=immediate", "file:" + dir + "/c.db?_stmt_cache_size=0&_txlock=immediate"},
		{"postgres", "postgres://u@localhost/db?sslmode=disable", "postgres://u@localhost/db?sslmode=disable"},
	} {
		cfg := dbConfig(tc.typ, tc.uri, 5)
		cfg.MaxIdleConns = 1 // bridgev2's example
		applyStorage(&cfg, StorageConfig{})
		if cfg.URI != tc.want {
			t.Errorf("%s %q became %q, want %q", tc.typ, tc.uri, cfg.URI, tc.want)
		}
		wantIdle := 5
		if tc.typ == "postgres" {
			wantIdle = 1
		}
		if cfg.MaxIdleConns != wantIdle {
			t.Errorf("%s keeps %d idle connections of 5, want %d", tc.typ, cfg.MaxIdleConns, wantIdle)
		}
	}
	// The URI opens, and a statement run again and again answers right.
	db := openLikeTheBinary(t, dbConfig("sqlite3-fk-wal", "file:"+dir+"/d.db?_txlock=immediate", 2), StorageConfig{})
	ctx := context.Background()
	if _, err := db.Exec(ctx, `CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)`); err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		if _, err := db.Exec(ctx, `INSERT INTO t (k, v) VALUES ($1, $2)`, i, strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
		var v string
		if err := db.QueryRow(ctx, `SELECT v FROM t WHERE k = $1`, i/2).Scan(&v); err != nil || v != strconv.Itoa(i/2) {
			t.Fatalf("row %d read back as %q (%v)", i/2, v, err)
		}
	}
}

// BenchmarkSQLiteStatement is one small read by primary key, as most of
// the statements of a bridged message are, from two goroutines at once:
// with bridgev2's example pool (5 connections, 1 kept idle, no statement
// cache) and with the gateway's.
func BenchmarkSQLiteStatement(b *testing.B) {
	for _, tc := range []struct {
		name    string
		param   string
		storage bool
	}{{"bridgev2-pool", "&_stmt_cache_size=0", false}, {"gateway-pool", "", true}} {
		b.Run(tc.name, func(b *testing.B) {
			cfg := dbConfig("sqlite3-fk-wal", "file:"+b.TempDir()+"/bench.db?_txlock=immediate"+tc.param, 5)
			cfg.MaxIdleConns = 1
			if tc.storage {
				applyStorage(&cfg, StorageConfig{})
			}
			db, err := dbutil.NewFromConfig("passerelle-bench", cfg, dbutil.ZeroLogger(zerolog.Nop()))
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			ctx := context.Background()
			if _, err = db.Exec(ctx, `CREATE TABLE portal (id TEXT, receiver TEXT, mxid TEXT, name TEXT, PRIMARY KEY (id, receiver))`); err != nil {
				b.Fatal(err)
			}
			if _, err = db.Exec(ctx, `INSERT INTO portal VALUES ('telegram.u1', 'telegram.100', '!room:example.org', 'Alice')`); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetParallelism(1) // GOMAXPROCS goroutines: 2 here
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					var mxid, name string
					if err := db.QueryRow(ctx, `SELECT mxid, name FROM portal WHERE id = $1 AND receiver = $2`, "telegram.u1", "telegram.100").Scan(&mxid, &name); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
