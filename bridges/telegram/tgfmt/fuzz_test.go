package tgfmt

import (
	"context"
	"encoding/binary"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/gotd/td/tg"
	"maunium.net/go/mautrix/event"
)

// fuzzEntities decodes 5 bytes per entity: a type, then offset and length
// as signed 16-bit numbers, so that out-of-range values come up too.
func fuzzEntities(data []byte) []tg.MessageEntityClass {
	var out []tg.MessageEntityClass
	for ; len(data) >= 5; data = data[5:] {
		off := int(int16(binary.LittleEndian.Uint16(data[1:])))
		length := int(int16(binary.LittleEndian.Uint16(data[3:])))
		var e tg.MessageEntityClass
		switch data[0] % 16 {
		case 0:
			e = &tg.MessageEntityBold{Offset: off, Length: length}
		case 1:
			e = &tg.MessageEntityItalic{Offset: off, Length: length}
		case 2:
			e = &tg.MessageEntityUnderline{Offset: off, Length: length}
		case 3:
			e = &tg.MessageEntityStrike{Offset: off, Length: length}
		case 4:
			e = &tg.MessageEntityCode{Offset: off, Length: length}
		case 5:
			e = &tg.MessageEntityPre{Offset: off, Length: length, Language: "go"}
		case 6:
			e = &tg.MessageEntityTextURL{Offset: off, Length: length, URL: "https://example.org/<x>"}
		case 7:
			e = &tg.MessageEntityTextURL{Offset: off, Length: length, URL: "javascript:alert(1)"}
		case 8:
			e = &tg.MessageEntityURL{Offset: off, Length: length}
		case 9:
			e = &tg.MessageEntityEmail{Offset: off, Length: length}
		case 10:
			e = &tg.MessageEntityMentionName{Offset: off, Length: length, UserID: 42}
		case 11:
			e = &tg.MessageEntityMention{Offset: off, Length: length}
		case 12:
			e = &tg.MessageEntityBlockquote{Offset: off, Length: length}
		case 13:
			e = &tg.MessageEntitySpoiler{Offset: off, Length: length}
		case 14:
			e = &tg.MessageEntityHashtag{Offset: off, Length: length}
		default:
			e = nil
		}
		out = append(out, e)
	}
	return out
}

func entityBytes(kind byte, off, length int16) []byte {
	b := []byte{kind, 0, 0, 0, 0}
	binary.LittleEndian.PutUint16(b[1:], uint16(off))
	binary.LittleEndian.PutUint16(b[3:], uint16(length))
	return b
}

func checkEntities(t *testing.T, text string, ents []tg.MessageEntityClass) {
	t.Helper()
	n := len(utf16.Encode([]rune(text)))
	for _, e := range ents {
		if e == nil || e.GetOffset() < 0 || e.GetLength() <= 0 || e.GetOffset()+e.GetLength() > n {
			t.Fatalf("entity %T %+v out of the text's %d UTF-16 units", e, e, n)
		}
	}
}

func FuzzToMatrix(f *testing.F) {
	f.Add("hello bold world", entityBytes(0, 6, 4))
	f.Add("🙂 link and @alice", append(append(entityBytes(6, 3, 4), entityBytes(11, 13, 6)...), entityBytes(10, 0, 2)...))
	f.Add("code <b>", append(entityBytes(4, 0, 8), entityBytes(0, 2, 3)...))
	f.Add("a\nb\nc", append(entityBytes(12, 0, 5), entityBytes(5, 2, 3)...))
	f.Add("x@example.org https://e.org", append(entityBytes(9, 0, 13), entityBytes(8, 14, 13)...))
	f.Add("\xff\xfe broken", entityBytes(0, -1, 300))
	f.Fuzz(func(t *testing.T, text string, entData []byte) {
		ents := fuzzEntities(entData)
		c := ToMatrix(context.Background(), testDeps, text, ents)
		if c.Body != text {
			t.Fatalf("body changed: %q", c.Body)
		}
		if c.FormattedBody == "" {
			return
		}
		if !utf8.ValidString(c.FormattedBody) {
			t.Fatalf("formatted body is not valid UTF-8: %q", c.FormattedBody)
		}
		// Escaping grows text at most 6 times (&quot;), newlines become <br>;
		// each entity adds one pair of tags with a bounded URL, except that a
		// URL or email entity repeats its text in the link target, percent-
		// encoded and escaped (at most 9 times more).
		if limit := 16*len(text) + 128*len(ents) + 16; len(c.FormattedBody) > limit {
			t.Fatalf("%d bytes of HTML for %d bytes and %d entities", len(c.FormattedBody), len(text), len(ents))
		}
		// What we produce must come back through FromMatrix in range.
		back, backEnts := FromMatrix(context.Background(), testDeps, c)
		checkEntities(t, back, backEnts)
	})
}

