package whatsapp

import (
	"context"
	"fmt"
	"regexp"

	"github.com/rs/zerolog"
	waLog "go.mau.fi/whatsmeow/util/log"
)

// waLogger bridges whatsmeow's printf-style logs into zerolog. whatsmeow
// writes JIDs (phone numbers) into its messages, so its info logs go to
// debug level and long digit runs are masked in warnings and errors.
type waLogger struct {
	log zerolog.Logger
}

var _ waLog.Logger = waLogger{}

func newWALogger(log zerolog.Logger) waLog.Logger { return waLogger{log: log} }

var longDigits = regexp.MustCompile(`\d{6,}`)

// MaskDigits hides all but the last two digits of every run of six or more
// digits (phone numbers, LIDs) in s.
func MaskDigits(s string) string {
	return longDigits.ReplaceAllStringFunc(s, func(d string) string {
		return "…" + d[len(d)-2:]
	})
}

func (l waLogger) Errorf(msg string, args ...any) {
	l.log.Error().Msg(MaskDigits(fmt.Sprintf(msg, args...)))
}

func (l waLogger) Warnf(msg string, args ...any) {
	l.log.Warn().Msg(MaskDigits(fmt.Sprintf(msg, args...)))
}

func (l waLogger) Infof(msg string, args ...any) {
	if e := l.log.Debug(); e.Enabled() {
		e.Msg(fmt.Sprintf(msg, args...))
	}
}

func (l waLogger) Debugf(msg string, args ...any) {
	if e := l.log.Trace(); e.Enabled() {
		e.Msg(fmt.Sprintf(msg, args...))
	}
}

func (l waLogger) Sub(module string) waLog.Logger {
	return waLogger{log: l.log.With().Str("module", module).Logger()}
}

// libraryContext is ctx carrying the logger whatsmeow logs to through its
// context (zerolog.Ctx), besides its printf logs: the component's logger,
// whose debug lines, like the printf ones (see waLogger), show only at
// trace level. At debug level they would be two lines for every message
// received (decrypted and buffered, buffer cleared: hashes and IDs), a
// tenth of the gateway's CPU under load being its log writers.
func libraryContext(ctx context.Context, log zerolog.Logger) context.Context {
	l := log.With().Str("component", "whatsmeow").Logger()
	if l.GetLevel() == zerolog.DebugLevel {
		l = l.Level(zerolog.InfoLevel)
	}
	return l.WithContext(ctx)
}
