package tgfmt

import (
	"context"
	"runtime"
	"strings"
	"testing"

	"maunium.net/go/mautrix/event"
)

// allocated returns the bytes f allocates.
func allocated(f func()) uint64 {
	f() // warm up
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestFromMatrixLinearAllocs compares the bytes allocated for k and 4k
// repetitions of hostile HTML: linear work allocates about 4 times more, quadratic work
// (copying the text at every level) 16 times.
func TestFromMatrixLinearAllocs(t *testing.T) {
	shapes := []struct {
		name string
		html func(k int) string
	}{
		{"nested_b", func(k int) string { return strings.Repeat("<b>a", k) }},
		{"nested_code", func(k int) string { return strings.Repeat("<code><b>a", k) }},
		{"nested_lists", func(k int) string { return strings.Repeat("<ul><li>a", k) }},
		{"nested_quotes", func(k int) string { return strings.Repeat("<blockquote>a<br>", k) }},
		{"nested_links", func(k int) string { return strings.Repeat(`<b><a href="https://e.org">e.org`, k) }},
		{"deep_then_text", func(k int) string { return strings.Repeat("<b><i>", 49) + strings.Repeat("a<br>", 50*k) }},
		{"many_p", func(k int) string { return strings.Repeat("<p>a", 50*k) }},
	}
	const k = 60 // repetitions; 4k nested stays under the 512 levels x/net/html accepts
	for _, tc := range shapes {
		t.Run(tc.name, func(t *testing.T) {
			measure := func(size int) uint64 {
				content := &event.MessageEventContent{MsgType: event.MsgText, Body: "plain", Format: event.FormatHTML, FormattedBody: tc.html(size)}
				return allocated(func() { FromMatrix(context.Background(), testDeps, content) })
			}
			small, big := measure(k), measure(4*k)
			if big > 6*small+4096 {
				t.Fatalf("allocated %d bytes for %d repetitions but %d for %d: faster than linear growth", small, k, big, 4*k)
			}
		})
	}
}

func TestFromMatrixFallsBackToBody(t *testing.T) {
	for _, tc := range []struct{ name, html string }{
		{"nested 100 deep", strings.Repeat("<b>", 100) + "x"},
		{"nested past x/net's limit", strings.Repeat("<i>", 600) + "x"},
		{"unclosed nested tags", fill("<b><i><s>a", MaxHTMLLength)},
		{"lists nested 9 deep", strings.Repeat("<ul><li>", 9) + "x"},
		{"quotes nested 9 deep", strings.Repeat("<blockquote>", 9) + "x"},
		{"over MaxHTMLLength", "<b>" + fill("x", MaxHTMLLength) + "</b>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			content := &event.MessageEventContent{MsgType: event.MsgText, Body: "the plain body", Format: event.FormatHTML, FormattedBody: tc.html}
			text, ents := FromMatrix(context.Background(), testDeps, content)
			if text != "the plain body" || len(ents) != 0 {
				t.Fatalf("text = %.40q with %d entities, want the plain body", text, len(ents))
			}
		})
	}
	content := &event.MessageEventContent{MsgType: event.MsgText, Body: "b", Format: event.FormatHTML,
		FormattedBody: strings.Repeat("<b>", 98) + "x" + strings.Repeat("</b>", 98) + strings.Repeat("<ul><li>", 8) + "y"}
	if text, ents := FromMatrix(context.Background(), testDeps, content); !strings.Contains(text, "x") || !strings.Contains(text, "y") || len(ents) == 0 {
		t.Fatalf("just under the limits: text = %q, %d entities", text, len(ents))
	}
}

func TestOrderedListStartCannotCrash(t *testing.T) {
	for _, start := range []string{"-9223372036854775808", "9223372036854775807", "-99999999999999999999", "x"} {
		content := &event.MessageEventContent{MsgType: event.MsgText, Body: "b", Format: event.FormatHTML,
			FormattedBody: `<ol start="` + start + `"><li>one</li><li>two</li></ol>`}
		if text, _ := FromMatrix(context.Background(), testDeps, content); text != "1. one\n2. two" {
			t.Errorf("start %s: text = %q", start, text)
		}
	}
}
