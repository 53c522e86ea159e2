package importer

import (
	"errors"
	"testing"

	"maunium.net/go/mautrix/bridgev2/networkid"
)

// Every ID format of the old bridges, translated or refused (never guessed).
func TestTranslateIDs(t *testing.T) {
	wa, tg := waTranslator{}, tgTranslator{}
	for _, tc := range []struct {
		name    string
		run     func() (string, error)
		want    string
		wantErr error
	}{
		{"wa login", func() (string, error) { id, err := wa.Login("15550001111"); return string(id), err }, "whatsapp.15550001111", nil},
		{"wa login not a number", func() (string, error) { id, err := wa.Login("lid-1"); return string(id), err }, "", errUnknownID},
		{"wa ghost phone", func() (string, error) { id, err := wa.Ghost("15550001111"); return string(id), err }, "whatsapp.15550001111", nil},
		{"wa ghost lid", func() (string, error) { id, err := wa.Ghost("lid-98765"); return string(id), err }, "whatsapp.lid-98765", nil},
		{"wa ghost unknown", func() (string, error) { id, err := wa.Ghost("newsletter-1"); return string(id), err }, "", errUnknownID},
		{"wa dm", func() (string, error) {
			k, err := wa.Portal(networkid.PortalKey{ID: "15550002222@s.whatsapp.net", Receiver: "15550001111"})
			return string(k.ID) + "|" + string(k.Receiver), err
		}, "whatsapp.15550002222|whatsapp.15550001111", nil},
		{"wa lid dm", func() (string, error) {
			k, err := wa.Portal(networkid.PortalKey{ID: "98765@lid", Receiver: "15550001111"})
			return string(k.ID) + "|" + string(k.Receiver), err
		}, "whatsapp.lid-98765|whatsapp.15550001111", nil},
		{"wa dm without receiver", func() (string, error) {
			_, err := wa.Portal(networkid.PortalKey{ID: "15550002222@s.whatsapp.net"})
			return "", err
		}, "", errNoReceiver},
		{"wa group loses its receiver", func() (string, error) {
			k, err := wa.Portal(networkid.PortalKey{ID: "120363000000000001@g.us", Receiver: "15550001111"})
			return string(k.ID) + "|" + string(k.Receiver), err
		}, "whatsapp.g-120363000000000001|", nil},
		{"wa old group", func() (string, error) {
			k, err := wa.Portal(networkid.PortalKey{ID: "15550001111-1600000000@g.us"})
			return string(k.ID), err
		}, "whatsapp.g-15550001111-1600000000", nil},
		{"wa newsletter", func() (string, error) {
			k, err := wa.Portal(networkid.PortalKey{ID: "120363144038483540@newsletter"})
			return string(k.ID), err
		}, "whatsapp.n-120363144038483540", nil},
		{"wa status broadcast", func() (string, error) {
			k, err := wa.Portal(networkid.PortalKey{ID: "status@broadcast", Receiver: "15550001111"})
			return string(k.ID) + "|" + string(k.Receiver), err
		}, "whatsapp.status|whatsapp.15550001111", nil},
		{"wa bot chat", func() (string, error) {
			_, err := wa.Portal(networkid.PortalKey{ID: "1@bot", Receiver: "1"})
			return "", err
		}, "", errUnknownID},
		{"wa message", func() (string, error) {
			id, err := wa.Message(networkid.PortalKey{}, "120363000000000001@g.us:15550002222@s.whatsapp.net:3EB0C0FFEE")
			return string(id), err
		}, "whatsapp.g-120363000000000001.15550002222.3EB0C0FFEE", nil},
		{"wa placeholder", func() (string, error) {
			_, err := wa.Message(networkid.PortalKey{}, "fake:120363000000000001@g.us:15550002222@s.whatsapp.net:x")
			return "", err
		}, "", errFakeMessage},
		{"wa message with odd ID", func() (string, error) {
			_, err := wa.Message(networkid.PortalKey{}, "120363000000000001@g.us:15550002222@s.whatsapp.net:a.b")
			return "", err
		}, "", errUnknownID},

		{"tg login", func() (string, error) { id, err := tg.Login("1000001"); return string(id), err }, "telegram.1000001", nil},
		{"tg login negative", func() (string, error) { _, err := tg.Login("-5"); return "", err }, "", errUnknownID},
		{"tg ghost", func() (string, error) { id, err := tg.Ghost("2000001"); return string(id), err }, "telegram.2000001", nil},
		{"tg channel ghost", func() (string, error) { id, err := tg.Ghost("channel-3000001"); return string(id), err }, "telegram.ch3000001", nil},
		{"tg private chat", func() (string, error) {
			k, err := tg.Portal(networkid.PortalKey{ID: "user:2000001", Receiver: "1000001"})
			return string(k.ID) + "|" + string(k.Receiver), err
		}, "telegram.u2000001|telegram.1000001", nil},
		{"tg basic group is shared", func() (string, error) {
			k, err := tg.Portal(networkid.PortalKey{ID: "chat:4000001", Receiver: "1000001"})
			return string(k.ID) + "|" + string(k.Receiver), err
		}, "telegram.c4000001|", nil},
		{"tg channel", func() (string, error) {
			k, err := tg.Portal(networkid.PortalKey{ID: "channel:3000001"})
			return string(k.ID) + "|" + string(k.Receiver), err
		}, "telegram.ch3000001|", nil},
		{"tg topic portal", func() (string, error) {
			_, err := tg.Portal(networkid.PortalKey{ID: "channel:3000001:7"})
			return "", err
		}, "", errUnknownID},
		{"tg private chat without receiver", func() (string, error) { _, err := tg.Portal(networkid.PortalKey{ID: "user:2000001"}); return "", err }, "", errNoReceiver},
		{"tg private message", func() (string, error) {
			id, err := tg.Message(networkid.PortalKey{ID: "user:2000001", Receiver: "1000001"}, "17")
			return string(id), err
		}, "telegram.u1000001.17", nil},
		{"tg channel message", func() (string, error) {
			id, err := tg.Message(networkid.PortalKey{ID: "channel:3000001"}, "3000001.55")
			return string(id), err
		}, "telegram.ch3000001.55", nil},
		{"tg message without box", func() (string, error) {
			_, err := tg.Message(networkid.PortalKey{ID: "channel:3000001"}, "55")
			return "", err
		}, "", errNoReceiver},
		{"tg message number too big", func() (string, error) {
			_, err := tg.Message(networkid.PortalKey{ID: "user:1", Receiver: "1"}, "4294967296")
			return "", err
		}, "", errUnknownID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.run()
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
