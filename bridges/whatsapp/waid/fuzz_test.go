package waid

import (
	"testing"

	"go.mau.fi/whatsmeow/types"
	"maunium.net/go/mautrix/bridgev2/networkid"
)

// FuzzParse: the parsers never panic, and every ID they accept is the one
// the matching Make function gives back (IDs are canonical).
func FuzzParse(f *testing.F) {
	for _, s := range []string{"whatsapp.15550001111", "whatsapp.lid-123", "whatsapp.g-15550001111-1600000000",
		"whatsapp.g-120363000000000000", "whatsapp.15550001111.lid-5.3EB0ABC", "whatsapp.015550001111",
		"whatsapp.lid-", "whatsapp.g-", "telegram.1", "whatsapp.1.2.3.4", "+1 (555) 000-1111", "+33 6 12 34 56 78"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if jid, err := ParseUserID(networkid.UserID(s)); err == nil {
			if back, err := MakeUserID(jid); err != nil || string(back) != s {
				t.Fatalf("user %q -> %v -> %q, %v", s, jid, back, err)
			}
		}
		if jid, err := ParseUserLoginID(networkid.UserLoginID(s)); err == nil {
			if back, err := MakeUserLoginID(jid); err != nil || string(back) != s {
				t.Fatalf("login %q -> %v -> %q, %v", s, jid, back, err)
			}
		}
		if jid, err := ParsePortalID(networkid.PortalID(s)); err == nil {
			if back, err := MakePortalID(jid); err != nil || string(back) != s {
				t.Fatalf("portal %q -> %v -> %q, %v", s, jid, back, err)
			}
		}
		if key, err := ParseMessageID(networkid.MessageID(s)); err == nil {
			if back, err := MakeMessageID(key); err != nil || string(back) != s {
				t.Fatalf("message %q -> %+v -> %q, %v", s, key, back, err)
			}
		}
		if jid, err := ParsePhone(s); err == nil {
			if jid.Server != types.DefaultUserServer || !isPhone(jid.User) {
				t.Fatalf("phone %q -> %v", s, jid)
			}
		}
	})
}

// FuzzRoundTrip: whatever JID Make accepts, Parse gives back (device
// dropped).
func FuzzRoundTrip(f *testing.F) {
	f.Add("15550001111", "s.whatsapp.net", uint16(0), "lid-7", "3EB0ABC")
	f.Add("15550001111-1600000000", "g.us", uint16(3), "15550002222", "ABC")
	f.Add("123", "lid", uint16(1), "x", "")
	f.Fuzz(func(t *testing.T, user, server string, device uint16, sender, msgID string) {
		jid := types.JID{User: user, Server: server, Device: device}
		if id, err := MakeUserID(jid); err == nil {
			if got, err := ParseUserID(id); err != nil || got != jid.ToNonAD() {
				t.Fatalf("user %v -> %q -> %v, %v", jid, id, got, err)
			}
		}
		if id, err := MakeUserLoginID(jid); err == nil {
			if got, err := ParseUserLoginID(id); err != nil || got.User != jid.User || got.Server != jid.Server {
				t.Fatalf("login %v -> %q -> %v, %v", jid, id, got, err)
			}
		}
		if id, err := MakePortalID(jid); err == nil {
			if got, err := ParsePortalID(id); err != nil || got != jid.ToNonAD() {
				t.Fatalf("portal %v -> %q -> %v, %v", jid, id, got, err)
			}
		}
		senderJID, err := parseUserPart(sender)
		if err != nil {
			return
		}
		key := MessageKey{Chat: jid, Sender: senderJID, ID: msgID}
		if id, err := MakeMessageID(key); err == nil {
			want := MessageKey{Chat: jid.ToNonAD(), Sender: senderJID, ID: msgID}
			if got, err := ParseMessageID(id); err != nil || got != want {
				t.Fatalf("message %+v -> %q -> %+v, %v", key, id, got, err)
			}
		}
	})
}
