package tgfmt

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gotd/td/tg"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

var testDeps = Deps{
	UserMXID: func(_ context.Context, uid int64) (id.UserID, string, bool) {
		if uid == 42 {
			return "@gw_telegram.42:example.org", "Alice", true
		}
		return "", "", false
	},
	UsernameMXID: func(_ context.Context, username string) (id.UserID, bool) {
		if username == "alice" {
			return "@gw_telegram.42:example.org", true
		}
		return "", false
	},
	TelegramUserID: func(_ context.Context, mxid id.UserID) (int64, bool) {
		switch mxid {
		case "@gw_telegram.42:example.org":
			return 42, true
		case "@bob:example.org":
			return 7, true
		}
		return 0, false
	},
}

func TestToMatrix(t *testing.T) {
	cases := []struct {
		name     string
		text     string
		ents     []tg.MessageEntityClass
		wantHTML string // "" = no formatted body
		mentions []id.UserID
	}{
		{name: "plain", text: "hello <world>", wantHTML: ""},
		{name: "bold", text: "hello world", ents: []tg.MessageEntityClass{&tg.MessageEntityBold{Offset: 6, Length: 5}},
			wantHTML: "hello <strong>world</strong>"},
		{name: "escaping", text: "a<b>&c", ents: []tg.MessageEntityClass{&tg.MessageEntityItalic{Offset: 1, Length: 3}},
			wantHTML: "a<em>&lt;b&gt;</em>&amp;c"},
		{name: "all simple", text: "bius", ents: []tg.MessageEntityClass{
			&tg.MessageEntityBold{Offset: 0, Length: 1}, &tg.MessageEntityItalic{Offset: 1, Length: 1},
			&tg.MessageEntityUnderline{Offset: 2, Length: 1}, &tg.MessageEntityStrike{Offset: 3, Length: 1}},
			wantHTML: "<strong>b</strong><em>i</em><u>u</u><del>s</del>"},
		{name: "nested", text: "bold italic", ents: []tg.MessageEntityClass{
			&tg.MessageEntityBold{Offset: 0, Length: 11}, &tg.MessageEntityItalic{Offset: 5, Length: 6}},
			wantHTML: "<strong>bold <em>italic</em></strong>"},
		{name: "overlap clipped", text: "abcdef", ents: []tg.MessageEntityClass{
			&tg.MessageEntityBold{Offset: 0, Length: 4}, &tg.MessageEntityItalic{Offset: 2, Length: 4}},
			wantHTML: "<strong>ab<em>cd</em></strong>ef"},
		{name: "utf16 offsets", text: "😀 bold", ents: []tg.MessageEntityClass{&tg.MessageEntityBold{Offset: 3, Length: 4}},
			wantHTML: "😀 <strong>bold</strong>"},
		{name: "surrogate not split", text: "x😀y", ents: []tg.MessageEntityClass{&tg.MessageEntityBold{Offset: 2, Length: 1}},
			wantHTML: "x<strong>😀</strong>y"},
		{name: "code", text: "run ls -l now", ents: []tg.MessageEntityClass{&tg.MessageEntityCode{Offset: 4, Length: 5}},
			wantHTML: "run <code>ls -l</code> now"},
		{name: "pre with language", text: "x\nfunc main() {}\n", ents: []tg.MessageEntityClass{
			&tg.MessageEntityPre{Offset: 2, Length: 14, Language: "go"}},
			wantHTML: "x<br><pre><code class=\"language-go\">func main() {}</code></pre><br>"},
		{name: "pre hostile language", text: "code", ents: []tg.MessageEntityClass{
			&tg.MessageEntityPre{Offset: 0, Length: 4, Language: `"><script>`}},
			wantHTML: "<pre><code>code</code></pre>"},
		{name: "entity inside code dropped", text: "abc", ents: []tg.MessageEntityClass{
			&tg.MessageEntityCode{Offset: 0, Length: 3}, &tg.MessageEntityBold{Offset: 1, Length: 1}},
			wantHTML: "<code>abc</code>"},
		{name: "text url", text: "click here", ents: []tg.MessageEntityClass{
			&tg.MessageEntityTextURL{Offset: 6, Length: 4, URL: "https://example.com/?a=1&b=\"2\""}},
			wantHTML: `click <a href="https://example.com/?a=1&amp;b=&#34;2&#34;">here</a>`},
		{name: "javascript url not linked", text: "click", ents: []tg.MessageEntityClass{
			&tg.MessageEntityTextURL{Offset: 0, Length: 5, URL: "javascript:alert(1)"}},
			wantHTML: "click"},
		{name: "bare url", text: "see example.com/x", ents: []tg.MessageEntityClass{&tg.MessageEntityURL{Offset: 4, Length: 13}},
			wantHTML: `see <a href="https://example.com/x">example.com/x</a>`},
		{name: "mention name", text: "hi Alice", ents: []tg.MessageEntityClass{&tg.MessageEntityMentionName{Offset: 3, Length: 5, UserID: 42}},
			wantHTML: `hi <a href="https://matrix.to/#/@gw_telegram.42:example.org">Alice</a>`,
			mentions: []id.UserID{"@gw_telegram.42:example.org"}},
		{name: "mention name unknown", text: "hi Zed", ents: []tg.MessageEntityClass{&tg.MessageEntityMentionName{Offset: 3, Length: 3, UserID: 99}},
			wantHTML: "hi Zed"},
		{name: "mention username known", text: "hi @alice", ents: []tg.MessageEntityClass{&tg.MessageEntityMention{Offset: 3, Length: 6}},
			wantHTML: `hi <a href="https://matrix.to/#/@gw_telegram.42:example.org">@alice</a>`,
			mentions: []id.UserID{"@gw_telegram.42:example.org"}},
		{name: "mention username unknown", text: "hi @carol", ents: []tg.MessageEntityClass{&tg.MessageEntityMention{Offset: 3, Length: 6}},
			wantHTML: `hi <a href="https://t.me/carol">@carol</a>`},
		{name: "blockquote and spoiler", text: "quote\nsecret", ents: []tg.MessageEntityClass{
			&tg.MessageEntityBlockquote{Offset: 0, Length: 5}, &tg.MessageEntitySpoiler{Offset: 6, Length: 6}},
			wantHTML: "<blockquote>quote</blockquote><br><span data-mx-spoiler>secret</span>"},
		{name: "offset out of range", text: "short", ents: []tg.MessageEntityClass{&tg.MessageEntityBold{Offset: 3, Length: 50}},
			wantHTML: ""},
		{name: "negative offset", text: "short", ents: []tg.MessageEntityClass{&tg.MessageEntityBold{Offset: -1, Length: 2}},
			wantHTML: ""},
		{name: "zero length", text: "short", ents: []tg.MessageEntityClass{&tg.MessageEntityBold{Offset: 1, Length: 0}},
			wantHTML: ""},
		{name: "huge offset", text: "short", ents: []tg.MessageEntityClass{&tg.MessageEntityBold{Offset: 1 << 30, Length: 1 << 30}},
			wantHTML: ""},
		{name: "nil and unknown entity", text: "short #tag", ents: []tg.MessageEntityClass{nil, &tg.MessageEntityHashtag{Offset: 6, Length: 4}},
			wantHTML: ""},
		{name: "valid kept beside invalid", text: "ab", ents: []tg.MessageEntityClass{
			&tg.MessageEntityBold{Offset: 5, Length: 1}, &tg.MessageEntityItalic{Offset: 0, Length: 1}},
			wantHTML: "<em>a</em>b"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := ToMatrix(context.Background(), testDeps, c.text, c.ents)
			if got.Body != c.text {
				t.Errorf("body = %q, want the text %q", got.Body, c.text)
			}
			if got.MsgType != event.MsgText {
				t.Errorf("msgtype = %q", got.MsgType)
			}
			if c.wantHTML == "" {
				if got.Format != "" || got.FormattedBody != "" {
					t.Errorf("unexpected formatted body %q", got.FormattedBody)
				}
			} else if got.Format != event.FormatHTML || got.FormattedBody != c.wantHTML {
				t.Errorf("formatted body = %q, want %q", got.FormattedBody, c.wantHTML)
			}
			var gotMentions []id.UserID
			if got.Mentions != nil {
				gotMentions = got.Mentions.UserIDs
			}
			if len(gotMentions) != len(c.mentions) || (len(c.mentions) > 0 && gotMentions[0] != c.mentions[0]) {
				t.Errorf("mentions = %v, want %v", gotMentions, c.mentions)
			}
		})
	}
}

