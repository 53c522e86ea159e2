package wafmt

import (
	"context"
	"strings"
	"testing"
	"unicode/utf8"

	"maunium.net/go/mautrix/event"
)

func FuzzToMatrix(f *testing.F) {
	f.Add("*bold* _it_ ~gone~ `code` ```block\nx```", false)
	f.Add("> quoted *b*\n> more\nreply @15550002222", true)
	f.Add("snake_case_name and 2*3*4 *a _b ~c `d", false)
	f.Add(strings.Repeat("*_~`", 64), true)
	f.Add("*<script>alert(1)</script>* @15550001111!", true)
	f.Add("a\xffb *x*", false)
	f.Fuzz(func(t *testing.T, text string, mention bool) {
		var mentioned []string
		if mention {
			mentioned = []string{"15550002222@s.whatsapp.net", "15550001111@s.whatsapp.net", "bad@"}
		}
		c := ToMatrix(context.Background(), testDeps, text, mentioned)
		if !utf8.ValidString(c.Body) || !utf8.ValidString(c.FormattedBody) {
			t.Fatalf("invalid UTF-8 out: %q / %q", c.Body, c.FormattedBody)
		}
		if c.FormattedBody == "" && utf8.ValidString(text) && c.Body != text {
			t.Fatalf("plain body changed: %q", c.Body)
		}
		// Escaping grows text at most 6 times; each mention (3+ bytes)
		// becomes a pill of about 80 bytes.
		if limit := 40*len(text) + 16; len(c.FormattedBody) > limit || len(c.Body) > limit {
			t.Fatalf("%d bytes of HTML for %d bytes of text", len(c.FormattedBody), len(text))
		}
		if c.FormattedBody != "" {
			// What we produce must come back through FromMatrix.
			back := FromMatrix(context.Background(), testDeps, c)
			if !utf8.ValidString(back.Text) {
				t.Fatalf("round trip gave invalid UTF-8: %q", back.Text)
			}
		}
	})
}

func FuzzFromMatrix(f *testing.F) {
	f.Add("<b>bold</b> <em>it</em> <del>s</del> <code>c</code>", "b")
	f.Add(`<a href="https://matrix.to/#/@gw_whatsapp.15550002222:test">Bob</a>: hi`, "Bob: hi")
	f.Add("<pre><code>a\n</code></pre><blockquote>q<br>r</blockquote><hr>", "b")
	f.Add(`<ol start="-9223372036854775808"><li>one</li></ol><ul><li><ul><li>x`, "b")
	f.Add(strings.Repeat("<b>", 120)+"deep", "plain body")
	f.Add("<b>unclosed <i>tags\t<p>x<table><tr><td>t", "b")
	f.Fuzz(func(t *testing.T, htmlData, body string) {
		content := &event.MessageEventContent{MsgType: event.MsgText, Body: body, Format: event.FormatHTML, FormattedBody: htmlData}
		out := FromMatrix(context.Background(), testDeps, content)
		if utf8.ValidString(htmlData) && utf8.ValidString(body) && !utf8.ValidString(out.Text) {
			t.Fatalf("text is not valid UTF-8: %q", out.Text)
		}
		if len(out.Text) > MaxLength {
			t.Fatalf("%d bytes of text, over WhatsApp's %d", len(out.Text), MaxLength)
		}
		if limit := 64*len(htmlData) + len(body) + 8; len(out.Text) > limit {
			t.Fatalf("%d bytes of text for %d bytes of HTML", len(out.Text), len(htmlData))
		}
		for _, jid := range out.Mentioned {
			if jid != "15550002222@s.whatsapp.net" && jid != "15550001111@s.whatsapp.net" {
				t.Fatalf("mentioned %q, which no pill named", jid)
			}
		}
	})
}