func FuzzFromMatrix(f *testing.F) {
	f.Add("<b>bold</b> <i>it</i> <u>u</u> <del>s</del>", "body", false)
	f.Add(`<a href="https://matrix.to/#/@gw_telegram.42:example.org">Alice</a>: <code>x</code>`, "Alice: x", true)
	f.Add("<pre><code class=\"language-go\">a\n<b>b</b></code></pre><blockquote>q<br>r</blockquote>", "b", false)
	f.Add(`<ol start="-9223372036854775808"><li>one</li></ol><ul><li><ul><li>x`, "b", false)
	f.Add("<span data-mx-spoiler=\"r\">s</span><a href=\"https://e.org\">e.org</a><img alt=\"\uFDD0\">", "b", false)
	f.Add(strings.Repeat("<b>", 120)+"deep", "plain body", false)
	f.Add("\uFDD0\uFDD11\uFDD1<b>\uFDD2x</b>\uFDD3blockquote", "b", true)
	f.Add("<font color=\"\uFDD3blockquote\">fake</font><table><tr><td>t", "b", false)
	f.Fuzz(func(t *testing.T, htmlData, body string, emote bool) {
		content := &event.MessageEventContent{MsgType: event.MsgText, Body: body, Format: event.FormatHTML, FormattedBody: htmlData}
		if emote {
			content.MsgType = event.MsgEmote
		}
		text, ents := FromMatrix(context.Background(), testDeps, content)
		if utf8.ValidString(htmlData) && utf8.ValidString(body) && !utf8.ValidString(text) {
			t.Fatalf("text is not valid UTF-8: %q", text)
		}
		// Lists indent each line at most 8 levels deep; tabs become 4
		// spaces; pills and links keep their text.
		if limit := 64*len(htmlData) + len(body) + 8; len(text) > limit {
			t.Fatalf("%d bytes of text for %d bytes of HTML", len(text), len(htmlData))
		}
		if len(ents) > len(htmlData)/3+1 {
			t.Fatalf("%d entities from %d bytes of HTML", len(ents), len(htmlData))
		}
		checkEntities(t, text, ents)
		if strings.ContainsAny(text, "\uFDD0\uFDD1\uFDD2") && !strings.ContainsAny(body, "\uFDD0\uFDD1\uFDD2") {
			t.Fatalf("internal markers leaked into the text: %q", text)
		}
	})
}

func FuzzSplit(f *testing.F) {
	f.Add("first paragraph\n\nsecond line\nthird", entityBytes(0, 0, 20), uint16(20), uint8(3), uint8(5))
	f.Add(strings.Repeat("🙂", 40), entityBytes(1, 1, 30), uint16(10), uint8(1), uint8(3))
	f.Add(strings.Repeat("word ", 100), append(entityBytes(0, 0, 300), entityBytes(4, 7, 2)...), uint16(30), uint8(0), uint8(2))
	f.Add("a b c d e f g h", append(append(entityBytes(0, 0, 1), entityBytes(0, 2, 1)...), entityBytes(0, 4, 1)...), uint16(100), uint8(1), uint8(9))
	f.Fuzz(func(t *testing.T, text string, entData []byte, units uint16, nents, nparts uint8) {
		text = strings.ToValidUTF8(text, "\uFFFD")
		lim := Limits{Units: 40 + int(units)%5000, Entities: 1 + int(nents)%120, Parts: 1 + int(nparts)%20}
		ents := fuzzEntities(entData)
		parts := Split(text, ents, lim)
		if len(parts) == 1 && parts[0].Text == text {
			return // fits: passed on unchanged
		}
		checkParts(t, text, parts, lim)
	})
}
