package appservice

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/event"
)

func newTransactionTestAS() (*appservice.AppService, *appservice.EventProcessor) {
	as := appservice.Create()
	as.Registration = &appservice.Registration{ServerToken: "hs-token"}
	ep := appservice.NewEventProcessor(as)
	ep.ExecMode = appservice.Sync
	return as, ep
}

func putTransaction(h http.Handler, token, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPut, "/_matrix/app/v1/transactions/42", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// A transaction is answered only after each of its events was handled, in
// order; until then the homeserver has no answer and would send it again.
func TestTransactionAnsweredAfterHandling(t *testing.T) {
	as, ep := newTransactionTestAS()
	release := make(chan struct{})
	var handled []string
	ep.On(event.EventMessage, func(_ context.Context, evt *event.Event) {
		if len(handled) == 0 {
			<-release
		}
		handled = append(handled, evt.Content.AsMessage().Body)
	})
	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	ready := make(chan struct{})
	h := handledTransactions(as, ep, ready)(next)

	body := `{"events":[
		{"type":"m.room.message","event_id":"$1","room_id":"!r:x","sender":"@u:x","content":{"msgtype":"m.text","body":"one"}},
		{"type":"m.room.message","event_id":"$2","room_id":"!r:x","sender":"@u:x","content":{"msgtype":"m.text","body":"two"}}]}`
	done := make(chan *httptest.ResponseRecorder)
	go func() { done <- putTransaction(h, "hs-token", body) }()
	select {
	case <-done:
		t.Fatal("transaction answered before the bridge was ready")
	case <-time.After(100 * time.Millisecond):
	}
	if len(handled) != 0 {
		t.Fatal("event handled before the bridge was ready")
	}
	close(ready)
	select {
	case <-done:
		t.Fatal("transaction answered before its first event was handled")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	rec := <-done
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d %s", rec.Code, rec.Body)
	}
	if strings.Join(handled, ",") != "one,two" {
		t.Fatalf("handled %q, want one,two", handled)
	}
}

// Events of different rooms in one transaction are handled side by side:
// a portal whose first event is slow to send does not hold back another
// portal's event; each room's events keep their order, and the answer
// waits for all of them.
func TestTransactionRoomsSideBySide(t *testing.T) {
	as, ep := newTransactionTestAS()
	release := make(chan struct{})
	otherRoom := make(chan struct{})
	var mu sync.Mutex
	var handled []string
	ep.On(event.EventMessage, func(_ context.Context, evt *event.Event) {
		body := evt.Content.AsMessage().Body
		switch body {
		case "slow one":
			<-release
		case "other room":
			close(otherRoom)
		}
		mu.Lock()
		handled = append(handled, body)
		mu.Unlock()
	})
	ready := make(chan struct{})
	close(ready)
	h := handledTransactions(as, ep, ready)(http.NotFoundHandler())
	body := `{"events":[
		{"type":"m.room.message","event_id":"$1","room_id":"!slow:x","sender":"@u:x","content":{"msgtype":"m.text","body":"slow one"}},
		{"type":"m.room.message","event_id":"$2","room_id":"!other:x","sender":"@u:x","content":{"msgtype":"m.text","body":"other room"}},
		{"type":"m.room.message","event_id":"$3","room_id":"!slow:x","sender":"@u:x","content":{"msgtype":"m.text","body":"slow two"}}]}`
	done := make(chan *httptest.ResponseRecorder)
	go func() { done <- putTransaction(h, "hs-token", body) }()
	select {
	case <-otherRoom:
	case <-time.After(10 * time.Second):
		t.Fatal("the other room's event waited behind the slow room's")
	}
	select {
	case <-done:
		t.Fatal("transaction answered before the slow room's events were handled")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if rec := <-done; rec.Code != http.StatusOK {
		t.Fatalf("status %d %s", rec.Code, rec.Body)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(handled, ",") != "other room,slow one,slow two" {
		t.Fatalf("handled %q, want the other room's first, then the slow room's in order", handled)
	}
}

// Anything else goes to mautrix's handler: other paths, other methods,
// transactions with ephemeral or to-device parts, bodies that do not parse,
// and asynchronous dispatch. A wrong token is refused without handling.
func TestTransactionFallsThrough(t *testing.T) {
	as, ep := newTransactionTestAS()
	ep.On(event.EventMessage, func(context.Context, *event.Event) { t.Error("event handled") })
	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	ready := make(chan struct{})
	close(ready)
	h := handledTransactions(as, ep, ready)(next)

	for name, body := range map[string]string{
		"ephemeral": `{"events":[],"ephemeral":[{"type":"m.typing","content":{}}]}`,
		"to-device": `{"events":[],"de.sorunome.msc2409.to_device":[]}`,
		"malformed": `{"events":`,
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
	if rec := putTransaction(h, "wrong", `{"events":[]}`); rec.Code < 400 || rec.Code == http.StatusTeapot {
		t.Errorf("wrong token: status %d", rec.Code)
	}
	ep.ExecMode = appservice.AsyncHandlers
	if rec := putTransaction(h, "hs-token", `{"events":[]}`); rec.Code != http.StatusTeapot {
		t.Errorf("async dispatch: status %d, want mautrix's handler", rec.Code)
	}
}
