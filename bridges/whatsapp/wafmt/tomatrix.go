package wafmt

import (
	"context"
	"html"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.mau.fi/whatsmeow/types"
	"maunium.net/go/mautrix/event"
)

// ToMatrix converts WhatsApp text and its mentioned JIDs into a Matrix text
// message. FormattedBody is only set when the text has formatting or
// mentions. Text whose formatting nests deeper than MaxDepth is bridged
// plain. The cost is linear in the length of text.
func ToMatrix(ctx context.Context, deps Deps, text string, mentioned []string) *event.MessageEventContent {
	content := &event.MessageEventContent{MsgType: event.MsgText, Body: text, Mentions: &event.Mentions{}}
	if text == "" || len(text) > MaxLength || !utf8.ValidString(text) {
		content.Body = strings.ToValidUTF8(text, "\uFFFD")
		return content
	}
	c := &toMatrix{ctx: ctx, deps: deps, mentions: make(map[string]types.JID), pills: make(map[string]pill), content: content}
	for _, raw := range mentioned {
		jid, err := types.ParseJID(raw)
		if err != nil || jid.User == "" || (jid.Server != types.DefaultUserServer && jid.Server != types.HiddenUserServer) {
			continue
		}
		c.mentions[jid.User] = jid.ToNonAD()
	}
	c.html.Grow(len(text) + len(text)/8)
	c.body.Grow(len(text))
	c.blocks(text)
	if c.tooDeep {
		return &event.MessageEventContent{MsgType: event.MsgText, Body: text, Mentions: &event.Mentions{}}
	}
	content.Body = c.body.String()
	if c.formatted {
		content.Format = event.FormatHTML
		content.FormattedBody = c.html.String()
	}
	return content
}

type pill struct {
	html, body string
	ok         bool
}

type toMatrix struct {
	ctx        context.Context
	deps       Deps
	mentions   map[string]types.JID // number -> JID, from ContextInfo.MentionedJID
	pills      map[string]pill      // number -> rendered pill, so each user is looked up once
	content    *event.MessageEventContent
	html, body strings.Builder
	formatted  bool
	tooDeep    bool
	steps      int // work done on markers, for the test that keeps it linear
}

// blocks splits the text into ``` code blocks, quote lines and the rest,
// and writes the HTML and the plain body (mentions replaced by names).
func (c *toMatrix) blocks(text string) {
	for text != "" {
		start := strings.Index(text, "```")
		if start < 0 {
			break
		}
		end := strings.Index(text[start+3:], "```")
		if end < 0 {
			break
		}
		code := text[start+3 : start+3+end]
		if code == "" {
			c.lines(text[:start+6])
			text = text[start+6:]
			continue
		}
		c.lines(text[:start])
		c.formatted = true
		if strings.Contains(code, "\n") {
			c.html.WriteString("<pre><code>")
			c.html.WriteString(html.EscapeString(strings.TrimPrefix(code, "\n")))
			c.html.WriteString("</code></pre>")
		} else {
			c.html.WriteString("<code>")
			c.html.WriteString(html.EscapeString(code))
			c.html.WriteString("</code>")
		}
		c.body.WriteString("```")
		c.body.WriteString(code)
		c.body.WriteString("```")
		text = text[start+3+end+3:]
	}
	c.lines(text)
}

// lines turns runs of "> " lines into blockquotes and formats the rest.
func (c *toMatrix) lines(text string) {
	if text == "" {
		return
	}
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		if _, ok := quoteLine(lines[i]); ok {
			c.html.WriteString("<blockquote>")
			for first := true; i < len(lines); i, first = i+1, false {
				q, ok := quoteLine(lines[i])
				if !ok {
					break
				}
				if !first {
					c.html.WriteString("<br>")
					c.body.WriteString("\n")
				}
				c.body.WriteString("> ")
				c.inline(q)
			}
			i--
			c.formatted = true
			c.html.WriteString("</blockquote>")
			if i < len(lines)-1 {
				c.body.WriteString("\n")
			}
			continue
		}
		c.inline(lines[i])
		if i < len(lines)-1 {
			c.html.WriteString("<br>")
			c.body.WriteString("\n")
		}
	}
}

func quoteLine(line string) (string, bool) {
	if rest, ok := strings.CutPrefix(line, "> "); ok {
		return rest, true
	}
	if line == ">" {
		return "", true
	}
	return "", false
}

var inlineTags = map[byte]string{'*': "strong", '_': "em", '~': "del", '`': "code"}

func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r)
}

// canOpen reports whether the marker at i may open a span: at the start or
// after a non-word character, and followed by a non-space.
func canOpen(s string, i int) bool {
	if i > 0 {
		prev, _ := utf8.DecodeLastRuneInString(s[:i])
		if isWordRune(prev) {
			return false
		}
	}
	next, size := utf8.DecodeRuneInString(s[i+1:])
	return size > 0 && !unicode.IsSpace(next)
}

// canClose reports whether the marker at j may close a span: after a
// non-space, and at the end or before a non-word character.
func canClose(s string, j int) bool {
	prev, _ := utf8.DecodeLastRuneInString(s[:j])
	if unicode.IsSpace(prev) {
		return false
	}
	if j+1 < len(s) {
		next, _ := utf8.DecodeRuneInString(s[j+1:])
		if isWordRune(next) {
			return false
		}
	}
	return true
}

