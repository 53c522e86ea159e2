package whatsapp

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"

	"github.com/passerelle/passerelle/internal/dbtest"
	"github.com/passerelle/passerelle/internal/fakematrix"
	"github.com/passerelle/passerelle/internal/memtrim"
)

// BenchmarkContactsToMatrix: contacts who each already have a chat with the
// staff member (1, 10 or 100 of them) send b.N text messages between them,
// round-robin; an iteration is one message decrypted by whatsmeow, bridged
// and seen by the (fake, unencrypted) homeserver. cpu-µs/msg is the whole process's CPU
// time per message (bridge, whatsmeow, its store and the simulator that
// encrypts and sends); with -cpuprofile, the gateway's share is what is not
// under simulator/ or fakematrix/.
//
// The database is SQLite with the gateway's pool (5 connections, every one
// kept, statements cached); conns_2 runs the 10-contact case on a pool of 2,
// to show what SQLite's connections cost when portals write side by side
// (each connection's page cache is dropped when another one has written).
// PASSERELLE_BENCH_CPUPROFILE=/tmp/recv profiles the timed part alone.
//
//	go test -tags goolm -run '^$' -bench ContactsToMatrix -benchtime 4000x -count 3 ./bridges/whatsapp/
func BenchmarkContactsToMatrix(b *testing.B) {
	for _, tc := range []struct {
		contacts, conns int
	}{{1, 5}, {10, 5}, {100, 5}, {10, 2}} {
		b.Run(fmt.Sprintf("contacts_%d_conns_%d", tc.contacts, tc.conns), func(b *testing.B) {
			srv := startSim(b)
			tb := startBridge(b, srv, gatewaySQLite(b, tc.conns))
			loginQR(b, tb, srv)
			ctx := ctxFor(b)
			phones := make([]string, tc.contacts)
			for i := range phones {
				phones[i] = fmt.Sprintf("1555010%04d", i)
				if _, err := srv.CreateAccount(phones[i], "Contact "+strconv.Itoa(i)); err != nil {
					b.Fatal(err)
				}
				first := "first from " + phones[i]
				if _, err := srv.SendText(ctx, phones[i], alicePh, first); err != nil {
					b.Fatal(err)
				}
				tb.waitMsg(b, first, func(m fakematrix.Message) bool { return m.Content.Body == first })
			}
			base := len(tb.mx.Events())
			b.ReportAllocs()
			b.ResetTimer()
			stopProfile := profileTimed(b)
			cpu0 := memtrim.ProcessCPU()
			for i := 0; i < b.N; i++ {
				if _, err := srv.SendText(ctx, phones[i%len(phones)], alicePh, "message "+strconv.Itoa(i)); err != nil {
					b.Fatal(err)
				}
			}
			if !tb.mx.Eventually(time.Duration(b.N)*50*time.Millisecond+waitLong, func() bool { return len(tb.mx.Events()) >= base+b.N }) {
				b.Fatalf("%d of %d messages reached Matrix", len(tb.mx.Events())-base, b.N)
			}
			b.StopTimer()
			stopProfile()
			b.ReportMetric(float64(memtrim.ProcessCPU()-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-µs/msg")
		})
	}
}

// gatewaySQLite opens a new SQLite database with the pool the gateway gives
// bridgev2's (appservice's applyStorage), of conns connections: prepared
// statements cached per connection and every opened connection kept.
// dbtest's pool (one idle connection, no statement cache) would charge the
// benchmark with connections opened and statements compiled that the
// gateway does not pay.
func gatewaySQLite(b *testing.B, conns int) *dbutil.Database {
	b.Helper()
	uri := dbtest.SQLite(b).URI + "&_stmt_cache_size=128"
	cfg := dbutil.Config{PoolConfig: dbutil.PoolConfig{Type: "sqlite3-fk-wal", URI: uri, MaxOpenConns: conns, MaxIdleConns: conns}}
	db, err := dbutil.NewFromConfig("passerelle-bench", cfg, dbutil.ZeroLogger(zerolog.Nop()))
	if err != nil {
		b.Fatal(err)
	}
	if err = db.RawDB.PingContext(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	return db
}

// profileTimed, when PASSERELLE_BENCH_CPUPROFILE names a path prefix,
// takes a CPU profile of the benchmark's timed part alone (go test's
// -cpuprofile also covers the set-up: the login, each contact's first
// message and its portal) into <prefix>-<benchmark>.pprof; it returns the
// function that stops it.
func profileTimed(b *testing.B) func() {
	prefix := os.Getenv("PASSERELLE_BENCH_CPUPROFILE")
	if prefix == "" {
		return func() {}
	}
	f, err := os.Create(prefix + "-" + strings.ReplaceAll(b.Name(), "/", "_") + ".pprof")
	if err != nil {
		b.Fatal(err)
	}
	if err = pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}
}
