package tgfmt

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/gotd/td/tg"
)

func units(s string) int { return len(utf16.Encode([]rune(s))) }

var partMarker = regexp.MustCompile(` \((\d+)/(\d+)\)$`)

// checkParts checks what holds for every split: each part fits lim, is
// valid UTF-8 and ends with its " (i/n)" marker when there are several;
// entities lie inside the part's text; and the parts, markers removed, are
// the text in order with only the blanks at the cuts (and a truncated tail)
// missing.
func checkParts(t *testing.T, text string, parts []Part, lim Limits) {
	t.Helper()
	if len(parts) == 0 || len(parts) > max(lim.Parts, 1) {
		t.Fatalf("%d parts", len(parts))
	}
	if len(parts) == 1 && parts[0].Text == text {
		return
	}
	rest := text
	for i, p := range parts {
		if !utf8.ValidString(p.Text) {
			t.Fatalf("part %d is not valid UTF-8", i+1)
		}
		if u := units(p.Text); u > lim.Units {
			t.Fatalf("part %d has %d UTF-16 units, limit %d", i+1, u, lim.Units)
		}
		if len(p.Entities) > lim.Entities {
			t.Fatalf("part %d has %d entities, limit %d", i+1, len(p.Entities), lim.Entities)
		}
		m := partMarker.FindStringSubmatch(p.Text)
		if m == nil || m[1] != fmt.Sprint(i+1) || m[2] != fmt.Sprint(len(parts)) {
			t.Fatalf("part %d does not end with its marker: %q", i+1, p.Text)
		}
		body := strings.TrimSuffix(p.Text, m[0])
		truncated := strings.HasSuffix(body, TruncatedMarker)
		if truncated {
			if i != len(parts)-1 {
				t.Fatalf("part %d is truncated but not last", i+1)
			}
			body = strings.TrimSuffix(body, TruncatedMarker)
		}
		n := units(body)
		for _, e := range p.Entities {
			if e.GetOffset() < 0 || e.GetLength() <= 0 || e.GetOffset()+e.GetLength() > n {
				t.Fatalf("part %d: entity %T [%d+%d] outside its %d units", i+1, e, e.GetOffset(), e.GetLength(), n)
			}
		}
		if !strings.HasPrefix(rest, body) {
			t.Fatalf("part %d is not the next piece of the text:\n%q\nvs\n%.80q", i+1, body, rest)
		}
		rest = rest[len(body):]
		// The blanks around a cut are dropped, also when the last cut
		// leaves nothing after it.
		if i < len(parts)-1 || !truncated {
			rest = strings.TrimLeft(rest, " \n")
		}
		if i > 0 && (strings.HasPrefix(body, " ") || strings.HasPrefix(body, "\n")) {
			t.Fatalf("part %d starts with a blank: %q", i+1, body)
		}
		if i == len(parts)-1 && rest != "" && !truncated {
			t.Fatalf("text lost after the last part: %q", rest)
		}
	}
}

