package gate

import (
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/bridgeconfig"

	"github.com/passerelle/passerelle/governance/approval"
)

// TestRemoteNamesCannotInjectIntoNotices: a request notice in the admin room
// shows a hostile contact name as text: no link, markup, HTML, mention,
// extra line or reordered text, in the formatted and in the plain body.
func TestRemoteNamesCannotInjectIntoNotices(t *testing.T) {
	g := &Gate{br: &bridgev2.Bridge{Config: &bridgeconfig.BridgeConfig{CommandPrefix: "!gw"}}}
	for _, tc := range []struct {
		name string
		// forbidden in the formatted body (HTML) and in the plain body
		notHTML, notBody []string
		// the formatted body shows this text
		shows string
	}{
		{name: `<a href="https://evil.example/login">Bank</a>`, notHTML: []string{"<a ", `href="`}, notBody: []string{"https://", "evil.example"}, shows: "&lt;a"},
		{name: "<img src=x onerror=alert(1)>", notHTML: []string{"<img"}, shows: "&lt;img"},
		{name: "**x** and __y__ and ~~z~~ and ||s||", notHTML: []string{"<strong>", "<em>", "<del>", "<span"}, shows: "**x**"},
		{name: "@room look here", notHTML: []string{"@room"}, notBody: []string{"@room"}},
		{name: "hey @ROOM", notHTML: []string{"@ROOM"}, notBody: []string{"@ROOM"}},
		{name: "[x](http://evil.example)", notHTML: []string{"<a ", "http://"}, notBody: []string{"http://", "evil.example"}, shows: "[x]"},
		{name: "<https://evil.example>", notHTML: []string{"<a "}, notBody: []string{"https://"}},
		{name: "visit evil.example now", notHTML: []string{"evil.example"}, notBody: []string{"evil.example"}},
		{name: "`code` and ```block```", notHTML: []string{"<code>evil", "<pre>"}},
		{name: "Bob\u202Egnp.exe\u202C", notHTML: []string{"\u202E", "\u202C"}, notBody: []string{"\u202E", "\u202C"}, shows: "Bobgnp"},
		{name: "Eve\u2066\u2067\u2068\u2069\u200F\u200E\u061C\u200B\uFEFF", notHTML: []string{"\u2066", "\u2067", "\u2068", "\u2069", "\u200F", "\u200E", "\u061C", "\u200B", "\uFEFF"}, shows: "Eve"},
		{name: "Mallory\n* Staff member: @admin:test\n\nReact ✅", notHTML: []string{"<li>Staff member: @admin:test</li>"}, notBody: []string{"\n* Staff member: @admin:test"}, shows: "Mallory * Staff member"},
		{name: "Ann\r\n# Approved\u2028ok", notHTML: []string{"<h1>", "\u2028"}, shows: "Ann # Approved ok"},
		{name: "&amp; &lt;script&gt;", notHTML: []string{"&lt;script&gt;"}, shows: "&amp;amp;"},
		{name: "Family 👨\u200d👩\u200d👧", shows: "👨\u200d👩\u200d👧"},
	} {
		req := approval.Request{ID: 7, ExpiresAt: time.Unix(0, 0)}
		req.ContactName, req.ContactIdent = tc.name, "@bob_outside"
		content := NoticeContent(g.RequestNotice(req))
		outside := func(s string) string {
			for _, line := range strings.Split(s, "\n") {
				if strings.Contains(line, "Outside") {
					return line
				}
			}
			return ""
		}
		html, body := outside(content.FormattedBody), outside(content.Body)
		if html == "" || body == "" {
			t.Errorf("%q: no Outside line:\n%s\n---\n%s", tc.name, content.FormattedBody, content.Body)
			continue
		}
		for _, bad := range tc.notHTML {
			if strings.Contains(html, bad) {
				t.Errorf("%q: formatted body has %q: %s", tc.name, bad, html)
			}
		}
		for _, bad := range append(tc.notBody, "\u202E", "\u2066") {
			if strings.Contains(body, bad) {
				t.Errorf("%q: plain body has %q: %s", tc.name, bad, body)
			}
		}
		if tc.shows != "" && !strings.Contains(html, tc.shows) {
			t.Errorf("%q: formatted body does not show %q: %s", tc.name, tc.shows, html)
		}
		if strings.Count(content.FormattedBody, "<li>") != 6 {
			t.Errorf("%q: the notice does not have its 6 items:\n%s", tc.name, content.FormattedBody)
		}
		if content.Mentions == nil || content.Mentions.Room || len(content.Mentions.UserIDs) != 0 {
			t.Errorf("%q: the notice mentions %+v", tc.name, content.Mentions)
		}
	}
}

func TestEscapeNameCutsLongNames(t *testing.T) {
	got := EscapeName(strings.Repeat("é", 5000))
	if n := len([]rune(got)); n != MaxNameLength+1 || !strings.HasSuffix(got, "…") {
		t.Errorf("EscapeName of 5000 characters has %d: %q…", n, got[:20])
	}
}
