package tgfmt

import (
	"context"
	"strings"
	"testing"

	"maunium.net/go/mautrix/event"

	"github.com/passerelle/passerelle/bridges/htmlguard/htmlguardtest"
)

// TestFromMatrixLinearAllocs compares the bytes allocated for k and 4k
// repetitions of hostile HTML: linear work allocates about 4 times more, quadratic work
// (copying the text at every level) 16 times.
func TestFromMatrixLinearAllocs(t *testing.T) {
	htmlguardtest.LinearAllocs(t, []htmlguardtest.Shape{
		{Name: "nested_b", HTML: func(k int) string { return strings.Repeat("<b>a", k) }},
		{Name: "nested_code", HTML: func(k int) string { return strings.Repeat("<code><b>a", k) }},
		{Name: "nested_lists", HTML: func(k int) string { return strings.Repeat("<ul><li>a", k) }},
		{Name: "nested_quotes", HTML: func(k int) string { return strings.Repeat("<blockquote>a<br>", k) }},
		{Name: "nested_links", HTML: func(k int) string { return strings.Repeat(`<b><a href="https://e.org">e.org`, k) }},
		{Name: "deep_then_text", HTML: func(k int) string { return strings.Repeat("<b><i>", 49) + strings.Repeat("a<br>", 50*k) }},
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
