package appservice

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/internal/dbtest"
)

// BenchmarkTransactionHandled is the Matrix inbox's share of one staff
// message: the homeserver's transaction (one encrypted event, the usual
// size) parsed, stored, answered, handed to an empty bridge and deleted,
// on SQLite. The handing-on is waited for inside the clock.
func BenchmarkTransactionHandled(b *testing.B) {
	db := dbtest.SQLite(b).Open(b)
	as, ep := newTransactionTestAS()
	ready := make(chan struct{})
	close(ready)
	in, err := openMatrixInbox(context.Background(), db, as, ep, ready, nil, nil, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	h := handledTransactions(as, ep, in)(http.NotFoundHandler())
	ciphertext := make([]byte, 600)
	for i := range ciphertext {
		ciphertext[i] = 'A' + byte(i%26)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		body := fmt.Sprintf(`{"events":[{"type":"m.room.encrypted","event_id":"$e%d","room_id":"!r:x","sender":"@staff:x","origin_server_ts":%d,`+
			`"content":{"algorithm":"m.megolm.v1.aes-sha2","ciphertext":"%s","device_id":"DEV","sender_key":"key","session_id":"sess"}}]}`,
			i, time.Now().UnixMilli(), ciphertext)
		if r := putTransactionID(h, "hs-token", fmt.Sprint(i), body); r.Code != http.StatusOK {
			b.Fatalf("status %d %s", r.Code, r.Body)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err = in.wait(ctx); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkTransactionEcho is the inbox's share of one remote→Matrix
// message: the echo of the ghost's encrypted event, which comes back in a
// transaction of its own, read and answered (neither stored nor handed on).
func BenchmarkTransactionEcho(b *testing.B) {
	db := dbtest.SQLite(b).Open(b)
	as, ep := newTransactionTestAS()
	ready := make(chan struct{})
	close(ready)
	ours := func(u id.UserID) bool { return strings.HasPrefix(string(u), "@ghost_") }
	in, err := openMatrixInbox(context.Background(), db, as, ep, ready, ours, nil, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	h := handledTransactions(as, ep, in)(http.NotFoundHandler())
	ciphertext := strings.Repeat("ABCDEFGHIJKLMNOPQRSTUVWXYZ", 24)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		body := fmt.Sprintf(`{"events":[{"type":"m.room.encrypted","event_id":"$e%d","room_id":"!r:x","sender":"@ghost_bob:x","origin_server_ts":%d,`+
			`"content":{"algorithm":"m.megolm.v1.aes-sha2","ciphertext":"%s","device_id":"DEV","sender_key":"key","session_id":"sess"},"unsigned":{"age":12}}]}`,
			i, time.Now().UnixMilli(), ciphertext)
		if r := putTransactionID(h, "hs-token", fmt.Sprint(i), body); r.Code != http.StatusOK {
			b.Fatalf("status %d %s", r.Code, r.Body)
		}
	}
}
