package appservice

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/zeroconfig"
)

// bridgev2's lines for one bridged message, as the gateway logs them.
var bridgeLogLines = []string{
	`{"level":"debug","portal_id":"whatsapp.*********00","portal_receiver":"whatsapp.******71","portal_pointer":"20f9e007c000","event_loop_index":1,"action":"handle remote event","source_id":"whatsapp.******71","bridge_evt_type":"RemoteEventMessageUpsert","wa_message_id":"3A5B3327E27C1F7F3C72","remote_sender":{"sender_login":"","user_id":"whatsapp.*********00"},"remote_message_id":"whatsapp.*********00.*********00.3A5B3327E27C1F7F3C72","remote_timestamp":"2026-12-07T21:31:36Z","time":"2026-12-07T21:31:37.138730296Z","message":"Handling remote event"}`,
	`{"level":"debug","portal_id":"whatsapp.*********00","portal_receiver":"whatsapp.******71","portal_pointer":"20f9e007c000","event_loop_index":1,"action":"handle remote event","source_id":"whatsapp.******71","bridge_evt_type":"RemoteEventMessageUpsert","wa_message_id":"3A5B3327E27C1F7F3C72","remote_sender":{"sender_login":"","user_id":"whatsapp.*********00"},"remote_message_id":"whatsapp.*********00.*********00.3A5B3327E27C1F7F3C72","remote_timestamp":"2026-12-07T21:31:36Z","event_id":"$FHuxN_GlKwTbaPtVcHuYl4EZQVJuSNmi0y0qwqnf1mk","part_id":"","time":"2026-12-07T21:31:37.302346306Z","message":"Sent message part to Matrix"}`,
	`{"level":"debug","req_id":1,"method":"GET","url":"http://127.0.0.1:44977/_matrix/client/versions?user_id=%40passerellebot%3Alocalhost","duration":1.446659,"status_code":200,"response_length":300,"response_mime":"application/json","time":"2026-12-07T21:31:34.431940645Z","message":"Request completed"}`,
	`{"level":"error","server_supports":"v1.2","bridge_requires":"v1.4","time":"2026-12-07T21:31:34.431995787Z","message":"The homeserver is outdated (supported spec versions are below minimum required by bridge)"}`,
}

// loggedEvents are events as zerolog writes them: every kind of value,
// the parts present or not, keys that need escapes, a key given twice.
func loggedEvents(t testing.TB) []string {
	var buf bytes.Buffer
	var lines []string
	take := func() {
		for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
			if l != "" {
				lines = append(lines, l)
			}
		}
		buf.Reset()
	}
	log := zerolog.New(&buf).With().Timestamp().Logger()
	log.Debug().Str("room_id", "!abc:localhost").Int("count", 3).Msg("Plain")
	log.Info().Str("spaced", "two words").Str("quoted", `say "hi"`).Str("back", `a\b`).Msg("Info is bold")
	log.Warn().Str("unicode", "été ☃").Str("control", "tab\there\nnewline").Str("empty", "").Msg("Warn")
	log.Error().Err(errors.New(`failed: "x" not found`)).Str("after", "z").Str("before", "a").Msg("With error")
	log.Error().Err(errors.New("plain")).Msg("")
	log.Debug().Float64("f", -1.25e-7).Int64("neg", -42).Uint64("big", 1<<63).Bool("yes", true).Bool("no", false).Msg("Numbers")
	log.Debug().Interface("nil", nil).Strs("list", []string{"a", "b c"}).RawJSON("obj", []byte(`{"a":1,"b":{"c":[1,2]}}`)).Msg("Composite")
	log.Debug().Str("message", "a field named message").Msg("")
	log.Trace().Msg("Trace")
	log.WithLevel(zerolog.FatalLevel).Msg("Fatal")
	log.WithLevel(zerolog.PanicLevel).Msg("Panic")
	log.Log().Str("nolevel", "x").Msg("No level")
	log.Debug().Str("key with space", "v").Str("quo\"te", "v").Str("é", "v").Msg("Keys")
	log.Debug().Str("dup", "first").Str("dup", "second").Msg("Duplicate")
	log.Debug().Str("level", "info").Msg("Level given twice")
	log.Debug().Bytes("invalid_utf8", []byte{'a', 0xff, 'b'}).Msg("Bytes")
	log.Debug().Msg("Only a message")
	log.Debug().Send()
	take()
	plain := zerolog.New(&buf)
	plain.Info().Str("no", "time").Msg("Without a timestamp")
	withCaller := zerolog.New(&buf).With().Str("caller", "/tmp/x/file.go:12").Logger()
	withCaller.Info().Msg("With a caller")
	take()
	return append(lines, bridgeLogLines...)
}