func TestToMatrixDeepNesting(t *testing.T) {
	text := strings.Repeat("a", 1000)
	var ents []tg.MessageEntityClass
	for i := 0; i < 500; i++ {
		ents = append(ents, &tg.MessageEntityBold{Offset: i, Length: 1000 - 2*i})
	}
	got := ToMatrix(context.Background(), Deps{}, text, ents)
	if got.Body != text {
		t.Fatal("text changed")
	}
	if n := strings.Count(got.FormattedBody, "<strong>"); n != MaxDepth {
		t.Errorf("%d nested levels rendered, want %d", n, MaxDepth)
	}
}

type ent struct {
	kind           string
	offset, length int
	extra          string
}

func describe(e tg.MessageEntityClass) ent {
	out := ent{offset: e.GetOffset(), length: e.GetLength()}
	switch v := e.(type) {
	case *tg.MessageEntityBold:
		out.kind = "bold"
	case *tg.MessageEntityItalic:
		out.kind = "italic"
	case *tg.MessageEntityUnderline:
		out.kind = "underline"
	case *tg.MessageEntityStrike:
		out.kind = "strike"
	case *tg.MessageEntitySpoiler:
		out.kind = "spoiler"
	case *tg.MessageEntityCode:
		out.kind = "code"
	case *tg.MessageEntityPre:
		out.kind, out.extra = "pre", v.Language
	case *tg.MessageEntityBlockquote:
		out.kind = "blockquote"
	case *tg.MessageEntityTextURL:
		out.kind, out.extra = "texturl", v.URL
	case *tg.MessageEntityURL:
		out.kind = "url"
	case *tg.MessageEntityEmail:
		out.kind = "email"
	case *tg.MessageEntityMentionName:
		out.kind, out.extra = "mention", strconv.FormatInt(v.UserID, 10)
	default:
		out.kind = "other"
	}
	return out
}

