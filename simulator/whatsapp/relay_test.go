package wasim_test

import (
	"testing"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	wasim "github.com/passerelle/passerelle/simulator/whatsapp"
)

// Two linked clients of two accounts talk through the server, and a message
// sent from a phone shows up on that account's own linked client.
func TestTwoClients(t *testing.T) {
	srv := startServer(t)
	alice := mustAccount(t, srv, "15550040001", "Alice")
	bob := mustAccount(t, srv, "15550040002", "Bob")
	ca := pair(t, srv, alice.Phone)
	cb := pair(t, srv, bob.Phone)
	ctx := ctxT(t)

	resp, err := ca.SendMessage(ctx, bob.JID, &waE2E.Message{Conversation: proto.String("client to client")})
	if err != nil {
		t.Fatal(err)
	}
	evt := waitEvent[*events.Message](t, cb, nil)
	if evt.Info.ID != resp.ID || evt.Message.GetConversation() != "client to client" || evt.Info.Sender.User != alice.Phone {
		t.Fatalf("bob's client got %s %q from %s", evt.Info.ID, evt.Message.GetConversation(), evt.Info.Sender)
	}
	// Bob's phone got it too.
	if got, err := srv.WaitMessage(ctx, alice.Phone, bob.Phone, nil); err != nil || got.ID != resp.ID {
		t.Fatalf("bob's phone: %+v %v", got, err)
	}
	waitDelivered(t, srv, resp.ID)

	// Sent from Bob's phone: Alice's client gets it, Bob's client sees it as
	// his own message in the chat with Alice.
	id, err := srv.SendText(ctx, bob.Phone, alice.Phone, "from bob's phone")
	if err != nil {
		t.Fatal(err)
	}
	evt = waitEvent[*events.Message](t, ca, nil)
	if evt.Info.ID != id {
		t.Fatalf("alice's client got %s", evt.Info.ID)
	}
	own := waitEvent[*events.Message](t, cb, nil)
	if own.Info.ID != id || !own.Info.IsFromMe || own.Info.Chat != alice.JID || own.Message.GetConversation() != "from bob's phone" {
		t.Fatalf("bob's own copy: %+v %q", own.Info.MessageSource, own.Message.GetConversation())
	}
	waitDelivered(t, srv, id)
	if _, err = srv.WaitReceipt(ctx, func(r wasim.Receipt) bool {
		return r.From == bob.Phone && r.Type == types.ReceiptTypeSender && r.IDs[0] == id
	}); err != nil {
		t.Fatal(err)
	}
}