// consoleText is what zerolog's ConsoleWriter, as zeroconfig sets it up,
// writes for line.
func consoleText(t testing.TB, line string, color bool) string {
	var out bytes.Buffer
	cw := zerolog.ConsoleWriter{Out: &out, NoColor: !color, TimeFormat: defaultPrettyTimeFormat}
	if _, err := cw.Write([]byte(line)); err != nil {
		t.Fatalf("ConsoleWriter: %v on %s", err, line)
	}
	return out.String()
}

func prettyText(t testing.TB, line string, color bool) string {
	var out bytes.Buffer
	pw := newPrettyWriter(&out, color, "")
	n, err := pw.Write([]byte(line))
	if err != nil || n != len(line) {
		t.Fatalf("prettyWriter: %d, %v on %s", n, err, line)
	}
	return out.String()
}

func withTimeFormat(t testing.TB, format string) {
	old := zerolog.TimeFieldFormat
	zerolog.TimeFieldFormat = format
	t.Cleanup(func() { zerolog.TimeFieldFormat = old })
}

func TestPrettyWriterWritesConsoleWritersText(t *testing.T) {
	t.Setenv("NO_COLOR", "")
	withTimeFormat(t, time.RFC3339Nano) // mautrix's (exzerolog.SetupDefaults)
	for _, line := range loggedEvents(t) {
		for _, color := range []bool{false, true} {
			want := consoleText(t, line, color)
			if got := prettyText(t, line, color); got != want {
				t.Errorf("color=%v, line %s\n got: %q\nwant: %q", color, line, got, want)
			}
		}
	}
}

func TestPrettyWriterUnixTimes(t *testing.T) {
	for _, format := range []string{zerolog.TimeFormatUnix, zerolog.TimeFormatUnixMs, zerolog.TimeFormatUnixMicro, zerolog.TimeFormatUnixNano} {
		withTimeFormat(t, format)
		var buf bytes.Buffer
		log := zerolog.New(&buf).With().Timestamp().Logger()
		log.Info().Msg("Unix time")
		line := strings.TrimSpace(buf.String())
		if got, want := prettyText(t, line, false), consoleText(t, line, false); got != want {
			t.Errorf("%q: got %q, want %q", format, got, want)
		}
	}
}

// An object field is written as zerolog wrote it; ConsoleWriter sorts its
// keys again.
func TestPrettyWriterKeepsObjectsAsWritten(t *testing.T) {
	withTimeFormat(t, time.RFC3339Nano)
	line := `{"level":"debug","remote_sender":{"user_id":"u","sender_login":"l"},"html":"<b>","time":"2026-12-07T21:31:37.138730296Z","message":"m"}`
	got := prettyText(t, line, false)
	if !strings.Contains(got, ` html=<b> remote_sender={"user_id":"u","sender_login":"l"}`) {
		t.Errorf("got %q", got)
	}
}

// Anything but one JSON object is written as it came: never lost.
func TestPrettyWriterWritesOtherLinesAsTheyCame(t *testing.T) {
	for _, line := range []string{
		"not json",
		`{"level":"debug","message":"cut`,
		`{"a":1} {"b":2}`,
		`{"a":}`,
		`["array"]`,
		`{"a":1,}`,
		"",
	} {
		got := prettyText(t, line, false)
		if got != line+"\n" {
			t.Errorf("%q: got %q", line, got)
		}
	}
}