func TestFromMatrix(t *testing.T) {
	cases := []struct {
		name    string
		content event.MessageEventContent
		text    string
		ents    []ent
	}{
		{name: "plain body", content: event.MessageEventContent{MsgType: event.MsgText, Body: "hi <b>"}, text: "hi <b>"},
		{name: "bold italic", content: htmlContent("a <b>bold <i>both</i></b> c"), text: "a bold both c",
			ents: []ent{{"bold", 2, 9, ""}, {"italic", 7, 4, ""}}},
		{name: "underline strike spoiler", content: htmlContent("<u>u</u><del>s</del><span data-mx-spoiler>x</span>"), text: "usx",
			ents: []ent{{"underline", 0, 1, ""}, {"strike", 1, 1, ""}, {"spoiler", 2, 1, ""}}},
		{name: "utf16", content: htmlContent("😀 <strong>x</strong>"), text: "😀 x", ents: []ent{{"bold", 3, 1, ""}}},
		{name: "code", content: htmlContent("run <code>ls &lt;x&gt;</code>"), text: "run ls <x>", ents: []ent{{"code", 4, 6, ""}}},
		{name: "pre with language", content: htmlContent("<pre><code class=\"language-go\">func f() {\n}\n</code></pre>"),
			text: "func f() {\n}", ents: []ent{{"pre", 0, 12, "go"}}},
		{name: "link", content: htmlContent(`see <a href="https://example.com/">this</a>`), text: "see this",
			ents: []ent{{"texturl", 4, 4, "https://example.com/"}}},
		{name: "bare link", content: htmlContent(`<a href="https://example.com">https://example.com</a>`), text: "https://example.com",
			ents: []ent{{"url", 0, 19, ""}}},
		{name: "javascript link", content: htmlContent(`<a href="javascript:alert(1)">x</a>`), text: "x"},
		{name: "pill to ghost", content: htmlContent(`hi <a href="https://matrix.to/#/@gw_telegram.42:example.org">Alice</a>!`),
			text: "hi Alice!", ents: []ent{{"mention", 3, 5, "42"}}},
		{name: "pill to logged-in user", content: htmlContent(`<a href="https://matrix.to/#/@bob:example.org">Bob</a>`),
			text: "Bob", ents: []ent{{"mention", 0, 3, "7"}}},
		{name: "pill to stranger", content: htmlContent(`<a href="https://matrix.to/#/@eve:example.org">Eve</a>`), text: "Eve"},
		{name: "blockquote", content: htmlContent("<blockquote>quoted</blockquote>reply"), text: "quoted\nreply",
			ents: []ent{{"blockquote", 0, 6, ""}}},
		{name: "script tag", content: htmlContent("<script>alert(1)</script>safe"), text: "alert(1)safe"},
		{name: "unclosed tags", content: htmlContent("<b>bold <i>both"), text: "bold both",
			ents: []ent{{"bold", 0, 9, ""}, {"italic", 5, 4, ""}}},
		{name: "markers in input stripped", content: htmlContent("a\uFDD00\uFDD1b\uFDD2c"), text: "a0bc"},
		{name: "emote", content: event.MessageEventContent{MsgType: event.MsgEmote, Body: "waves", Format: event.FormatHTML, FormattedBody: "<b>waves</b>"},
			text: "/me waves", ents: []ent{{"bold", 4, 5, ""}}},
		{name: "line breaks", content: htmlContent("a<br>b<p>c</p>"), text: "a\nb\nc"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			text, ents := FromMatrix(context.Background(), testDeps, &c.content)
			if text != c.text {
				t.Errorf("text = %q, want %q", text, c.text)
			}
			var got []ent
			for _, e := range ents {
				got = append(got, describe(e))
			}
			if len(got) != len(c.ents) {
				t.Fatalf("entities = %+v, want %+v", got, c.ents)
			}
			for i := range got {
				if got[i] != c.ents[i] {
					t.Errorf("entity %d = %+v, want %+v", i, got[i], c.ents[i])
				}
			}
		})
	}
}

