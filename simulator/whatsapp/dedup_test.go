package wasim_test

import (
	"testing"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	wasim "github.com/passerelle/passerelle/simulator/whatsapp"
)

// A client that sends a message again with the ID it already used (a bridge
// that crashed before it recorded the first send) reaches the contact once:
// WhatsApp's recipients keep one message per sender and ID.
func TestResentMessageIDIsDroppedByTheRecipient(t *testing.T) {
	srv := startServer(t)
	alice := mustAccount(t, srv, "15550030001", "Alice")
	bob := mustAccount(t, srv, "15550030002", "Bob")
	c := pair(t, srv, alice.Phone)
	ctx := ctxT(t)

	const id = "3EB0000000000000000000AB"
	for range 2 {
		resp, err := c.SendMessage(ctx, bob.JID, &waE2E.Message{Conversation: proto.String("only once")}, whatsmeow.SendRequestExtra{ID: id})
		if err != nil {
			t.Fatal(err)
		}
		if resp.ID != id {
			t.Fatalf("sent as %s, want %s", resp.ID, id)
		}
	}
	// A different ID with the same text is another message.
	if _, err := c.SendMessage(ctx, bob.JID, &waE2E.Message{Conversation: proto.String("only once")}); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.WaitMessage(ctx, alice.Phone, bob.Phone, func(m wasim.Message) bool { return m.ID != id }); err != nil {
		t.Fatal(err)
	}
	var withID int
	for _, m := range srv.Messages() {
		if m.From == alice.Phone && m.ID == id {
			withID++
		}
	}
	if withID != 1 {
		t.Fatalf("bob has %d messages with ID %s, want 1", withID, id)
	}
	if n := srv.DuplicateMessages(); n != 1 {
		t.Fatalf("DuplicateMessages = %d, want 1", n)
	}
	// A watcher reading them as they come sees the same, from where it
	// stopped.
	all := srv.Messages()
	if len(all) != 2 {
		t.Fatalf("%d messages recorded, want 2", len(all))
	}
	if from := srv.MessagesFrom(1); len(from) != 1 || from[0].ID != all[1].ID {
		t.Errorf("MessagesFrom(1) = %+v, want the second message only", from)
	}
	if from := srv.MessagesFrom(2); len(from) != 0 {
		t.Errorf("MessagesFrom(2) = %+v, want none", from)
	}
}

// Dropped sockets and server-restart stream errors are recovered by the
// client on its own, with the same linked device (no new pairing).
func TestDroppedConnectionsReconnect(t *testing.T) {
	srv := startServer(t)
	alice := mustAccount(t, srv, "15550030003", "Alice")
	c := pair(t, srv, alice.Phone)
	devices := len(alice.Devices())

	if n := srv.DropConnections(); n != 1 {
		t.Fatalf("DropConnections closed %d sockets, want 1", n)
	}
	waitEvent[*events.Disconnected](t, c, nil)
	waitEvent[*events.Connected](t, c, nil)

	if n := srv.RestartStreams(); n != 1 {
		t.Fatalf("RestartStreams reached %d clients, want 1", n)
	}
	waitEvent[*events.Connected](t, c, nil)
	if n := len(alice.Devices()); n != devices {
		t.Fatalf("%d linked devices after the drops, want %d", n, devices)
	}
}
