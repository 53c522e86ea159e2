package tgfmt

import (
	"context"
	"strings"
	"testing"

	"github.com/gotd/td/tg"
	"maunium.net/go/mautrix/event"

	"github.com/passerelle/passerelle/bridges/htmlguard/htmlguardtest"
)

// fill repeats unit until the result is n bytes long.
var fill = htmlguardtest.Fill

// Telegram's limits: 4096 UTF-16 code units of text; the entity count is
// capped by the server (we test well beyond it).
const (
	tgMaxUnits = 4096
	tgEntities = 10000
)

type hostileEntities struct {
	name     string
	text     string
	entities []tg.MessageEntityClass
}

func hostileTG() []hostileEntities {
	ascii := fill("a", tgMaxUnits)
	emoji := strings.Repeat("🙂", tgMaxUnits/2)
	var nested, same, tiny, urls, mentions, crossing []tg.MessageEntityClass
	for i := range tgEntities {
		o := i % tgMaxUnits
		nested = append(nested, &tg.MessageEntityBold{Offset: o / 2, Length: tgMaxUnits - o})
		same = append(same, &tg.MessageEntityItalic{Offset: 0, Length: tgMaxUnits})
		tiny = append(tiny, &tg.MessageEntityStrike{Offset: o, Length: 1})
		urls = append(urls, &tg.MessageEntityURL{Offset: o / 2, Length: tgMaxUnits - o})
		mentions = append(mentions, &tg.MessageEntityMentionName{Offset: o, Length: 1, UserID: 42})
		crossing = append(crossing, &tg.MessageEntityBold{Offset: o, Length: tgMaxUnits / 2})
	}
	return []hostileEntities{
		{"nested", ascii, nested},
		{"same_range", ascii, same},
		{"tiny", ascii, tiny},
		{"urls_nested", ascii, urls},
		{"mention_names", ascii, mentions},
		{"crossing", ascii, crossing},
		{"emoji_split_pairs", emoji, tiny},
	}
}

var hostileHTML = []struct{ name, html string }{
	{"deep_b", fill("<b>", MaxHTMLLength-1) + "x"},
	{"deep_b_500", strings.Repeat("<b>", 500) + fill("x", MaxHTMLLength-1500)},
	{"deep_mixed_closed", strings.Repeat("<b><i><s><u><code>", 95) + "x" + strings.Repeat("</code></u></s></i></b>", 95)},
	{"unclosed_attrs", fill(`<b x="1"><i y="2">a`, MaxHTMLLength)},
	{"huge_attrs", "<b " + fill(`a="1" `, MaxHTMLLength-10) + ">x</b>"},
	{"deep_98_accepted", strings.Repeat("<b><i>", 49) + fill("x ", MaxHTMLLength-500)},
	{"lists_8_accepted", strings.Repeat("<ul><li>a", 7) + fill("<li>b\n", MaxHTMLLength-100)},
	{"divs_then_items", strings.Repeat("<div>", 500) + fill("<li>", MaxHTMLLength-2500)},
	{"divs_199_then_end_p", strings.Repeat("<div>", 199) + fill("</p>", MaxHTMLLength-1000)},
	{"divs_199_then_end_x", strings.Repeat("<div>", 199) + fill("</x>", MaxHTMLLength-1000)},
	{"divs_14_then_end_p_accepted", strings.Repeat("<div>", 14) + fill("</p>", MaxHTMLLength-1000)},
	{"many_p", fill("<p>a", MaxHTMLLength)},
	{"lists", strings.Repeat("<ul><li>a", 90) + fill("<li>b", MaxHTMLLength-900)},
	{"blockquotes", fill("<blockquote>a", MaxHTMLLength)},
	{"code_in_code", strings.Repeat("<code><b>", 400) + fill("x", MaxHTMLLength-3600)},
	{"pills", fill(`<a href="https://matrix.to/#/@gw_telegram.42:test">B</a>`, MaxHTMLLength)},
	{"links", fill(`<a href="https://example.org/a">https://example.org/a</a>`, MaxHTMLLength)},
	{"markers_in_text", fill("\uFDD0\uFDD1\uFDD2<b>a", MaxHTMLLength)},
}

func BenchmarkToMatrixHostile(b *testing.B) {
	ctx := context.Background()
	for _, tc := range hostileTG() {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ToMatrix(ctx, testDeps, tc.text, tc.entities)
			}
		})
	}
}

func BenchmarkFromMatrixHostile(b *testing.B) {
	ctx := context.Background()
	for _, tc := range hostileHTML {
		b.Run(tc.name, func(b *testing.B) {
			content := &event.MessageEventContent{MsgType: event.MsgText, Body: "plain", Format: event.FormatHTML, FormattedBody: tc.html}
			b.ReportAllocs()
			b.SetBytes(int64(len(tc.html)))
			for b.Loop() {
				FromMatrix(ctx, testDeps, content)
			}
		})
	}
}

func BenchmarkSplitHostile(b *testing.B) {
	long := fill("Bonjour 🙂 tout le monde\n", MaxHTMLLength)
	noBreak := fill("x", MaxHTMLLength)
	var nested, tiny []tg.MessageEntityClass
	n := units(long)
	for i := range tgEntities {
		nested = append(nested, &tg.MessageEntityBold{Offset: i % 1000, Length: n - i%1000 - 1})
		tiny = append(tiny, &tg.MessageEntityItalic{Offset: (i * 3) % n, Length: 2})
	}
	for _, tc := range []struct {
		name string
		text string
		ents []tg.MessageEntityClass
	}{
		{"long_plain", long, nil},
		{"no_break", noBreak, nil},
		{"nested_entities", long, nested},
		{"tiny_entities", long, tiny},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Split(tc.text, tc.ents, DefaultLimits)
			}
		})
	}
}
