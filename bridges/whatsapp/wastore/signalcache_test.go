package wastore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/store"

	"github.com/passerelle/passerelle/bridges/whatsapp/wastore"
	"github.com/passerelle/passerelle/internal/dbtest"
)

// storedSession is the session row of addr as the database has it ("" if
// there is none).
func storedSession(t testing.TB, db *dbutil.Database, dev *store.Device, addr string) string {
	t.Helper()
	var sess []byte
	err := db.QueryRow(context.Background(), `SELECT session FROM whatsapp_sessions WHERE our_jid=$1 AND their_id=$2`, dev.ID.String(), addr).Scan(&sess)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		t.Fatal(err)
	}
	return string(sess)
}

// setBehindTheStore writes addr's session without the store.
func setBehindTheStore(t testing.TB, db *dbutil.Database, dev *store.Device, addr, sess string) {
	t.Helper()
	_, err := db.Exec(context.Background(), `UPDATE whatsapp_sessions SET session=$3 WHERE our_jid=$1 AND their_id=$2`, dev.ID.String(), addr, []byte(sess))
	must(t, err)
}

// cacheDevice is a saved device of a new container on db.
func cacheDevice(t testing.TB, db *dbutil.Database) (*dbutil.Database, *wastore.Container, *store.Device) {
	t.Helper()
	c := newContainer(t, db)
	return db, c, savedDevice(t, c, "15550001111")
}

func session(t testing.TB, dev *store.Device, addr string) string {
	t.Helper()
	sess, err := dev.Sessions.GetSession(context.Background(), addr)
	must(t, err)
	return string(sess)
}

var errDecryption = errors.New("decryption failed")

// TestSignalCacheFollowsCommits: the sessions and identity keys a device
// reads come from memory once read or written, and are always what the
// database committed: a decryption rolled back leaves them as they were,
// one committed changes them, and a write in a transaction the store did
// not begin sends every read back to the database.
func TestSignalCacheFollowsCommits(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		db, _, dev := cacheDevice(t, b.Open(t))
		const bob, carol = "15550002222:0", "15550003333:0"
		k1, k2 := [32]byte{1}, [32]byte{2}
		must(t, dev.Sessions.PutSession(ctx, bob, []byte("v1")))
		must(t, dev.Identities.PutIdentity(ctx, bob, k1))

		// Read from memory: a change behind the store's back is not seen.
		setBehindTheStore(t, db, dev, bob, "sneaky")
		many, err := dev.Sessions.GetManySessions(ctx, []string{bob, carol})
		must(t, err)
		if got := session(t, dev, bob); got != "v1" || string(many[bob]) != "v1" || many[carol] != nil {
			t.Fatalf("GetSession %q, GetManySessions %q; want the stored v1 from memory", got, many)
		}
		setBehindTheStore(t, db, dev, bob, "v1")

		// A decryption that fails: nothing it wrote is seen afterwards,
		// although it saw its own writes.
		err = dev.EventBuffer.DoDecryptionTxn(ctx, func(ctx context.Context) error {
			must(t, dev.Sessions.PutSession(ctx, bob, []byte("v2")))
			must(t, dev.Sessions.PutSession(ctx, carol, []byte("c1")))
			must(t, dev.Identities.PutIdentity(ctx, bob, k2))
			if got, _ := dev.Sessions.GetSession(ctx, bob); string(got) != "v2" {
				t.Errorf("inside the transaction: %q, want its own v2", got)
			}
			if ok, _ := dev.Sessions.HasSession(ctx, carol); !ok {
				t.Error("inside the transaction: carol's new session is missing")
			}
			many, _ := dev.Sessions.GetManySessions(ctx, []string{bob, carol})
			if string(many[bob]) != "v2" || string(many[carol]) != "c1" {
				t.Errorf("inside the transaction, GetManySessions %q", many)
			}
			return errDecryption
		})
		if !errors.Is(err, errDecryption) {
			t.Fatalf("DoDecryptionTxn = %v", err)
		}
		if got, has := session(t, dev, bob), hasSession(t, dev, carol); got != "v1" || has {
			t.Errorf("after a rollback: bob %q (want v1), carol has a session %v (want none)", got, has)
		}
		if trusted, _ := dev.Identities.IsTrustedIdentity(ctx, bob, k1); !trusted {
			t.Error("after a rollback: bob's first key is no longer trusted")
		}
		if trusted, _ := dev.Identities.IsTrustedIdentity(ctx, bob, k2); trusted {
			t.Error("after a rollback: the key the failed decryption saved is trusted")
		}
		if stored := storedSession(t, db, dev, bob); stored != "v1" {
			t.Fatalf("the database holds %q", stored)
		}

		// A decryption that succeeds: seen at once, from memory.
		must(t, dev.EventBuffer.DoDecryptionTxn(ctx, func(ctx context.Context) error {
			return dev.Sessions.PutSession(ctx, bob, []byte("v3"))
		}))
		setBehindTheStore(t, db, dev, bob, "sneaky")
		if got := session(t, dev, bob); got != "v3" {
			t.Errorf("after a commit: %q, want v3 from memory", got)
		}
		setBehindTheStore(t, db, dev, bob, "v3")

		// Deleting a user's devices' sessions, rolled back then committed.
		must(t, dev.Sessions.PutSession(ctx, "15550004444:1", []byte("d1")))
		err = dev.EventBuffer.DoDecryptionTxn(ctx, func(ctx context.Context) error {
			must(t, dev.Sessions.DeleteAllSessions(ctx, "15550004444"))
			if ok, _ := dev.Sessions.HasSession(ctx, "15550004444:1"); ok {
				t.Error("inside the transaction: a deleted session is still there")
			}
			return errDecryption
		})
		if !errors.Is(err, errDecryption) || session(t, dev, "15550004444:1") != "d1" {
			t.Errorf("after a rolled back deletion: %v, %q", err, session(t, dev, "15550004444:1"))
		}
		must(t, dev.Sessions.DeleteAllSessions(ctx, "15550004444"))
		if hasSession(t, dev, "15550004444:1") {
			t.Error("a deleted session is still there")
		}

		// A write in someone else's transaction, rolled back: not seen,
		// and from then on reads ask the database.
		err = db.DoTxn(ctx, nil, func(ctx context.Context) error {
			must(t, dev.Sessions.PutSession(ctx, bob, []byte("v4")))
			return errDecryption
		})
		if !errors.Is(err, errDecryption) {
			t.Fatal(err)
		}
		if got := session(t, dev, bob); got != "v3" {
			t.Errorf("after someone else's rollback: %q, want v3", got)
		}
		setBehindTheStore(t, db, dev, bob, "v5")
		if got := session(t, dev, bob); got != "v5" {
			t.Errorf("after a write in someone else's transaction, reads still come from memory: %q", got)
		}
	})
}

