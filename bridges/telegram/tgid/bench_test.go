package tgid

import "testing"

// The ID codecs run several times per bridged message (portal, sender,
// message, reply target): these show what one round trip costs.

func BenchmarkMessageIDRoundTrip(b *testing.B) {
	key := MessageKey{Box: Peer{Type: PeerChannel, ID: 1234567890123}, ID: 987654}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		got, err := ParseMessageID(MakeMessageID(key))
		if err != nil || got != key {
			b.Fatalf("round trip of %+v: %+v, %v", key, got, err)
		}
	}
}

func BenchmarkPortalIDRoundTrip(b *testing.B) {
	peer := Peer{Type: PeerUser, ID: 5550001234}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		got, err := ParsePortalID(MakePortalID(peer))
		if err != nil || got != peer {
			b.Fatalf("round trip of %+v: %+v, %v", peer, got, err)
		}
	}
}

func BenchmarkUserIDRoundTrip(b *testing.B) {
	const user = int64(5550001234)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		got, err := ParseUserID(MakeUserID(user))
		if err != nil || got != user {
			b.Fatalf("round trip of %d: %d, %v", user, got, err)
		}
	}
}