// inlineParser formats one line. For each marker it keeps the sorted
// positions where that marker may close a span; since spans are looked for at
// increasing positions, each list is walked once, which keeps the cost linear
// in the length of the line however many markers stay unclosed.
type inlineParser struct {
	c       *toMatrix
	s       string
	closers [4][]int // per marker, positions where it may close a span
	next    [4]int   // per marker, first entry of closers not yet behind us
	ticks   []int    // positions of every backtick
	nextT   int
}

var markerIndex = [256]int8{'*': 1, '_': 2, '~': 3, '`': 4}

// inline formats one line: markers, mentions and escaping.
func (c *toMatrix) inline(s string) {
	if !strings.ContainsAny(s, "*_~`") {
		c.plain(s)
		return
	}
	p := inlineParser{c: c, s: s}
	for j := 1; j < len(s); j++ {
		if m := markerIndex[s[j]]; m != 0 {
			if s[j] == '`' {
				p.ticks = append(p.ticks, j)
			}
			c.steps++
			if canClose(s, j) {
				p.closers[m-1] = append(p.closers[m-1], j)
			}
		}
	}
	p.span(0, len(s), 0)
}

// closer returns the first position >= from and < hi where marker m closes,
// or -1. Calls come with increasing from.
func (p *inlineParser) closer(m int, from, hi int) int {
	list := p.closers[m]
	k := p.next[m]
	for k < len(list) && list[k] < from {
		k++
		p.c.steps++
	}
	p.next[m] = k
	if k < len(list) && list[k] < hi {
		return list[k]
	}
	return -1
}

// hasTick reports whether a backtick sits in [from, hi). Calls come with
// increasing from.
func (p *inlineParser) hasTick(from, hi int) bool {
	for p.nextT < len(p.ticks) && p.ticks[p.nextT] < from {
		p.nextT++
		p.c.steps++
	}
	return p.nextT < len(p.ticks) && p.ticks[p.nextT] < hi
}

// span formats s[lo:hi] at the given nesting depth.
func (p *inlineParser) span(lo, hi, depth int) {
	s, c := p.s, p.c
	text := lo // start of pending plain text
	for i := lo; i < hi && !c.tooDeep; i++ {
		c.steps++
		m := markerIndex[s[i]]
		if m == 0 || (i > lo && !canOpen(s, i)) || (i == lo && !canOpenAt(s, i, hi)) {
			continue
		}
		closeAt := p.closer(int(m-1), i+2, hi)
		if closeAt < 0 {
			continue
		}
		marker := s[i]
		if marker == '`' && p.hasTick(i+1, closeAt) {
			continue
		}
		if depth >= MaxDepth {
			c.tooDeep = true
			return
		}
		c.plain(s[text:i])
		tag := inlineTags[marker]
		c.formatted = true
		c.html.WriteString("<" + tag + ">")
		c.body.WriteByte(marker)
		if marker == '`' {
			c.html.WriteString(html.EscapeString(s[i+1 : closeAt]))
			c.body.WriteString(s[i+1 : closeAt])
		} else {
			p.span(i+1, closeAt, depth+1)
		}
		c.html.WriteString("</" + tag + ">")
		c.body.WriteByte(marker)
		i = closeAt
		text = closeAt + 1
	}
	c.plain(s[text:hi])
}

// canOpenAt is canOpen for the first position of a span, where the text
// before it (an enclosing marker, or nothing) never stops a span.
func canOpenAt(s string, i, hi int) bool {
	next, size := utf8.DecodeRuneInString(s[i+1 : hi])
	return size > 0 && !unicode.IsSpace(next)
}

// plain escapes text and turns @<number> of mentioned users into pills.
func (c *toMatrix) plain(s string) {
	if len(c.mentions) == 0 || !strings.Contains(s, "@") {
		c.html.WriteString(html.EscapeString(s))
		c.body.WriteString(s)
		return
	}
	for {
		at := strings.IndexByte(s, '@')
		if at < 0 {
			break
		}
		end := at + 1
		for end < len(s) && s[end] >= '0' && s[end] <= '9' {
			end++
		}
		jid, ok := c.mentions[s[at+1:end]]
		if !ok || end == at+1 {
			c.html.WriteString(html.EscapeString(s[:at+1]))
			c.body.WriteString(s[:at+1])
			s = s[at+1:]
			continue
		}
		c.html.WriteString(html.EscapeString(s[:at]))
		c.body.WriteString(s[:at])
		pl := c.pill(jid, s[at:end])
		c.html.WriteString(pl.html)
		c.body.WriteString(pl.body)
		s = s[end:]
	}
	c.html.WriteString(html.EscapeString(s))
	c.body.WriteString(s)
}

// pill renders a mention of jid, looking the user up once per message.
func (c *toMatrix) pill(jid types.JID, original string) pill {
	if p, ok := c.pills[jid.User]; ok {
		if p.ok {
			c.formatted = true
		}
		return p
	}
	p := pill{html: html.EscapeString(original), body: original}
	if c.deps.UserMXID != nil {
		if mxid, name, ok := c.deps.UserMXID(c.ctx, jid); ok && mxid != "" {
			if name == "" {
				name = original
			}
			c.formatted = true
			c.content.Mentions.Add(mxid)
			p = pill{html: `<a href="` + html.EscapeString(mxid.URI().MatrixToURL()) + `">` + html.EscapeString(name) + `</a>`, body: name, ok: true}
		}
	}
	c.pills[jid.User] = p
	return p
}
