package tgfmt

import (
	"context"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/gotd/td/tg"
	"golang.org/x/net/html"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/format"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/htmlguard"
)

// The HTML parser builds a string bottom-up; entities are carried through it
// as markers made of Unicode noncharacters, which are removed from user text
// first, then turned into offsets once the whole string is known.
const (
	markOpen      = '\uFDD0' // followed by the entity index in decimal, then markOpenEnd
	markOpenEnd   = '\uFDD1'
	markClose     = '\uFDD2'
	blockquoteTag = "\uFDD3blockquote"
)

// MaxHTMLLength is the largest formatted_body that is parsed; longer input is
// sent as its plain body.
const MaxHTMLLength = 64 * 1024

func stripMarkers(s string) string {
	if !strings.ContainsAny(s, "\uFDD0\uFDD1\uFDD2\uFDD3") {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r >= '\uFDD0' && r <= '\uFDD3' {
			return -1
		}
		return r
	}, s)
}

// removeEntityMarkers removes complete markers from s, for contexts (code)
// where Telegram does not allow nested entities.
func removeEntityMarkers(s string) string {
	var sb strings.Builder
	inOpen := false
	for _, r := range s {
		switch {
		case r == markOpen:
			inOpen = true
		case r == markOpenEnd:
			inOpen = false
		case r == markClose, inOpen:
		default:
			sb.WriteRune(r)
		}
	}
	return sb.String()
}

type fromMatrixState struct {
	entities []tg.MessageEntityClass
	users    map[id.UserID]int64 // Telegram user behind a Matrix user, 0 if none; each looked up once
}

const stateKey = "passerelle.tgfmt.state"

func getState(ctx format.Context) *fromMatrixState {
	return ctx.ReturnData[stateKey].(*fromMatrixState)
}

func mark(ctx format.Context, str string, ent tg.MessageEntityClass) string {
	if len(ctx.TagStack) > MaxDepth {
		return str
	}
	st := getState(ctx)
	idx := len(st.entities)
	st.entities = append(st.entities, ent)
	return string(markOpen) + strconv.Itoa(idx) + string(markOpenEnd) + str + string(markClose)
}

func newParser(deps Deps) *format.HTMLParser {
	return &format.HTMLParser{
		TabsToSpaces:   4,
		Newline:        "\n",
		HorizontalLine: "\n---\n",
		TextConverter: func(s string, _ format.Context) string {
			return stripMarkers(s)
		},
		BoldConverter: func(s string, ctx format.Context) string {
			return mark(ctx, s, &tg.MessageEntityBold{})
		},
		ItalicConverter: func(s string, ctx format.Context) string {
			return mark(ctx, s, &tg.MessageEntityItalic{})
		},
		UnderlineConverter: func(s string, ctx format.Context) string {
			return mark(ctx, s, &tg.MessageEntityUnderline{})
		},
		StrikethroughConverter: func(s string, ctx format.Context) string {
			return mark(ctx, s, &tg.MessageEntityStrike{})
		},
		SpoilerConverter: func(s, _ string, ctx format.Context) string {
			return mark(ctx, s, &tg.MessageEntitySpoiler{})
		},
		MonospaceConverter: func(s string, ctx format.Context) string {
			return mark(ctx, removeEntityMarkers(s), &tg.MessageEntityCode{})
		},
		MonospaceBlockConverter: func(code, language string, ctx format.Context) string {
			code = strings.TrimSuffix(removeEntityMarkers(code), "\n")
			return mark(ctx, code, &tg.MessageEntityPre{Language: sanitizeLanguage(stripMarkers(language))})
		},
		ColorConverter: func(s, fg, _ string, ctx format.Context) string {
			if fg == blockquoteTag {
				return "\n" + mark(ctx, strings.TrimSpace(s), &tg.MessageEntityBlockquote{}) + "\n"
			}
			return s
		},
		LinkConverter: func(text, href string, ctx format.Context) string {
			safe, ok := safeURL(href)
			if !ok {
				return text
			}
			plain := stripMarkers(removeEntityMarkers(text))
			switch {
			case strings.HasPrefix(safe, "mailto:") && plain == strings.TrimPrefix(safe, "mailto:"):
				return mark(ctx, text, &tg.MessageEntityEmail{})
			case plain == href || plain == safe || "https://"+plain == safe || "http://"+plain == safe:
				return mark(ctx, text, &tg.MessageEntityURL{})
			}
			return mark(ctx, text, &tg.MessageEntityTextURL{URL: safe})
		},
		PillConverter: func(displayname, mxid, _ string, ctx format.Context) string {
			if displayname == "" {
				displayname = stripMarkers(mxid)
			}
			if len(mxid) == 0 || mxid[0] != '@' || deps.TelegramUserID == nil {
				return displayname
			}
			st := getState(ctx)
			tgID, known := st.users[id.UserID(mxid)]
			if !known {
				var ok bool
				if tgID, ok = deps.TelegramUserID(ctx.Ctx, id.UserID(mxid)); !ok {
					tgID = 0
				}
				st.users[id.UserID(mxid)] = tgID
			}
			if tgID == 0 {
				return displayname
			}
			return mark(ctx, displayname, &tg.MessageEntityMentionName{UserID: tgID})
		},
	}
}

