package telegram

import (
	"fmt"
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
// (phone numbers, codes, passwords, keys, message text) are dropped, and so
// is the content of every update or message dump (see Write).
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

// dumpKeys are the fields in which gotd dumps updates, differences and
// messages, whatever their type.
var dumpKeys = map[string]bool{
	"update": true, "updates": true, "pending": true, "diff": true, "difference": true,
	"msg": true, "message": true, "messages": true, "result": true, "object": true, "body": true,
}

// dumpType returns the Go type of a field that dumps a structure (an update,
// a message, a group of fields), and whether it is one. Such a field can
// carry message text anywhere inside it, so its content is never logged.
func dumpType(f zapcore.Field) (string, bool) {
	switch f.Type {
	case zapcore.StringerType, zapcore.ReflectType, zapcore.ObjectMarshalerType, zapcore.InlineMarshalerType:
		return fmt.Sprintf("%T", f.Interface), true
	case zapcore.ArrayMarshalerType:
		// zap's own arrays of numbers (msg_ids) are kept; anything else is a dump.
		enc := zapcore.NewMapObjectEncoder()
		f.AddTo(enc)
		if items, ok := enc.Fields[f.Key].([]any); ok && allNumbers(items) {
			return "", false
		}
		return fmt.Sprintf("%T", f.Interface), true
	}
	if dumpKeys[strings.ToLower(f.Key)] {
		return "", true
	}
	return "", false
}

func allNumbers(items []any) bool {
	for _, item := range items {
		switch item.(type) {
		case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64, bool:
		default:
			return false
		}
	}
	return true
}

// Write logs an entry without its sensitive fields. A dump (update, message,
// difference...) is never logged above debug and its content never at all:
// at debug and trace only its Go type is (`update_type`); otherwise the entry
// lists the fields it left out (`dropped_fields`).
func (c *zerologCore) Write(ent zapcore.Entry, fields []zapcore.Field) error {
	level := zerologLevel(ent.Level)
	evt := c.log.WithLevel(level)
	if evt == nil {
		return nil
	}
	if ent.LoggerName != "" {
		evt = evt.Str("gotd_logger", ent.LoggerName)
	}
	enc := zapcore.NewMapObjectEncoder()
	var dropped []string
	for _, group := range [][]zapcore.Field{c.fields, fields} {
		for _, f := range group {
			if f.Type == zapcore.SkipType {
				continue
			}
			if typ, isDump := dumpType(f); isDump {
				if level <= zerolog.DebugLevel && typ != "" {
					evt = evt.Str(f.Key+"_type", typ)
				} else {
					dropped = append(dropped, f.Key)
				}
				continue
			}
			if sensitiveKey(f.Key) {
				continue
			}
			f.AddTo(enc)
		}
	}
	for k, v := range enc.Fields {
		evt = evt.Interface(k, v)
	}
	if len(dropped) > 0 {
		evt = evt.Strs("dropped_fields", dropped)
	}
	evt.Msg(ent.Message)
	return nil
}

func (c *zerologCore) Sync() error { return nil }
