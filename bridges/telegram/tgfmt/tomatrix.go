package tgfmt

import (
	"context"
	"html"
	"net/url"
	"slices"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/gotd/td/tg"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// span is a validated entity over UTF-16 code unit offsets [start, end).
type span struct {
	start, end int
	ent        tg.MessageEntityClass
	children   []*span
}

// ToMatrix converts Telegram text and entities into Matrix message content
// (msgtype m.text). Entities that are out of range, malformed or unknown are
// ignored; the text itself is always bridged.
func ToMatrix(ctx context.Context, deps Deps, text string, entities []tg.MessageEntityClass) *event.MessageEventContent {
	content := &event.MessageEventContent{MsgType: event.MsgText, Body: text}
	units := utf16.Encode([]rune(text))
	root := buildTree(units, entities)
	if len(root.children) == 0 {
		return content
	}
	conv := toMatrixConverter{ctx: ctx, deps: deps, units: units}
	var sb strings.Builder
	conv.render(&sb, root, false)
	content.Format = event.FormatHTML
	content.FormattedBody = sb.String()
	if len(conv.mentions) > 0 {
		content.Mentions = &event.Mentions{UserIDs: conv.mentions}
	}
	return content
}

func isHighSurrogate(u uint16) bool { return u >= 0xD800 && u < 0xDC00 }
func isLowSurrogate(u uint16) bool  { return u >= 0xDC00 && u < 0xE000 }

func supported(ent tg.MessageEntityClass) bool {
	switch ent.(type) {
	case *tg.MessageEntityBold, *tg.MessageEntityItalic, *tg.MessageEntityUnderline,
		*tg.MessageEntityStrike, *tg.MessageEntityCode, *tg.MessageEntityPre,
		*tg.MessageEntityTextURL, *tg.MessageEntityURL, *tg.MessageEntityEmail,
		*tg.MessageEntityMentionName, *tg.MessageEntityMention, *tg.MessageEntityBlockquote,
		*tg.MessageEntitySpoiler:
		return true
	}
	return false
}

// buildTree validates entities and nests them. An entity that crosses the end
// of an enclosing one is clipped to it; one that would nest deeper than
// MaxDepth, or that sits inside code, is dropped (its text stays).
func buildTree(units []uint16, entities []tg.MessageEntityClass) *span {
	root := &span{start: 0, end: len(units)}
	spans := make([]*span, 0, len(entities))
	for _, ent := range entities {
		if ent == nil || !supported(ent) {
			continue
		}
		start, length := ent.GetOffset(), ent.GetLength()
		if start < 0 || length <= 0 || start >= len(units) || length > len(units)-start {
			continue
		}
		end := start + length
		// Never split a surrogate pair.
		if start > 0 && isLowSurrogate(units[start]) && isHighSurrogate(units[start-1]) {
			start--
		}
		if end < len(units) && isLowSurrogate(units[end]) && isHighSurrogate(units[end-1]) {
			end++
		}
		spans = append(spans, &span{start: start, end: end, ent: ent})
	}
	slices.SortStableFunc(spans, func(a, b *span) int {
		if a.start != b.start {
			return a.start - b.start
		}
		return b.end - a.end
	})
	stack := []*span{root}
	for _, s := range spans {
		for len(stack) > 1 && stack[len(stack)-1].end <= s.start {
			stack = stack[:len(stack)-1]
		}
		parent := stack[len(stack)-1]
		if s.end > parent.end {
			s.end = parent.end
		}
		if s.end <= s.start || len(stack) > MaxDepth || isCode(parent.ent) {
			continue
		}
		parent.children = append(parent.children, s)
		stack = append(stack, s)
	}
	return root
}

func isCode(ent tg.MessageEntityClass) bool {
	switch ent.(type) {
	case *tg.MessageEntityCode, *tg.MessageEntityPre:
		return true
	}
	return false
}

type toMatrixConverter struct {
	ctx      context.Context
	deps     Deps
	units    []uint16
	mentions []id.UserID
	users    map[int64]id.UserID // Matrix user of a Telegram user, "" if none; each looked up once
	seen     map[id.UserID]bool  // users already in mentions
}

func (c *toMatrixConverter) userMXID(userID int64) id.UserID {
	if mxid, ok := c.users[userID]; ok {
		return mxid
	}
	var mxid id.UserID
	if c.deps.UserMXID != nil {
		if found, _, ok := c.deps.UserMXID(c.ctx, userID); ok {
			mxid = found
		}
	}
	if c.users == nil {
		c.users = map[int64]id.UserID{}
	}
	c.users[userID] = mxid
	return mxid
}

func (c *toMatrixConverter) text(start, end int) string {
	return string(utf16.Decode(c.units[start:end]))
}

func (c *toMatrixConverter) writeText(sb *strings.Builder, start, end int, pre bool) {
	escaped := html.EscapeString(c.text(start, end))
	if !pre {
		escaped = strings.ReplaceAll(escaped, "\n", "<br>")
	}
	sb.WriteString(escaped)
}

func (c *toMatrixConverter) renderChildren(sb *strings.Builder, s *span, pre bool) {
	pos := s.start
	for _, child := range s.children {
		c.writeText(sb, pos, child.start, pre)
		c.render(sb, child, pre)
		pos = child.end
	}
	c.writeText(sb, pos, s.end, pre)
}

// safeURL returns an href for u if its scheme may be linked from Matrix.
func safeURL(raw string) (string, bool) {
	parsed, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "", false
	}
	switch strings.ToLower(parsed.Scheme) {
	case "http", "https", "mailto", "tg":
		return parsed.String(), true
	case "":
		if parsed.Host == "" && !strings.Contains(raw, ".") {
			return "", false
		}
		withScheme, err := url.Parse("https://" + strings.TrimSpace(raw))
		if err != nil || withScheme.Host == "" {
			return "", false
		}
		return withScheme.String(), true
	}
	return "", false
}

