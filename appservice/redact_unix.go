//go:build unix

package appservice

import (
	"fmt"
	"io"
	"log/syslog"

	"github.com/rs/zerolog"
	"github.com/rs/zerolog/journald"
	"go.mau.fi/zeroconfig"
)

// On Unix, zeroconfig also writes to syslog and journald; they get the
// masker too.
func init() {
	redactedWriterTypes[zeroconfig.WriterTypeSyslog] = compileSyslog
	redactedWriterTypes[zeroconfig.WriterTypeSyslogCEE] = compileSyslog
	redactedWriterTypes[zeroconfig.WriterTypeJournald] = func(*zeroconfig.WriterConfig) (io.Writer, error) {
		return journald.NewJournalDWriter(), nil
	}
}

// compileSyslog connects to syslog as zeroconfig's own syslog writer does.
func compileSyslog(wc *zeroconfig.WriterConfig) (io.Writer, error) {
	sl, err := syslog.Dial(wc.Network, wc.Host, syslog.Priority(wc.Flags), wc.Tag)
	if err != nil {
		return nil, fmt.Errorf("failed to connect to syslog: %w", err)
	}
	if wc.Type == zeroconfig.WriterTypeSyslogCEE {
		return zerolog.SyslogCEEWriter(sl), nil
	}
	return zerolog.SyslogLevelWriter(sl), nil
}
