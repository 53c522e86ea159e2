package appservice

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/internal/dbtest"
)

func newTransactionTestAS() (*appservice.AppService, *appservice.EventProcessor) {
	as := appservice.Create()
	as.Registration = &appservice.Registration{ServerToken: "hs-token"}
	ep := appservice.NewEventProcessor(as)
	ep.ExecMode = appservice.Sync
	return as, ep
}

// newTestInbox opens the Matrix inbox on db and returns the transaction
// handler in front of next.
func newTestInbox(t *testing.T, db *dbutil.Database, as *appservice.AppService, ep *appservice.EventProcessor, ready <-chan struct{}, next http.Handler) (*matrixInbox, http.Handler) {
	t.Helper()
	in, err := openMatrixInbox(context.Background(), db, as, ep, ready, nil, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return in, handledTransactions(as, ep, in)(next)
}

func putTransactionID(h http.Handler, token, txnID, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPut, "/_matrix/app/v1/transactions/"+txnID, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func putTransaction(h http.Handler, token, body string) *httptest.ResponseRecorder {
	return putTransactionID(h, token, "42", body)
}

func textEvents(room string, bodies ...string) string {
	var evs []string
	for _, b := range bodies {
		evs = append(evs, fmt.Sprintf(`{"type":"m.room.message","event_id":"$%s","room_id":"%s","sender":"@u:x","content":{"msgtype":"m.text","body":"%s"}}`,
			strings.ReplaceAll(b, " ", "-"), room, b))
	}
	return strings.Join(evs, ",")
}

// recorder keeps the bodies of the messages the bridge was handed, in order.
type recorder struct {
	mu      sync.Mutex
	handled []string
}

func (r *recorder) add(body string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.handled = append(r.handled, body)
}

func (r *recorder) get() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.handled, ",")
}

// recordingAS is a transaction test's appservice whose bridge records the
// messages it is handed.
func recordingAS() (*appservice.AppService, *appservice.EventProcessor, *recorder) {
	as, ep := newTransactionTestAS()
	rec := &recorder{}
	ep.On(event.EventMessage, func(_ context.Context, evt *event.Event) { rec.add(evt.Content.AsMessage().Body) })
	return as, ep, rec
}

// waitHandled waits until the inbox handled every event queued so far.
func waitHandled(t *testing.T, in *matrixInbox) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := in.wait(ctx); err != nil {
		t.Fatal(err)
	}
}

// wantHandled waits for the inbox, then checks what the bridge was handed
// (in order) and that the inbox is empty.
func wantHandled(t *testing.T, in *matrixInbox, db *dbutil.Database, rec *recorder, want string) {
	t.Helper()
	waitHandled(t, in)
	if got := rec.get(); got != want {
		t.Fatalf("handled %q, want %q", got, want)
	}
	if n := inboxRows(t, db); n != 0 {
		t.Fatalf("%d events left in the inbox after handling", n)
	}
}

// inboxRows is the number of events waiting in the inbox (stored and not
// handled).
func inboxRows(t *testing.T, db *dbutil.Database) int {
	t.Helper()
	return inboxRowsWhere(t, db, "handled IS NULL")
}

// inboxRowsWhere is the number of the inbox's rows that meet cond.
func inboxRowsWhere(t *testing.T, db *dbutil.Database, cond string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(context.Background(), `SELECT COUNT(*) FROM passerelle_matrix_inbox WHERE `+cond).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A transaction is answered once its events are stored, even before the
// bridge has started; they are handled once it has, each room's in order,
// and leave the inbox once handled.
func TestTransactionAnsweredOnceStored(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		db := b.Open(t)
		as, ep, rec := recordingAS()
		ready := make(chan struct{})
		in, h := newTestInbox(t, db, as, ep, ready, http.NotFoundHandler())
		if r := putTransaction(h, "hs-token", `{"events":[`+textEvents("!r:x", "one", "two")+`]}`); r.Code != http.StatusOK {
			t.Fatalf("status %d %s", r.Code, r.Body)
		}
		if got := rec.get(); got != "" {
			t.Fatalf("handled %q before the bridge started", got)
		}
		if n := inboxRows(t, db); n != 2 {
			t.Fatalf("%d events stored, want 2", n)
		}
		// What an operator sees on /metrics meanwhile.
		if v := testutil.ToFloat64(in.collector()); v != 2 {
			t.Fatalf("%s = %v while 2 events wait for the bridge, want 2", inboxMetricName, v)
		}
		close(ready)
		wantHandled(t, in, db, rec, "one,two")
		if v := testutil.ToFloat64(in.collector()); v != 0 {
			t.Fatalf("%s = %v once every event was handled, want 0", inboxMetricName, v)
		}
	})
}

