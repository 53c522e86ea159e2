package appservice

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/zeroconfig"
)

func TestRedactPhoneNumbers(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		// Masked: every way a number reaches a log line.
		{"portal ID", `{"portal_id":"whatsapp.33612345678","msg":"x"}`, `{"portal_id":"whatsapp.*********78","msg":"x"}`},
		{"LID portal", `{"portal_id":"whatsapp.lid-123456789012345"}`, `{"portal_id":"whatsapp.lid-*************45"}`},
		{"ghost", `ghost @passerelle_whatsapp.4915112345678:example.org`, `ghost @passerelle_whatsapp.***********78:example.org`},
		{"message ID", `"remote_message_id":"whatsapp.33612345678.33698765432.3AEA6594B23482E4685F"`, `"remote_message_id":"whatsapp.*********78.*********32.3AEA6594B23482E4685F"`},
		{"group portal", `"portal":"whatsapp.g-120363000000000001"`, `"portal":"whatsapp.g-****************01"`},
		{"JID", `"sender":"33612345678@s.whatsapp.net"`, `"sender":"*********78@s.whatsapp.net"`},
		{"device JID", `"jid":"33612345678:12@s.whatsapp.net"`, `"jid":"*********78:12@s.whatsapp.net"`},
		{"agent and device JID", `"jid":"33612345678.0:12@s.whatsapp.net"`, `"jid":"*********78.0:12@s.whatsapp.net"`},
		{"LID", `"sender":"123456789012345@lid"`, `"sender":"*************45@lid"`},
		{"LID with device", `from 123456789012345:3@lid`, `from *************45:3@lid`},
		{"E.164", `phone +15550001 tried`, `phone +******01 tried`},
		{"spaces", `"msg":"call +33 6 12 34 56 78 now"`, `"msg":"call +** * ** ** ** 78 now"`},
		{"dashes", `"msg":"+33-6-12-34-56-78"`, `"msg":"+**-*-**-**-**-78"`},
		{"dots", `"msg":"+33.6.12.34.56.78"`, `"msg":"+**.*.**.**.**.78"`},
		{"00 prefix", `"phone":"0033612345678"`, `"phone":"***********78"`},
		{"bare", `"phone":"33612345678"`, `"phone":"*********78"`},
		{"bare string under an ID key", `{"remote_id":"33612345678"}`, `{"remote_id":"*********78"}`},
		{"bare US", `"phone":"15550001111"`, `"phone":"*********11"`},
		{"bare in text", `"error":"no account for 33612345678."`, `"error":"no account for *********78."`},
		{"after escape", `"msg":"a\n33612345678"`, `"msg":"a\n*********78"`},
		{"wa.me", `"url":"https://wa.me/33612345678?text=hi"`, `"url":"https://wa.me/*********78?text=hi"`},
		{"wa.me short", `"url":"wa.me/3361234"`, `"url":"wa.me/*****34"`},
		{"URL-encoded +", `"url":"/send?phone=%2B33612345678&x=1"`, `"url":"/send?phone=%2B*********78&x=1"`},
		{"URL-encoded + alone", `"q":"to=%2b33612345678"`, `"q":"to=%2b*********78"`},
		{"JSON number", `{"phone":33612345678,"n":1}`, `{"phone":"*********78","n":1}`},
		{"JSON array", `{"numbers":[33612345678,4915112345678]}`, `{"numbers":["*********78","***********78"]}`},
		{"console field", `INF Resolved phone=33612345678 ok`, `INF Resolved phone=*********78 ok`},
		{"colored console field", "INF \x1b[36mphone=\x1b[0m33612345678", "INF \x1b[36mphone=\x1b[0m*********78"},
		{"nested JSON string", `{"body":"{\"to\":\"33612345678\"}"}`, `{"body":"{\"to\":\"*********78\"}"}`},

		// Not masked: what is not a phone number.
		{"Telegram IDs", `"user":"telegram.123456789","pts":12345`, `"user":"telegram.123456789","pts":12345`},
		{"Telegram 10-digit ID", `"portal":"telegram.5123456789"`, `"portal":"telegram.5123456789"`},
		{"Telegram ID field", `{"tg_user_id":5123456789,"chat_id":7123456789}`, `{"tg_user_id":5123456789,"chat_id":7123456789}`},
		{"channel ID", `{"chat":-1001234567890}`, `{"chat":-1001234567890}`},
		{"RFC 3339 time", `"time":"2026-11-28T23:40:11.123+01:00","count":3`, `"time":"2026-11-28T23:40:11.123+01:00","count":3`},
		{"Unix time", `{"t":1764373211,"ms":1764373211123}`, `{"t":1764373211,"ms":1764373211123}`},
		{"decimal seconds", `took 1764373211.123456`, `took 1764373211.123456`},
		{"event ID", `"event_id":"$Ab3_1234567890123xY-9876543210123zz"`, `"event_id":"$Ab3_1234567890123xY-9876543210123zz"`},
		{"room ID", `"room_id":"!AbC12345678901:example.org"`, `"room_id":"!AbC12345678901:example.org"`},
		{"hex hash", `"sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"`, `"sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"`},
		{"base64 key", `"sender_key":"Xy+1234567890123/ab+3361234567=="`, `"sender_key":"Xy+1234567890123/ab+3361234567=="`},
		{"UUID", `"txn":"123e4567-e89b-12d3-a456-426614174000"`, `"txn":"123e4567-e89b-12d3-a456-426614174000"`},
		{"port", `"address":"127.0.0.1:29340"`, `"address":"127.0.0.1:29340"`},
		{"group JID", `"chat":"120363000000000001@g.us"`, `"chat":"120363000000000001@g.us"`},
		{"short number", `"count":123456789`, `"count":123456789`},
		{"access hash", `{"access_hash":-4611686018427387904}`, `{"access_hash":-4611686018427387904}`},
		{"message id field", `{"msg_id":7301234567890123}`, `{"msg_id":7301234567890123}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := string(RedactPhoneNumbers([]byte(tc.in)))
			if got != tc.want {
				t.Errorf("RedactPhoneNumbers(%s)\n got %s\nwant %s", tc.in, got, tc.want)
			}
			if json.Valid([]byte(tc.in)) && !json.Valid([]byte(got)) {
				t.Errorf("masking broke a JSON line: %s", got)
			}
		})
	}
}

// logEvent writes one event that carries numbers in every form.
func logEvent(log zerolog.Logger) {
	log.Info().
		Str("portal_id", "whatsapp.33612345678").
		Str("remote_sender", "33612345678.0:12@s.whatsapp.net").
		Str("note", "call +33 6 12 34 56 78 or wa.me/33612345678").
		Int64("phone", 33612345678).
		Msg("Handling remote event")
}

func assertMasked(t *testing.T, what, out string) {
	t.Helper()
	if strings.Contains(out, "33612345678") || strings.Contains(out, "6 12 34 56") {
		t.Errorf("%s: a number reached the log: %s", what, out)
	}
	if !strings.Contains(out, "Handling remote event") || !strings.Contains(out, "*********78") {
		t.Errorf("%s: log line lost or not masked: %q", what, out)
	}
}

func TestRedactingWriterMasksWholeEvents(t *testing.T) {
	var buf bytes.Buffer
	logEvent(zerolog.New(redactingWriter{out: &buf}))
	assertMasked(t, "redactingWriter", buf.String())
	if !json.Valid(bytes.TrimSpace(buf.Bytes())) {
		t.Errorf("not JSON any more: %s", buf.String())
	}
}

// levelRecorder is a LevelWriter (like syslog's and journald's) that records
// what it is given.
type levelRecorder struct {
	levels []zerolog.Level
	bytes.Buffer
}

func (l *levelRecorder) WriteLevel(level zerolog.Level, p []byte) (int, error) {
	l.levels = append(l.levels, level)
	return l.Write(p)
}

func TestRedactingWriterKeepsLevels(t *testing.T) {
	rec := &levelRecorder{}
	log := zerolog.New(zerolog.MultiLevelWriter(redactingWriter{out: rec}))
	logEvent(log)
	assertMasked(t, "level writer", rec.String())
	if len(rec.levels) != 1 || rec.levels[0] != zerolog.InfoLevel {
		t.Errorf("levels passed on: %v, want [info]", rec.levels)
	}
}

// Every writer type zeroconfig can build from the `logging:` section, in
// every format, writes through the masker.
func TestEveryLogWriterMasks(t *testing.T) {
	registerRedactingWriters()
	allTypes := []zeroconfig.WriterType{
		zeroconfig.WriterTypeStdout, zeroconfig.WriterTypeStderr, zeroconfig.WriterTypeFile,
		zeroconfig.WriterTypeSyslog, zeroconfig.WriterTypeSyslogCEE, zeroconfig.WriterTypeJournald,
	}
	if len(redactedWriterTypes) != len(allTypes) {
		t.Errorf("%d writer types masked, zeroconfig has %d", len(redactedWriterTypes), len(allTypes))
	}

	// A syslog server on loopback, to connect the syslog writers to.
	syslogConn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer syslogConn.Close()
	if err = syslogConn.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { zeroconfig.Stdout, zeroconfig.Stderr = os.Stdout, os.Stderr })

	dir := t.TempDir()
	for _, wt := range allTypes {
		wc := zeroconfig.WriterConfig{Type: wt, Format: zeroconfig.LogFormatJSON}
		wc.Filename = filepath.Join(dir, string(wt)+".log")
		wc.Network, wc.Host, wc.Tag = "udp", syslogConn.LocalAddr().String(), "passerelle"
		w, err := wc.Compile()
		if err != nil {
			t.Fatalf("writer %s: %v", wt, err)
		}
		if _, ok := w.(redactingWriter); !ok {
			t.Errorf("writer %s compiles to %T, not through the masker", wt, w)
		}
	}

	// What each kind of writer really writes, in each format.
	for _, format := range []zeroconfig.LogFormat{zeroconfig.LogFormatJSON, zeroconfig.LogFormatPretty, zeroconfig.LogFormatPrettyColored} {
		var stdout, stderr bytes.Buffer
		zeroconfig.Stdout, zeroconfig.Stderr = &stdout, &stderr
		file := filepath.Join(dir, "gateway-"+string(format)+".log")
		writers := []zeroconfig.WriterConfig{{Type: zeroconfig.WriterTypeStdout}, {Type: zeroconfig.WriterTypeStderr}, {Type: zeroconfig.WriterTypeFile}, {Type: zeroconfig.WriterTypeSyslog}}
		for i := range writers {
			writers[i].Format = format
			writers[i].Filename = file
			writers[i].Network, writers[i].Host, writers[i].Tag = "udp", syslogConn.LocalAddr().String(), "passerelle"
		}
		log, err := (&zeroconfig.Config{Writers: writers}).Compile()
		if err != nil {
			t.Fatal(err)
		}
		logEvent(*log)
		assertMasked(t, "stdout "+string(format), stdout.String())
		assertMasked(t, "stderr "+string(format), stderr.String())
		written, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		assertMasked(t, "file "+string(format), string(written))
		packet := make([]byte, 4096)
		n, _, err := syslogConn.ReadFrom(packet)
		if err != nil {
			t.Fatal(err)
		}
		assertMasked(t, "syslog "+string(format), string(packet[:n]))
	}
}

func BenchmarkRedactPhoneNumbers(b *testing.B) {
	line := []byte(`{"level":"info","portal_id":"whatsapp.33612345678","sender":"33612345678.0:12@s.whatsapp.net","event_id":"$Ab3_1234567890123xY","tg_user_id":5123456789,"time":"2026-11-28T23:40:11Z","message":"Handling remote event"}`)
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		RedactPhoneNumbers(line)
	}
}

// BenchmarkRedactTelegramDebugLine: a debug line of a Telegram burst (no
// phone number): a request to the homeserver with a transaction ID, a
// megolm ciphertext excerpt and Telegram IDs.
func BenchmarkRedactTelegramDebugLine(b *testing.B) {
	line := []byte(`{"level":"debug","transaction_id":"passerelle.Zk3+9aQ1/Xb2mW8=","req_id":1234,"method":"PUT","url":"http://127.0.0.1:43817/_matrix/client/v3/rooms/%21apKH0ErtNfftwNcJ%3Alocalhost/send/m.room.encrypted/passerelle.AbC12345678901234","ciphertext":"AwgAEpAB8+Jd0c3Vh2b1+hRz0q7l9w4D7q+0C9k2p3s1d5X7Hq2o8Yy6mJf0a+Lw","tg_peer_id":1000002,"pts":12345,"message_id":"telegram.1000002.77123","duration":3.1415,"time":"2026-12-06T00:32:03.123Z","message":"Request completed"}`)
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		RedactPhoneNumbers(line)
	}
}

// BenchmarkRedactMatrixUserLine: a debug line of a Telegram burst that
// names Matrix users (an '@', digit runs, no JID).
func BenchmarkRedactMatrixUserLine(b *testing.B) {
	line := []byte(`{"level":"debug","user_id":"@passerelle_telegram.1000002:localhost","as_user_id":"@passerellebot:localhost","req_id":98765,"method":"GET","url":"http://127.0.0.1:46505/_matrix/client/v3/sync?filter=1&since=s408_0_0_15_19_9_7_649_3&timeout=30000&user_id=%40passerellebot%3Alocalhost","duration":30002.031203,"status_code":200,"response_length":95,"time":"2026-12-06T03:48:35.019190742Z","message":"Request completed"}`)
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		RedactPhoneNumbers(line)
	}
}

// BenchmarkRedactWhatsAppRequestLine: the line bridgev2 writes for every
// message a WhatsApp contact sends (Request completed, with the portal's,
// the ghost's and the message's IDs, five phone numbers in all), as the
// gateway's JSON log file and its console get it.
func BenchmarkRedactWhatsAppRequestLine(b *testing.B) {
	for name, line := range map[string][]byte{"json": whatsAppRequestJSON, "console": whatsAppRequestConsole} {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(line)))
			for b.Loop() {
				RedactPhoneNumbers(line)
			}
		})
	}
}

var (
	whatsAppRequestJSON    = []byte(`{"level":"debug","portal_id":"whatsapp.15550000100","portal_receiver":"whatsapp.15550071","portal_pointer":"210865e011e0","portal_mxid":"!irZU8e7s2GPQuTR9:localhost","event_loop_index":400,"action":"handle remote event","source_id":"whatsapp.15550071","bridge_evt_type":"RemoteEventMessageUpsert","wa_message_id":"3A8C41D72D54E3E8CAFA","remote_sender":{"user_id":"whatsapp.15550000100","sender_login":""},"remote_message_id":"whatsapp.15550000100.15550000100.3A8C41D72D54E3E8CAFA","remote_timestamp":"2026-12-07T12:29:36Z","req_id":501,"method":"PUT","url":"http://127.0.0.1:34779/_matrix/client/v3/rooms/%21irZU8e7s2GPQuTR9:localhost/send/m.room.encrypted/passerelle.WJ7nBXemXKL3vM3TzxRqGCUL?ts=1796646576000&user_id=%40passerelle_whatsapp.15550000100%3Alocalhost","duration":22.384588,"status_code":200,"response_length":59,"response_mime":"application/json","req_body":{"algorithm":"m.megolm.v1.aes-sha2","sender_key":"9Iv6h+Ri8N903KoM26gTR0QMgr9D1to2mXae0JrEDiQ","device_id":"HvUThD_F","session_id":"QPB4SlLF351uUWsqV5Hw96yvVRCVJPMdfrKdOCC2yvI","ciphertext":"AwhiEsABPbcUEGmUhW1qKvwofoKV6MjhE9rHLQtbi8Rc64GRPXfsQUJ1R3QXOsGOEPq2kqg5Mq39ZZ4fU7U0k1lvJ8QXP5OKrrz91FLG7A2V4YGmfFq/n9JAgWRuHDM0lZxHACl/0AffuiS9LSX/pT5EdxUe0c4ULbSEuvNHyvLiUEGF3jc6x14bI0Ca9n7ecPl7guICRWJ8yNZqfDLE6Dgct9Ezt2KH62c+q0f0JMzt1dLt01sn2lUPhLW/gQuzasWbcXFb0C5QMAq71u3fe1Q8FGeSJVnY+o/EQKuakPYJ+/C91JOAqs7xLDFiXi3//H/18vjQwnPsYKxiL0dvEsQWzWOjHl7+56ys6fYN"},"time":"2026-12-07T12:29:49.790596414Z","message":"Request completed"}` + "\n")
	whatsAppRequestConsole = []byte(`2026-12-07T12:29:49.79Z DBG Request completed action="handle remote event" bridge_evt_type=RemoteEventMessageUpsert duration=22.384588 event_loop_index=400 method=PUT portal_id=whatsapp.15550000100 portal_mxid=!irZU8e7s2GPQuTR9:localhost portal_pointer=210865e011e0 portal_receiver=whatsapp.15550071 remote_message_id=whatsapp.15550000100.15550000100.3A8C41D72D54E3E8CAFA remote_sender={"sender_login":"","user_id":"whatsapp.15550000100"} remote_timestamp=2026-12-07T12:29:36Z req_body={"algorithm":"m.megolm.v1.aes-sha2","ciphertext":"AwhiEsABPbcUEGmUhW1qKvwofoKV6MjhE9rHLQtbi8Rc64GRPXfsQUJ1R3QXOsGOEPq2kqg5Mq39ZZ4fU7U0k1lvJ8QXP5OKrrz91FLG7A2V4YGmfFq/n9JAgWRuHDM0lZxHACl/0AffuiS9LSX/pT5EdxUe0c4ULbSEuvNHyvLiUEGF3jc6x14bI0Ca9n7ecPl7guICRWJ8yNZqfDLE6Dgct9Ezt2KH62c+q0f0JMzt1dLt01sn2lUPhLW/gQuzasWbcXFb0C5QMAq71u3fe1Q8FGeSJVnY+o/EQKuakPYJ+/C91JOAqs7xLDFiXi3//H/18vjQwnPsYKxiL0dvEsQWzWOjHl7+56ys6fYN","device_id":"HvUThD_F","sender_key":"9Iv6h+Ri8N903KoM26gTR0QMgr9D1to2mXae0JrEDiQ","session_id":"QPB4SlLF351uUWsqV5Hw96yvVRCVJPMdfrKdOCC2yvI"} req_id=501 response_length=59 response_mime=application/json source_id=whatsapp.15550071 status_code=200 url=http://127.0.0.1:34779/_matrix/client/v3/rooms/%21irZU8e7s2GPQuTR9:localhost/send/m.room.encrypted/passerelle.WJ7nBXemXKL3vM3TzxRqGCUL?ts=1796646576000&user_id=%40passerelle_whatsapp.15550000100%3Alocalhost wa_message_id=3A8C41D72D54E3E8CAFA` + "\n")
)

// replaceChecked replaces the matches of re for which fn says so: how the
// redaction ran before its hand-written scanners, kept to check them.
func replaceChecked(line []byte, re *regexp.Regexp, fn func(line []byte, start, end int) ([]byte, bool)) []byte {
	matches := re.FindAllIndex(line, -1)
	if matches == nil {
		return line
	}
	var out []byte
	last := 0
	for _, m := range matches {
		repl, ok := fn(line, m[0], m[1])
		if !ok {
			continue
		}
		if out == nil {
			out = make([]byte, 0, len(line)+8)
		}
		out = append(append(out, line[last:m[0]]...), repl...)
		last = m[1]
	}
	if out == nil {
		return line
	}
	return append(out, line[last:]...)
}

var (
	intlNumberRE    = regexp.MustCompile(`(?i)(?:\+|%2B)\d(?:[ .\-]?\d){6,14}`)
	digitRunRE      = regexp.MustCompile(`\d+`)
	whatsAppTokenRE = regexp.MustCompile(`whatsapp[._][A-Za-z0-9._=:-]*`)
	longDigitsRE    = regexp.MustCompile(`\d{7,}`)
	userJIDRE       = regexp.MustCompile(`\d{5,}(?:\.\d+)?(?::\d+)?@(?:s\.whatsapp\.net|c\.us|lid|hosted\.lid|hosted)\b`)
)

// FuzzRedactScanners: the hand-written scanners for international numbers,
// bare digit runs, WhatsApp tokens and user JIDs mask exactly what the
// regular expressions they replace did.
func FuzzRedactScanners(f *testing.F) {
	for _, seed := range []string{
		`{"msg":"+33 6 12 34 56 78 and %2b33612345678","n":33612345678}`,
		`+1-2-3-4-5-6-7-8-9-0-1-2-3-4-5-6-7 +123456 +1234567 aGVsbG8+12345678=`,
		`%2B%2B4412345678901234567 0033612345678 1700000000000 "id":33612345678`,
		"\x1b[36m+33612345678\x1b[0m phone=%2B336123456789",
		`"sender":"33612345678.0:12@s.whatsapp.net" 123456789012345@lid @passerelle_telegram.1000002:localhost`,
		`whatsapp.33612345678.33698765432.3EB0 passerelle_whatsapp.336123456789:x whatsappwhatsapp_1234567890 whatsapp.`,
		`1234.56789:12@lid 12345.6789:1@s.whatsapp.net 123456:78.99999@c.us 12:345678@hosted.lid 123456@lidx 1234567@hosted.lidx 99999@hosted`,
		`11111.22222@lid 9.11111.22222@lid 123456:@lid 123456.@lid @lid 12345@c.usx 00000000@s.whatsapp.net_`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		wantIntl := replaceChecked(line, intlNumberRE, func(line []byte, start, end int) ([]byte, bool) {
			if signedBase64Context(line, start, end) {
				return nil, false
			}
			return maskAfterPrefix(line[start:end]), true
		})
		if got := replaceIntlNumbers(line); !bytes.Equal(got, wantIntl) {
			t.Fatalf("international numbers of %q: %q, the regular expression gave %q", line, got, wantIntl)
		}
		if got, want := replaceDigitRuns(line), replaceChecked(line, digitRunRE, maskBareNumber); !bytes.Equal(got, want) {
			t.Fatalf("digit runs of %q: %q, the regular expression gave %q", line, got, want)
		}
		if intlNumberRE.Find(line) != nil && !hasIntlStart(line) {
			t.Fatalf("%q has an international number but hasIntlStart says no", line)
		}
		wantTokens := whatsAppTokenRE.ReplaceAllFunc(line, func(token []byte) []byte {
			return longDigitsRE.ReplaceAllFunc(token, maskDigits)
		})
		if got := replaceWhatsAppTokens(line); !bytes.Equal(got, wantTokens) {
			t.Fatalf("WhatsApp tokens of %q: %q, the regular expression gave %q", line, got, wantTokens)
		}
		wantJIDs := userJIDRE.ReplaceAllFunc(line, func(jid []byte) []byte {
			user := bytes.IndexAny(jid, ".:@")
			return append(maskDigits(jid[:user]), jid[user:]...)
		})
		if got := replaceUserJIDs(line); !bytes.Equal(got, wantJIDs) {
			t.Fatalf("user JIDs of %q: %q, the regular expression gave %q", line, got, wantJIDs)
		}
	})
}
