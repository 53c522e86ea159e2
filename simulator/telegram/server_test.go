package tgsim_test

import (
	"context"
	"errors"
	"net"
	"reflect"
	"testing"
	"time"

	"github.com/gotd/td/telegram/auth"
	"github.com/gotd/td/telegram/auth/qrlogin"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"

	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

func TestPhoneLoginAndMessaging(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	ctx := testContext(t)
	alice := createAccount(t, s, tgsim.AccountSpec{Phone: "+1 555 0001", FirstName: "Alice", Username: "alice"})
	bob := createAccount(t, s, tgsim.AccountSpec{Phone: "15550002", FirstName: "Bob", Username: "bob"})
	carol := createAccount(t, s, tgsim.AccountSpec{Phone: "15550003", FirstName: "Carol"})
	if err := s.AddContact(alice.ID, bob.ID); err != nil {
		t.Fatal(err)
	}
	// Bob's history gets ahead of Alice's, so the two IDs of a message differ.
	if _, err := s.SendMessage(bob.ID, carol.ID, "hi carol", nil); err != nil {
		t.Fatal(err)
	}

	c := newTestClient(t, s)
	c.start()

	// Before login.
	if _, err := c.api().UsersGetUsers(ctx, []tg.InputUserClass{&tg.InputUserSelf{}}); !auth.IsUnauthorized(err) {
		t.Fatalf("getUsers before login: want 401, got %v", err)
	}
	if _, err := c.client.Auth().SendCode(ctx, "+19999999", auth.SendCodeOptions{}); !tgerr.Is(err, "PHONE_NUMBER_INVALID") {
		t.Fatalf("sendCode for an unknown phone: want PHONE_NUMBER_INVALID, got %v", err)
	}

	// Wrong code, then the right one.
	sent, err := c.client.Auth().SendCode(ctx, "+15550001", auth.SendCodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	hash := sent.(*tg.AuthSentCode).PhoneCodeHash
	code, ok := s.LastCode("15550001")
	if !ok || len(code) != 5 {
		t.Fatalf("LastCode = %q, %v", code, ok)
	}
	wrong := "00000"
	if code == wrong {
		wrong = "11111"
	}
	if _, err := c.client.Auth().SignIn(ctx, "+15550001", wrong, hash); !tgerr.Is(err, "PHONE_CODE_INVALID") {
		t.Fatalf("signIn with a wrong code: want PHONE_CODE_INVALID, got %v", err)
	}
	authz, err := c.client.Auth().SignIn(ctx, "+15550001", code, hash)
	if err != nil {
		t.Fatalf("signIn: %v", err)
	}
	if u := authz.User.(*tg.User); u.ID != alice.ID || !u.Self {
		t.Fatalf("signed in as %+v", u)
	}
	if n := s.Authorizations(alice.ID); n != 1 {
		t.Fatalf("Authorizations = %d, want 1", n)
	}
	eventually(t, "one online session", func() bool { return s.Sessions(alice.ID) == 1 })
	c.startUpdates(alice.ID)

	t.Run("PushWhileOnline", func(t *testing.T) {
		m1, err := s.SendMessage(bob.ID, alice.ID, "hi alice", nil)
		if err != nil {
			t.Fatal(err)
		}
		if m1.ID != 1 || m1.SenderMsgID != 2 || m1.IDFor(alice.ID) != 1 || m1.IDFor(bob.ID) != 2 {
			t.Fatalf("message IDs: %+v", m1)
		}
		got := c.nextMessage(ctx)
		if got.ID != m1.ID || got.Message != "hi alice" || got.Out {
			t.Fatalf("received %+v", got)
		}
		if from, ok := got.FromID.(*tg.PeerUser); !ok || from.UserID != bob.ID {
			t.Fatalf("from_id = %v", got.FromID)
		}
	})

	t.Run("SendWithEntities", func(t *testing.T) {
		ents := []tg.MessageEntityClass{
			&tg.MessageEntityBold{Offset: 0, Length: 5},
			&tg.MessageEntityTextURL{Offset: 6, Length: 4, URL: "https://example.org"},
		}
		res, err := c.api().MessagesSendMessage(ctx, &tg.MessagesSendMessageRequest{
			Peer:     &tg.InputPeerUser{UserID: bob.ID, AccessHash: bob.AccessHash},
			Message:  "hello link",
			Entities: ents,
			RandomID: 42,
		})
		if err != nil {
			t.Fatal(err)
		}
		short, ok := res.(*tg.UpdateShortSentMessage)
		if !ok {
			t.Fatalf("sendMessage returned %T", res)
		}
		// As a connector should: keeps the manager's pts in step.
		if err := c.gaps.Handle(ctx, res); err != nil {
			t.Fatal(err)
		}
		got, err := s.WaitMessage(ctx, alice.ID, bob.ID, func(m tgsim.Message) bool { return m.Text == "hello link" })
		if err != nil {
			t.Fatal(err)
		}
		if got.SenderMsgID != short.ID || got.ID != 3 {
			t.Fatalf("stored IDs %d/%d, sendMessage said %d", got.SenderMsgID, got.ID, short.ID)
		}
		if !reflect.DeepEqual(got.Entities, ents) {
			t.Fatalf("entities = %#v, want %#v", got.Entities, ents)
		}
		if h := s.Messages(bob.ID, alice.ID); len(h) != 2 || h[1].Text != "hello link" {
			t.Fatalf("bob's history with alice: %+v", h)
		}
		// A resent request (same random_id) is not stored twice: the
		// answer is the message already sent.
		again, err := c.api().MessagesSendMessage(ctx, &tg.MessagesSendMessageRequest{
			Peer:     &tg.InputPeerUser{UserID: bob.ID, AccessHash: bob.AccessHash},
			Message:  "hello link",
			RandomID: 42,
		})
		if err != nil {
			t.Fatal(err)
		}
		if a, ok := again.(*tg.UpdateShortSentMessage); !ok || a.ID != short.ID {
			t.Fatalf("resend answered %#v, want the message %d", again, short.ID)
		}
		if h := s.Messages(alice.ID, bob.ID); len(h) != 2 {
			t.Fatalf("history after a resend has %d messages", len(h))
		}
		if n := s.DuplicateSends(); n != 1 {
			t.Fatalf("DuplicateSends = %d after one resend", n)
		}
		// A wrong access hash is refused.
		_, err = c.api().MessagesSendMessage(ctx, &tg.MessagesSendMessageRequest{
			Peer:     &tg.InputPeerUser{UserID: bob.ID, AccessHash: bob.AccessHash + 1},
			Message:  "x",
			RandomID: 43,
		})
		if !tgerr.Is(err, "PEER_ID_INVALID") {
			t.Fatalf("wrong access hash: want PEER_ID_INVALID, got %v", err)
		}
	})

	t.Run("UnknownMethod", func(t *testing.T) {
		_, err := c.api().HelpGetPremiumPromo(ctx)
		if rpcErr, ok := tgerr.As(err); !ok || rpcErr.Code != 400 {
			t.Fatalf("unknown method: want a 400 RPC error, got %v", err)
		}
		users, err := c.api().UsersGetUsers(ctx, []tg.InputUserClass{&tg.InputUserSelf{}})
		if err != nil || len(users) != 1 || users[0].(*tg.User).ID != alice.ID {
			t.Fatalf("getUsers after an unknown method: %v, %v", users, err)
		}
	})

	t.Run("Contacts", func(t *testing.T) {
		r, err := c.api().ContactsResolvePhone(ctx, "+15550003")
		if err != nil || r.Peer.(*tg.PeerUser).UserID != carol.ID {
			t.Fatalf("resolvePhone: %v, %v", r, err)
		}
		if _, err := c.api().ContactsResolvePhone(ctx, "+15559999"); !tgerr.Is(err, "PHONE_NOT_OCCUPIED") {
			t.Fatalf("resolvePhone of an unknown number: %v", err)
		}
		imp, err := c.api().ContactsImportContacts(ctx, []tg.InputPhoneContact{{ClientID: 7, Phone: "+15550003"}, {ClientID: 8, Phone: "+15559999"}})
		if err != nil || len(imp.Imported) != 1 || imp.Imported[0].UserID != carol.ID || imp.Imported[0].ClientID != 7 {
			t.Fatalf("importContacts: %+v, %v", imp, err)
		}
		rn, err := c.api().ContactsResolveUsername(ctx, &tg.ContactsResolveUsernameRequest{Username: "bob"})
		if err != nil || rn.Peer.(*tg.PeerUser).UserID != bob.ID {
			t.Fatalf("resolveUsername: %v, %v", rn, err)
		}
		cs, err := c.api().ContactsGetContacts(ctx, 0)
		if err != nil || len(cs.(*tg.ContactsContacts).Contacts) != 2 {
			t.Fatalf("getContacts: %+v, %v", cs, err)
		}
		full, err := c.api().UsersGetFullUser(ctx, &tg.InputUser{UserID: bob.ID, AccessHash: bob.AccessHash})
		if err != nil || full.FullUser.ID != bob.ID {
			t.Fatalf("getFullUser: %v", err)
		}
		hist, err := c.api().MessagesGetHistory(ctx, &tg.MessagesGetHistoryRequest{
			Peer:  &tg.InputPeerUser{UserID: bob.ID, AccessHash: bob.AccessHash},
			Limit: 10,
		})
		if err != nil || len(hist.(*tg.MessagesMessages).Messages) != 2 {
			t.Fatalf("getHistory: %+v, %v", hist, err)
		}
		dialogs, err := c.api().MessagesGetDialogs(ctx, &tg.MessagesGetDialogsRequest{OffsetPeer: &tg.InputPeerEmpty{}, Limit: 10})
		if err != nil || len(dialogs.(*tg.MessagesDialogs).Dialogs) != 1 {
			t.Fatalf("getDialogs: %+v, %v", dialogs, err)
		}
	})

	t.Run("CatchUpAfterReconnect", func(t *testing.T) {
		c.stop()
		eventually(t, "the session to go offline", func() bool { return s.Sessions(alice.ID) == 0 })
		if _, err := s.SendMessage(bob.ID, alice.ID, "while you were away", nil); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		c.start()
		c.startUpdates(alice.ID)
		if got := c.nextMessage(ctx); got.Message != "while you were away" {
			t.Fatalf("first message after reconnect: %q", got.Message)
		}
		t.Logf("Reconnect and catch-up took %v", time.Since(start))
		eventually(t, "the session to come back", func() bool { return s.Sessions(alice.ID) == 1 })
		if _, err := s.SendMessage(bob.ID, alice.ID, "welcome back", nil); err != nil {
			t.Fatal(err)
		}
		if got := c.nextMessage(ctx); got.Message != "welcome back" {
			t.Fatalf("next message: %q (duplicate?)", got.Message)
		}
		select {
		case m := <-c.msgs:
			t.Fatalf("unexpected extra message %q", m.Message)
		default:
		}
	})

	t.Run("AutoReply", func(t *testing.T) {
		s.SetAutoReply(bob.ID, func(in tgsim.Message) (string, bool) { return "echo: " + in.Text, true })
		defer s.SetAutoReply(bob.ID, nil)
		res, err := c.api().MessagesSendMessage(ctx, &tg.MessagesSendMessageRequest{
			Peer:     &tg.InputPeerUser{UserID: bob.ID, AccessHash: bob.AccessHash},
			Message:  "ping",
			RandomID: 44,
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.gaps.Handle(ctx, res); err != nil {
			t.Fatal(err)
		}
		if got := c.nextMessage(ctx); got.Message != "echo: ping" {
			t.Fatalf("auto-reply: %q", got.Message)
		}
	})

	t.Run("NetworkDrop", func(t *testing.T) {
		if n := s.Disconnect(alice.ID); n == 0 {
			t.Fatal("Disconnect closed no connection")
		}
		start := time.Now()
		eventually(t, "the client to reconnect", func() bool { return s.Sessions(alice.ID) == 1 })
		t.Logf("Reconnect after a drop took %v", time.Since(start))
	})

	t.Run("DropEveryConnection", func(t *testing.T) {
		if n := s.DisconnectAll(); n == 0 {
			t.Fatal("DisconnectAll closed no connection")
		}
		eventually(t, "the client to reconnect", func() bool { return s.Sessions(alice.ID) == 1 })
		if n := s.Authorizations(alice.ID); n != 1 {
			t.Fatalf("Authorizations after a drop = %d, want the same 1", n)
		}
	})

	t.Run("LogOut", func(t *testing.T) {
		if _, err := c.api().AuthLogOut(ctx); err != nil {
			t.Fatal(err)
		}
		if n := s.Authorizations(alice.ID); n != 0 {
			t.Fatalf("Authorizations after logout = %d", n)
		}
		if _, err := c.api().UsersGetUsers(ctx, []tg.InputUserClass{&tg.InputUserSelf{}}); !auth.IsUnauthorized(err) {
			t.Fatalf("getUsers after logout: want 401, got %v", err)
		}
	})

	t.Run("Close", func(t *testing.T) {
		addr := s.Addr()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			_ = conn.Close()
			t.Fatal("server still accepts connections after Close")
		}
		if _, err := s.SendMessage(bob.ID, alice.ID, "too late", nil); !errors.Is(err, tgsim.ErrClosed) {
			t.Fatalf("SendMessage after Close: %v", err)
		}
		if _, err := s.WaitMessage(ctx, alice.ID, bob.ID, func(tgsim.Message) bool { return false }); !errors.Is(err, tgsim.ErrClosed) {
			t.Fatalf("WaitMessage after Close: %v", err)
		}
		if err := s.Serve(ctx); err != nil {
			t.Fatalf("Serve after Close: %v", err)
		}
	})
}

// One client goes through the QR and 2FA flows in turn, logging out in
// between: a fresh client costs a key exchange.
func TestQRAndTwoFactorLogin(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	ctx := testContext(t)
	erin := createAccount(t, s, tgsim.AccountSpec{Phone: "15550020", FirstName: "Erin"})
	dora := createAccount(t, s, tgsim.AccountSpec{Phone: "15550010", FirstName: "Dora", Password: "correct horse"})
	c := newTestClient(t, s)
	c.start()
	qr := c.client.QR()

	// scan logs in with QR, the phone of account scanning the first code shown.
	scan := func(account int64) (*tg.AuthAuthorization, error) {
		accepted := make(chan error, 1)
		shown := 0
		authz, err := qr.Auth(ctx, c.loggedIn, func(ctx context.Context, token qrlogin.Token) error {
			shown++
			if shown > 1 {
				return nil // re-exported after expiry: already accepted
			}
			raw, err := tgsim.ParseQRToken(token.String())
			if err != nil {
				return err
			}
			// The phone scans the code a moment after it is shown.
			go func() {
				time.Sleep(20 * time.Millisecond)
				accepted <- s.AcceptQR(ctx, account, raw)
			}()
			return nil
		})
		if err := <-accepted; err != nil {
			t.Fatalf("AcceptQR: %v", err)
		}
		return authz, err
	}
	logOut := func(t *testing.T, account int64) {
		t.Helper()
		if _, err := c.api().AuthLogOut(ctx); err != nil {
			t.Fatal(err)
		}
		if n := s.Authorizations(account); n != 0 {
			t.Fatalf("Authorizations after logout = %d", n)
		}
	}

	t.Run("QRExpired", func(t *testing.T) {
		s.SetQRTokenTTL(50 * time.Millisecond)
		token, err := qr.Export(ctx)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		raw, err := tgsim.ParseQRToken(token.URL())
		if err != nil {
			t.Fatal(err)
		}
		if err := s.AcceptQR(ctx, erin.ID, raw); !tgerr.Is(err, "AUTH_TOKEN_EXPIRED") {
			t.Fatalf("AcceptQR of an expired token: want AUTH_TOKEN_EXPIRED, got %v", err)
		}
		if err := s.AcceptQR(ctx, erin.ID, []byte("nope")); !tgerr.Is(err, "AUTH_TOKEN_INVALID") {
			t.Fatalf("AcceptQR of an unknown token: want AUTH_TOKEN_INVALID, got %v", err)
		}
	})

	t.Run("QR", func(t *testing.T) {
		// Short, so that a lost updateLoginToken costs little (see scan).
		s.SetQRTokenTTL(2 * time.Second)
		authz, err := scan(erin.ID)
		if err != nil {
			t.Fatalf("QR login: %v", err)
		}
		if u := authz.User.(*tg.User); u.ID != erin.ID {
			t.Fatalf("logged in as %d", u.ID)
		}
		if n := s.Authorizations(erin.ID); n != 1 {
			t.Fatalf("Authorizations = %d, want 1", n)
		}
		logOut(t, erin.ID)
	})

	t.Run("CodeAndPassword", func(t *testing.T) {
		code := auth.CodeAuthenticatorFunc(func(context.Context, *tg.AuthSentCode) (string, error) {
			code, _ := s.LastCode(dora.Phone)
			return code, nil
		})
		err := auth.NewFlow(auth.Constant("+15550010", "battery staple", code), auth.SendCodeOptions{}).Run(ctx, c.client.Auth())
		if !errors.Is(err, auth.ErrPasswordInvalid) {
			t.Fatalf("login with a wrong password: want ErrPasswordInvalid, got %v", err)
		}
		if n := s.Authorizations(dora.ID); n != 0 {
			t.Fatalf("Authorizations after a wrong password = %d", n)
		}
		authz, err := c.client.Auth().Password(ctx, "correct horse")
		if err != nil {
			t.Fatalf("login with the right password: %v", err)
		}
		if u := authz.User.(*tg.User); u.ID != dora.ID {
			t.Fatalf("logged in as %d", u.ID)
		}
		if n := s.Authorizations(dora.ID); n != 1 {
			t.Fatalf("Authorizations = %d, want 1", n)
		}
		logOut(t, dora.ID)
	})

	t.Run("QRAndPassword", func(t *testing.T) {
		if _, err := scan(dora.ID); !tgerr.Is(err, "SESSION_PASSWORD_NEEDED") {
			t.Fatalf("QR login of a 2FA account: want SESSION_PASSWORD_NEEDED, got %v", err)
		}
		authz, err := c.client.Auth().Password(ctx, "correct horse")
		if err != nil {
			t.Fatalf("password after QR: %v", err)
		}
		if u := authz.User.(*tg.User); u.ID != dora.ID {
			t.Fatalf("logged in as %d", u.ID)
		}
	})
}
