package waid

import (
	"testing"

	"go.mau.fi/whatsmeow/types"
)

// The ID codecs run several times per bridged message (portal, sender,
// message, reply target): these show what one round trip costs.

func BenchmarkMessageIDRoundTrip(b *testing.B) {
	key := MessageKey{
		Chat:   types.NewJID("120363144038483540", types.GroupServer),
		Sender: types.NewJID("15550001111", types.DefaultUserServer),
		ID:     "3EB0C767D26A1D4F5E2B",
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		id, err := MakeMessageID(key)
		if err != nil {
			b.Fatal(err)
		}
		got, err := ParseMessageID(id)
		if err != nil || got != key {
			b.Fatalf("round trip of %+v: %+v, %v", key, got, err)
		}
	}
}

func BenchmarkPortalIDRoundTrip(b *testing.B) {
	chat := types.NewJID("15550001111", types.DefaultUserServer)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		id, err := MakePortalID(chat)
		if err != nil {
			b.Fatal(err)
		}
		got, err := ParsePortalID(id)
		if err != nil || got != chat {
			b.Fatalf("round trip of %v: %v, %v", chat, got, err)
		}
	}
}

func BenchmarkUserIDRoundTrip(b *testing.B) {
	user := types.NewJID("123456789", types.HiddenUserServer)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		id, err := MakeUserID(user)
		if err != nil {
			b.Fatal(err)
		}
		got, err := ParseUserID(id)
		if err != nil || got != user {
			b.Fatalf("round trip of %v: %v, %v", user, got, err)
		}
	}
}