func (c *toMatrixConverter) wrap(sb *strings.Builder, s *span, pre bool, open, closeTag string) {
	sb.WriteString(open)
	c.renderChildren(sb, s, pre)
	sb.WriteString(closeTag)
}

// maxLinkLength is the longest link target made a link; a longer one (or
// one that is not valid UTF-8) stays text.
const maxLinkLength = 8192

func (c *toMatrixConverter) link(sb *strings.Builder, s *span, pre bool, href string) {
	if len(href) > maxLinkLength || !utf8.ValidString(href) {
		c.renderChildren(sb, s, pre)
		return
	}
	if safe, ok := safeURL(href); ok {
		c.wrap(sb, s, pre, `<a href="`+html.EscapeString(safe)+`">`, "</a>")
	} else {
		c.renderChildren(sb, s, pre)
	}
}

func (c *toMatrixConverter) pill(sb *strings.Builder, s *span, pre bool, mxid id.UserID) {
	if !c.seen[mxid] {
		if c.seen == nil {
			c.seen = map[id.UserID]bool{}
		}
		c.seen[mxid] = true
		c.mentions = append(c.mentions, mxid)
	}
	c.wrap(sb, s, pre, `<a href="`+html.EscapeString(mxid.URI().MatrixToURL())+`">`, "</a>")
}

func (c *toMatrixConverter) render(sb *strings.Builder, s *span, pre bool) {
	switch ent := s.ent.(type) {
	case nil:
		c.renderChildren(sb, s, pre)
	case *tg.MessageEntityBold:
		c.wrap(sb, s, pre, "<strong>", "</strong>")
	case *tg.MessageEntityItalic:
		c.wrap(sb, s, pre, "<em>", "</em>")
	case *tg.MessageEntityUnderline:
		c.wrap(sb, s, pre, "<u>", "</u>")
	case *tg.MessageEntityStrike:
		c.wrap(sb, s, pre, "<del>", "</del>")
	case *tg.MessageEntitySpoiler:
		c.wrap(sb, s, pre, "<span data-mx-spoiler>", "</span>")
	case *tg.MessageEntityBlockquote:
		c.wrap(sb, s, pre, "<blockquote>", "</blockquote>")
	case *tg.MessageEntityCode:
		c.wrap(sb, s, true, "<code>", "</code>")
	case *tg.MessageEntityPre:
		open := "<pre><code>"
		if lang := sanitizeLanguage(ent.Language); lang != "" {
			open = `<pre><code class="language-` + lang + `">`
		}
		c.wrap(sb, s, true, open, "</code></pre>")
	case *tg.MessageEntityTextURL:
		c.link(sb, s, pre, ent.URL)
	case *tg.MessageEntityURL:
		c.link(sb, s, pre, c.text(s.start, s.end))
	case *tg.MessageEntityEmail:
		c.link(sb, s, pre, "mailto:"+c.text(s.start, s.end))
	case *tg.MessageEntityMentionName:
		if mxid := c.userMXID(ent.UserID); mxid != "" {
			c.pill(sb, s, pre, mxid)
			return
		}
		c.renderChildren(sb, s, pre)
	case *tg.MessageEntityMention:
		username := strings.TrimPrefix(c.text(s.start, s.end), "@")
		if c.deps.UsernameMXID != nil {
			if mxid, ok := c.deps.UsernameMXID(c.ctx, username); ok && mxid != "" {
				c.pill(sb, s, pre, mxid)
				return
			}
		}
		if validUsername(username) {
			c.link(sb, s, pre, "https://t.me/"+username)
		} else {
			c.renderChildren(sb, s, pre)
		}
	default:
		c.renderChildren(sb, s, pre)
	}
}

func validUsername(u string) bool {
	if len(u) < 3 || len(u) > 32 {
		return false
	}
	for _, r := range u {
		if !(r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')) {
			return false
		}
	}
	return true
}

// sanitizeLanguage keeps a code block language only if it is a plain token.
func sanitizeLanguage(lang string) string {
	if len(lang) > 32 {
		return ""
	}
	for _, r := range lang {
		if !(r == '-' || r == '_' || r == '+' || r == '#' || r == '.' ||
			(r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')) {
			return ""
		}
	}
	return lang
}
