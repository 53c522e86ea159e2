package wasim_test

import (
	"context"
	"errors"
	"testing"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types/events"

	wasim "github.com/passerelle/passerelle/simulator/whatsapp"
	"github.com/passerelle/passerelle/simulator/whatsapp/memstore"
)

func TestQRPairingAndReconnect(t *testing.T) {
	srv := startServer(t)
	alice := mustAccount(t, srv, "+1 555 000 1111", "Alice")

	ms := memstore.New(nil)
	c := newClient(t, srv, ms, ms.NewDevice())
	if err := c.Connect(); err != nil {
		t.Fatal(err)
	}
	qr := waitEvent[*events.QR](t, c, nil)
	if len(qr.Codes) == 0 {
		t.Fatal("QR event without codes")
	}
	if err := srv.ScanQR(ctxT(t), "x", qr.Codes[0]); !errors.Is(err, wasim.ErrNoAccount) {
		t.Fatalf("scan for unknown account: got %v", err)
	}
	if err := srv.ScanQR(ctxT(t), alice.Phone, qr.Codes[0]); err != nil {
		t.Fatal(err)
	}
	ps := waitEvent[*events.PairSuccess](t, c, nil)
	if ps.ID.User != alice.Phone || ps.LID.User != alice.LID.User {
		t.Fatalf("paired as %s / %s, want %s / %s", ps.ID, ps.LID, alice.JID, alice.LID)
	}
	waitEvent[*events.Connected](t, c, nil)
	if !c.IsLoggedIn() || c.Store.ID == nil || c.Store.ID.User != alice.Phone {
		t.Fatalf("client not logged in as %s (ID %v)", alice.Phone, c.Store.ID)
	}
	if n := len(alice.Devices()); n != 1 {
		t.Fatalf("account has %d linked devices, want 1", n)
	}
	if uploaded, _ := ms.UploadedPreKeyCount(context.Background()); uploaded < whatsmeow.WantedPreKeyCount {
		t.Fatalf("only %d prekeys uploaded", uploaded)
	}
	c.Disconnect()

	// A restarted client with the stored keys logs in without pairing.
	dev := ms.Load()
	if dev == nil {
		t.Fatal("store has no saved device after pairing")
	}
	c2 := newClient(t, srv, ms, dev)
	if err := c2.Connect(); err != nil {
		t.Fatal(err)
	}
	waitEvent[*events.Connected](t, c2, nil)
	if !srv.Connected(alice.Phone) {
		t.Fatal("server does not see the client online")
	}
}

func TestPairingCode(t *testing.T) {
	srv := startServer(t)
	alice := mustAccount(t, srv, "15550002222", "Alice")
	ms := memstore.New(nil)
	c := newClient(t, srv, ms, ms.NewDevice())
	if err := c.Connect(); err != nil {
		t.Fatal(err)
	}
	waitEvent[*events.QR](t, c, nil)
	code, err := c.PairPhone(ctxT(t), "+"+alice.Phone, true, whatsmeow.PairClientChrome, "Chrome (Linux)")
	if err != nil {
		t.Fatal(err)
	}
	if !srv.PendingPairingCode(alice.Phone) {
		t.Fatal("server has no pending pairing code")
	}
	wrong := "AAAA-AAAA"
	if code == wrong {
		wrong = "BBBB-BBBB"
	}
	if err = srv.EnterPairingCode(ctxT(t), alice.Phone, wrong); !errors.Is(err, wasim.ErrWrongCode) {
		t.Fatalf("wrong code: got %v, want ErrWrongCode", err)
	}
	if n := len(alice.Devices()); n != 0 {
		t.Fatalf("wrong code linked %d devices", n)
	}
	if err = srv.EnterPairingCode(ctxT(t), alice.Phone, code); err != nil {
		t.Fatal(err)
	}
	waitEvent[*events.PairSuccess](t, c, nil)
	waitEvent[*events.Connected](t, c, nil)
	if c.Store.ID == nil || c.Store.ID.User != alice.Phone {
		t.Fatalf("client paired as %v", c.Store.ID)
	}
}