// A portal whose event is slow to handle (a large file, a slow network, a
// late room key) holds neither the other rooms of its transaction nor the
// transactions behind it; its own later events wait for it, in order.
func TestTransactionRoomsSideBySide(t *testing.T) {
	as, ep := newTransactionTestAS()
	release := make(chan struct{})
	otherRooms := make(chan string, 2)
	var rec recorder
	ep.On(event.EventMessage, func(_ context.Context, evt *event.Event) {
		body := evt.Content.AsMessage().Body
		switch {
		case body == "slow one":
			<-release
		case strings.HasPrefix(body, "other"):
			otherRooms <- body
		}
		rec.add(body)
	})
	ready := make(chan struct{})
	close(ready)
	in, h := newTestInbox(t, dbtest.SQLite(t).Open(t), as, ep, ready, http.NotFoundHandler())
	first := `{"events":[` + textEvents("!slow:x", "slow one") + `,` + textEvents("!other:x", "other room") + `]}`
	if r := putTransactionID(h, "hs-token", "1", first); r.Code != http.StatusOK {
		t.Fatalf("status %d %s", r.Code, r.Body)
	}
	second := `{"events":[` + textEvents("!slow:x", "slow two") + `,` + textEvents("!third:x", "other transaction") + `]}`
	answered := make(chan int, 1)
	go func() { answered <- putTransactionID(h, "hs-token", "2", second).Code }()
	select {
	case code := <-answered:
		if code != http.StatusOK {
			t.Fatalf("second transaction: status %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the next transaction waited for the slow portal's event")
	}
	for range 2 {
		select {
		case <-otherRooms:
		case <-time.After(10 * time.Second):
			t.Fatalf("another portal's event waited behind the slow portal's (handled %q)", rec.get())
		}
	}
	close(release)
	waitHandled(t, in)
	got := rec.get()
	if strings.Index(got, "slow one") > strings.Index(got, "slow two") || strings.Count(got, ",") != 3 {
		t.Fatalf("handled %q, want each event once and the slow room's in order", got)
	}
}

// The echo of what the gateway sent (a ghost's or the bot's timeline
// event: every bridged remote message comes back so) is neither stored
// nor handed on, as the bridge ignores it. A ghost's state event and a
// staff member's message are stored and handled.
func TestTransactionEchoesNotStored(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		db := b.Open(t)
		as, ep, rec := recordingAS()
		ready := make(chan struct{})
		ours := func(u id.UserID) bool { return strings.HasPrefix(string(u), "@ghost_") || u == "@bot:x" }
		in, err := openMatrixInbox(context.Background(), db, as, ep, ready, ours, nil, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		h := handledTransactions(as, ep, in)(http.NotFoundHandler())
		echo := `{"type":"m.room.message","event_id":"$echo","room_id":"!r:x","sender":"@ghost_bob:x","content":{"msgtype":"m.text","body":"echo"}}`
		notice := `{"type":"m.room.message","event_id":"$notice","room_id":"!r:x","sender":"@bot:x","content":{"msgtype":"m.notice","body":"notice"}}`
		join := `{"type":"m.room.member","state_key":"@ghost_bob:x","event_id":"$join","room_id":"!r:x","sender":"@ghost_bob:x","content":{"membership":"join"}}`
		body := `{"events":[` + textEvents("!r:x", "one") + `,` + echo + `,` + join + `,` + notice + `,` + textEvents("!r:x", "two") + `]}`
		if r := putTransaction(h, "hs-token", body); r.Code != http.StatusOK {
			t.Fatalf("status %d %s", r.Code, r.Body)
		}
		var stored []string
		rows, err := db.Query(context.Background(), `SELECT event_id FROM passerelle_matrix_inbox ORDER BY seq`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var e string
			if err = rows.Scan(&e); err != nil {
				t.Fatal(err)
			}
			stored = append(stored, e)
		}
		_ = rows.Close()
		if got := strings.Join(stored, ","); got != "$one,$join,$two" {
			t.Fatalf("stored %q, want the staff messages and the ghost's join, not the echoes", got)
		}
		close(ready)
		wantHandled(t, in, db, rec, "one,two")
	})
}

