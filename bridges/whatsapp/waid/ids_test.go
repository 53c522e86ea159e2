package waid

import (
	"errors"
	"testing"

	"go.mau.fi/whatsmeow/types"
	"maunium.net/go/mautrix/bridgev2/networkid"
)

func TestUserIDRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		jid  types.JID
		want networkid.UserID
	}{
		{types.NewJID("15550001111", types.DefaultUserServer), "whatsapp.15550001111"},
		{types.NewADJID("15550001111", 0, 3), "whatsapp.15550001111"},
		{types.NewJID("123456789", types.HiddenUserServer), "whatsapp.lid-123456789"},
		{types.NewJID("120363144038483540", types.NewsletterServer), "whatsapp.n-120363144038483540"},
	} {
		got, err := MakeUserID(tc.jid)
		if err != nil || got != tc.want {
			t.Errorf("MakeUserID(%s) = %q, %v; want %q", tc.jid, got, err, tc.want)
			continue
		}
		back, err := ParseUserID(got)
		if err != nil || back != tc.jid.ToNonAD() {
			t.Errorf("ParseUserID(%q) = %s, %v", got, back, err)
		}
	}
}

func TestUserIDRejects(t *testing.T) {
	for _, id := range []networkid.UserID{
		"", "whatsapp", "whatsapp.", "telegram.15550001111", "whatsapp.+15550001111", "whatsapp.0155",
		"whatsapp.lid-", "whatsapp.lid-12a", "whatsapp.n-", "whatsapp.n-12a", "whatsapp.1555 0001", "whatsapp.g-12345", "Whatsapp.1555",
		"whatsapp.15550001111@s.whatsapp.net", "whatsapp.1234567890123456789012345678901234567890123456789012345678901234567890",
	} {
		if _, err := ParseUserID(id); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseUserID(%q) = %v, want ErrMalformed", id, err)
		}
	}
	for _, jid := range []types.JID{
		types.NewJID("120363", types.GroupServer), types.NewJID("", types.DefaultUserServer),
		types.NewJID("abc", types.DefaultUserServer), types.NewJID("1", types.BroadcastServer),
	} {
		if _, err := MakeUserID(jid); !errors.Is(err, ErrMalformed) {
			t.Errorf("MakeUserID(%s) = %v, want ErrMalformed", jid, err)
		}
	}
}

func TestUserLoginID(t *testing.T) {
	dev := types.NewADJID("15550001111", 0, 2)
	id, err := MakeUserLoginID(dev)
	if err != nil || id != "whatsapp.15550001111" {
		t.Fatalf("MakeUserLoginID = %q, %v", id, err)
	}
	back, err := ParseUserLoginID(id)
	if err != nil || back != dev.ToNonAD() {
		t.Fatalf("ParseUserLoginID = %s, %v", back, err)
	}
	if _, err = MakeUserLoginID(types.NewJID("1", types.HiddenUserServer)); err == nil {
		t.Fatal("a LID login was accepted")
	}
	for _, bad := range []networkid.UserLoginID{"whatsapp.lid-1", "whatsapp.", "telegram.1555", "whatsapp.x"} {
		if _, err = ParseUserLoginID(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseUserLoginID(%q) = %v", bad, err)
		}
	}
}

func TestPortalIDRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		jid  types.JID
		want networkid.PortalID
	}{
		{types.NewJID("15550001111", types.DefaultUserServer), "whatsapp.15550001111"},
		{types.NewJID("987", types.HiddenUserServer), "whatsapp.lid-987"},
		{types.NewJID("120363012345678901", types.GroupServer), "whatsapp.g-120363012345678901"},
		{types.NewJID("15550001111-1600000000", types.GroupServer), "whatsapp.g-15550001111-1600000000"},
		{types.NewJID("120363144038483540", types.NewsletterServer), "whatsapp.n-120363144038483540"},
	} {
		got, err := MakePortalID(tc.jid)
		if err != nil || got != tc.want {
			t.Errorf("MakePortalID(%s) = %q, %v; want %q", tc.jid, got, err, tc.want)
			continue
		}
		back, err := ParsePortalID(got)
		if err != nil || back != tc.jid {
			t.Errorf("ParsePortalID(%q) = %s, %v", got, back, err)
		}
	}
	for _, bad := range []networkid.PortalID{"whatsapp.g-", "whatsapp.g-1-2-3", "whatsapp.g-abc", "whatsapp.g--1", "whatsapp.g-1-", "x.1555"} {
		if _, err := ParsePortalID(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParsePortalID(%q) = %v", bad, err)
		}
	}
	key, err := MakePortalKey(types.NewJID("1555", types.DefaultUserServer), "whatsapp.1666")
	if err != nil || key.ID != "whatsapp.1555" || key.Receiver != "whatsapp.1666" {
		t.Fatalf("MakePortalKey = %+v, %v", key, err)
	}
	// A group is one portal for every login in it: no receiver.
	key, err = MakePortalKey(types.NewJID("120363", types.GroupServer), "whatsapp.1666")
	if err != nil || key.ID != "whatsapp.g-120363" || key.Receiver != "" || !IsGroupPortal(key.ID) || IsGroupPortal("whatsapp.1555") {
		t.Fatalf("group MakePortalKey = %+v, %v", key, err)
	}
	// So is a newsletter.
	key, err = MakePortalKey(types.NewJID("120363", types.NewsletterServer), "whatsapp.1666")
	if err != nil || key.ID != "whatsapp.n-120363" || key.Receiver != "" || !IsNewsletterPortal(key.ID) || IsGroupPortal(key.ID) || IsNewsletterPortal("whatsapp.g-120363") {
		t.Fatalf("newsletter MakePortalKey = %+v, %v", key, err)
	}
}

func TestMessageIDRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		key  MessageKey
		want networkid.MessageID
	}{
		{MessageKey{types.NewJID("15550002222", types.DefaultUserServer), types.NewADJID("15550002222", 0, 0), "3EB0ABCDEF"}, "whatsapp.15550002222.15550002222.3EB0ABCDEF"},
		{MessageKey{types.NewJID("120363", types.GroupServer), types.NewJID("42", types.HiddenUserServer), "ABC123"}, "whatsapp.g-120363.lid-42.ABC123"},
	} {
		got, err := MakeMessageID(tc.key)
		if err != nil || got != tc.want {
			t.Errorf("MakeMessageID(%+v) = %q, %v; want %q", tc.key, got, err, tc.want)
			continue
		}
		back, err := ParseMessageID(got)
		want := tc.key
		want.Sender = want.Sender.ToNonAD()
		if err != nil || back != want {
			t.Errorf("ParseMessageID(%q) = %+v, %v", got, back, err)
		}
	}
	for _, bad := range []networkid.MessageID{
		"whatsapp.1555.1555", "whatsapp.1555.1555.ID.extra", "whatsapp.1555.g-1.ID", "whatsapp.1555.1555.I D",
		"whatsapp.1555.1555.", "whatsapp.x.1555.ID", "telegram.1555.1555.ID", "whatsapp.1555.1555.ID;DROP",
	} {
		if _, err := ParseMessageID(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseMessageID(%q) = %v", bad, err)
		}
	}
	if _, err := MakeMessageID(MessageKey{types.NewJID("1555", types.DefaultUserServer), types.NewJID("1555", types.DefaultUserServer), "a.b"}); err == nil {
		t.Error("a message ID with a dot was accepted")
	}
}

func TestParsePhone(t *testing.T) {
	for in, want := range map[string]string{
		"+1 555-000 1111": "15550001111", "15550001111": "15550001111", " +33 (6) 12.34.56.78 ": "33612345678",
	} {
		got, err := ParsePhone(in)
		if err != nil || got.User != want || got.Server != types.DefaultUserServer {
			t.Errorf("ParsePhone(%q) = %s, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "abc", "12", "0155500011", "+1+555", "1555000111122223333", "15550001111@s.whatsapp.net", "1555\x00"} {
		if _, err := ParsePhone(in); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParsePhone(%q) = %v", in, err)
		}
	}
}
