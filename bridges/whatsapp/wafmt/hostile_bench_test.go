package wafmt

import (
	"context"
	"strings"
	"testing"

	"maunium.net/go/mautrix/event"

	"github.com/passerelle/passerelle/bridges/htmlguard/htmlguardtest"
)

// fill repeats unit until the result is n bytes long.
var fill = htmlguardtest.Fill

// Worst cases for WhatsApp text, at WhatsApp's maximum length.
var hostileText = []struct{ name, text string }{
	{"unclosed_mixed", fill("*_~`", MaxLength)},
	{"unclosed_star_a", fill("*a", MaxLength)},
	{"openers_spaced", fill("*a _b ~c `d ", MaxLength)},
	{"open_star_space", fill("*a ", MaxLength)},
	{"nested_deep", strings.Repeat("*_~", MaxLength/12) + "x" + strings.Repeat("~_*", MaxLength/12)},
	{"ticks", fill("`a`` ", MaxLength)},
	{"fences", fill("```a", MaxLength)},
	{"quotes", fill("> *a\n", MaxLength)},
	{"mentions", fill("@15550002222 ", MaxLength)},
}

// Worst cases for Matrix HTML: 64 KiB and more.
var hostileHTML = []struct{ name, html string }{
	{"deep_b", fill("<b>", MaxLength-1) + "x"},
	{"deep_b_500", strings.Repeat("<b>", 500) + fill("x", MaxLength-1500)},
	{"deep_mixed_closed", strings.Repeat("<b><i><s><u><code>", 95) + "x" + strings.Repeat("</code></u></s></i></b>", 95)},
	{"unclosed_attrs", fill(`<b x="1"><i y="2">a`, MaxLength)},
	{"unclosed_distinct", hostileDistinct(3000)},
	{"huge_attrs", "<b " + fill(`a="1" `, MaxLength-10) + ">x</b>"},
	{"deep_98_accepted", strings.Repeat("<b><i>", 49) + fill("x ", MaxLength-500)},
	{"lists_8_accepted", strings.Repeat("<ul><li>a", 7) + fill("<li>b\n", MaxLength-100)},
	{"divs_then_items", strings.Repeat("<div>", 500) + fill("<li>", MaxLength-2500)},
	{"divs_199_then_end_p", strings.Repeat("<div>", 199) + fill("</p>", MaxLength-1000)},
	{"divs_199_then_end_x", strings.Repeat("<div>", 199) + fill("</x>", MaxLength-1000)},
	{"divs_14_then_end_p_accepted", strings.Repeat("<div>", 14) + fill("</p>", MaxLength-1000)},
	{"many_p", fill("<p>a", MaxLength)},
	{"lists", strings.Repeat("<ul><li>a", 90) + fill("<li>b", 60000)},
	{"pills", fill(`<a href="https://matrix.to/#/@gw_whatsapp.15550002222:test">B</a>`, MaxLength)},
	{"tables", fill("<table><tr><td>a", MaxLength)},
}

func hostileDistinct(n int) string {
	var sb strings.Builder
	for i := 0; sb.Len() < MaxLength; i++ {
		sb.WriteString(`<b class="c`)
		sb.WriteString(strings.Repeat("x", i%n))
		sb.WriteString(`">a`)
	}
	return sb.String()[:MaxLength]
}

func BenchmarkToMatrixHostile(b *testing.B) {
	ctx := context.Background()
	for _, tc := range hostileText {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(tc.text)))
			for b.Loop() {
				ToMatrix(ctx, testDeps, tc.text, []string{"15550002222@s.whatsapp.net"})
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
