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
// mentions.
func ToMatrix(ctx context.Context, deps Deps, text string, mentioned []string) *event.MessageEventContent {
	content := &event.MessageEventContent{MsgType: event.MsgText, Body: text, Mentions: &event.Mentions{}}
	if text == "" || len(text) > MaxLength || !utf8.ValidString(text) {
		content.Body = strings.ToValidUTF8(text, "\uFFFD")
		return content
	}
	c := &toMatrix{ctx: ctx, deps: deps, mentions: make(map[string]mention), content: content}
	for _, raw := range mentioned {
		jid, err := types.ParseJID(raw)
		if err != nil || jid.User == "" || (jid.Server != types.DefaultUserServer && jid.Server != types.HiddenUserServer) {
			continue
		}
		c.mentions[jid.User] = mention{jid: jid.ToNonAD()}
	}
	htmlOut, bodyOut := c.blocks(text)
	content.Body = bodyOut
	if c.formatted {
		content.Format = event.FormatHTML
		content.FormattedBody = htmlOut
	}
	return content
}

type mention struct {
	jid types.JID
}

type toMatrix struct {
	ctx       context.Context
	deps      Deps
	mentions  map[string]mention
	content   *event.MessageEventContent
	formatted bool
}

// blocks splits the text into ``` code blocks, quote lines and the rest,
// and returns the HTML and the plain body (mentions replaced by names).
func (c *toMatrix) blocks(text string) (string, string) {
	var out, body strings.Builder
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
			h, b := c.lines(text[:start+6])
			out.WriteString(h)
			body.WriteString(b)
			text = text[start+6:]
			continue
		}
		h, b := c.lines(text[:start])
		out.WriteString(h)
		body.WriteString(b)
		c.formatted = true
		if strings.Contains(code, "\n") {
			out.WriteString("<pre><code>" + html.EscapeString(strings.TrimPrefix(code, "\n")) + "</code></pre>")
		} else {
			out.WriteString("<code>" + html.EscapeString(code) + "</code>")
		}
		body.WriteString("```" + code + "```")
		text = text[start+3+end+3:]
	}
	h, b := c.lines(text)
	out.WriteString(h)
	body.WriteString(b)
	return out.String(), body.String()
}

// lines turns runs of "> " lines into blockquotes and formats the rest.
func (c *toMatrix) lines(text string) (string, string) {
	if text == "" {
		return "", ""
	}
	var out, body strings.Builder
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if _, ok := quoteLine(line); ok {
			var quote []string
			var quoteBody []string
			for ; i < len(lines); i++ {
				q, ok := quoteLine(lines[i])
				if !ok {
					break
				}
				h, b := c.inline(q, 0)
				quote = append(quote, h)
				quoteBody = append(quoteBody, "> "+b)
			}
			i--
			c.formatted = true
			out.WriteString("<blockquote>" + strings.Join(quote, "<br>") + "</blockquote>")
			body.WriteString(strings.Join(quoteBody, "\n"))
			if i < len(lines)-1 {
				body.WriteString("\n")
			}
			continue
		}
		h, b := c.inline(line, 0)
		out.WriteString(h)
		body.WriteString(b)
		if i < len(lines)-1 {
			out.WriteString("<br>")
			body.WriteString("\n")
		}
	}
	return out.String(), body.String()
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

// inline formats one line: markers, mentions and escaping.
func (c *toMatrix) inline(s string, depth int) (string, string) {
	var out, body strings.Builder
	text := 0 // start of pending plain text
	flush := func(end int) {
		h, b := c.plain(s[text:end])
		out.WriteString(h)
		body.WriteString(b)
	}
	for i := 0; i < len(s); i++ {
		tag, isMarker := inlineTags[s[i]]
		if !isMarker || depth >= MaxDepth || !canOpen(s, i) {
			continue
		}
		marker := s[i]
		closeAt := -1
		for j := i + 2; j < len(s); j++ {
			if s[j] == marker && canClose(s, j) {
				closeAt = j
				break
			}
		}
		if closeAt < 0 {
			continue
		}
		inner := s[i+1 : closeAt]
		if marker == '`' && strings.Contains(inner, "`") {
			continue
		}
		flush(i)
		var h, b string
		if marker == '`' {
			h, b = html.EscapeString(inner), inner
		} else {
			h, b = c.inline(inner, depth+1)
		}
		c.formatted = true
		out.WriteString("<" + tag + ">" + h + "</" + tag + ">")
		body.WriteString(string(marker) + b + string(marker))
		i = closeAt
		text = closeAt + 1
	}
	flush(len(s))
	return out.String(), body.String()
}

// plain escapes text and turns @<number> of mentioned users into pills.
func (c *toMatrix) plain(s string) (string, string) {
	if len(c.mentions) == 0 || !strings.Contains(s, "@") {
		return html.EscapeString(s), s
	}
	var out, body strings.Builder
	for {
		at := strings.IndexByte(s, '@')
		if at < 0 {
			break
		}
		end := at + 1
		for end < len(s) && s[end] >= '0' && s[end] <= '9' {
			end++
		}
		m, ok := c.mentions[s[at+1:end]]
		if !ok || end == at+1 {
			out.WriteString(html.EscapeString(s[:at+1]))
			body.WriteString(s[:at+1])
			s = s[at+1:]
			continue
		}
		out.WriteString(html.EscapeString(s[:at]))
		body.WriteString(s[:at])
		h, b := c.pill(m, s[at:end])
		out.WriteString(h)
		body.WriteString(b)
		s = s[end:]
	}
	out.WriteString(html.EscapeString(s))
	body.WriteString(s)
	return out.String(), body.String()
}

func (c *toMatrix) pill(m mention, original string) (string, string) {
	if c.deps.UserMXID == nil {
		return html.EscapeString(original), original
	}
	mxid, name, ok := c.deps.UserMXID(c.ctx, m.jid)
	if !ok || mxid == "" {
		return html.EscapeString(original), original
	}
	if name == "" {
		name = original
	}
	c.formatted = true
	c.content.Mentions.Add(mxid)
	return `<a href="` + html.EscapeString(mxid.URI().MatrixToURL()) + `">` + html.EscapeString(name) + `</a>`, name
}