// A gateway that stops (or dies) with events stored and not handled
// handles them at its next start, before the events of new transactions,
// each once and in order; the homeserver sending a stored transaction
// again does not handle its events twice.
func TestTransactionInboxSurvivesRestart(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		db := b.Open(t)
		as, ep, before := recordingAS()
		never := make(chan struct{}) // this run never starts its bridge: killed first
		_, h := newTestInbox(t, db, as, ep, never, http.NotFoundHandler())
		body := `{"events":[` + textEvents("!r:x", "one", "two") + `,` + textEvents("!s:x", "elsewhere") + `]}`
		for range 2 { // the homeserver sends it again: stored once
			if r := putTransaction(h, "hs-token", body); r.Code != http.StatusOK {
				t.Fatalf("status %d %s", r.Code, r.Body)
			}
		}
		if n := inboxRows(t, b.Open(t)); n != 3 {
			t.Fatalf("%d events stored, want 3", n)
		}

		// The next start, on the same database.
		db2 := b.Open(t)
		as2, ep2, after := recordingAS()
		ready := make(chan struct{})
		in2, h2 := newTestInbox(t, db2, as2, ep2, ready, http.NotFoundHandler())
		if r := putTransactionID(h2, "hs-token", "43", `{"events":[`+textEvents("!r:x", "three")+`]}`); r.Code != http.StatusOK {
			t.Fatalf("status %d %s", r.Code, r.Body)
		}
		close(ready)
		waitHandled(t, in2)
		var inR []string
		elsewhere := 0
		for _, h := range strings.Split(after.get(), ",") {
			if h == "elsewhere" {
				elsewhere++
			} else {
				inR = append(inR, h)
			}
		}
		if strings.Join(inR, ",") != "one,two,three" || elsewhere != 1 {
			t.Fatalf("after the restart handled %q, want one, two, three in order and elsewhere, each once", after.get())
		}
		if got := before.get(); got != "" {
			t.Fatalf("the killed run handled %q", got)
		}
		if n := inboxRows(t, db2); n != 0 {
			t.Fatalf("%d events left in the inbox", n)
		}
	})
}

// Anything else goes to mautrix's handler: other paths, other methods,
// transactions with ephemeral or to-device parts, bodies that do not parse,
// events without an ID, and asynchronous dispatch. A wrong token is refused
// without handling.
func TestTransactionFallsThrough(t *testing.T) {
	as, ep := newTransactionTestAS()
	ep.On(event.EventMessage, func(context.Context, *event.Event) { t.Error("event handled") })
	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	ready := make(chan struct{})
	close(ready)
	db := dbtest.SQLite(t).Open(t)
	_, h := newTestInbox(t, db, as, ep, ready, next)

	for name, body := range map[string]string{
		"ephemeral": `{"events":[],"ephemeral":[{"type":"m.typing","content":{}}]}`,
		"to-device": `{"events":[],"de.sorunome.msc2409.to_device":[]}`,
		"malformed": `{"events":`,
		"no ID":     `{"events":[{"type":"m.room.message","room_id":"!r:x","sender":"@u:x","content":{"msgtype":"m.text","body":"x"}}]}`,
	} {
		if rec := putTransaction(h, "hs-token", body); rec.Code != http.StatusTeapot {
			t.Errorf("%s: status %d, want mautrix's handler", name, rec.Code)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/_matrix/mau/ready", nil))
	if rec.Code != http.StatusTeapot {
		t.Errorf("other path: status %d", rec.Code)
	}
	if rec := putTransaction(h, "wrong", `{"events":[`+textEvents("!r:x", "sneaky")+`]}`); rec.Code < 400 || rec.Code == http.StatusTeapot {
		t.Errorf("wrong token: status %d", rec.Code)
	}
	ep.ExecMode = appservice.AsyncHandlers
	if rec := putTransaction(h, "hs-token", `{"events":[]}`); rec.Code != http.StatusTeapot {
		t.Errorf("async dispatch: status %d, want mautrix's handler", rec.Code)
	}
	if n := inboxRows(t, db); n != 0 {
		t.Errorf("%d events stored from refused or passed-through transactions", n)
	}
}

// An event whose handling panics neither stops its room's later events
// nor stays in the inbox to be handled (and panic) again at every start.
func TestInboxPoisonEventDropped(t *testing.T) {
	as, ep := newTransactionTestAS()
	var rec recorder
	ep.On(event.EventMessage, func(_ context.Context, evt *event.Event) {
		if body := evt.Content.AsMessage().Body; body == "poison" {
			panic("a bug meets an odd event")
		} else {
			rec.add(body)
		}
	})
	ready := make(chan struct{})
	close(ready)
	db := dbtest.SQLite(t).Open(t)
	in, h := newTestInbox(t, db, as, ep, ready, http.NotFoundHandler())
	if r := putTransaction(h, "hs-token", `{"events":[`+textEvents("!r:x", "poison", "after it")+`]}`); r.Code != http.StatusOK {
		t.Fatalf("status %d %s", r.Code, r.Body)
	}
	wantHandled(t, in, db, &rec, "after it")
}
