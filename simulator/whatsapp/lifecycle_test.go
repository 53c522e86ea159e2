package wasim_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	wasim "github.com/passerelle/passerelle/simulator/whatsapp"
	"github.com/passerelle/passerelle/simulator/whatsapp/memstore"
)

func TestOfflineDelivery(t *testing.T) {
	srv := startServer(t)
	alice := mustAccount(t, srv, "15550020001", "Alice")
	bob := mustAccount(t, srv, "15550020002", "Bob")
	c := pair(t, srv, alice.Phone)
	ms := c.store
	c.Disconnect()

	id, err := srv.SendText(ctxT(t), bob.Phone, alice.Phone, "while you were away")
	if err != nil {
		t.Fatal(err)
	}
	c2 := newClient(t, srv, ms, ms.Load())
	if err = c2.Connect(); err != nil {
		t.Fatal(err)
	}
	evt := waitEvent[*events.Message](t, c2, nil)
	if evt.Info.ID != id || evt.Message.GetConversation() != "while you were away" {
		t.Fatalf("got %s %q", evt.Info.ID, evt.Message.GetConversation())
	}
	waitEvent[*events.OfflineSyncCompleted](t, c2, nil)
	waitDelivered(t, srv, id)
}

func TestLogout(t *testing.T) {
	srv := startServer(t)
	alice := mustAccount(t, srv, "15550020003", "Alice")
	c := pair(t, srv, alice.Phone)
	stale := c.store.Load() // what a copy of the database would still hold

	if err := c.Logout(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if n := len(alice.Devices()); n != 0 {
		t.Fatalf("server still has %d devices after logout", n)
	}
	if c.store.Load() != nil {
		t.Fatal("client store still holds the device after logout")
	}
	// Logging in again with the removed device's keys is refused.
	ms := memstore.New(nil)
	c2 := newClient(t, srv, ms, ms.NewDevice())
	c2.Store.ID, c2.Store.NoiseKey, c2.Store.IdentityKey = stale.ID, stale.NoiseKey, stale.IdentityKey
	if err := c2.Connect(); err != nil {
		t.Fatal(err)
	}
	lo := waitEvent[*events.LoggedOut](t, c2, nil)
	if !lo.OnConnect {
		t.Fatalf("LoggedOut %+v, want OnConnect", lo)
	}
}

func TestUnpairFromPhone(t *testing.T) {
	srv := startServer(t)
	alice := mustAccount(t, srv, "15550020004", "Alice")
	c := pair(t, srv, alice.Phone)
	if err := srv.Unpair(ctxT(t), alice.Phone); err != nil {
		t.Fatal(err)
	}
	lo := waitEvent[*events.LoggedOut](t, c, nil)
	if lo.OnConnect {
		t.Fatalf("LoggedOut %+v, want a live logout", lo)
	}
	if n := len(alice.Devices()); n != 0 {
		t.Fatalf("%d devices left", n)
	}
}

// TestStreamReplaced: the control API's replace-stream ends the linked
// client's stream the way WhatsApp does when another connection takes the
// session (whatsmeow emits StreamReplaced and stays disconnected); the same
// client connects again with its keys, no pairing, and gets messages.
func TestStreamReplaced(t *testing.T) {
	srv := startServer(t)
	alice := mustAccount(t, srv, "15550020005", "Alice")
	bob := mustAccount(t, srv, "15550020015", "Bob")
	c := pair(t, srv, alice.Phone)
	hs := httptest.NewServer(srv.ControlHandler())
	t.Cleanup(hs.Close)
	resp, err := http.Post(hs.URL+"/replace-stream", "application/json", strings.NewReader(`{"phone":"`+alice.Phone+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("replace-stream: %s", resp.Status)
	}
	waitEvent[*events.StreamReplaced](t, c, nil)
	if c.IsLoggedIn() {
		t.Fatal("client still logged in after its stream was replaced")
	}
	c.Disconnect()
	if err = c.Connect(); err != nil {
		t.Fatal(err)
	}
	waitEvent[*events.Connected](t, c, nil)
	id, err := srv.SendText(ctxT(t), bob.Phone, alice.Phone, "after the takeover")
	if err != nil {
		t.Fatal(err)
	}
	evt := waitEvent[*events.Message](t, c, func(e *events.Message) bool { return e.Info.ID == id })
	if evt.Message.GetConversation() != "after the takeover" {
		t.Fatalf("got %q", evt.Message.GetConversation())
	}
	// No session left to replace: 422.
	if resp, err = http.Post(hs.URL+"/replace-stream", "application/json", strings.NewReader(`{"phone":"+15550020015"}`)); err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("replace-stream without a linked device: %s", resp.Status)
	}
}

func TestUndecryptableAndRetry(t *testing.T) {
	srv := startServer(t)
	alice := mustAccount(t, srv, "15550020006", "Alice")
	bob := mustAccount(t, srv, "15550020007", "Bob")
	c := pair(t, srv, alice.Phone)
	ctx := ctxT(t)

	// Before and after a session exists.
	for _, text := range []string{"retried before any session", "retried in a session"} {
		id, err := srv.SendUndecryptable(ctx, bob.Phone, alice.Phone, text)
		if err != nil {
			t.Fatal(err)
		}
		und := waitEvent[*events.UndecryptableMessage](t, c, nil)
		if und.Info.ID != id || und.Info.Sender.User != bob.Phone {
			t.Fatalf("undecryptable %+v", und.Info)
		}
		evt := waitEvent[*events.Message](t, c, nil)
		if evt.Info.ID != id || evt.Message.GetConversation() != text || evt.RetryCount != 1 {
			t.Fatalf("after retry: %s %q retry %d", evt.Info.ID, evt.Message.GetConversation(), evt.RetryCount)
		}
		waitDelivered(t, srv, id)
	}
}

// TestOfflineQueueBoundedWithPreview: what is sent to a device that is not
// connected waits, up to MaxOffline stanzas (the oldest are dropped), and
// comes at the next login after an offline preview of its size, in order,
// followed by the end of the offline sync.
func TestOfflineQueueBoundedWithPreview(t *testing.T) {
	srv, err := wasim.Start(wasim.Config{StreamErrorCloseDelay: 300 * time.Millisecond, MaxOffline: 5})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	alice := mustAccount(t, srv, "15550020011", "Alice")
	bob := mustAccount(t, srv, "15550020012", "Bob")
	c := pair(t, srv, alice.Phone)
	ms := c.store
	c.Disconnect()

	var ids []string
	for i := range 8 {
		id, err := srv.SendText(ctxT(t), bob.Phone, alice.Phone, fmt.Sprintf("away %d", i))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if n := srv.OfflineQueued(alice.Phone); n != 5 {
		t.Fatalf("%d stanzas queued, want the cap of 5", n)
	}
	c2 := newClient(t, srv, ms, ms.Load())
	if err = c2.Connect(); err != nil {
		t.Fatal(err)
	}
	preview := waitEvent[*events.OfflineSyncPreview](t, c2, nil)
	if preview.Total != 5 || preview.Messages != 5 {
		t.Fatalf("offline preview %+v, want 5 messages", preview)
	}
	for _, want := range ids[3:] {
		evt := waitEvent[*events.Message](t, c2, nil)
		if evt.Info.ID != want {
			t.Fatalf("got %s (%q), want %s: the oldest are dropped, the rest in order", evt.Info.ID, evt.Message.GetConversation(), want)
		}
	}
	if done := waitEvent[*events.OfflineSyncCompleted](t, c2, nil); done.Count != 5 {
		t.Fatalf("offline sync completed with %d, want 5", done.Count)
	}
	waitDelivered(t, srv, ids[7])
}

// Like WhatsApp, the server forgets a message once the device's delivery
// receipt for it came: one the device answered is not sent again at its
// next login, one it did not answer (its handler refused the
// acknowledgement) is.
func TestReceiptedMessageNotSentAgain(t *testing.T) {
	srv := startServer(t)
	alice := mustAccount(t, srv, "15550020041", "Alice")
	bob := mustAccount(t, srv, "15550020042", "Bob")
	c := pair(t, srv, alice.Phone)
	ms := c.store
	c.DeferrableAcks, c.SynchronousAck = true, true
	refuse := "not handled"
	c.AddEventHandler(func(evt any) {
		if m, ok := evt.(*events.Message); ok && m.Message.GetConversation() == refuse && m.DeferAck != nil {
			m.DeferAck()(false)
		}
	})
	answered, err := srv.SendText(ctxT(t), bob.Phone, alice.Phone, "answered")
	if err != nil {
		t.Fatal(err)
	}
	waitDelivered(t, srv, answered)
	refused, err := srv.SendText(ctxT(t), bob.Phone, alice.Phone, refuse)
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, c, func(m *events.Message) bool { return m.Info.ID == refused })
	deadline := time.Now().Add(waitTimeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for srv.Unacked() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d messages unacknowledged, want 1 (the refused one)", srv.Unacked())
		}
		<-tick.C
	}
	c.Disconnect()

	c2 := newClient(t, srv, ms, ms.Load())
	if err = c2.Connect(); err != nil {
		t.Fatal(err)
	}
	// The copy sent again is the same ciphertext, which the device's
	// session has moved past (the test store keeps no decrypted buffer):
	// the device ignores it and answers it. The answered one is not sent.
	waitEvent[*events.OfflineSyncCompleted](t, c2, nil)
	if _, err = srv.WaitReceipt(ctxT(t), func(r wasim.Receipt) bool {
		return slices.Contains(r.IDs, refused) && r.Type != types.ReceiptTypeRetry
	}); err != nil {
		t.Fatalf("the refused message was not sent again at the next login: %v", err)
	}
	n := 0
	for _, r := range srv.Receipts() {
		if slices.Contains(r.IDs, answered) {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("the answered message was answered %d times, want once: it was sent again", n)
	}
}
