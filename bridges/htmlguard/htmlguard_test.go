package htmlguard

import (
	"strings"
	"testing"

	"golang.org/x/net/html"
)

func TestPrepare(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		ok       bool
		want     string // substring of the output when ok
	}{
		{name: "simple", in: "<b>x</b>", ok: true, want: "<b>x</b>"},
		{name: "depth at limit", in: strings.Repeat("<b>", MaxDepth-2) + "x", ok: true, want: "x"},
		{name: "depth over limit", in: strings.Repeat("<b>", MaxDepth-1) + "x"},
		{name: "deeper than x/net accepts", in: strings.Repeat("<i>", 600) + "x"},
		{name: "lists at limit", in: strings.Repeat("<ul><li>", MaxIndentDepth) + "x", ok: true, want: "x"},
		{name: "lists over limit", in: strings.Repeat("<ul><li>", MaxIndentDepth+1) + "x"},
		{name: "quotes and lists over limit", in: strings.Repeat("<blockquote><ol><li>", MaxIndentDepth/2) + "<blockquote>x"},
		{name: "deep divs refused before parsing", in: strings.Repeat("<div>", 300) + strings.Repeat("<li>", 1000)},
		{name: "many stray end tags deep down", in: strings.Repeat("<div>", 150) + strings.Repeat("</p>", 5000)},
		{name: "many tags not so deep", in: strings.Repeat("<div>", 20) + strings.Repeat("<b>x</b>", 5000), ok: true, want: "<b>x</b>"},
		{name: "unclosed p and li do not nest", in: strings.Repeat("<p>a", 5000) + "<ul>" + strings.Repeat("<li>b", 5000), ok: true, want: "<li>b</li>"},
		{name: "void and self-closed tags do not nest", in: strings.Repeat("<br><img src=x><hr/>", 1000) + "x", ok: true, want: "x"},
		{name: "sibling lists are not nested", in: strings.Repeat("<ul><li>a</li></ul>", 50), ok: true, want: "a"},
		{name: "smallest int list start dropped", in: `<ol start="-9223372036854775808"><li>x</li></ol>`, ok: true, want: "<ol><li>x"},
		{name: "overflowing list start dropped", in: `<ol start="99999999999999999999"><li>x</li></ol>`, ok: true, want: "<ol><li>x"},
		{name: "sane list start kept", in: `<ol start="3"><li>x</li></ol>`, ok: true, want: `<ol start="3">`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := Prepare(tc.in, nil)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if ok && !strings.Contains(got, tc.want) {
				t.Fatalf("got %q, want it to contain %q", got, tc.want)
			}
		})
	}
}

func TestPrepareRewrite(t *testing.T) {
	got, ok := Prepare("<blockquote>q</blockquote>", func(n *html.Node) {
		if n.Data == "blockquote" {
			n.Data, n.DataAtom = "font", 0
		}
	})
	if !ok || !strings.Contains(got, "<font>q</font>") {
		t.Fatalf("got %q, %v", got, ok)
	}
}