func hasSession(t testing.TB, dev *store.Device, addr string) bool {
	t.Helper()
	ok, err := dev.Sessions.HasSession(context.Background(), addr)
	must(t, err)
	return ok
}

// TestSignalCacheBoundedAndPerDevice: a device with many contacts keeps
// only some of their sessions in memory (128 KiB), and a device deleted
// and linked again under the same JID does not read the old one's.
func TestSignalCacheBoundedAndPerDevice(t *testing.T) {
	ctx := context.Background()
	db, c, dev := cacheDevice(t, dbtest.SQLite(t).Open(t))
	const n = 400
	big := make([]byte, 1024)
	for i := range n {
		must(t, dev.Sessions.PutSession(ctx, fmt.Sprintf("1555100%04d:0", i), big))
	}
	_, err := db.Exec(ctx, `UPDATE whatsapp_sessions SET session=$1`, []byte("new"))
	must(t, err)
	var fromMemory int
	for i := range n {
		if len(session(t, dev, fmt.Sprintf("1555100%04d:0", i))) == len(big) {
			fromMemory++
		}
	}
	t.Logf("%d of %d sessions of 1 KiB answered from memory", fromMemory, n)
	if fromMemory == 0 || fromMemory > 128 {
		t.Errorf("%d of %d sessions of 1 KiB answered from memory; want some, at most 128 (128 KiB)", fromMemory, n)
	}

	must(t, c.DeleteDevice(ctx, dev))
	again := savedDevice(t, c, "15550001111")
	for _, d := range []*store.Device{dev, again} {
		if hasSession(t, d, "15551000000:0") {
			t.Error("a deleted device's session is still read")
		}
	}
}

// TestSignalCacheConcurrentWriters: devices' sessions written and read by
// many goroutines at once, in decryptions that commit or roll back and in
// single writes, end as the database has them.
func TestSignalCacheConcurrentWriters(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		db, _, dev := cacheDevice(t, b.Open(t))
		addrs := []string{"15552000001:0", "15552000001:1", "15552000002:0", "15552000003:0"}
		var wg sync.WaitGroup
		for w := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(w), 1))
				for i := range 60 {
					addr := addrs[r.IntN(len(addrs))]
					val := []byte(fmt.Sprintf("w%d-%d", w, i))
					var err error
					switch r.IntN(5) {
					case 0:
						err = dev.Sessions.PutSession(ctx, addr, val)
					case 1, 2:
						fail := r.IntN(2) == 0
						err = dev.EventBuffer.DoDecryptionTxn(ctx, func(ctx context.Context) error {
							if _, err := dev.Sessions.GetSession(ctx, addr); err != nil {
								return err
							}
							if err := dev.Sessions.PutSession(ctx, addr, val); err != nil {
								return err
							}
							if fail {
								return errDecryption
							}
							return nil
						})
						if errors.Is(err, errDecryption) {
							err = nil
						}
					case 3:
						_, err = dev.Sessions.GetManySessions(ctx, addrs)
					default:
						_, err = dev.Sessions.GetSession(ctx, addr)
					}
					if err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		for _, addr := range addrs {
			if got, stored := session(t, dev, addr), storedSession(t, db, dev, addr); got != stored {
				t.Errorf("%s: read %q, the database holds %q", addr, got, stored)
			}
		}
	})
}
