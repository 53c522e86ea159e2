package wafmt

import (
	"context"
	"slices"
	"strings"
	"testing"

	"go.mau.fi/whatsmeow/types"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

var testDeps = Deps{
	UserMXID: func(_ context.Context, jid types.JID) (id.UserID, string, bool) {
		switch jid.User {
		case "15550002222":
			return "@gw_whatsapp.15550002222:test", "Bob", true
		case "15550001111":
			return "@alice:test", "Alice <admin>", true
		}
		return "", "", false
	},
	WhatsAppJID: func(_ context.Context, mxid id.UserID) (types.JID, bool) {
		switch mxid {
		case "@gw_whatsapp.15550002222:test":
			return types.NewJID("15550002222", types.DefaultUserServer), true
		case "@alice:test":
			return types.NewJID("15550001111", types.DefaultUserServer), true
		}
		return types.EmptyJID, false
	},
}

func TestToMatrix(t *testing.T) {
	bob := "15550002222@s.whatsapp.net"
	for _, tc := range []struct {
		name, in      string
		mentioned     []string
		html, body    string
		mentionsMXIDs []id.UserID
	}{
		{name: "plain", in: "hello world", body: "hello world"},
		{name: "bold", in: "a *bold* b", html: "a <strong>bold</strong> b", body: "a *bold* b"},
		{name: "italic strike", in: "_it_ and ~gone~", html: "<em>it</em> and <del>gone</del>", body: "_it_ and ~gone~"},
		{name: "nested", in: "*bold _both_*", html: "<strong>bold <em>both</em></strong>", body: "*bold _both_*"},
		{name: "inline code keeps markers", in: "`*x*`", html: "<code>*x*</code>", body: "`*x*`"},
		{name: "mono block", in: "see ```a\n*b*``` end", html: "see <pre><code>a\n*b*</code></pre> end", body: "see ```a\n*b*``` end"},
		{name: "mono inline", in: "```x < y```", html: "<code>x &lt; y</code>", body: "```x < y```"},
		{name: "quote", in: "> quoted *b*\n> more\nreply", html: "<blockquote>quoted <strong>b</strong><br>more</blockquote>reply", body: "> quoted *b*\n> more\nreply"},
		{name: "snake_case is not italic", in: "snake_case_name and 2*3*4", body: "snake_case_name and 2*3*4"},
		{name: "spaced markers are literal", in: "* not bold * and _ no _", body: "* not bold * and _ no _"},
		{name: "unclosed", in: "*open and ~also", body: "*open and ~also"},
		{name: "html escaped when formatted", in: "*<script>alert(1)</script>*", html: "<strong>&lt;script&gt;alert(1)&lt;/script&gt;</strong>", body: "*<script>alert(1)</script>*"},
		{name: "html in plain stays body only", in: "<b>not html</b>", body: "<b>not html</b>"},
		{name: "multiline", in: "*a*\nb", html: "<strong>a</strong><br>b", body: "*a*\nb"},
		{name: "mention", in: "hi @15550002222!", mentioned: []string{bob},
			html: `hi <a href="https://matrix.to/#/@gw_whatsapp.15550002222:test">Bob</a>!`, body: "hi Bob!", mentionsMXIDs: []id.UserID{"@gw_whatsapp.15550002222:test"}},
		{name: "mention name escaped", in: "@15550001111", mentioned: []string{"15550001111@s.whatsapp.net"},
			html: `<a href="https://matrix.to/#/@alice:test">Alice &lt;admin&gt;</a>`, body: "Alice <admin>", mentionsMXIDs: []id.UserID{"@alice:test"}},
		{name: "unlisted number is text", in: "call @15550002222", body: "call @15550002222"},
		{name: "unknown mention stays", in: "@15559999999", mentioned: []string{"15559999999@s.whatsapp.net"}, body: "@15559999999"},
		{name: "malformed mentioned JIDs ignored", in: "@1 @x", mentioned: []string{"", "@", "1@g.us", "x@s.whatsapp.net:bad"}, body: "@1 @x"},
		{name: "mention in bold", in: "*@15550002222*", mentioned: []string{bob},
			html: `<strong><a href="https://matrix.to/#/@gw_whatsapp.15550002222:test">Bob</a></strong>`, body: "*Bob*", mentionsMXIDs: []id.UserID{"@gw_whatsapp.15550002222:test"}},
		{name: "empty code block", in: "``````", body: "``````"},
		{name: "invalid utf8", in: "a\xffb", body: "a\uFFFDb"},
		{name: "deep nesting", in: strings.Repeat("*_", 40) + "x" + strings.Repeat("_*", 40), body: strings.Repeat("*_", 40) + "x" + strings.Repeat("_*", 40)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ToMatrix(context.Background(), testDeps, tc.in, tc.mentioned)
			if tc.name == "deep nesting" {
				if got.Body != tc.body || !strings.Contains(got.FormattedBody, "x") {
					t.Fatalf("deep nesting lost text: %q", got.FormattedBody)
				}
				return
			}
			if got.Body != tc.body {
				t.Errorf("body = %q, want %q", got.Body, tc.body)
			}
			if got.FormattedBody != tc.html {
				t.Errorf("html = %q, want %q", got.FormattedBody, tc.html)
			}
			if (tc.html != "") != (got.Format == event.FormatHTML) {
				t.Errorf("format = %q", got.Format)
			}
			if !slices.Equal(got.Mentions.UserIDs, tc.mentionsMXIDs) {
				t.Errorf("mentions = %v, want %v", got.Mentions.UserIDs, tc.mentionsMXIDs)
			}
		})
	}
}