// prepareHTML checks htmlData with htmlguard (too deep or unparsable HTML is
// refused) and turns <blockquote> into a <font> the parser hands to
// ColorConverter, since format.HTMLParser has no blockquote hook.
func prepareHTML(htmlData string) (string, bool) {
	return htmlguard.Prepare(htmlData, func(n *html.Node) {
		if n.Data == "blockquote" {
			n.Data = "font"
			n.DataAtom = 0
			n.Attr = []html.Attribute{{Key: "color", Val: blockquoteTag}}
		}
	})
}

// FromMatrix converts Matrix message content into Telegram text and entities.
// Emotes are prefixed with "/me ". Mentions of users that Deps.TelegramUserID
// resolves become MessageEntityMentionName (the caller turns them into
// InputMessageEntityMentionName with the user's access hash).
func FromMatrix(ctx context.Context, deps Deps, content *event.MessageEventContent) (string, []tg.MessageEntityClass) {
	var text string
	var entities []tg.MessageEntityClass
	if content.Format == event.FormatHTML && content.FormattedBody != "" && len(content.FormattedBody) <= MaxHTMLLength {
		var ok bool
		text, entities, ok = parseHTML(ctx, deps, content.FormattedBody)
		if !ok || (text == "" && content.Body != "") {
			text, entities = content.Body, nil
		}
	} else {
		text = content.Body
	}
	if content.MsgType == event.MsgEmote {
		text, entities = prefix("/me ", text, entities)
	}
	return text, entities
}

func prefix(p, text string, entities []tg.MessageEntityClass) (string, []tg.MessageEntityClass) {
	shift := len(utf16.Encode([]rune(p)))
	for _, ent := range entities {
		setOffset(ent, ent.GetOffset()+shift, ent.GetLength())
	}
	return p + text, entities
}

func parseHTML(ctx context.Context, deps Deps, htmlData string) (string, []tg.MessageEntityClass, bool) {
	prepared, ok := prepareHTML(htmlData)
	if !ok {
		return "", nil, false
	}
	st := &fromMatrixState{users: map[id.UserID]int64{}}
	fctx := format.NewContext(ctx)
	fctx.ReturnData[stateKey] = st
	marked := newParser(deps).Parse(prepared, fctx)
	text, entities := resolveMarkers(marked, st.entities)
	return text, entities, true
}

// resolveMarkers removes the markers from s and sets the offsets and lengths
// (UTF-16 code units) of the entities they delimit.
func resolveMarkers(s string, entities []tg.MessageEntityClass) (string, []tg.MessageEntityClass) {
	var sb strings.Builder
	sb.Grow(len(s))
	type open struct{ idx, start int }
	var stack []open
	pos := 0
	out := make([]tg.MessageEntityClass, 0, len(entities))
	lengths := make(map[int]int, len(entities))
	order := make([]int, 0, len(entities))
	starts := make(map[int]int, len(entities))
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch r {
		case markOpen:
			end := strings.IndexRune(s[i:], markOpenEnd)
			if end < 0 {
				i = len(s)
				continue
			}
			idx, err := strconv.Atoi(s[i+size : i+end])
			i += end + utf8.RuneLen(markOpenEnd)
			if err != nil || idx < 0 || idx >= len(entities) {
				continue
			}
			stack = append(stack, open{idx: idx, start: pos})
			order = append(order, idx)
			starts[idx] = pos
			continue
		case markClose:
			if len(stack) > 0 {
				top := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				lengths[top.idx] = pos - top.start
			}
		case markOpenEnd, '\uFDD3':
		default:
			sb.WriteRune(r)
			if r >= 0x10000 {
				pos += 2
			} else {
				pos++
			}
		}
		i += size
	}
	text := sb.String()
	// The parser trims surrounding whitespace; drop entities that end up empty.
	for _, idx := range order {
		length := lengths[idx]
		if length <= 0 {
			continue
		}
		ent := entities[idx]
		setOffset(ent, starts[idx], length)
		out = append(out, ent)
	}
	return text, out
}

func setOffset(ent tg.MessageEntityClass, offset, length int) {
	switch e := ent.(type) {
	case *tg.MessageEntityBold:
		e.Offset, e.Length = offset, length
	case *tg.MessageEntityItalic:
		e.Offset, e.Length = offset, length
	case *tg.MessageEntityUnderline:
		e.Offset, e.Length = offset, length
	case *tg.MessageEntityStrike:
		e.Offset, e.Length = offset, length
	case *tg.MessageEntitySpoiler:
		e.Offset, e.Length = offset, length
	case *tg.MessageEntityCode:
		e.Offset, e.Length = offset, length
	case *tg.MessageEntityPre:
		e.Offset, e.Length = offset, length
	case *tg.MessageEntityBlockquote:
		e.Offset, e.Length = offset, length
	case *tg.MessageEntityTextURL:
		e.Offset, e.Length = offset, length
	case *tg.MessageEntityURL:
		e.Offset, e.Length = offset, length
	case *tg.MessageEntityEmail:
		e.Offset, e.Length = offset, length
	case *tg.MessageEntityMentionName:
		e.Offset, e.Length = offset, length
	case *tg.InputMessageEntityMentionName:
		e.Offset, e.Length = offset, length
	}
}
