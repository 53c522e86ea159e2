package telegram

import (
	"strings"

	"github.com/gotd/log"
	"github.com/gotd/log/logzap"
	"github.com/rs/zerolog"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// zerologCore is a zapcore.Core that writes to a zerolog.Logger, so that gotd
// (which logs through zap) ends up in the login's log.
//
// gotd is chatty: its debug level maps to zerolog trace and its info level to
// zerolog debug. Fields whose key could carry secrets or personal data
// (phone numbers, codes, passwords, keys, message text) are dropped.
type zerologCore struct {
	log    zerolog.Logger
	fields []zapcore.Field
}

var _ zapcore.Core = (*zerologCore)(nil)

func newZerologCore(log zerolog.Logger) *zerologCore {
	return &zerologCore{log: log}
}

// gotdLogger returns a gotd logger writing into log.
func gotdLogger(log zerolog.Logger) log.Logger {
	return logzap.New(zap.New(newZerologCore(log)))
}

func zerologLevel(l zapcore.Level) zerolog.Level {
	switch {
	case l < zapcore.InfoLevel:
		return zerolog.TraceLevel
	case l < zapcore.WarnLevel:
		return zerolog.DebugLevel
	case l < zapcore.ErrorLevel:
		return zerolog.WarnLevel
	default:
		return zerolog.ErrorLevel
	}
}

func (c *zerologCore) Enabled(l zapcore.Level) bool {
	level := zerologLevel(l)
	return level >= c.log.GetLevel() && level >= zerolog.GlobalLevel()
}

func (c *zerologCore) With(fields []zapcore.Field) zapcore.Core {
	clone := &zerologCore{log: c.log, fields: make([]zapcore.Field, 0, len(c.fields)+len(fields))}
	clone.fields = append(clone.fields, c.fields...)
	clone.fields = append(clone.fields, fields...)
	return clone
}

func (c *zerologCore) Check(ent zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(ent.Level) {
		return ce.AddCore(ent, c)
	}
	return ce
}

var sensitiveKeyParts = []string{"phone", "code", "password", "passwd", "secret", "key", "token", "hash", "text", "message", "srp"}

// sensitiveKey reports whether a field with this key is dropped.
func sensitiveKey(key string) bool {
	key = strings.ToLower(key)
	if key == "error" || key == "err" {
		return false
	}
	for _, part := range sensitiveKeyParts {
		if strings.Contains(key, part) {
			return true
		}
	}
	return false
}

func (c *zerologCore) Write(ent zapcore.Entry, fields []zapcore.Field) error {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range c.fields {
		f.AddTo(enc)
	}
	for _, f := range fields {
		f.AddTo(enc)
	}
	evt := c.log.WithLevel(zerologLevel(ent.Level))
	if evt == nil {
		return nil
	}
	if ent.LoggerName != "" {
		evt = evt.Str("gotd_logger", ent.LoggerName)
	}
	for k, v := range enc.Fields {
		if sensitiveKey(k) {
			continue
		}
		evt = evt.Interface(k, v)
	}
	evt.Msg(ent.Message)
	return nil
}

func (c *zerologCore) Sync() error { return nil }
