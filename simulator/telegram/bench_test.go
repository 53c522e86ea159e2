package tgsim_test

import (
	"context"
	"testing"

	"github.com/gotd/td/telegram/auth"
	"github.com/gotd/td/tg"

	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

// Figures for the connector's tests: what a fresh client, a reconnect, an RPC
// and a push cost.

func BenchmarkFreshClientConnect(b *testing.B) {
	s := newServer(b)
	for b.Loop() {
		c := newTestClient(b, s) // new session storage: full key exchange
		c.start()
		c.stop()
	}
}

func BenchmarkReconnectStoredKey(b *testing.B) {
	s := newServer(b)
	c := newTestClient(b, s)
	c.start()
	c.stop()
	for b.Loop() {
		c.start()
		c.stop()
	}
}

func loggedInClient(b testing.TB, s *tgsim.Server) (*testClient, *tgsim.Account, *tgsim.Account) {
	me := createAccount(b, s, tgsim.AccountSpec{Phone: "15551001", FirstName: "Me"})
	peer := createAccount(b, s, tgsim.AccountSpec{Phone: "15551002", FirstName: "Peer"})
	c := newTestClient(b, s)
	c.start()
	code := auth.CodeAuthenticatorFunc(func(context.Context, *tg.AuthSentCode) (string, error) {
		code, _ := s.LastCode(me.Phone)
		return code, nil
	})
	if err := auth.NewFlow(auth.CodeOnly("+"+me.Phone, code), auth.SendCodeOptions{}).Run(context.Background(), c.client.Auth()); err != nil {
		b.Fatal(err)
	}
	c.startUpdates(me.ID)
	return c, me, peer
}

func BenchmarkRPCRoundTrip(b *testing.B) {
	s := newServer(b)
	c, _, _ := loggedInClient(b, s)
	ctx := context.Background()
	for b.Loop() {
		if _, err := c.api().UsersGetUsers(ctx, []tg.InputUserClass{&tg.InputUserSelf{}}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPushToClient(b *testing.B) {
	s := newServer(b)
	c, me, peer := loggedInClient(b, s)
	ctx := context.Background()
	for b.Loop() {
		if _, err := s.SendMessage(peer.ID, me.ID, "hi", nil); err != nil {
			b.Fatal(err)
		}
		c.nextMessage(ctx)
	}
}

func BenchmarkClientSendToWaitMessage(b *testing.B) {
	s := newServer(b)
	c, me, peer := loggedInClient(b, s)
	ctx := context.Background()
	var id int64
	for b.Loop() {
		id++
		res, err := c.api().MessagesSendMessage(ctx, &tg.MessagesSendMessageRequest{
			Peer:     &tg.InputPeerUser{UserID: peer.ID, AccessHash: peer.AccessHash},
			Message:  "hello",
			RandomID: id,
		})
		if err != nil {
			b.Fatal(err)
		}
		want := res.(*tg.UpdateShortSentMessage).ID
		if _, err := s.WaitMessage(ctx, me.ID, peer.ID, func(m tgsim.Message) bool { return m.SenderMsgID == want }); err != nil {
			b.Fatal(err)
		}
	}
}
