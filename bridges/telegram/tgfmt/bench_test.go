package tgfmt

import (
	"context"
	"strings"
	"testing"

	"github.com/gotd/td/tg"
	"maunium.net/go/mautrix/event"
)

// A typical chat message: a few hundred characters with bold, italic, a link
// and code, converted once per bridged message.
var (
	benchText     = strings.Repeat("Bonjour Alice, voici le compte rendu de la réunion 🙂 ", 6)
	benchEntities = []tg.MessageEntityClass{
		&tg.MessageEntityBold{Offset: 0, Length: 7},
		&tg.MessageEntityItalic{Offset: 15, Length: 5},
		&tg.MessageEntityTextURL{Offset: 21, Length: 6, URL: "https://example.org/cr"},
		&tg.MessageEntityCode{Offset: 60, Length: 10},
	}
	benchHTML = strings.Repeat(`<b>Bonjour</b> Alice, <em>voici</em> le <a href="https://example.org/cr">compte</a> rendu <code>réunion</code> 🙂 `, 6)
)

func BenchmarkToMatrix(b *testing.B) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if c := ToMatrix(ctx, Deps{}, benchText, benchEntities); c.FormattedBody == "" {
			b.Fatal("no HTML")
		}
	}
}

func BenchmarkFromMatrix(b *testing.B) {
	ctx := context.Background()
	content := &event.MessageEventContent{MsgType: event.MsgText, Body: benchText, Format: event.FormatHTML, FormattedBody: benchHTML}
	b.ReportAllocs()
	for b.Loop() {
		if _, ents := FromMatrix(ctx, Deps{}, content); len(ents) == 0 {
			b.Fatal("no entities")
		}
	}
}
