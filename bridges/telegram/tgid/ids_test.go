package tgid

import (
	"errors"
	"testing"

	"maunium.net/go/mautrix/bridgev2/networkid"
)

func TestUserIDRoundTrip(t *testing.T) {
	for _, id := range []int64{1, 42, 123456789, 1<<63 - 1} {
		uid := MakeUserID(id)
		got, err := ParseUserID(uid)
		if err != nil || got != id {
			t.Fatalf("ParseUserID(%q) = %d, %v; want %d", uid, got, err, id)
		}
		lid := MakeUserLoginID(id)
		if string(lid) != string(uid) {
			t.Fatalf("login ID %q differs from user ID %q", lid, uid)
		}
		got, err = ParseUserLoginID(lid)
		if err != nil || got != id {
			t.Fatalf("ParseUserLoginID(%q) = %d, %v", lid, got, err)
		}
	}
	if MakeUserID(123) != "telegram.123" {
		t.Fatalf("unexpected format %q", MakeUserID(123))
	}
}

func TestUserIDRejects(t *testing.T) {
	for _, in := range []string{
		"", "123", "telegram.", "telegram.abc", "telegram.-5", "telegram.0", "telegram.+5",
		"telegram.0012", "whatsapp.123", "Telegram.123", "telegram.123.4", "telegram.u123",
		"telegram.99999999999999999999", "telegram. 1",
	} {
		if got, err := ParseUserID(networkid.UserID(in)); err == nil {
			t.Errorf("ParseUserID(%q) = %d, want error", in, got)
		} else if !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseUserID(%q) error %v does not wrap ErrMalformed", in, err)
		}
	}
}

func TestPortalIDRoundTrip(t *testing.T) {
	cases := []struct {
		peer Peer
		want string
	}{
		{Peer{PeerUser, 5}, "telegram.u5"},
		{Peer{PeerChat, 77}, "telegram.c77"},
		{Peer{PeerChannel, 1000000001}, "telegram.ch1000000001"},
	}
	for _, c := range cases {
		id := MakePortalID(c.peer)
		if string(id) != c.want {
			t.Errorf("MakePortalID(%v) = %q, want %q", c.peer, id, c.want)
		}
		got, err := ParsePortalID(id)
		if err != nil || got != c.peer {
			t.Errorf("ParsePortalID(%q) = %v, %v", id, got, err)
		}
	}
}

func TestPortalIDRejects(t *testing.T) {
	for _, in := range []string{
		"", "telegram.", "telegram.5", "telegram.x5", "telegram.u", "telegram.ch", "telegram.u-1",
		"telegram.c0", "whatsapp.u5", "telegram.u5.6", "telegram.U5", "u5",
	} {
		if got, err := ParsePortalID(networkid.PortalID(in)); err == nil {
			t.Errorf("ParsePortalID(%q) = %v, want error", in, got)
		}
	}
}

func TestPortalKeyReceiver(t *testing.T) {
	login := MakeUserLoginID(9)
	if k := MakePortalKey(Peer{PeerUser, 5}, login); k.Receiver != login {
		t.Errorf("DM portal key has receiver %q", k.Receiver)
	}
	if k := MakePortalKey(Peer{PeerChat, 5}, login); k.Receiver != "" {
		t.Errorf("basic group portal key has a receiver: %+v", k)
	}
	if k := MakePortalKey(Peer{PeerChannel, 5}, login); k.Receiver != "" {
		t.Errorf("channel portal key has receiver %q", k.Receiver)
	}
}

func TestMessageIDRoundTrip(t *testing.T) {
	cases := []struct {
		key  MessageKey
		want string
	}{
		{MessageKey{Peer{PeerUser, 9}, 1}, "telegram.u9.1"},
		{MessageKey{Peer{PeerChannel, 12}, 2147483647}, "telegram.ch12.2147483647"},
	}
	for _, c := range cases {
		id := MakeMessageID(c.key)
		if string(id) != c.want {
			t.Errorf("MakeMessageID(%v) = %q, want %q", c.key, id, c.want)
		}
		got, err := ParseMessageID(id)
		if err != nil || got != c.key {
			t.Errorf("ParseMessageID(%q) = %v, %v", id, got, err)
		}
	}
	if got := MessageBox(Peer{PeerUser, 5}, 9); got != (Peer{PeerUser, 9}) {
		t.Errorf("DM box = %v", got)
	}
	if got := MessageBox(Peer{PeerChat, 5}, 9); got != (Peer{PeerUser, 9}) {
		t.Errorf("basic group box = %v", got)
	}
	if got := MessageBox(Peer{PeerChannel, 5}, 9); got != (Peer{PeerChannel, 5}) {
		t.Errorf("channel box = %v", got)
	}
}

func TestMessageIDRejects(t *testing.T) {
	for _, in := range []string{
		"", "telegram.", "telegram.5", "telegram.u9", "telegram.u9.", "telegram.u9.x", "telegram.u9.0",
		"telegram.c9.1", "telegram.u9.2147483648", "telegram.9.1", "whatsapp.u9.1", "telegram.u9.1.2",
	} {
		if got, err := ParseMessageID(networkid.MessageID(in)); err == nil {
			t.Errorf("ParseMessageID(%q) = %v, want error", in, got)
		}
	}
}