// A config's pretty writers are written by prettyWriter behind the masker;
// the config given is not changed.
func TestUsePrettyWritersMasksAndFormats(t *testing.T) {
	registerRedactingWriters()
	withTimeFormat(t, time.RFC3339Nano)
	path := filepath.Join(t.TempDir(), "pretty.log")
	jsonPath := filepath.Join(t.TempDir(), "json.log")
	level := zerolog.DebugLevel
	writers := []zeroconfig.WriterConfig{
		{Type: zeroconfig.WriterTypeFile, Format: zeroconfig.LogFormatPretty, FileConfig: zeroconfig.FileConfig{Filename: path}},
		{Type: zeroconfig.WriterTypeFile, Format: zeroconfig.LogFormatJSON, FileConfig: zeroconfig.FileConfig{Filename: jsonPath}},
	}
	cfg := zeroconfig.Config{MinLevel: &level, Writers: writers}
	usePrettyWriters(&cfg)
	if writers[0].Type != zeroconfig.WriterTypeFile || writers[0].Format != zeroconfig.LogFormatPretty {
		t.Fatalf("the config given was changed: %+v", writers[0])
	}
	if cfg.Writers[1] != writers[1] {
		t.Fatalf("the JSON writer was changed: %+v", cfg.Writers[1])
	}
	log, err := cfg.Compile()
	if err != nil {
		t.Fatal(err)
	}
	log.Info().Str("portal_id", "whatsapp.33612345678").Str("note", "two words").Msg("Portal ready")
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := string(text)
	if !strings.Contains(got, ` INF Portal ready note="two words" portal_id=whatsapp.*********78`) || strings.Contains(got, "33612345678") {
		t.Errorf("pretty log: %q", got)
	}
	raw, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(raw), `{"level":"info"`) || strings.Contains(string(raw), "33612345678") {
		t.Errorf("JSON log: %q", raw)
	}
}

func FuzzPrettyWriter(f *testing.F) {
	f.Add("room_id", "!abc:localhost", "Message text", int64(3))
	f.Add("k", "two words \"quoted\" \\ \x01 é", "", int64(-1))
	f.Add("error", "", "m", int64(0))
	f.Fuzz(func(t *testing.T, key, val, msg string, n int64) {
		if key == "" {
			return // ConsoleWriter drops an empty key when there is an error field: not worth copying
		}
		withTimeFormat(t, time.RFC3339Nano)
		var buf bytes.Buffer
		log := zerolog.New(&buf).With().Timestamp().Logger()
		log.Info().Str(key, val).Int64("n", n).Str("z", val).Msg(msg)
		line := strings.TrimSpace(buf.String())
		for _, color := range []bool{false, true} {
			if got, want := prettyText(t, line, color), consoleText(t, line, color); got != want {
				t.Fatalf("line %s\n got: %q\nwant: %q", line, got, want)
			}
		}
	})
}

// BenchmarkPrettyLog writes bridgev2's lines for one bridged message as
// console text, with zerolog's ConsoleWriter and with prettyWriter.
func BenchmarkPrettyLog(b *testing.B) {
	withTimeFormat(b, time.RFC3339Nano)
	lines := make([][]byte, len(bridgeLogLines))
	for i, l := range bridgeLogLines {
		lines[i] = []byte(l)
	}
	run := func(b *testing.B, w interface{ Write([]byte) (int, error) }) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := w.Write(lines[i%len(lines)]); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("zerolog_console", func(b *testing.B) {
		run(b, zerolog.ConsoleWriter{Out: discard{}, NoColor: true, TimeFormat: defaultPrettyTimeFormat})
	})
	b.Run("passerelle", func(b *testing.B) {
		run(b, newPrettyWriter(discard{}, false, ""))
	})
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
