package wafmt

import (
	"context"
	"strings"
	"testing"

	"maunium.net/go/mautrix/event"
)

// A typical chat message of a few hundred characters with WhatsApp markup,
// converted once per bridged message.
var (
	benchText = strings.Repeat("*Bonjour* Alice, _voici_ le ~brouillon~ du ```compte rendu``` 🙂\n> cité\n", 4)
	benchHTML = strings.Repeat(`<b>Bonjour</b> Alice, <em>voici</em> le <del>brouillon</del> du <code>compte rendu</code> 🙂<blockquote>cité</blockquote>`, 4)
)

func BenchmarkToMatrix(b *testing.B) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if c := ToMatrix(ctx, Deps{}, benchText, nil); c.FormattedBody == "" {
			b.Fatal("no HTML")
		}
	}
}

func BenchmarkFromMatrix(b *testing.B) {
	ctx := context.Background()
	content := &event.MessageEventContent{MsgType: event.MsgText, Body: "plain", Format: event.FormatHTML, FormattedBody: benchHTML}
	b.ReportAllocs()
	for b.Loop() {
		if out := FromMatrix(ctx, Deps{}, content); !strings.Contains(out.Text, "*Bonjour*") {
			b.Fatalf("unexpected text %q", out.Text)
		}
	}
}
