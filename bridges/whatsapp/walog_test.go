package whatsapp

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// whatsmeow's own context logs follow its printf logs: its debug lines
// show at trace level, not at debug; its warnings always show, tagged with
// the component.
func TestLibraryContextLogLevels(t *testing.T) {
	for _, tc := range []struct {
		level     zerolog.Level
		wantDebug bool
	}{
		{zerolog.DebugLevel, false},
		{zerolog.TraceLevel, true},
	} {
		var out bytes.Buffer
		log := zerolog.New(&out).Level(tc.level)
		ctx := libraryContext(context.Background(), log)
		zerolog.Ctx(ctx).Debug().Msg("Deleted event plaintext from buffer")
		zerolog.Ctx(ctx).Warn().Msg("Failed to update app state")
		got := out.String()
		if strings.Contains(got, "Deleted event plaintext") != tc.wantDebug {
			t.Errorf("at %s, whatsmeow's debug line shown: %v, want %v (log %q)", tc.level, !tc.wantDebug, tc.wantDebug, got)
		}
		if !strings.Contains(got, `"level":"warn","component":"whatsmeow"`) {
			t.Errorf("at %s, whatsmeow's warning missing or untagged: %q", tc.level, got)
		}
	}
}