func TestFromMatrix(t *testing.T) {
	bob := "15550002222@s.whatsapp.net"
	for _, tc := range []struct {
		name, body, html string
		mentions         []id.UserID
		text             string
		mentioned        []string
	}{
		{name: "plain", body: "hello *world*", text: "hello *world*"},
		{name: "bold italic strike", body: "x", html: "<b>bold</b> <em>it</em> <del>gone</del>", text: "*bold* _it_ ~gone~"},
		{name: "marker spaces outside", body: "x", html: "a <b>spaced</b> b", text: "a *spaced* b"},
		{name: "code", body: "x", html: "<code>a*b</code> and <pre><code>line1\nline2\n</code></pre>", text: "`a*b` and \n```line1\nline2```"},
		{name: "quote", body: "x", html: "<blockquote>quoted<br>two</blockquote>reply", text: "> quoted\n> two\nreply"},
		{name: "pill to ghost", body: "Bob: hi", html: `<a href="https://matrix.to/#/@gw_whatsapp.15550002222:test">Bob</a>: hi`, text: "@15550002222: hi", mentioned: []string{bob}},
		{name: "pill to logged-in user", body: "x", html: `<a href="https://matrix.to/#/@alice:test">Alice</a>`, text: "@15550001111", mentioned: []string{"15550001111@s.whatsapp.net"}},
		{name: "pill to plain matrix user", body: "x", html: `<a href="https://matrix.to/#/@carol:test">Carol</a>`, text: "Carol"},
		{name: "duplicate pills", body: "x", html: `<a href="https://matrix.to/#/@gw_whatsapp.15550002222:test">B</a> <a href="https://matrix.to/#/@gw_whatsapp.15550002222:test">B</a>`, text: "@15550002222 @15550002222", mentioned: []string{bob}},
		{name: "script dropped to text", body: "x", html: "<script>alert(1)</script>ok", text: "alert(1)ok"},
		{name: "broken html", body: "x", html: "<b>unclosed <i>tags", text: "*unclosed _tags_*"},
		{name: "link", body: "x", html: `<a href="https://example.org">site</a>`, text: "site (https://example.org)"},
		{name: "plain with m.mentions", body: "hi @15550002222", mentions: []id.UserID{"@gw_whatsapp.15550002222:test", "@nobody:test"}, text: "hi @15550002222", mentioned: []string{bob}},
		{name: "plain mention not in text", body: "hi", mentions: []id.UserID{"@gw_whatsapp.15550002222:test"}, text: "hi"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			content := &event.MessageEventContent{MsgType: event.MsgText, Body: tc.body}
			if tc.html != "" {
				content.Format, content.FormattedBody = event.FormatHTML, tc.html
			}
			if tc.mentions != nil {
				content.Mentions = &event.Mentions{UserIDs: tc.mentions}
			}
			got := FromMatrix(context.Background(), testDeps, content)
			if got.Text != tc.text {
				t.Errorf("text = %q, want %q", got.Text, tc.text)
			}
			if !slices.Equal(got.Mentioned, tc.mentioned) {
				t.Errorf("mentioned = %v, want %v", got.Mentioned, tc.mentioned)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	for _, in := range []string{"*a* _b_ ~c~", "> q\nr", "`x`", "plain text"} {
		m := ToMatrix(context.Background(), testDeps, in, nil)
		if m.FormattedBody == "" {
			m.Format, m.FormattedBody = event.FormatHTML, m.Body
		}
		if got := FromMatrix(context.Background(), testDeps, m).Text; got != in {
			t.Errorf("round trip of %q gave %q", in, got)
		}
	}
}

func TestNilDeps(t *testing.T) {
	got := ToMatrix(context.Background(), Deps{}, "@15550002222 *x*", []string{"15550002222@s.whatsapp.net"})
	if got.Body != "@15550002222 *x*" || !strings.Contains(got.FormattedBody, "@15550002222") {
		t.Fatalf("nil deps: %+v", got)
	}
	out := FromMatrix(context.Background(), Deps{}, &event.MessageEventContent{Body: "x", Format: event.FormatHTML,
		FormattedBody: `<a href="https://matrix.to/#/@gw_whatsapp.15550002222:test">Bob</a>`})
	if out.Text != "Bob" || out.Mentioned != nil {
		t.Fatalf("nil deps: %+v", out)
	}
}
