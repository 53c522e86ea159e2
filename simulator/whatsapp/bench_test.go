package wasim_test

import (
	"context"
	"testing"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	wasim "github.com/passerelle/passerelle/simulator/whatsapp"
)

// BenchmarkReconnect measures a paired client's connect: websocket, Noise
// handshake with certificate check, login, prekey count, passive IQ, up to
// events.Connected.
func BenchmarkReconnect(b *testing.B) {
	srv := startServer(b)
	alice := mustAccount(b, srv, "15550050001", "Alice")
	c := pair(b, srv, alice.Phone)
	c.Disconnect()
	b.ResetTimer()
	for range b.N {
		c2 := newClient(b, srv, c.store, c.store.Load())
		if err := c2.Connect(); err != nil {
			b.Fatal(err)
		}
		waitEvent[*events.Connected](b, c2, nil)
		c2.Disconnect()
	}
}

// BenchmarkRoundTrip measures contact → client → contact: a simulated phone
// sends a text, the client decrypts it and answers, the phone decrypts the
// answer.
func BenchmarkRoundTrip(b *testing.B) {
	srv := startServer(b)
	alice := mustAccount(b, srv, "15550050002", "Alice")
	bob := mustAccount(b, srv, "15550050003", "Bob")
	c := pair(b, srv, alice.Phone)
	ctx := context.Background()
	c.AddEventHandler(func(evt any) {
		if m, ok := evt.(*events.Message); ok && m.Message.GetConversation() == "ping" {
			go func() {
				_, _ = c.SendMessage(ctx, m.Info.Chat, &waE2E.Message{Conversation: proto.String("pong")})
			}()
		}
	})
	b.ResetTimer()
	for range b.N {
		id, err := srv.SendText(ctx, bob.Phone, alice.Phone, "ping")
		if err != nil {
			b.Fatal(err)
		}
		if _, err = srv.WaitMessage(ctx, alice.Phone, bob.Phone, func(m wasim.Message) bool { return m.Text() == "pong" }); err != nil {
			b.Fatal(err)
		}
		waitDelivered(b, srv, id)
	}
}
