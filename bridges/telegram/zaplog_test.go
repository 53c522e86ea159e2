package telegram

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	gotdlog "github.com/gotd/log"
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
