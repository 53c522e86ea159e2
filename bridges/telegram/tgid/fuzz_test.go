package tgid

import (
	"testing"

	"maunium.net/go/mautrix/bridgev2/networkid"
)

// FuzzParse: the parsers never panic, and every ID they accept is the one
// the matching Make function gives back (IDs are canonical).
func FuzzParse(f *testing.F) {
	for _, s := range []string{"telegram.42", "telegram.u42", "telegram.ch7", "telegram.c9", "telegram.u42.17",
		"telegram.ch7.99", "telegram.042", "telegram.-1", "telegram.u", "whatsapp.42", "telegram.9223372036854775808", "telegram.u1.2147483648"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if id, err := ParseUserID(networkid.UserID(s)); err == nil {
			if id <= 0 || string(MakeUserID(id)) != s {
				t.Fatalf("user %q -> %d -> %q", s, id, MakeUserID(id))
			}
			if got, err := ParseUserLoginID(MakeUserLoginID(id)); err != nil || got != id {
				t.Fatalf("login of %d: %d, %v", id, got, err)
			}
		}
		if peer, err := ParsePortalID(networkid.PortalID(s)); err == nil {
			if peer.ID <= 0 || string(MakePortalID(peer)) != s {
				t.Fatalf("portal %q -> %+v -> %q", s, peer, MakePortalID(peer))
			}
		}
		if key, err := ParseMessageID(networkid.MessageID(s)); err == nil {
			if key.ID <= 0 || key.Box.Type == PeerChat || string(MakeMessageID(key)) != s {
				t.Fatalf("message %q -> %+v -> %q", s, key, MakeMessageID(key))
			}
		}
	})
}

// FuzzRoundTrip: Make then Parse gives back what went in, for every valid
// value.
func FuzzRoundTrip(f *testing.F) {
	f.Add(int64(42), uint8(0), int32(7))
	f.Add(int64(1<<62), uint8(2), int32(1<<31-1))
	f.Fuzz(func(t *testing.T, id int64, kind uint8, msg int32) {
		if id <= 0 {
			return
		}
		if got, err := ParseUserID(MakeUserID(id)); err != nil || got != id {
			t.Fatalf("user %d: %d, %v", id, got, err)
		}
		peer := Peer{Type: []PeerType{PeerUser, PeerChat, PeerChannel}[kind%3], ID: id}
		if got, err := ParsePortalID(MakePortalID(peer)); err != nil || got != peer {
			t.Fatalf("portal %+v: %+v, %v", peer, got, err)
		}
		if msg <= 0 || peer.Type == PeerChat {
			return
		}
		key := MessageKey{Box: peer, ID: int(msg)}
		if got, err := ParseMessageID(MakeMessageID(key)); err != nil || got != key {
			t.Fatalf("message %+v: %+v, %v", key, got, err)
		}
	})
}