func TestSplit(t *testing.T) {
	lim := Limits{Units: 40, Entities: 3, Parts: 5}
	bold := func(o, l int) tg.MessageEntityClass { return &tg.MessageEntityBold{Offset: o, Length: l} }
	italic := func(o, l int) tg.MessageEntityClass { return &tg.MessageEntityItalic{Offset: o, Length: l} }
	type ent struct{ off, length int }
	for _, tc := range []struct {
		name  string
		text  string
		ents  []tg.MessageEntityClass
		parts []string // texts, markers included
		pents [][]ent  // per part, offsets and lengths (nil: no check)
		lim   *Limits
	}{
		{name: "fits", text: "short *text*", ents: []tg.MessageEntityClass{bold(0, 5)}, parts: []string{"short *text*"}, pents: [][]ent{{{0, 5}}}},
		{name: "exactly at the limit", text: strings.Repeat("a", 40), parts: []string{strings.Repeat("a", 40)}},
		{name: "paragraph preferred", text: "first paragraph is here\n\nsecond line\nthird words here", parts: []string{"first paragraph is here (1/2)", "second line\nthird words here (2/2)"}},
		{name: "line when no paragraph", text: "one two three four five\nsix seven eight nine ten", parts: []string{"one two three four five (1/2)", "six seven eight nine ten (2/2)"}},
		{name: "space when no line", text: "one two three four five six seven eight nine", parts: []string{"one two three four five six seven (1/2)", "eight nine (2/2)"}},
		{name: "hard cut in a long word", text: strings.Repeat("x", 50), parts: []string{strings.Repeat("x", 34) + " (1/2)", strings.Repeat("x", 16) + " (2/2)"}},
		{name: "never inside a surrogate pair", text: strings.Repeat("🙂", 25), parts: []string{strings.Repeat("🙂", 17) + " (1/2)", strings.Repeat("🙂", 8) + " (2/2)"}},
		{name: "odd offset before emoji", text: "a" + strings.Repeat("🙂", 25), parts: []string{"a" + strings.Repeat("🙂", 16) + " (1/2)", strings.Repeat("🙂", 9) + " (2/2)"}},
		{name: "entity crossing the cut is cut and re-based", text: strings.Repeat("x", 30) + " " + strings.Repeat("y", 20),
			ents:  []tg.MessageEntityClass{bold(25, 20), italic(0, 2)},
			parts: []string{strings.Repeat("x", 30) + " (1/2)", strings.Repeat("y", 20) + " (2/2)"}, pents: [][]ent{{{0, 2}, {25, 5}}, {{0, 14}}}},
		{name: "cut outside entities preferred", text: "aaaa bbbb cccc dddd eeee ffff gggg hhhh iiii",
			ents:  []tg.MessageEntityClass{bold(20, 16)},
			parts: []string{"aaaa bbbb cccc dddd (1/2)", "eeee ffff gggg hhhh iiii (2/2)"}, pents: [][]ent{{}, {{0, 16}}}},
		{name: "entity limit splits", text: "a b c d e f g h",
			ents:  []tg.MessageEntityClass{bold(0, 1), bold(2, 1), bold(4, 1), bold(6, 1), bold(8, 1), bold(10, 1)},
			parts: []string{"a b c (1/2)", "d e f g h (2/2)"}, pents: [][]ent{{{0, 1}, {2, 1}, {4, 1}}, {{0, 1}, {2, 1}, {4, 1}}}},
		{name: "too many parts truncated", text: strings.Repeat("word ", 60), lim: &Limits{Units: 40, Entities: 3, Parts: 2},
			parts: []string{"word word word word word word word (1/2)", "word word… [message truncated] (2/2)"}},
		{name: "out of range entities dropped", text: strings.Repeat("z", 45), ents: []tg.MessageEntityClass{bold(-1, 3), bold(40, 10), bold(3, 0), nil},
			parts: []string{strings.Repeat("z", 34) + " (1/2)", strings.Repeat("z", 11) + " (2/2)"}, pents: [][]ent{{}, {}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := lim
			if tc.lim != nil {
				l = *tc.lim
			}
			parts := Split(tc.text, tc.ents, l)
			checkParts(t, tc.text, parts, l)
			var texts []string
			for _, p := range parts {
				texts = append(texts, p.Text)
			}
			if strings.Join(texts, "|") != strings.Join(tc.parts, "|") {
				t.Fatalf("parts:\n%q\nwant\n%q", texts, tc.parts)
			}
			for i, want := range tc.pents {
				if want == nil {
					continue
				}
				var got []ent
				for _, e := range parts[i].Entities {
					got = append(got, ent{e.GetOffset(), e.GetLength()})
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("part %d entities %v, want %v", i+1, got, want)
				}
			}
		})
	}
}

func TestSplitDoesNotChangeInput(t *testing.T) {
	ents := []tg.MessageEntityClass{&tg.MessageEntityBold{Offset: 0, Length: 60}}
	Split(strings.Repeat("x ", 30), ents, Limits{Units: 40, Entities: 3, Parts: 5})
	if ents[0].GetOffset() != 0 || ents[0].GetLength() != 60 {
		t.Fatalf("input entity changed: %+v", ents[0])
	}
}

func TestSplitDefaultLimits(t *testing.T) {
	text := strings.Repeat("Bonjour 🙂 ", 2000) // 20000 units
	var ents []tg.MessageEntityClass
	for i := 0; i < 1000; i++ {
		ents = append(ents, &tg.MessageEntityBold{Offset: i * 20, Length: 7})
	}
	parts := Split(text, ents, DefaultLimits)
	checkParts(t, text, parts, DefaultLimits)
	if len(parts) != 10 {
		t.Fatalf("%d parts, want 10 (1000 entities, 100 per part)", len(parts))
	}
}
