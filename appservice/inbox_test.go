package appservice

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/internal/dbtest"
)

// handledRows is the number of handled events the inbox keeps.
func handledRows(t *testing.T, db *dbutil.Database) int {
	t.Helper()
	return inboxRowsWhere(t, db, "handled IS NOT NULL")
}

// The homeserver sends a transaction again when it never got the answer
// (a connection cut, the homeserver restarted): events the gateway handled
// meanwhile are not handed to the bridge twice, and the inbox keeps no
// content of them. Rows handled more than a day ago are deleted.
func TestTransactionSentAgainAfterHandled(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		db := b.Open(t)
		as, ep, rec := recordingAS()
		ready := make(chan struct{})
		close(ready)
		in, h := newTestInbox(t, db, as, ep, ready, http.NotFoundHandler())
		body := `{"events":[` + textEvents("!r:x", "one", "two") + `]}`
		if r := putTransactionID(h, "hs-token", "7", body); r.Code != http.StatusOK {
			t.Fatalf("status %d %s", r.Code, r.Body)
		}
		wantHandled(t, in, db, rec, "one,two")
		// Sent again, with a new event after them.
		again := `{"events":[` + textEvents("!r:x", "one", "two", "three") + `]}`
		if r := putTransactionID(h, "hs-token", "7", again); r.Code != http.StatusOK {
			t.Fatalf("status %d %s", r.Code, r.Body)
		}
		wantHandled(t, in, db, rec, "one,two,three")
		var content int
		if err := db.QueryRow(context.Background(), `SELECT COUNT(*) FROM passerelle_matrix_inbox WHERE event <> ''`).Scan(&content); err != nil {
			t.Fatal(err)
		}
		if content != 0 {
			t.Fatalf("%d handled events keep their content in the inbox", content)
		}

		// A day later the rows go (the pruning at start and every ten
		// minutes; called here on rows made older).
		if n := handledRows(t, db); n != 3 {
			t.Fatalf("%d handled rows kept, want 3", n)
		}
		in.prune()
		if n := handledRows(t, db); n != 3 {
			t.Fatalf("%d handled rows kept after pruning fresh ones, want 3", n)
		}
		old := time.Now().Add(-inboxKeepHandled - time.Minute).UnixMilli()
		if _, err := db.Exec(context.Background(), `UPDATE passerelle_matrix_inbox SET handled = $1 WHERE event_id <> '$three'`, old); err != nil {
			t.Fatal(err)
		}
		in.prune()
		if n := handledRows(t, db); n != 1 {
			t.Fatalf("%d handled rows kept after pruning, want 1 (the one handled within the day)", n)
		}
		in.stop()
	})
}

// Events a previous run stored and may have handled (it died between the
// send and the row's update) are looked up in the bridge at the next start:
// one it bridged already is not sent again; one it cannot tell about is
// handed on (the networks recognise a message sent twice). Fresh events
// are not looked up.
func TestInboxReplayAsksTheBridge(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		db := b.Open(t)
		as, ep, _ := recordingAS()
		never := make(chan struct{})
		_, h := newTestInbox(t, db, as, ep, never, http.NotFoundHandler())
		if r := putTransaction(h, "hs-token", `{"events":[`+textEvents("!r:x", "sent before the crash", "unknown", "not sent")+`]}`); r.Code != http.StatusOK {
			t.Fatalf("status %d %s", r.Code, r.Body)
		}

		var mu sync.Mutex
		var asked []string
		bridged := func(_ context.Context, evtID id.EventID) (bool, error) {
			mu.Lock()
			defer mu.Unlock()
			asked = append(asked, string(evtID))
			switch evtID {
			case "$sent-before-the-crash":
				return true, nil
			case "$unknown":
				return false, errors.New("database is locked")
			}
			return false, nil
		}
		db2 := b.Open(t)
		as2, ep2, after := recordingAS()
		ready := make(chan struct{})
		in2, err := openMatrixInbox(context.Background(), db2, as2, ep2, ready, nil, bridged, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		defer in2.stop()
		h2 := handledTransactions(as2, ep2, in2)(http.NotFoundHandler())
		if r := putTransactionID(h2, "hs-token", "43", `{"events":[`+textEvents("!r:x", "fresh")+`]}`); r.Code != http.StatusOK {
			t.Fatalf("status %d %s", r.Code, r.Body)
		}
		close(ready)
		wantHandled(t, in2, db2, after, "unknown,not sent,fresh")
		mu.Lock()
		defer mu.Unlock()
		if got := strings.Join(asked, ","); got != "$sent-before-the-crash,$unknown,$not-sent" {
			t.Fatalf("asked the bridge about %q, want the three stored events and not the fresh one", got)
		}
	})
}

