package wasim_test

import (
	"testing"
	"time"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	wasim "github.com/passerelle/passerelle/simulator/whatsapp"
)

// waitDelivered waits until the client's delivery receipt for id reached the
// server (so no send is pending when the test disconnects the client).
func waitDelivered(t testing.TB, srv *wasim.Server, id string) wasim.Receipt {
	t.Helper()
	rc, err := srv.WaitReceipt(ctxT(t), func(r wasim.Receipt) bool {
		return len(r.IDs) > 0 && r.IDs[0] == id && r.Type != types.ReceiptTypeRetry
	})
	if err != nil {
		t.Fatalf("no receipt for %s: %v", id, err)
	}
	return rc
}

func TestDirectMessages(t *testing.T) {
	srv := startServer(t)
	alice := mustAccount(t, srv, "15550003333", "Alice")
	bob := mustAccount(t, srv, "15550004444", "Bob")
	c := pair(t, srv, alice.Phone)
	ctx := ctxT(t)

	// Contact → client: a pkmsg for the new session, then a msg.
	for i, text := range []string{"hello from bob", "second message"} {
		id, err := srv.SendText(ctx, bob.Phone, alice.Phone, text)
		if err != nil {
			t.Fatal(err)
		}
		evt := waitEvent[*events.Message](t, c, nil)
		if evt.Info.ID != id || evt.Message.GetConversation() != text {
			t.Fatalf("message %d: got %s %q, want %s %q", i, evt.Info.ID, evt.Message.GetConversation(), id, text)
		}
		if evt.Info.Sender.User != bob.Phone || evt.Info.Chat != bob.JID || evt.Info.PushName != "Bob" || evt.Info.IsFromMe {
			t.Fatalf("message %d has wrong source: %+v", i, evt.Info.MessageSource)
		}
		rc := waitDelivered(t, srv, id)
		if rc.From != alice.Phone || rc.Chat != bob.Phone {
			t.Fatalf("receipt %+v", rc)
		}
	}
	// whatsmeow stores the push name from the notify attribute asynchronously.
	for deadline := time.Now().Add(waitTimeout); ; time.Sleep(20 * time.Millisecond) {
		if info, _ := c.Store.Contacts.GetContact(ctx, bob.JID); info.PushName == "Bob" {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("push name of bob not stored: %+v", info)
		}
	}

	// Client → contact, plain and extended text with a mention.
	resp, err := c.SendMessage(ctx, bob.JID, &waE2E.Message{Conversation: proto.String("hi bob")})
	if err != nil {
		t.Fatal(err)
	}
	got, err := srv.WaitMessage(ctx, alice.Phone, bob.Phone, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != resp.ID || got.Text() != "hi bob" {
		t.Fatalf("contact got %s %q, want %s %q", got.ID, got.Text(), resp.ID, "hi bob")
	}
	_, err = c.SendMessage(ctx, bob.JID, &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{
		Text:        proto.String("@15550004444 look"),
		ContextInfo: &waE2E.ContextInfo{MentionedJID: []string{bob.JID.String()}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	got, err = srv.WaitMessage(ctx, alice.Phone, bob.Phone, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Text() != "@15550004444 look" || len(got.Mentions()) != 1 || got.Mentions()[0] != bob.JID.String() {
		t.Fatalf("extended text: %q mentions %v", got.Text(), got.Mentions())
	}

	// Receipts from the contact reach the client.
	if err = srv.SendReceipt(ctx, bob.Phone, alice.Phone, types.ReceiptTypeRead, resp.ID); err != nil {
		t.Fatal(err)
	}
	rcpt := waitEvent[*events.Receipt](t, c, func(r *events.Receipt) bool { return r.Type == types.ReceiptTypeRead })
	if len(rcpt.MessageIDs) != 1 || rcpt.MessageIDs[0] != resp.ID || rcpt.Chat != bob.JID {
		t.Fatalf("read receipt %+v", rcpt)
	}
	// And the client's read receipts reach the server.
	if err = c.MarkRead(ctx, []types.MessageID{got.ID}, time.Now(), bob.JID, bob.JID); err != nil {
		t.Fatal(err)
	}
	if _, err = srv.WaitReceipt(ctx, func(r wasim.Receipt) bool { return r.Type == types.ReceiptTypeRead }); err != nil {
		t.Fatal(err)
	}
}
