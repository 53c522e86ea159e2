package wasim_test

import (
	"testing"
	"time"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types/events"
)

// TestDisappearingTimer: a contact turns on a chat's timer; the linked
// device gets the setting, then messages that carry it; turned off, they
// carry none.
func TestDisappearingTimer(t *testing.T) {
	srv := startServer(t)
	alice := mustAccount(t, srv, "15550040001", "Alice")
	bob := mustAccount(t, srv, "15550040002", "Bob")
	c := pair(t, srv, alice.Phone)
	ctx := ctxT(t)
	if _, err := srv.SetDisappearingTimer(ctx, bob.Phone, alice.Phone, 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	set := waitEvent[*events.Message](t, c, nil)
	if pm := set.Message.GetProtocolMessage(); pm.GetType() != waE2E.ProtocolMessage_EPHEMERAL_SETTING || pm.GetEphemeralExpiration() != 86400 {
		t.Fatalf("setting came as %v", set.Message)
	}
	if _, err := srv.SendText(ctx, bob.Phone, alice.Phone, "gone tomorrow"); err != nil {
		t.Fatal(err)
	}
	msg := waitEvent[*events.Message](t, c, nil)
	ext := msg.Message.GetExtendedTextMessage()
	if !msg.IsEphemeral || ext.GetText() != "gone tomorrow" || ext.GetContextInfo().GetExpiration() != 86400 {
		t.Fatalf("timed message came as ephemeral=%v %v", msg.IsEphemeral, msg.Message)
	}
	if _, err := srv.SetDisappearingTimer(ctx, alice.Phone, bob.Phone, 0); err != nil {
		t.Fatal(err)
	}
	if srv.DisappearingTimer(bob.Phone, alice.Phone) != 0 {
		t.Fatal("the timer is still on")
	}
	if _, err := srv.SendText(ctx, bob.Phone, alice.Phone, "here to stay"); err != nil {
		t.Fatal(err)
	}
	msg = waitEvent[*events.Message](t, c, func(m *events.Message) bool { return m.Info.Sender.User == bob.Phone })
	if msg.IsEphemeral || msg.Message.GetConversation() != "here to stay" {
		t.Fatalf("after the timer went off: ephemeral=%v %v", msg.IsEphemeral, msg.Message)
	}
}