// A transaction that carries room events with ephemeral or to-device
// parts (Synapse pushing receipts and typing) has its room events stored
// and handled by the inbox like any other, and its other parts handed to
// mautrix's handler, whose answer is the homeserver's.
func TestTransactionMixedPartsSplit(t *testing.T) {
	as, ep, rec := recordingAS()
	ready := make(chan struct{})
	close(ready)
	db := dbtest.SQLite(t).Open(t)
	var rest string
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rest = string(body)
		w.WriteHeader(http.StatusTeapot)
	})
	in, h := newTestInbox(t, db, as, ep, ready, next)
	defer in.stop()
	body := `{"events":[` + textEvents("!r:x", "one", "two") + `],"ephemeral":[{"type":"m.typing","room_id":"!r:x","content":{"user_ids":["@u:x"]}}]}`
	if r := putTransaction(h, "hs-token", body); r.Code != http.StatusTeapot {
		t.Fatalf("status %d %s, want mautrix's handler's answer", r.Code, r.Body)
	}
	wantHandled(t, in, db, rec, "one,two")
	if handledRows(t, db) != 2 {
		t.Fatalf("the room events did not go through the inbox")
	}
	if strings.Contains(rest, `"events"`) || !strings.Contains(rest, `"m.typing"`) {
		t.Fatalf("mautrix's handler was given %s, want the ephemeral part only", rest)
	}
}

// A gateway upgraded from the inbox's first schema handles the events
// its previous version stored and did not handle.
func TestInboxUpgradeKeepsWaitingEvents(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		db := b.Open(t)
		ctx := context.Background()
		for _, q := range []string{
			`CREATE TABLE ` + inboxVersionTable + ` (version INTEGER, compat INTEGER)`,
			`INSERT INTO ` + inboxVersionTable + ` (version, compat) VALUES (1, 1)`,
			`CREATE TABLE passerelle_matrix_inbox (event_id TEXT PRIMARY KEY, seq BIGINT NOT NULL, room_id TEXT NOT NULL, event TEXT NOT NULL, received BIGINT NOT NULL)`,
			`CREATE INDEX passerelle_matrix_inbox_seq_idx ON passerelle_matrix_inbox (seq)`,
		} {
			if _, err := db.Exec(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		for i, body := range []string{"first", "second"} {
			evt := textEvents("!r:x", body)
			if _, err := db.Exec(ctx, `INSERT INTO passerelle_matrix_inbox (event_id, seq, room_id, event, received) VALUES ($1, $2, '!r:x', $3, 0)`,
				"$"+body, i+1, evt); err != nil {
				t.Fatal(err)
			}
		}
		as, ep, rec := recordingAS()
		ready := make(chan struct{})
		close(ready)
		in, h := newTestInbox(t, b.Open(t), as, ep, ready, http.NotFoundHandler())
		defer in.stop()
		if r := putTransaction(h, "hs-token", `{"events":[`+textEvents("!r:x", "third")+`]}`); r.Code != http.StatusOK {
			t.Fatalf("status %d %s", r.Code, r.Body)
		}
		wantHandled(t, in, db, rec, "first,second,third")
	})
}