func htmlContent(h string) event.MessageEventContent {
	return event.MessageEventContent{MsgType: event.MsgText, Body: "fallback", Format: event.FormatHTML, FormattedBody: h}
}

func TestFromMatrixHugeNesting(t *testing.T) {
	for _, depth := range []int{100, 5000} {
		h := strings.Repeat("<b><i>", depth) + "deep" + strings.Repeat("</i></b>", depth)
		start := time.Now()
		text, ents := FromMatrix(context.Background(), testDeps, &event.MessageEventContent{
			MsgType: event.MsgText, Body: "deep", Format: event.FormatHTML, FormattedBody: h,
		})
		checkDeep(t, text, ents)
		t.Logf("depth %d parsed in %s", depth, time.Since(start))
	}
}

func checkDeep(t *testing.T, text string, ents []tg.MessageEntityClass) {
	t.Helper()
	if text != "deep" {
		t.Fatalf("text = %q", text)
	}
	if len(ents) > MaxDepth+1 {
		t.Errorf("%d entities for deeply nested input", len(ents))
	}
	for _, e := range ents {
		if e.GetOffset() != 0 || e.GetLength() != 4 {
			t.Errorf("entity %+v out of place", describe(e))
		}
	}
}

func TestFromMatrixTooLong(t *testing.T) {
	h := "<b>" + strings.Repeat("x", MaxHTMLLength) + "</b>"
	text, ents := FromMatrix(context.Background(), testDeps, &event.MessageEventContent{
		MsgType: event.MsgText, Body: "plain", Format: event.FormatHTML, FormattedBody: h,
	})
	if text != "plain" || len(ents) != 0 {
		t.Errorf("oversized HTML not sent as body: %q, %d entities", text, len(ents))
	}
}

func TestRoundTrip(t *testing.T) {
	text := "hi Alice, see 😀 code and link"
	ents := []tg.MessageEntityClass{
		&tg.MessageEntityMentionName{Offset: 3, Length: 5, UserID: 42},
		&tg.MessageEntityBold{Offset: 14, Length: 2},
		&tg.MessageEntityCode{Offset: 17, Length: 4},
		&tg.MessageEntityTextURL{Offset: 26, Length: 4, URL: "https://example.com/"},
	}
	content := ToMatrix(context.Background(), testDeps, text, ents)
	gotText, gotEnts := FromMatrix(context.Background(), testDeps, content)
	if gotText != text {
		t.Fatalf("text = %q, want %q", gotText, text)
	}
	if len(gotEnts) != len(ents) {
		t.Fatalf("got %d entities, want %d", len(gotEnts), len(ents))
	}
	for i := range ents {
		if describe(gotEnts[i]) != describe(ents[i]) {
			t.Errorf("entity %d = %+v, want %+v", i, describe(gotEnts[i]), describe(ents[i]))
		}
	}
}
