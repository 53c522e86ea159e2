package telegram

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	gotdlog "github.com/gotd/log"
	"github.com/gotd/td/tg"
	"github.com/rs/zerolog"
	"go.uber.org/zap"
)

func TestZerologCore(t *testing.T) {
	var buf bytes.Buffer
	zl := zerolog.New(&buf).Level(zerolog.DebugLevel)
	logger := zap.New(newZerologCore(zl)).Named("mtproto").With(zap.Int64("user_id", 5))

	logger.Debug("dropped at debug") // gotd debug = zerolog trace, below DebugLevel
	logger.Info("connected", zap.String("phone", "+33612345678"), zap.String("auth_key_id", "abc"),
		zap.String("text", "secret message"), zap.Int("dc", 2))
	logger.Warn("retrying", zap.Error(errors.New("boom")))

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2:\n%s", len(lines), buf.String())
	}
	var first, second map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &second); err != nil {
		t.Fatal(err)
	}
	if first["level"] != "debug" || first["message"] != "connected" || first["dc"] != float64(2) ||
		first["user_id"] != float64(5) || first["gotd_logger"] != "mtproto" {
		t.Errorf("unexpected first line: %v", first)
	}
	for _, k := range []string{"phone", "auth_key_id", "text"} {
		if _, ok := first[k]; ok {
			t.Errorf("sensitive field %q was logged", k)
		}
	}
	if strings.Contains(buf.String(), "+33612345678") || strings.Contains(buf.String(), "secret message") {
		t.Error("sensitive value reached the log")
	}
	if second["level"] != "warn" || second["error"] != "boom" {
		t.Errorf("unexpected second line: %v", second)
	}
}

func TestGotdLoggerLevels(t *testing.T) {
	var buf bytes.Buffer
	l := gotdLogger(zerolog.New(&buf).Level(zerolog.WarnLevel))
	ctx := context.Background()
	if l.Enabled(ctx, gotdlog.LevelInfo) {
		t.Error("info enabled on a warn logger")
	}
	if !l.Enabled(ctx, gotdlog.LevelError) {
		t.Error("error disabled on a warn logger")
	}
	l.Log(ctx, gotdlog.LevelError, "failed", gotdlog.String("password", "hunter2"))
	if !strings.Contains(buf.String(), `"message":"failed"`) || strings.Contains(buf.String(), "hunter2") {
		t.Errorf("unexpected output %s", buf.String())
	}
}

// gotd's update dumps never reach the log above debug, and the text of a
// message never at all, whatever the field's name or level.
func TestGotdDumpsKeepMessageTextOut(t *testing.T) {
	const secret = "meet me at the back door"
	msg := &tg.Message{ID: 7, Message: secret, PeerID: &tg.PeerUser{UserID: 42}}
	update := &tg.UpdateNewMessage{Message: msg, Pts: 10, PtsCount: 1}
	diff := &tg.UpdatesDifference{NewMessages: []tg.MessageClass{msg}}
	type wrapped struct{ Text string }

	for _, tc := range []struct {
		name  string
		level gotdlog.Level
		attrs []gotdlog.Attr
		// want are fields (and values, when not empty) the line must have;
		// absent are fields it must not have.
		want   map[string]string
		absent []string
	}{
		{"update at error", gotdlog.LevelError, []gotdlog.Attr{gotdlog.Error(errors.New("pts gap")), gotdlog.Any("update", update)},
			map[string]string{"level": "error", "error": "pts gap"}, []string{"update", "update_type"}},
		{"pending at warn", gotdlog.LevelWarn, []gotdlog.Attr{gotdlog.Any("pending", []tg.UpdateClass{update}), gotdlog.Int("internalState", 2)},
			map[string]string{"level": "warn", "internalState": "2"}, []string{"pending", "pending_type"}},
		{"update at info (zerolog debug)", gotdlog.LevelInfo, []gotdlog.Attr{gotdlog.Any("update", update)},
			map[string]string{"level": "debug", "update_type": "*tg.UpdateNewMessage"}, []string{"update"}},
		{"update at debug (zerolog trace)", gotdlog.LevelDebug, []gotdlog.Attr{gotdlog.Any("update", update)},
			map[string]string{"level": "trace", "update_type": "*tg.UpdateNewMessage"}, []string{"update"}},
		{"difference at debug", gotdlog.LevelDebug, []gotdlog.Attr{gotdlog.Any("diff", diff)},
			map[string]string{"diff_type": "*tg.UpdatesDifference"}, []string{"diff"}},
		{"message under another name", gotdlog.LevelInfo, []gotdlog.Attr{gotdlog.Any("obj", msg)},
			map[string]string{"obj_type": "*tg.Message"}, []string{"obj"}},
		{"struct under another name", gotdlog.LevelInfo, []gotdlog.Attr{gotdlog.Any("state", wrapped{Text: secret})},
			map[string]string{"state_type": "telegram.wrapped"}, []string{"state"}},
		{"group", gotdlog.LevelInfo, []gotdlog.Attr{gotdlog.Group("req", gotdlog.String("body", secret))},
			nil, []string{"req"}},
		{"text as a string", gotdlog.LevelInfo, []gotdlog.Attr{gotdlog.String("message", secret), gotdlog.String("text", secret)},
			map[string]string{"message": "Handling update"}, []string{"text"}},
		{"updates as a string", gotdlog.LevelInfo, []gotdlog.Attr{gotdlog.String("updates", secret)},
			nil, []string{"updates"}},
		{"message IDs stay", gotdlog.LevelInfo, []gotdlog.Attr{gotdlog.Any("msg_ids", []int64{1, 2})},
			map[string]string{"msg_ids": "[1,2]"}, nil},
		{"plain fields stay", gotdlog.LevelWarn, []gotdlog.Attr{gotdlog.Stringer("gap", gapRange{}), gotdlog.Int("dc", 2)},
			map[string]string{"gap": "[1, 5)", "dc": "2"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			l := gotdLogger(zerolog.New(&buf).Level(zerolog.TraceLevel))
			l.Log(context.Background(), tc.level, "Handling update", tc.attrs...)
			out := buf.String()
			if strings.Contains(out, secret) || strings.Contains(out, "back door") {
				t.Fatalf("message text reached the log: %s", out)
			}
			var line map[string]json.RawMessage
			if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
				t.Fatalf("not one JSON line: %q", out)
			}
			for k, v := range tc.want {
				got, ok := line[k]
				if !ok {
					t.Errorf("field %s missing: %s", k, out)
				} else if v != "" && strings.Trim(string(got), `"`) != v {
					t.Errorf("field %s = %s, want %s", k, got, v)
				}
			}
			for _, k := range tc.absent {
				if _, ok := line[k]; ok {
					t.Errorf("field %s logged: %s", k, out)
				}
			}
		})
	}
}

type gapRange struct{}

func (gapRange) String() string { return "[1, 5)" }

// With fields (a logger's context) get the same treatment.
func TestGotdDumpsInContextFields(t *testing.T) {
	var buf bytes.Buffer
	zl := zap.New(newZerologCore(zerolog.New(&buf).Level(zerolog.TraceLevel)))
	zl.With(zap.Any("update", &tg.UpdateNewMessage{Message: &tg.Message{Message: "hello there"}})).Error("Failed")
	if strings.Contains(buf.String(), "hello there") || !strings.Contains(buf.String(), `"dropped_fields":["update"]`) {
		t.Fatalf("unexpected output %s", buf.String())
	}
}
