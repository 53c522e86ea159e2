package appservice

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/rs/zerolog"

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
