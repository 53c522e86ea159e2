package wastore_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/passerelle/passerelle/internal/dbtest"
)

// BenchmarkIdentityCheckAndSave is what libsignal does with the store for
// each device at every message it encrypts (and whatsmeow at each one it
// decrypts): is the contact's identity key the one known, then save it
// again. The key almost never changes: a message costs a read and a write
// that changes nothing.
func BenchmarkIdentityCheckAndSave(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			be := dbtest.SQLite(b)
			if backend == "postgres" {
				be = dbtest.Postgres(b)
			}
			ctx := context.Background()
			dev := savedDevice(b, newContainer(b, be.Open(b)), "111")
			var key [32]byte
			key[0] = 7
			addrs := make([]string, 4)
			for i := range addrs {
				addrs[i] = fmt.Sprintf("9222_1:%d", i)
				must(b, dev.Identities.PutIdentity(ctx, addrs[i], key))
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				addr := addrs[i%len(addrs)]
				trusted, err := dev.Identities.IsTrustedIdentity(ctx, addr, key)
				if err != nil || !trusted {
					b.Fatalf("trusted %v, %v", trusted, err)
				}
				must(b, dev.Identities.PutIdentity(ctx, addr, key))
			}
		})
	}
}
