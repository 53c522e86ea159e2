package appservice

import (
	"bytes"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

func TestRedactPhoneNumbers(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"portal_id":"whatsapp.33612345678","msg":"x"}`, `{"portal_id":"whatsapp.*********78","msg":"x"}`},
		{`"sender":"33612345678@s.whatsapp.net"`, `"sender":"*********78@s.whatsapp.net"`},
		{`"jid":"33612345678:12@s.whatsapp.net"`, `"jid":"*********78:12@s.whatsapp.net"`},
		{`ghost @passerelle_whatsapp.4915112345678:example.org`, `ghost @passerelle_whatsapp.***********78:example.org`},
		{`phone +15550001 tried`, `phone +******01 tried`},
		// Not phone numbers: Telegram user IDs, message IDs, short numbers, timestamps.
		{`"user":"telegram.123456789","pts":12345`, `"user":"telegram.123456789","pts":12345`},
		{`"time":"2026-11-28T23:40:11Z","count":3`, `"time":"2026-11-28T23:40:11Z","count":3`},
		{`"remote_message_id":"whatsapp.33612345678.33698765432.3AEA6594B23482E4685F"`, `"remote_message_id":"whatsapp.*********78.*********32.3AEA6594B23482E4685F"`},
		{`"portal":"whatsapp.g-120363000000000001"`, `"portal":"whatsapp.g-****************01"`},
	} {
		if got := string(RedactPhoneNumbers([]byte(tc.in))); got != tc.want {
			t.Errorf("RedactPhoneNumbers(%s)\n got %s\nwant %s", tc.in, got, tc.want)
		}
	}
}

func TestRedactingWriterMasksWholeEvents(t *testing.T) {
	var buf bytes.Buffer
	log := zerolog.New(redactingWriter{out: &buf})
	log.Info().Str("portal_id", "whatsapp.33612345678").Str("remote_sender", "33612345678@s.whatsapp.net").Msg("Handling remote event")
	if strings.Contains(buf.String(), "33612345678") {
		t.Fatalf("number reached the log: %s", buf.String())
	}
	if !strings.Contains(buf.String(), "Handling remote event") {
		t.Fatalf("log line lost: %s", buf.String())
	}
}
