package wafmt

import (
	"context"
	"strings"
	"testing"
	"unicode/utf8"

	"go.mau.fi/whatsmeow/types"
	"maunium.net/go/mautrix/event"

	"github.com/passerelle/passerelle/bridges/htmlguard/htmlguardtest"
)

// TestToMatrixLinearWork counts the steps spent on markers: a return of the
// scan-to-the-end-of-line for every opener would make them grow with the
// square of the length.
func TestToMatrixLinearWork(t *testing.T) {
	for _, tc := range hostileText {
		t.Run(tc.name, func(t *testing.T) {
			c := &toMatrix{ctx: context.Background(), mentions: map[string]types.JID{}, pills: map[string]pill{}, content: &event.MessageEventContent{Mentions: &event.Mentions{}}}
			c.blocks(tc.text)
			if limit := 4 * len(tc.text); c.steps > limit {
				t.Fatalf("%d steps for %d bytes, want at most %d", c.steps, len(tc.text), limit)
			}
		})
	}
}

// TestFromMatrixLinearAllocs compares the bytes allocated for k and 4k
// repetitions of hostile HTML: linear work allocates about 4 times more, quadratic work
// (copying the text at every level) 16 times.
func TestFromMatrixLinearAllocs(t *testing.T) {
	htmlguardtest.LinearAllocs(t, []htmlguardtest.Shape{
		{Name: "nested_b", HTML: func(k int) string { return strings.Repeat("<b>", k) }},
		{Name: "nested_lists", HTML: func(k int) string { return strings.Repeat("<ul><li>a", k) }},
		{Name: "nested_quotes", HTML: func(k int) string { return strings.Repeat("<blockquote>a<br>", k) }},
		{Name: "deep_then_text", HTML: func(k int) string { return strings.Repeat("<b><i>", 49) + strings.Repeat("a<br>", 50*k) }},
		{Name: "lists_then_items", HTML: func(k int) string { return strings.Repeat("<ol><li>", 8) + strings.Repeat("<li>b", 50*k) }},
		{Name: "many_p", HTML: func(k int) string { return strings.Repeat("<p>a", 50*k) }},
	}, func(html string) {
		content := &event.MessageEventContent{MsgType: event.MsgText, Body: "plain", Format: event.FormatHTML, FormattedBody: html}
		FromMatrix(context.Background(), testDeps, content)
	})
}

func TestFromMatrixFallsBackToBody(t *testing.T) {
	for _, tc := range []struct{ name, html string }{
		{"nested 100 deep", strings.Repeat("<b>", 100) + "x"},
		{"nested past x/net's limit", strings.Repeat("<i>", 600) + "x"},
		{"unclosed nested tags", fill("<b><i><s>a", MaxLength)},
		{"lists nested 9 deep", strings.Repeat("<ul><li>", 9) + "x"},
		{"quotes nested 9 deep", strings.Repeat("<blockquote>", 9) + "x"},
		{"over MaxLength", "<b>" + fill("x", MaxLength) + "</b>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			content := &event.MessageEventContent{MsgType: event.MsgText, Body: "the plain body", Format: event.FormatHTML, FormattedBody: tc.html}
			if got := FromMatrix(context.Background(), testDeps, content); got.Text != "the plain body" {
				t.Fatalf("text = %.40q, want the plain body", got.Text)
			}
		})
	}
	// Just under the limits, formatting is kept.
	content := &event.MessageEventContent{MsgType: event.MsgText, Body: "b", Format: event.FormatHTML,
		FormattedBody: strings.Repeat("<b>", 98) + "x" + strings.Repeat("</b>", 98) + strings.Repeat("<ul><li>", 8) + "y"}
	if got := FromMatrix(context.Background(), testDeps, content); !strings.Contains(got.Text, "*x") || !strings.Contains(got.Text, "y") {
		t.Fatalf("text = %q", got.Text)
	}
}

func TestOrderedListStartCannotCrash(t *testing.T) {
	for _, start := range []string{"-9223372036854775808", "9223372036854775807", "-99999999999999999999", "x"} {
		content := &event.MessageEventContent{MsgType: event.MsgText, Body: "b", Format: event.FormatHTML,
			FormattedBody: `<ol start="` + start + `"><li>one</li><li>two</li></ol>`}
		if got := FromMatrix(context.Background(), testDeps, content); got.Text != "1. one\n2. two" {
			t.Errorf("start %s: text = %q", start, got.Text)
		}
	}
}

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		cut      bool
	}{
		{"short", "hello", false},
		{"exactly the limit", fill("a", MaxLength), false},
		{"one over", fill("a", MaxLength+1), true},
		{"multibyte at the cut", fill("é🙂", MaxLength+100), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Truncate(tc.in)
			if len(got) > MaxLength || !utf8.ValidString(got) {
				t.Fatalf("len %d, valid %v", len(got), utf8.ValidString(got))
			}
			if tc.cut != strings.HasSuffix(got, TruncatedMarker) || (!tc.cut && got != tc.in) {
				t.Fatalf("cut = %v, got ...%q", tc.cut, got[max(0, len(got)-30):])
			}
			if tc.cut && !strings.HasPrefix(tc.in, strings.TrimSuffix(got, TruncatedMarker)) {
				t.Fatal("kept text is not a prefix of the input")
			}
		})
	}
	long := &event.MessageEventContent{MsgType: event.MsgText, Body: fill("word ", 70000)}
	if got := FromMatrix(context.Background(), testDeps, long); !strings.HasSuffix(got.Text, TruncatedMarker) {
		t.Fatal("a long plain message is not truncated with a marker")
	}
}
